package sip

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

var proxySeeds = []string{
	"INVITE sip:bob@hotdesk.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n" +
		"From: <sip:1001@hotdesk.test>;tag=a\r\nTo: <sip:bob@hotdesk.test>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n" +
		"Max-Forwards: 70\r\nContact: <sip:1001@127.0.0.1:5070>\r\nContent-Length: 0\r\n\r\n",
	"INVITE sip:*77bob*secret@hotdesk.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK2\r\n" +
		"From: <sip:1001@hotdesk.test>;tag=a\r\nTo: <sip:*77bob*secret@hotdesk.test>\r\nCall-ID: c2\r\nCSeq: 1 INVITE\r\n" +
		"Proxy-Authorization: Digest username=\"1001\", realm=\"hotdesk.test\", nonce=\"x\", uri=\"sip:x\", response=\"00\"\r\n" +
		"Max-Forwards: 0\r\nContent-Length: 0\r\n\r\n",
	"BYE sip:1002@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK3\r\n" +
		"Route: <sip:127.0.0.1:5060;transport=udp;lr>, <sip:10.0.0.1;lr>\r\nFrom: <sip:1001@hotdesk.test>;tag=a\r\n" +
		"To: <sip:bob@hotdesk.test>;tag=b\r\nCall-ID: c3\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
	"ACK sip:1002@127.0.0.1:5080 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKhdabc.x\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK4\r\nFrom: <sip:1001@hotdesk.test>;tag=a\r\n" +
		"To: <sip:bob@hotdesk.test>;tag=b\r\nCall-ID: c4\r\nCSeq: 2 ACK\r\nContent-Length: 0\r\n\r\n",
	"MESSAGE sip:%2A78@hotdesk.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bK5\r\n" +
		"From: <sip:1001@hotdesk.test>;tag=a\r\nTo: <sip:%2A78@hotdesk.test>\r\nCall-ID: c5\r\nCSeq: 1 MESSAGE\r\n" +
		"Proxy-Require: foo\r\nContent-Length: 0\r\n\r\n",
}

// FuzzProxyRouting feeds arbitrary requests through the proxy's checks,
// digest, routing and in-dialog target selection (nothing is sent): none
// may panic, and what they forward keeps a sane Max-Forwards.
func FuzzProxyRouting(f *testing.F) {
	for _, s := range proxySeeds {
		f.Add([]byte(s))
	}
	for _, dir := range []string{"valid", "invalid"} {
		files, _ := filepath.Glob(filepath.Join("..", "..", "shared", "testdata", "rfc4475", dir, "*.dat"))
		for _, fn := range files {
			if b, err := os.ReadFile(fn); err == nil {
				f.Add(b)
			}
		}
	}
	p := newFuzzProxy(f)
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
		if res, drop := p.check(req); drop || res != nil {
			return
		}
		if tagOf(req.To().Params) != "" {
			fwd, to, _, ok := p.inDialogTarget(req)
			if ok {
				checkForward(t, p, req, fwd)
				if to.addr == "" {
					t.Fatal("in-dialog target without an address")
				}
			}
			return
		}
		if _, res := p.proxyAuth(ctx, req); res == nil {
			t.Fatal("forged credentials passed")
		}
		fwd := p.forwardCopy(req)
		p.stripOurCredentials(fwd)
		checkForward(t, p, req, fwd)
		p.resolve(ctx, dialledUser(&req.Recipient), TrunkConfig{})
		p.addVia(fwd, loopHash(req), "UDP")
		if req.IsInvite() {
			c := cancelFor(fwd)
			if c.Via().Value() != fwd.Via().Value() {
				t.Fatal("CANCEL Via differs from the INVITE's")
			}
		}
		if !p.looped(fwd) {
			t.Fatal("our own forward copy is not seen as a loop")
		}
	})
}

func checkForward(t *testing.T, p *proxy, req, fwd *sip.Request) {
	t.Helper()
	if r := fwd.Route(); r != nil && p.isUs(&r.Address) {
		t.Fatalf("our own Route left on top: %s", r.Value())
	}
	in, out := req.MaxForwards(), fwd.MaxForwards()
	if out == nil || in != nil && out.Val() != in.Val()-1 || in == nil && out.Val() != 70 {
		t.Fatalf("Max-Forwards %v → %v", in, out)
	}
	for _, h := range fwd.Headers() {
		if strings.ContainsAny(h.Value(), "\r\n") {
			t.Fatalf("CR/LF in forwarded header %s", h.Name())
		}
	}
}

// newFuzzProxy builds a proxy that is never served: nothing is sent.
func newFuzzProxy(f testing.TB) *proxy { return newFuzzProxyWith(f, ProxyDeps{}) }

// newFuzzProxyWith is newFuzzProxy with deps.
func newFuzzProxyWith(f testing.TB, deps ProxyDeps) *proxy {
	cfg := DefaultConfig()
	cfg.Domain = "hotdesk.test"
	cfg.Listen = []string{"udp://127.0.0.1:5060"}
	creds := newMemCreds()
	creds.add(Credential{Username: "1001", Password: "alice-sip", Owner: Owner{OwnerUser, "alice"}, AORs: []string{"1001"}}, "alice")
	creds.add(Credential{Username: "1002", Password: "bob-sip", Owner: Owner{OwnerUser, "bob"}, AORs: []string{"1002"}}, "bob")
	srv, err := New(cfg, Deps{Credentials: creds})
	if err != nil {
		f.Fatal(err)
	}
	pcfg := DefaultProxyConfig()
	pcfg.Trunk.Address = "127.0.0.1:5099"
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	p, err := srv.enableProxy(ctx, pcfg, deps)
	if err != nil {
		f.Fatal(err)
	}
	return p
}
