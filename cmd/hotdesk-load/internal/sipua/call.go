package sipua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// CallResult times one call.
type CallResult struct {
	Setup    time.Duration // INVITE sent → 200 OK
	Teardown time.Duration // BYE sent → 200 OK
}

// dialog is the caller's side of one call.
type dialog struct {
	u       *UA
	acct    Account
	callID  string
	fromTag string
	toTag   string
	ruri    sip.Uri
	cseq    uint32
	// authHdr/authz are the credentials that got the INVITE through, sent
	// again on the BYE (a proxy may challenge in-dialog requests too).
	authHdr, authz string
}

func (d *dialog) build(method sip.RequestMethod, uri sip.Uri) *sip.Request {
	req := d.u.newRequest(method, uri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: d.acct.User, Host: d.acct.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", d.fromTag)
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: d.ruri, Params: sip.NewParams()}
	if d.toTag != "" {
		to.Params.Add("tag", d.toTag)
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(d.callID)
	req.AppendHeader(&cid)
	if method != sip.ACK {
		d.cseq++
	}
	req.AppendHeader(&sip.CSeqHeader{SeqNo: d.cseq, MethodName: method})
	return req
}

// Call places a call from acct to sip:target@acct.Domain through the
// server: INVITE (answering a 401/407 with digest) → 200 → ACK, hold, BYE.
// It follows the simplest routing a phone with an outbound proxy does:
// every request goes to the server.
func (u *UA) Call(ctx context.Context, acct Account, target string, hold time.Duration) (CallResult, error) {
	var cr CallResult
	d := &dialog{u: u, acct: acct, callID: sip.GenerateTagN(20), fromTag: sip.GenerateTagN(10),
		ruri: sip.Uri{Scheme: "sip", User: target, Host: acct.Domain}}
	start := time.Now()
	res, err := d.invite(ctx)
	if err != nil {
		return cr, err
	}
	cr.Setup = time.Since(start)
	d.toTag, _ = res.To().Params.Get("tag")
	remote := d.ruri
	if c := res.Contact(); c != nil {
		remote = c.Address
	}
	ack := d.build(sip.ACK, remote)
	_, _ = u.conn.WriteToUDP([]byte(ack.String()), u.raddr)
	select {
	case <-time.After(hold):
	case <-ctx.Done():
	}
	bye := d.build(sip.BYE, remote)
	if d.authz != "" {
		bye.AppendHeader(sip.NewHeader(d.authHdr, d.authz))
	}
	t := time.Now()
	bres, err := u.transact(ctx, bye)
	if err != nil {
		return cr, fmt.Errorf("bye: %w", err)
	}
	if bres.StatusCode >= 300 {
		return cr, &StatusError{Status: bres.StatusCode, Reason: bres.Reason}
	}
	cr.Teardown = time.Since(t)
	return cr, nil
}

// invite sends the INVITE until a 2xx, answering one digest challenge.
func (d *dialog) invite(ctx context.Context) (*sip.Response, error) {
	for attempt := 0; attempt < 2; attempt++ {
		inv := d.build(sip.INVITE, d.ruri)
		inv.AppendHeader(d.u.contact(d.acct.User))
		if d.authz != "" {
			inv.AppendHeader(sip.NewHeader(d.authHdr, d.authz))
		}
		inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		inv.SetBody(sdp(d.u.caddr))
		res, err := d.u.transact(ctx, inv)
		if err != nil {
			return nil, fmt.Errorf("invite: %w", err)
		}
		if res.StatusCode < 300 {
			return res, nil
		}
		d.u.ackFailure(inv, res)
		if (res.StatusCode != 401 && res.StatusCode != 407) || d.authz != "" {
			return nil, &StatusError{Status: res.StatusCode, Reason: res.Reason}
		}
		hdr := "WWW-Authenticate"
		d.authHdr = "Authorization"
		if res.StatusCode == 407 {
			hdr, d.authHdr = "Proxy-Authenticate", "Proxy-Authorization"
		}
		chal, err := PickChallenge(headerValues(res, hdr), d.u.cfg.Algorithm)
		if err != nil {
			return nil, err
		}
		cred, err := digest.Digest(chal, digest.Options{Method: "INVITE", URI: d.ruri.String(),
			Username: d.acct.AuthUser, Password: d.acct.Password, Count: 1})
		if err != nil {
			return nil, err
		}
		d.authz = cred.String()
	}
	return nil, errors.New("invite: challenged twice")
}

// ackFailure sends the ACK of a non-2xx final answer to INVITE: same
// branch, same CSeq number, To with the answer's tag (RFC 3261 §17.1.1.3).
func (u *UA) ackFailure(inv *sip.Request, res *sip.Response) {
	ack := sip.NewRequest(sip.ACK, inv.Recipient)
	ack.AppendHeader(inv.Via().Clone())
	mf := sip.MaxForwardsHeader(70)
	ack.AppendHeader(&mf)
	ack.AppendHeader(sip.NewHeader("From", inv.From().Value()))
	if to := res.To(); to != nil {
		ack.AppendHeader(sip.NewHeader("To", to.Value()))
	}
	cid := sip.CallIDHeader(inv.CallID().Value())
	ack.AppendHeader(&cid)
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.ACK})
	cl := sip.ContentLengthHeader(0)
	ack.AppendHeader(&cl)
	_, _ = u.conn.WriteToUDP([]byte(ack.String()), u.raddr)
}
