package sip

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// fuzzMailboxes: alice (1001) owns mailbox 1001 and may watch only that.
type fuzzMailboxes struct{}

func (fuzzMailboxes) ListenCode(context.Context, Owner, string) (string, bool) { return "", false }
func (fuzzMailboxes) MailboxOf(_ context.Context, o Owner, target string) (string, bool) {
	if o.ID == "alice" && (target == "" || target == "1001") {
		return "1001", true
	}
	return "", false
}
func (fuzzMailboxes) MessageSummary(context.Context, string) (int, int, error) { return 2, 1, nil }

// recordTx is a server transaction that keeps the answer.
type recordTx struct {
	sip.ServerTransaction
	res *sip.Response
}

func (r *recordTx) Respond(res *sip.Response) error { r.res = res; return nil }

const seedMWISubscribe = "SUBSCRIBE sip:1001@hotdesk.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n" +
	"From: <sip:1001@hotdesk.test>;tag=a\r\nTo: <sip:1001@hotdesk.test>\r\nCall-ID: m1\r\nCSeq: 1 SUBSCRIBE\r\n" +
	"Contact: <sip:1001@127.0.0.1:5070>\r\nEvent: message-summary\r\nExpires: 3600\r\nMax-Forwards: 70\r\n" +
	"Accept: application/simple-message-summary\r\nContent-Length: 0\r\n\r\n"

// FuzzMWISubscribe feeds arbitrary message-summary SUBSCRIBEs, signed
// with alice's valid digest, through the proxy's checks and the subscription handling: nothing
// panics, every request gets one answer with clean header lines, and a
// 200 only ever watches alice's own mailbox (anybody else's: 403).
func FuzzMWISubscribe(f *testing.F) {
	f.Add([]byte(seedMWISubscribe))
	f.Add([]byte(strings.Replace(seedMWISubscribe, "sip:1001@hotdesk.test SIP", "sip:1002@hotdesk.test SIP", 1)))
	f.Add([]byte(strings.Replace(seedMWISubscribe, "Expires: 3600", "Expires: 0", 1)))
	f.Add([]byte(strings.Replace(seedMWISubscribe, "Event: message-summary", "Event: message-summary;id=x", 1)))
	f.Add([]byte(strings.Replace(seedMWISubscribe, "Expires: 3600", "Expires: -1", 1)))
	p := newFuzzProxyWith(f, ProxyDeps{Mailboxes: fuzzMailboxes{}, VoicemailAddr: "127.0.0.1:5098"})
	d := p.dlg
	ctx := context.Background()
	parser := sip.NewParser()
	f.Fuzz(func(t *testing.T, data []byte) {
		msg, err := parser.ParseSIP(data)
		if err != nil {
			return
		}
		req, ok := msg.(*sip.Request)
		if !ok {
			return
		}
		req.SetSource("127.0.0.1:5070")
		req.SetTransport("UDP")
		// The proxy's path: its checks, then the subscription handling.
		if res, drop := p.check(req); drop || res != nil || !d.isDialogSubscribe(req) || d.packageOf(req) != mwiPackage {
			return
		}
		req.RemoveHeader("Proxy-Authorization")
		if _, res := p.proxyAuth(ctx, req); res != nil && res.StatusCode == 407 {
			for _, h := range res.GetHeaders("Proxy-Authenticate") {
				chal, err := digest.ParseChallenge(h.Value())
				if err != nil || chal.Algorithm != "MD5" {
					continue
				}
				c, err := digest.Digest(chal, digest.Options{Method: string(req.Method), URI: req.Recipient.String(),
					Username: "1001", Password: "alice-sip", Count: 1, Cnonce: "0a4f113b"})
				if err == nil {
					req.AppendHeader(sip.NewHeader("Proxy-Authorization", c.String()))
				}
				break
			}
		}
		tx := &recordTx{}
		d.onSubscribe(req, tx)
		if tx.res == nil {
			t.Fatal("no answer")
		}
		head, _, _ := strings.Cut(tx.res.String(), "\r\n\r\n")
		for _, line := range strings.Split(head, "\r\n")[1:] {
			if strings.ContainsAny(line, "\r\n") || !strings.Contains(line, ":") {
				t.Fatalf("broken header line: %q", line)
			}
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, s := range d.subs {
			if s.pkg == mwiPackage && s.watched != "1001" {
				t.Fatalf("%d answer, and a subscription to mailbox %q", tx.res.StatusCode, s.watched)
			}
			d.remove(s) // each input starts afresh; its queued NOTIFY is skipped
		}
	})
}
