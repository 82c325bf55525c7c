package sip

import (
	"context"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// proxyAuth authenticates a request with proxy digest (RFC 3261 §22.3):
// 407 + Proxy-Authenticate, credentials in Proxy-Authorization. It runs the
// registrar's own verification (nonces, nc replay, lockout, equal timing
// for unknown users) on a shadow request carrying the credentials as
// Authorization, then turns its 401 into a 407. A nil response means pass.
func (p *proxy) proxyAuth(ctx context.Context, req *sip.Request) (Credential, *sip.Response) {
	realm := p.s.domains[0]
	if f := req.From(); f != nil && p.servedDomain(strings.ToLower(f.Address.Host)) {
		realm = strings.ToLower(f.Address.Host)
	}
	now := p.s.now()
	srcIP := hostOf(req.Source())
	// A call to an emergency number is never refused for a lockout (the
	// digest must still be right); asked only when a lockout applies.
	emergency := func() bool {
		return req.IsInvite() && p.emergency != nil && p.emergency.IsEmergency(ctx, dialledUser(&req.Recipient))
	}
	if p.s.lock.locked("ip:"+srcIP, now) && !emergency() {
		return Credential{}, p.reply(req, 403, "Forbidden")
	}
	shadow := sip.NewRequest(req.Method, *req.Recipient.Clone())
	shadow.AppendHeader(req.Via().Clone())
	shadow.AppendHeader(sip.HeaderClone(req.From()))
	shadow.AppendHeader(sip.HeaderClone(req.To()))
	shadow.AppendHeader(sip.HeaderClone(req.CallID()))
	shadow.AppendHeader(sip.HeaderClone(req.CSeq()))
	if h := req.GetHeader("User-Agent"); h != nil { // chooses the challenge's algorithms
		shadow.AppendHeader(sip.NewHeader("User-Agent", h.Value()))
	}
	shadow.SetSource(req.Source())
	shadow.SetTransport(req.Transport()) // the nonce binds it; the connection guard reads it
	for _, h := range req.GetHeaders("Proxy-Authorization") {
		if strings.EqualFold(digestParam(h.Value(), "realm"), realm) {
			shadow.AppendHeader(sip.NewHeader("Authorization", h.Value()))
			break
		}
	}
	cred, res, result := p.s.authenticate(ctx, shadow, realm, srcIP, now, emergency)
	if res == nil {
		return cred, nil
	}
	p.m.auth.WithLabelValues(result).Inc()
	if res.StatusCode != 401 {
		return Credential{}, p.reply(req, res.StatusCode, res.Reason)
	}
	out := p.reply(req, 407, "Proxy Authentication Required")
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		out.AppendHeader(sip.NewHeader("Proxy-Authenticate", h.Value()))
	}
	return Credential{}, out
}
