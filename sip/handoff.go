package sip

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Handoff is the trust between the nodes of a cluster: a node with no
// way to reach a callee's binding from its own socket (the phone's TCP or
// TLS connection, or its NAT mapping, leads to the node it registered
// with) hands the request to that node, signed with the shared Secret.
// The holding node checks the signature, record-routes itself and
// delivers over the phone's own flow, as a Path proxy would (RFC 3327):
// the phone sees requests only from the server it registered with.
type Handoff struct {
	// Node is this node's name, in the hand-offs it signs.
	Node string
	// Secret is shared by every node; empty: no hand-off (bindings only
	// another node reaches are not called).
	Secret []byte
}

// handoffHeader carries the handing node's signature.
const handoffHeader = "X-Hotdesk-Handoff"

// handoffMaxAge bounds how old (or, with clocks apart, how new) a signed
// hand-off may be: a captured one cannot be replayed later.
const handoffMaxAge = 30 * time.Second

func (h Handoff) enabled() bool { return len(h.Secret) > 0 }

// mac signs what the holding node acts on: the contact (Request-URI), the
// AOR whose binding it must be, and the transaction it belongs to.
func (h Handoff) mac(node string, t int64, aor string, req *sip.Request) []byte {
	m := hmac.New(sha256.New, h.Secret)
	var cid string
	var cseq uint32
	if c := req.CallID(); c != nil {
		cid = c.Value()
	}
	if c := req.CSeq(); c != nil {
		cseq = c.SeqNo
	}
	fmt.Fprintf(m, "%s\n%d\n%s\n%s\n%s\n%d\n%s", node, t, aor, req.Recipient.String(), cid, cseq, req.Method)
	return m.Sum(nil)
}

// header signs req (its Request-URI already the contact) for aor.
func (h Handoff) header(aor string, req *sip.Request, now time.Time) sip.Header {
	t := now.Unix()
	return sip.NewHeader(handoffHeader, "node="+url.QueryEscape(h.Node)+";aor="+url.QueryEscape(aor)+
		";t="+strconv.FormatInt(t, 10)+";sig="+hex.EncodeToString(h.mac(h.Node, t, aor, req)))
}

// verify checks a hand-off header and returns the node that signed it and
// the AOR it names.
func (h Handoff) verify(v string, req *sip.Request, now time.Time) (node, aor string, err error) {
	if !h.enabled() {
		return "", "", errors.New("no cluster.secret on this node")
	}
	f := map[string]string{}
	for _, kv := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(kv), "=")
		f[k] = val
	}
	node, err1 := url.QueryUnescape(f["node"])
	aor, err2 := url.QueryUnescape(f["aor"])
	t, err3 := strconv.ParseInt(f["t"], 10, 64)
	sig, err4 := hex.DecodeString(f["sig"])
	if err := errors.Join(err1, err2, err3, err4); err != nil || node == "" || aor == "" || len(sig) == 0 {
		return "", "", fmt.Errorf("malformed hand-off header: %w", err)
	}
	if d := now.Sub(time.Unix(t, 0)); d > handoffMaxAge || d < -handoffMaxAge {
		return "", "", fmt.Errorf("hand-off signed %s from now", d.Round(time.Second))
	}
	if !hmac.Equal(sig, h.mac(node, t, aor, req)) {
		return "", "", errors.New("hand-off signature does not verify")
	}
	return node, aor, nil
}

// holderAddr is where the node holding b took its REGISTER: the listener
// that received it, or, when that listens on a wildcard, the host the
// phone addressed with its port. "" if unknown.
func holderAddr(b Binding) string {
	h, port, err := net.SplitHostPort(b.Local)
	if err != nil {
		return ""
	}
	if ip, err := netip.ParseAddr(h); err == nil && ip.IsUnspecified() {
		if b.LocalHost == "" {
			return ""
		}
		h = strings.Trim(b.LocalHost, "[]")
	}
	return net.JoinHostPort(h, port)
}

// natted reports a UDP binding whose phone sent from another address than
// its Contact names: only the mapping its NAT made toward the holding
// node is known to reach it.
func natted(b Binding) bool {
	var u sip.Uri
	if sip.ParseUri(b.Contact, &u) != nil {
		return false
	}
	return !strings.EqualFold(strings.Trim(u.Host, "[]"), hostOf(b.Source))
}

// handoff delivers a request another node handed over: to the binding of
// the signed AOR whose contact is the Request-URI, over the phone's own
// flow. It never hands on (a binding that moved meanwhile gets 480), so a
// request crosses at most one node boundary; Max-Forwards bounds the rest.
func (p *proxy) handoff(req *sip.Request, tx sip.ServerTransaction, v string) {
	node, aor, err := p.handoffKey.verify(v, req, p.now())
	if err != nil {
		p.m.handoffs.WithLabelValues("refused").Inc()
		p.log.Warn("cluster hand-off refused", "source", req.Source(), "err", err)
		p.respond(req, tx, 403, "Forbidden")
		return
	}
	fwd := p.forwardCopy(req)
	if fwd.Route() != nil {
		p.m.handoffs.WithLabelValues("refused").Inc()
		p.respond(req, tx, 403, "Route Not Allowed")
		return
	}
	removeAll(fwd, handoffHeader)
	if slot, ok := strings.CutPrefix(aor, parkEntity("")); ok {
		p.handoffPark(req, tx, fwd, node, slot)
		return
	}
	want := req.Recipient.String()
	var target *Binding
	for _, b := range p.s.loc.lookup(aor, p.now()) {
		var u sip.Uri
		if sip.ParseUri(b.Contact, &u) == nil && u.String() == want {
			target = &b
			break
		}
	}
	if target == nil {
		p.m.handoffs.WithLabelValues("gone").Inc()
		p.log.Debug("cluster hand-off for a binding not held here", "from", node, "aor", aor)
		p.respond(req, tx, 480, "Temporarily Unavailable")
		return
	}
	p.m.handoffs.WithLabelValues("accepted").Inc()
	// No call record: the handing node keeps the call's.
	rec := CallRecord{Caller: Owner{Kind: OwnerTrunk, ID: node}, CallID: stripCRLF(req.CallID().Value()), Route: RouteInternal,
		Start: p.now()}
	c := newCall(p, req, tx, fwd, rec)
	c.handedOver = true
	defer close(c.done)
	c.begin()
	if !c.forkBinding(*target) {
		c.sendFinal(*c.synth(480, "Temporarily Unavailable"))
		return
	}
	c.loop(context.Background())
	c.closeUnanswered()
	c.tmpl, c.results = nil, nil
}
