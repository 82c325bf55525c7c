package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// onInvite handles INVITE: in-dialog ones are relayed; initial ones are
// authenticated, offered to the feature codes, authorized by the policy and
// forked to their targets.
func (p *proxy) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if res, drop := p.check(req); drop || res != nil {
		if res != nil {
			tx.Respond(res)
		}
		return
	}
	if tagOf(req.To().Params) != "" {
		if !p.tp.handle(req, tx) {
			p.inDialog(req, tx)
		}
		return
	}
	if p.answered.has(answeredKey(req), p.now()) {
		// A retransmission of an INVITE answered and ACKed already.
		p.m.dropped.WithLabelValues("retransmission").Inc()
		tx.Terminate()
		return
	}
	if !p.hold(req, tx) {
		return
	}
	p.initial(req, tx)
}

// hold counts an initial INVITE against max_calls until its transaction
// ends, or sheds it when max_calls or max_dialogs is reached. Shedding
// comes before authentication: under overload no work is spent on a call
// that will not be taken. Over UDP the reader sheds most before they get
// here (admission); these are the ones it took while the slots filled.
func (p *proxy) hold(req *sip.Request, tx sip.ServerTransaction) bool {
	reason := ""
	switch {
	case p.held.Add(1) > int64(p.cfg.MaxCalls):
		reason = "calls"
	case p.dialogs.len() >= p.cfg.MaxDialogs:
		reason = "dialogs"
	}
	if reason == "" {
		if key, ok := admitKey(req); ok {
			p.admit.reached(key, p.now())
		}
		if !tx.OnTerminate(func(string, error) { p.held.Add(-1) }) {
			p.held.Add(-1) // it ended already
		}
		return true
	}
	p.held.Add(-1)
	p.m.shed.WithLabelValues(reason).Inc()
	p.log.Debug("INVITE shed", "reason", reason, "source", req.Source())
	res := p.reply(req, 503, "Service Unavailable")
	res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(int(p.cfg.RetryAfter/time.Second))))
	if err := tx.Respond(res); err != nil {
		p.log.Debug("respond failed", "method", "INVITE", "code", 503, "err", err)
	}
	// Stateless, as Kamailio's sl_send_reply: its ACK finds no transaction
	// and is dropped; a retransmitted INVITE is shed again.
	tx.Terminate()
	return false
}

// onRequest handles the other methods: in-dialog relaying, out-of-dialog
// MESSAGE/REFER/INFO routing, and the registrar's answers for the rest.
func (p *proxy) onRequest(req *sip.Request, tx sip.ServerTransaction) {
	if res, drop := p.check(req); drop || res != nil {
		if res != nil {
			tx.Respond(res)
		}
		return
	}
	if p.dlg.isDialogSubscribe(req) {
		p.dlg.onSubscribe(req, tx)
		return
	}
	if tagOf(req.To().Params) != "" {
		if !p.tp.handle(req, tx) {
			p.inDialog(req, tx)
		}
		return
	}
	switch req.Method {
	case sip.MESSAGE, sip.REFER, sip.INFO:
		p.initial(req, tx)
	case sip.BYE, sip.UPDATE, sip.PRACK:
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist")
	default:
		p.s.noRoute(req, tx)
	}
}

// onAck forwards the ACK of a 2xx (a new transaction, so it arrives here).
// ACKs of our own non-2xx answers are absorbed by the transaction layer.
func (p *proxy) onAck(req *sip.Request, _ sip.ServerTransaction) {
	if res, drop := p.check(req); drop || res != nil {
		return // an ACK is never answered
	}
	if !p.tp.handle(req, nil) {
		p.inDialog(req, nil)
	}
}

// dialledUser is the Request-URI user, percent-decoded.
func dialledUser(u *sip.Uri) string {
	if d, err := url.PathUnescape(u.User); err == nil {
		return d
	}
	return u.User
}

// redact keeps a feature code's first characters so no secret is stored.
func redact(dialled string) string {
	if len(dialled) <= 3 {
		return dialled
	}
	return dialled[:3] + "…"
}

func newCallID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// initial handles an out-of-dialog request that starts something.
func (p *proxy) initial(req *sip.Request, tx sip.ServerTransaction) {
	ctx := context.Background()
	if h := req.GetHeader(handoffHeader); h != nil {
		p.handoff(req, tx, h.Value())
		return
	}
	var caller Owner
	if p.trustedSource(req.Source()) {
		caller = Owner{Kind: OwnerTrunk, ID: hostOf(req.Source())}
		if !strings.EqualFold(req.Transport(), "udp") {
			p.s.guard.authenticated(req.Source()) // a trusted trunk's connection is not an unauthenticated one
		}
	} else {
		cred, res := p.proxyAuth(ctx, req)
		if res != nil {
			tx.Respond(res)
			return
		}
		caller = cred.Owner
	}
	fwd := p.forwardCopy(req)
	if fwd.Route() != nil {
		// A preloaded Route to somewhere else: we are no open relay.
		p.respond(req, tx, 403, "Route Not Allowed")
		return
	}
	p.stripOurCredentials(fwd)
	dialled := dialledUser(&req.Recipient)
	invite := req.IsInvite()
	rec := CallRecord{ID: newCallID(), Caller: caller, Dialled: dialled, CallID: stripCRLF(req.CallID().Value()),
		From: fromUser(req), Route: RouteNone, Start: p.now()}
	if invite && caller.Kind != OwnerTrunk && dialled != "" && (dialled[0] == '*' || dialled[0] == '#') &&
		p.mailboxes != nil {
		if mailbox, ok := p.mailboxes.ListenCode(ctx, caller, dialled); ok {
			if mailbox == "" {
				p.featureAnswer(req, tx, rec, 480, "No mailbox")
				return
			}
			c := newCall(p, req, tx, fwd, rec)
			c.runVoicemail(ctx, RouteMailbox, "listen", mailbox, mailbox)
			return
		}
	}
	if invite && caller.Kind != OwnerTrunk && dialled != "" && (dialled[0] == '*' || dialled[0] == '#') &&
		p.parking != nil {
		if slot, ok := p.parking.ParkSlot(ctx, caller, dialled); ok {
			if addr, ok := p.parkedElsewhere(ctx, slot); ok {
				p.parkOnNode(ctx, req, tx, fwd, rec, slot, addr)
				return
			}
			c := newCall(p, req, tx, fwd, rec)
			c.runVoicemail(ctx, RoutePark, "park", slot, parkEntity(slot))
			return
		}
	}
	if invite && p.features != nil && caller.Kind != OwnerTrunk && dialled != "" && (dialled[0] == '*' || dialled[0] == '#') {
		if code, reason, ok := p.features.FeatureCode(ctx, caller, dialled, hostOf(req.Source())); ok {
			p.featureAnswer(req, tx, rec, code, reason)
			return
		}
	}
	if dialled == "" {
		p.reject(req, tx, rec, invite, 404, "Not Found")
		return
	}
	if p.policy != nil && caller.Kind != OwnerTrunk {
		d, err := p.policy.Authorize(ctx, caller, dialled)
		if err != nil {
			p.log.Warn("call policy failed", "err", err)
			p.reject(req, tx, rec, invite, 500, "Server Internal Error")
			return
		}
		rec.Locked = d.Locked
		if !d.Allow {
			p.deny(req, tx, rec, invite, d)
			return
		}
	}
	c := newCall(p, req, tx, fwd, rec)
	c.trunk = p.trunkFor(ctx, caller)
	if invite && p.media != nil && overWebSocket(req.Transport()) && isWebRTC(req.Body()) && !c.fromBrowser(ctx) {
		return
	}
	if invite && c.media == nil && p.media != nil && p.recording != nil && len(req.Body()) > 0 &&
		!isWebRTC(req.Body()) && p.recording.RecordsCall(ctx, caller, dialled) {
		c.anchorRelay()
	}
	c.run(ctx, dialled)
}

// featureAnswer sends the final answer of a feature code.
func (p *proxy) featureAnswer(req *sip.Request, tx sip.ServerTransaction, rec CallRecord, code int, reason string) {
	reason = stripCRLF(reason)
	if len(reason) > 100 {
		reason = reason[:100]
	}
	if code < 300 || code > 699 {
		code = 403
	}
	if reason == "" {
		reason = "Feature Code Done"
	}
	rec.Dialled, rec.Route = redact(rec.Dialled), RouteFeature
	p.finishRecord(rec, code, reason)
	p.m.calls.WithLabelValues(RouteFeature, "feature").Inc()
	p.respond(req, tx, code, reason)
}

// deny answers a policy refusal with 403 and the phrase the phone shows.
func (p *proxy) deny(req *sip.Request, tx sip.ServerTransaction, rec CallRecord, invite bool, d Decision) {
	reason := stripCRLF(d.Reason)
	if len(reason) > 100 {
		reason = reason[:100]
	}
	if reason == "" {
		reason = "Forbidden"
		if d.Locked {
			reason = "Log in to call"
		}
	}
	if d.Locked {
		p.m.lockedDenials.Inc()
	}
	p.reject(req, tx, rec, invite, 403, reason)
}

// reject answers before routing and records the attempt (INVITE only).
func (p *proxy) reject(req *sip.Request, tx sip.ServerTransaction, rec CallRecord, invite bool, code int, reason string) {
	if invite {
		p.finishRecord(rec, code, reason)
		p.m.calls.WithLabelValues(rec.Route, resultLabel(code)).Inc()
	}
	p.respond(req, tx, code, reason)
}

// finishRecord sends the ended record of an attempt that was not answered.
func (p *proxy) finishRecord(rec CallRecord, code int, reason string) {
	rec.Stage, rec.Result, rec.Reason, rec.End = CallEnded, code, reason, p.now()
	p.records.push(rec)
}

// fromUser is the From user for the call record: bounded, printable.
func fromUser(req *sip.Request) string {
	f := req.From()
	if f == nil {
		return ""
	}
	u := stripCRLF(f.Address.User)
	if len(u) > 64 {
		u = u[:64]
	}
	return u
}
