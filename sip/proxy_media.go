package sip

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/emiago/sipgo/sip"

	"hotdesk/sip/media"
)

// A call between a browser (SIP over WebSocket, WebRTC media) and a phone
// or the trunk (plain RTP) has its media anchored on the bridge: the proxy
// hands the bridge one side's offer and puts the bridge's descriptions in
// the messages it forwards, so each side sees a peer of its own kind. The
// rest of the call is proxied as any other.

// isWebRTC tells a browser's description (DTLS-SRTP, RFC 5764 profile).
func isWebRTC(body []byte) bool { return bytes.Contains(body, []byte("UDP/TLS/RTP/SAVP")) }

// overWebSocket tells the transports browsers use.
func overWebSocket(tp string) bool {
	return strings.EqualFold(tp, "ws") || strings.EqualFold(tp, "wss")
}

// bridged is one bridge session of a call and the description it answers.
type bridged struct {
	s *media.Session
	// answer is the browser's answer (call from the browser), given once
	// the phone answers.
	answer string

	mu   sync.Mutex
	kept bool   // the call was answered through it: the dialog owns it now
	out  []byte // the answer forwarded (2xx retransmissions get the same)
	err  error
}

// fromBrowser anchors a browser's call: the branches carry the bridge's
// plain offer. false means the call was answered here (488 or 503).
func (c *call) fromBrowser(ctx context.Context) bool {
	info := media.CallInfo{Owner: string(c.caller.Kind) + ":" + c.caller.ID, Peer: c.rec.Dialled, CallID: c.rec.CallID}
	s, answer, offer, err := c.p.media.FromBrowser(ctx, string(c.up.Body()), info)
	if err != nil {
		c.p.log.Info("browser call not bridged", "err", err, "source", c.up.Source())
		code, reason := 503, "Service Unavailable"
		if errors.Is(err, media.ErrNoCodec) {
			code, reason = 488, "Not Acceptable Here"
		}
		c.p.reject(c.up, c.tx, c.rec, true, code, reason)
		return false
	}
	c.tmpl.SetBody([]byte(offer))
	c.media = &bridged{s: s, answer: answer}
	return true
}

// toBrowser anchors a branch toward a browser: r's plain offer becomes the
// bridge's WebRTC offer. nil means no bridge is needed; ok false means the
// branch cannot be sent.
func (c *call) toBrowser(r *sip.Request, tp string, owner Owner) (b *bridged, ok bool) {
	if c.p.media == nil || !c.invite || !overWebSocket(tp) || len(r.Body()) == 0 || isWebRTC(r.Body()) {
		return nil, true
	}
	info := media.CallInfo{Owner: string(owner.Kind) + ":" + owner.ID, Peer: c.rec.From, CallID: c.rec.CallID, Incoming: true}
	s, offer, err := c.p.media.ToBrowser(context.Background(), string(r.Body()), info)
	if err != nil {
		c.p.log.Info("call to a browser not bridged", "err", err)
		return nil, false
	}
	r.SetBody([]byte(offer))
	return &bridged{s: s}, true
}

// answer2xx puts the bridge's description into a 2xx forwarded upstream;
// b is the answering branch. Retransmissions get the same body.
func (c *call) answer2xx(b *branch, res, out *sip.Response) {
	for _, m := range []*bridged{b.media, c.media} {
		if m == nil {
			continue
		}
		m.mu.Lock()
		if m.out == nil && m.err == nil {
			if m == c.media {
				m.err = m.s.PhoneAnswered(string(res.Body()))
				m.out = []byte(m.answer)
			} else {
				var plain string
				plain, m.err = m.s.BrowserAnswered(string(res.Body()))
				m.out = []byte(plain)
			}
			if m.err != nil {
				c.p.log.Info("bridged answer refused", "err", m.err)
			}
			m.kept = true
		}
		body := m.out
		m.mu.Unlock()
		out.SetBody(body)
		res = out // the browser's side of a browser-to-browser call answers the other bridge
	}
	if r := c.relay; r != nil {
		r.mu.Lock()
		if r.out == nil {
			ans, err := r.r.Rewrite(false, string(out.Body()))
			if err != nil {
				// The call goes on with direct media, unrecorded.
				c.p.log.Info("recorded call's answer not anchored", "err", err)
				ans = string(out.Body())
			}
			r.out = []byte(ans)
		}
		r.kept = true
		body := r.out
		r.mu.Unlock()
		out.SetBody(body)
	}
}

// relayed is a recorded call between phones anchored on the bridge.
type relayed struct {
	r    *media.Relay
	mu   sync.Mutex
	kept bool   // answered: the dialog owns it
	out  []byte // the answer forwarded (2xx retransmissions get the same)
}

// anchorRelay puts a call to be recorded between phones on the bridge: the
// branches carry the bridge's address instead of the caller's. If the
// bridge cannot, the call goes on with direct media, unrecorded.
func (c *call) anchorRelay() {
	info := media.CallInfo{Owner: string(c.caller.Kind) + ":" + c.caller.ID, Peer: c.rec.Dialled, CallID: c.rec.CallID,
		Desk: true, From: c.rec.From}
	r, offer, err := c.p.media.NewRelay(string(c.up.Body()), info)
	if err != nil {
		c.p.log.Warn("call to be recorded not anchored: not recorded", "err", err, "source", c.up.Source())
		return
	}
	c.tmpl.SetBody([]byte(offer))
	c.relay = &relayed{r: r}
}

// stripSDP removes early media from a provisional of a bridged call: the
// bridge answers once, in the 2xx.
func (c *call) stripSDP(b *branch, res *sip.Response) {
	if (c.media != nil || b.media != nil || c.relay != nil) && len(res.Body()) > 0 {
		res.RemoveHeader("Content-Type")
		res.SetBody(nil)
	}
}

// mediaOf lists the sessions an answered dialog through b owns.
func (c *call) mediaOf(b *branch) []*media.Session {
	var out []*media.Session
	for _, m := range []*bridged{c.media, b.media} {
		if m != nil {
			out = append(out, m.s)
		}
	}
	return out
}

// closeUnanswered ends the sessions of branches (and of the call) that no
// answer kept, once the call's loop is over.
func (c *call) closeUnanswered() {
	ms := []*bridged{c.media}
	for _, b := range c.branches {
		ms = append(ms, b.media)
	}
	for _, m := range ms {
		if m == nil {
			continue
		}
		m.mu.Lock()
		kept := m.kept
		if !kept {
			m.err = errors.New("call over") // a late 2xx finds the session gone
		}
		m.mu.Unlock()
		if !kept {
			m.s.Close()
		}
	}
	if r := c.relay; r != nil {
		r.mu.Lock()
		kept := r.kept
		r.mu.Unlock()
		if !kept {
			r.r.Close()
		}
	}
}

// closeMedia ends an ended dialog's bridge sessions.
func closeMedia(d *dialog) {
	for _, s := range d.media {
		s.Close()
	}
	if d.relay != nil {
		d.relay.Close()
	}
}

// reinviteBridged relays a re-INVITE with an offer (hold, resume, a
// transfer's new party) in a call through the bridge: each session on the
// way turns the offer into its own for the next side, and the answer back
// (RFC 3264 §8, the direction mirrored), so each side keeps seeing a peer of
// its own kind.
func (p *proxy) reinviteBridged(req *sip.Request, tx sip.ServerTransaction, fwd *sip.Request, d *dialog) {
	near, far := d.callerMedia, d.calleeMedia
	if tagOf(req.From().Params) != d.callerTag {
		near, far = far, near
	}
	ctx, cancel := context.WithTimeout(context.Background(), sip.Timer_B)
	defer cancel()
	offer, err := string(req.Body()), error(nil)
	fromCaller := tagOf(req.From().Params) == d.callerTag
	if near != nil {
		offer, err = near.BrowserReoffer(ctx, offer)
	}
	if err == nil && d.relay != nil {
		offer, err = d.relay.Rewrite(fromCaller, offer)
	}
	if err == nil && far != nil {
		offer, err = far.PhoneReoffer(ctx, offer)
	}
	if err != nil {
		if far != nil {
			far.Rollback()
		}
		p.m.renegotiations.WithLabelValues("failed").Inc()
		p.log.Info("bridged re-INVITE not renegotiated", "err", err, "source", req.Source())
		code, reason := 500, "Server Internal Error"
		if errors.Is(err, media.ErrNoCodec) {
			code, reason = 488, "Not Acceptable Here"
		}
		p.respond(req, tx, code, reason)
		return
	}
	fwd.SetBody([]byte(offer))
	var (
		mu      sync.Mutex
		answer  []byte
		refused bool
	)
	p.relayTransaction(req, tx, fwd, func(res *sip.Response) []byte {
		if !res.IsSuccess() {
			return nil // no SDP in a provisional or a refusal: the bridge answers once
		}
		mu.Lock()
		defer mu.Unlock()
		if answer != nil || refused {
			return answer // a retransmitted 2xx gets the same answer
		}
		ans, err := string(res.Body()), error(nil)
		if far != nil {
			ans, err = far.BrowserReanswered(ans)
		}
		if err == nil && d.relay != nil {
			ans, err = d.relay.Rewrite(!fromCaller, ans)
		}
		if err == nil && near != nil {
			ans, err = near.PhoneReanswered(ans)
		}
		if err != nil {
			// The 2xx still goes up (the dialog is fine); the caller keeps
			// the old media, which the bridge still relays.
			refused = true
			p.m.renegotiations.WithLabelValues("failed").Inc()
			p.log.Info("bridged re-INVITE answer not renegotiated", "err", err)
			return nil
		}
		p.m.renegotiations.WithLabelValues("ok").Inc()
		answer = []byte(ans)
		return answer
	}, func(res *sip.Response) {
		if !res.IsSuccess() {
			if far != nil {
				far.Rollback()
			}
			if near != nil {
				near.Rollback()
			}
			p.m.renegotiations.WithLabelValues("refused").Inc()
		}
	})
}
