package sip

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"hotdesk/sip/media"
)

// side is where one party of a dialog is reached: the address its
// requests came from (NAT and TCP connections survive), not its Contact.
type side struct {
	addr      string
	transport string
	laddr     sip.Addr
	// cseqDelta is added to the CSeq of requests toward this side: our
	// digest retry to the trunk raised the INVITE's CSeq by one.
	cseqDelta uint32
}

// dialog is an answered call the proxy Record-Routed: kept so in-dialog
// requests reach the right flow, for the active-dialogs gauge and to end
// the call record on BYE.
type dialog struct {
	key       string
	callerTag string
	caller    side
	callee    side
	rec       CallRecord
	created   time.Time
	// upDest is where responses to the caller's INVITE went (its Via):
	// a retransmitted 2xx that outlives the transactions goes there.
	upDest string
	// inviteKey names the caller's INVITE (answeredKey), remembered for
	// tx_linger once its transactions end.
	inviteKey string
	// txs are the INVITE transactions of the answer (upstream server,
	// downstream client): ended when the ACK passes instead of sipgo's
	// 32 s (Timers L and M), which at 3000 calls/s held 1.5 GB. A 2xx
	// retransmitted after that is relayed statelessly (strayResponse).
	txs []interface{ Terminate() }
	// media are the bridge sessions of a browser's call, closed with it;
	// callerMedia and calleeMedia are the ones facing the caller's and the
	// callee's browser (nil: that side speaks plain RTP).
	media                    []*media.Session
	callerMedia, calleeMedia *media.Session
	// relay anchors a recorded call between phones (nil: direct media).
	relay *media.Relay
}

// takeTxs hands over a dialog's INVITE transactions once, with the
// caller's INVITE key.
func (t *dialogTable) takeTxs(key string) ([]interface{ Terminate() }, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.m[key]
	if d == nil {
		return nil, ""
	}
	txs := d.txs
	d.txs = nil
	return txs, d.inviteKey
}

// answeredKey names an INVITE as its retransmissions repeat it: Call-ID
// and the branch of its top Via.
func answeredKey(req *sip.Request) string {
	via := req.Via()
	if via == nil || req.CallID() == nil {
		return ""
	}
	b, _ := via.Params.Get("branch")
	return req.CallID().Value() + "\x00" + b
}

// answeredSet remembers the INVITEs whose transactions ended at the ACK
// for at least ttl, so a retransmission still in flight (the caller sent
// it before our 100 reached it) is absorbed as the transaction would
// have (RFC 6026's Accepted state) instead of starting the call again.
// Two generations swapped every ttl bound it to what 2×ttl of calls
// leave, with no goroutine.
type answeredSet struct {
	mu        sync.Mutex
	ttl       time.Duration
	cur, prev map[string]struct{}
	rotated   time.Time
}

func newAnsweredSet(ttl time.Duration) *answeredSet {
	return &answeredSet{ttl: ttl, cur: map[string]struct{}{}, prev: map[string]struct{}{}}
}

func (s *answeredSet) rotate(now time.Time) {
	if now.Sub(s.rotated) >= s.ttl {
		s.prev, s.cur, s.rotated = s.cur, make(map[string]struct{}, len(s.cur)), now
	}
}

func (s *answeredSet) add(key string, now time.Time) {
	if key == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate(now)
	s.cur[key] = struct{}{}
}

func (s *answeredSet) has(key string, now time.Time) bool {
	if key == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotate(now)
	_, a := s.cur[key]
	_, b := s.prev[key]
	return a || b
}

type dialogTable struct {
	mu sync.Mutex
	m  map[string]*dialog
}

func newDialogTable() *dialogTable { return &dialogTable{m: map[string]*dialog{}} }

// dialogKey is symmetric in the tags, so requests of both directions match.
func dialogKey(callID, tagA, tagB string) string {
	if tagA > tagB {
		tagA, tagB = tagB, tagA
	}
	return callID + "\x00" + tagA + "\x00" + tagB
}

func (t *dialogTable) put(d *dialog) {
	t.mu.Lock()
	t.m[d.key] = d
	t.mu.Unlock()
}

func (t *dialogTable) get(key string) *dialog {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[key]
}

// take removes and returns a dialog (nil if gone already).
func (t *dialogTable) take(key string) *dialog {
	t.mu.Lock()
	defer t.mu.Unlock()
	d := t.m[key]
	delete(t.m, key)
	return d
}

func (t *dialogTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// expired removes dialogs created before cutoff.
func (t *dialogTable) expired(cutoff time.Time) []*dialog {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*dialog
	for k, d := range t.m {
		if d.created.Before(cutoff) {
			out = append(out, d)
			delete(t.m, k)
		}
	}
	return out
}

// expireDialogs forgets answered calls whose BYE never came through us.
func (p *proxy) expireDialogs(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := p.now()
		for _, d := range p.dialogs.expired(now.Add(-p.cfg.DialogTTL)) {
			closeMedia(d)
			p.endRecord(d, now, "Dialog Expired")
		}
	}
}

// endRecord closes the call record of an answered call.
func (p *proxy) endRecord(d *dialog, at time.Time, reason string) {
	if d.rec.ID == "" {
		return
	}
	rec := d.rec
	rec.Stage, rec.End = CallEnded, at
	if reason != "" {
		rec.Reason = reason
	}
	p.records.push(rec)
}

func tagOf(params sip.HeaderParams) string {
	t, _ := params.Get("tag")
	return t
}

// strayResponse relays a 2xx to INVITE that matched no transaction (RFC
// 3261 §16.7 step 5: a stateful proxy forwards it as a stateless one)
// when it belongs to a dialog we keep: the callee retransmits its 2xx
// until the ACK reaches it, after the INVITE transactions ended. It goes
// to where the caller's INVITE got its answers, never to an address the
// response names, so it cannot be aimed elsewhere. Reports whether it
// was relayed.
func (p *proxy) strayResponse(res *sip.Response) bool {
	cs := res.CSeq()
	if !res.IsSuccess() || cs == nil || cs.MethodName != sip.INVITE || res.CallID() == nil ||
		res.From() == nil || res.To() == nil {
		return false
	}
	d := p.dialogs.get(dialogKey(res.CallID().Value(), tagOf(res.From().Params), tagOf(res.To().Params)))
	if d == nil || d.upDest == "" {
		return false
	}
	out := sip.NewResponse(res.StatusCode, stripCRLF(res.Reason))
	skipped := false
	for _, h := range res.Headers() {
		if !skipped && h.Name() == "Via" {
			skipped = true // ours
			continue
		}
		out.AppendHeader(sip.HeaderClone(h))
	}
	out.ReplaceHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo - d.callee.cseqDelta, MethodName: cs.MethodName})
	out.SetBody(res.Body())
	out.SetTransport(d.caller.transport)
	out.SetDestination(d.upDest)
	if err := p.s.UA.TransportLayer().WriteMsg(out); err != nil {
		p.log.Debug("relaying a retransmitted 2xx failed", "err", err)
	}
	return true
}

// inDialog relays a request inside a dialog (RFC 3261 §16.12 loose
// routing): to the other party of a known dialog, else along the Route
// set we were part of. ACK goes statelessly; others in a transaction.
func (p *proxy) inDialog(req *sip.Request, tx sip.ServerTransaction) {
	fwd, _, key, ok := p.inDialogTarget(req)
	if !ok {
		if !req.IsAck() {
			p.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		}
		return
	}
	p.m.inDialog.WithLabelValues(methodLabelProxy(string(req.Method))).Inc()
	if req.IsInvite() && len(req.Body()) > 0 {
		if d := p.dialogs.get(key); d != nil && (len(d.media) > 0 || d.relay != nil) {
			p.reinviteBridged(req, tx, fwd, d)
			return
		}
	}
	if req.IsAck() {
		if err := p.s.Client.WriteRequest(fwd, noBuild); err != nil {
			p.m.dropped.WithLabelValues("ack_write").Inc()
			p.log.Debug("forwarding ACK failed", "err", err)
		}
		// RFC 3261 §17.2.1: the INVITE server transaction ends with its
		// 2xx; once the ACK passed, a retransmitted 2xx (the ACK lost
		// downstream) is relayed by strayResponse and a retransmitted
		// INVITE still in flight is absorbed by answered. Keeping the
		// transactions (tx_linger) made max_calls cap the call rate at
		// max_calls / tx_linger.
		txs, invite := p.dialogs.takeTxs(key)
		if len(txs) > 0 {
			p.answered.add(invite, p.now())
		}
		for _, tx := range txs {
			tx.Terminate()
		}
		return
	}
	p.relayTransaction(req, tx, fwd, nil, func(res *sip.Response) {
		if req.Method == sip.BYE && !res.IsProvisional() {
			if d := p.dialogs.take(key); d != nil {
				closeMedia(d)
				p.endRecord(d, p.now(), "")
			}
		}
	})
}

// inDialogTarget prepares the forward copy of an in-dialog request and
// picks where it goes; ok=false means it is not ours to route (481).
func (p *proxy) inDialogTarget(req *sip.Request) (fwd *sip.Request, to side, key string, ok bool) {
	fwd = p.forwardCopy(req)
	popped := len(req.GetHeaders("Route")) - len(fwd.GetHeaders("Route"))
	fromTag, toTag := tagOf(req.From().Params), tagOf(req.To().Params)
	key = dialogKey(req.CallID().Value(), fromTag, toTag)
	d := p.dialogs.get(key)
	switch {
	case d != nil && fromTag == d.callerTag:
		to = d.callee
	case d != nil:
		to = d.caller
	case popped > 0 && (req.IsAck() || req.Method == sip.BYE):
		// No state (a restart): let ACK and BYE follow the next Route, else
		// the Request-URI, so calls can end; nothing that could start a
		// call goes anywhere without a dialog we saw (no open relay).
		u := fwd.Recipient
		if r := fwd.Route(); r != nil {
			u = r.Address
		}
		if u.Host == "" || p.isUs(&u) {
			// An ACK for our own non-2xx answer (TCP: its transaction is
			// gone already) names us: it ends here.
			return nil, side{}, "", false
		}
		to = side{addr: uriHostPort(&u), transport: uriTransport(&u)}
		if !p.knownPeer(to.addr) {
			// Anyone can send a BYE with our Route: only a peer we know
			// (a registered phone, the trunk) may receive it, or we are a
			// relay and a port-scan oracle for any host:port.
			p.m.relayRefused.WithLabelValues("unknown_peer").Inc()
			p.log.Debug("in-dialog request to an unknown peer not relayed", "method", string(req.Method),
				"target", stripCRLF(to.addr), "source", req.Source())
			return nil, side{}, "", false
		}
	default:
		return nil, side{}, "", false
	}
	if to.cseqDelta != 0 {
		if cs := fwd.CSeq(); cs != nil {
			fwd.ReplaceHeader(&sip.CSeqHeader{SeqNo: cs.SeqNo + to.cseqDelta, MethodName: cs.MethodName})
		}
	}
	p.addVia(fwd, loopHash(req), to.transport)
	p.setTarget(fwd, to.addr, to.transport)
	if to.laddr.IP != nil && strings.EqualFold(to.transport, "udp") {
		fwd.Laddr = to.laddr
	}
	return fwd, to, key, true
}

// relayTransaction sends fwd in a client transaction and passes every
// response (1xx-6xx, 2xx retransmissions of a re-INVITE) back on tx.
// body, when set, gives the body of each response relayed (a bridged
// call's descriptions).
func (p *proxy) relayTransaction(req *sip.Request, tx sip.ServerTransaction, fwd *sip.Request,
	body func(*sip.Response) []byte, onFinal func(*sip.Response)) {
	ctx := context.Background()
	if !strings.EqualFold(fwd.Transport(), "udp") {
		// Bounds a connection's dial; UDP sends without one (and a timer
		// per BYE for nothing).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*sip.Timer_B)
		defer cancel()
	}
	clTx, err := p.send(ctx, fwd)
	if err != nil {
		p.log.Debug("forwarding failed", "method", string(req.Method), "err", err)
		p.respond(req, tx, 503, "Service Unavailable")
		return
	}
	p.m.branches.Inc()
	dest := responseDest(req)
	if req.IsInvite() {
		clTx.OnRetransmission(func(r *sip.Response) {
			out := relay(r, req, dest)
			if body != nil {
				setBody(out, body(r))
			}
			p.s.UA.TransportLayer().WriteMsg(out)
		})
	} else {
		defer clTx.Terminate()
	}
	for {
		select {
		case res := <-clTx.Responses():
			if res.StatusCode == 100 {
				continue
			}
			out := relay(res, req, dest)
			if body != nil {
				setBody(out, body(res))
			}
			if err := tx.Respond(out); err != nil {
				p.log.Debug("relaying a response failed", "err", err)
			}
			if !res.IsProvisional() {
				onFinal(res)
				switch {
				case req.IsInvite():
				case sip.IsReliable(req.Transport()):
					// Timer J is 0 over a reliable transport: nothing is
					// retransmitted to absorb (RFC 3261 §17.2.2).
					tx.Terminate()
				default:
					// Absorb retransmissions for TxLinger, not Timer J's 32 s.
					time.AfterFunc(p.cfg.TxLinger, tx.Terminate)
				}
				return
			}
		case <-clTx.Done():
			onFinal(p.reply(req, 408, "Request Timeout"))
			p.respond(req, tx, 408, "Request Timeout")
			return
		case <-tx.Done():
			return
		}
	}
}

// uriHostPort is host:port of a URI, with the transport's default port.
func uriHostPort(u *sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = sip.DefaultPort(uriTransport(u))
	}
	return net.JoinHostPort(strings.Trim(u.Host, "[]"), strconv.Itoa(port))
}

func uriTransport(u *sip.Uri) string {
	if u.UriParams != nil {
		if t, ok := u.UriParams.Get("transport"); ok && t != "" {
			return strings.ToUpper(t)
		}
	}
	if u.IsEncrypted() {
		return "TLS"
	}
	return "UDP"
}

// knownPeer reports whether an in-dialog request without dialog state may
// go to hostport: a registered phone (where it is reached or what its
// Contact names), the trunk's address, or a trusted source.
func (p *proxy) knownPeer(hostport string) bool {
	hp := normHostPort(hostport)
	if hp == "" {
		return false
	}
	if p.s.loc.knownPeer(hp) {
		return true
	}
	if a := p.cfg.Trunk.Address; a != "" && normHostPort(a) == hp {
		return true
	}
	if _, ok := p.sitePeers.Load(hp); ok {
		return true
	}
	return p.trustedSource(hp)
}

// setBody replaces a relayed response's body; none drops its type too.
func setBody(res *sip.Response, body []byte) {
	if len(body) == 0 {
		res.RemoveHeader("Content-Type")
	}
	res.SetBody(body)
}
