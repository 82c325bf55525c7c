package sip

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// registerTrunk keeps hotdesk registered with the upstream trunk, renewing
// at 80 % of the granted expiry and retrying with backoff after a failure.
func (p *proxy) registerTrunk(ctx context.Context) {
	t := p.cfg.Trunk
	if !t.Register || t.Address == "" {
		return
	}
	callID := "trunk-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "@" + p.s.cfg.Domain
	var cseq uint32
	wait, backoff := time.Second, 5*time.Second
	for {
		select {
		case <-ctx.Done():
			p.m.trunkUp.Set(0)
			return
		case <-time.After(wait):
		}
		granted, err := p.registerTrunkOnce(ctx, callID, &cseq)
		if err != nil {
			p.m.trunkReg.WithLabelValues("failed").Inc()
			p.m.trunkUp.Set(0)
			p.log.Warn("trunk registration failed", "trunk", t.Address, "err", err)
			wait, backoff = backoff, min(2*backoff, 5*time.Minute)
			continue
		}
		p.m.trunkReg.WithLabelValues("ok").Inc()
		p.m.trunkUp.Set(1)
		wait, backoff = granted*8/10, 5*time.Second
	}
}

// registerTrunkOnce sends one REGISTER (answering a digest challenge) and
// returns the expiry the trunk granted.
func (p *proxy) registerTrunkOnce(ctx context.Context, callID string, cseq *uint32) (time.Duration, error) {
	t := p.cfg.Trunk
	host, port, err := net.SplitHostPort(t.Address)
	if err != nil {
		return 0, err
	}
	domain := t.Domain
	if domain == "" {
		domain = host
	}
	transport := strings.ToUpper(t.Transport)
	if transport == "" {
		transport = "UDP"
	}
	registrar := sip.Uri{Scheme: "sip", Host: domain}
	req := sip.NewRequest(sip.REGISTER, registrar)
	p.setTarget(req, net.JoinHostPort(host, port), transport)
	aor := sip.Uri{Scheme: "sip", User: t.Username, Host: domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", strconv.FormatUint(uint64(time.Now().UnixNano()), 36))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	cid := sip.CallIDHeader(callID)
	req.AppendHeader(&cid)
	*cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: *cseq, MethodName: sip.REGISTER})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	contact := sip.Uri{Scheme: "sip", User: t.Username, Host: p.advHost, Port: p.port(transport)}
	req.AppendHeader(&sip.ContactHeader{Address: contact})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(t.Expires)))
	ctx, cancel := context.WithTimeout(ctx, 32*time.Second)
	defer cancel()
	res, err := p.s.Client.Do(ctx, req)
	if err != nil {
		return 0, err
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		*cseq++
		req.CSeq().SeqNo = *cseq
		if res, err = p.s.Client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: t.Username, Password: t.Password}); err != nil {
			return 0, err
		}
		*cseq = req.CSeq().SeqNo
	}
	if !res.IsSuccess() {
		return 0, fmt.Errorf("trunk answered %d %s", res.StatusCode, stripCRLF(res.Reason))
	}
	granted := t.Expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 {
			granted = n
		}
	}
	for _, h := range res.GetHeaders("Contact") {
		if c, ok := h.(*sip.ContactHeader); ok && c.Address.User == t.Username && c.Params != nil {
			if v, ok := c.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(v); err == nil && n > 0 {
					granted = n
				}
			}
		}
	}
	return time.Duration(granted) * time.Second, nil
}
