package sip

import (
	"hash/fnv"
	"strconv"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// inDialogRequest is a BYE as the proxy sees one mid-call: two Vias, two
// Routes, tags on both sides.
func inDialogRequest(t testing.TB) *sip.Request {
	t.Helper()
	raw := "BYE sip:1002@127.0.0.1:5063 SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5161;branch=z9hG4bK-y1;rport\r\nVia: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-y0\r\n" +
		"Route: <sip:127.0.0.1:5190;transport=udp;lr>\r\nRoute: <sip:10.0.0.1;lr>\r\n" +
		"From: <sip:1001@hotdesk.test>;tag=f1\r\nTo: <sip:1002@hotdesk.test>;tag=t1\r\n" +
		"Call-ID: c1@bench\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	msg, err := sip.NewParser().ParseSIP([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// TestLoopHashIsFNVOfTheRequest: the allocation-free loop hash is still
// hash/fnv's FNV-1a over the Request-URI, tags, Call-ID, CSeq number and
// Route values, and allocates only its result.
func TestLoopHashIsFNVOfTheRequest(t *testing.T) {
	req := inDialogRequest(t)
	h := fnv.New64a()
	h.Write([]byte(req.Recipient.String()))
	h.Write([]byte("f1"))
	h.Write([]byte("t1"))
	h.Write([]byte("c1@bench"))
	h.Write([]byte("2"))
	for _, r := range req.GetHeaders("Route") {
		h.Write([]byte(r.Value()))
	}
	if got, want := loopHash(req), strconv.FormatUint(h.Sum64(), 36); got != want {
		t.Fatalf("loopHash = %s, want %s", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { loopHash(req) }); n > 2 {
		t.Errorf("loopHash allocates %v times, want at most 2 (was 27 building strings)", n)
	}
}

// TestValidateBuildsNoStrings: the checks every proxied request passes
// (CR/LF in any header, one Content-Length) build no strings; the one
// allocation left is the CR/LF finder sipgo writes to (an interface).
func TestValidateBuildsNoStrings(t *testing.T) {
	req := inDialogRequest(t)
	s := &Server{}
	if res, drop := s.validate(req, false); res != nil || drop {
		t.Fatalf("validate: %v, drop=%v", res, drop)
	}
	if n := testing.AllocsPerRun(100, func() { s.validate(req, false) }); n > 1 {
		t.Errorf("validate allocates %v times, want at most 1 (was 23)", n)
	}
	bad := inDialogRequest(t)
	bad.Via().Params.Add("x", "a\r\nInjected: 1")
	if _, drop := s.validate(bad, false); !drop {
		t.Error("a Via parameter with CR/LF passed")
	}
}

// TestForwardCopyLeavesTheReceivedRequest: the forward copy shares the
// received request's headers (no deep copy per forwarded request), so
// every edit the proxy makes to it — Max-Forwards, received/rport on the
// previous hop's Via, our Route popped, our Via and a CSeq added — must
// leave the received request, which answers upstream, as it arrived.
func TestForwardCopyLeavesTheReceivedRequest(t *testing.T) {
	p := newFuzzProxy(t)
	tests := []struct {
		name, via, source string
		wantVia           string
	}{
		{"rport", "127.0.0.1:5161;branch=z9hG4bK-y1;rport", "127.0.0.1:5161",
			"SIP/2.0/UDP 127.0.0.1:5161;branch=z9hG4bK-y1;rport=5161;received=127.0.0.1"},
		{"another host", "10.0.0.9:5060;branch=z9hG4bK-y1", "127.0.0.1:5161",
			"SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-y1;received=127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "BYE sip:1002@127.0.0.1:5063 SIP/2.0\r\nVia: SIP/2.0/UDP " + tt.via + "\r\n" +
				"Route: <sip:127.0.0.1;lr>\r\nRoute: <sip:10.0.0.1;lr>\r\n" +
				"From: <sip:1001@hotdesk.test>;tag=f1\r\nTo: <sip:1002@hotdesk.test>;tag=t1\r\n" +
				"Call-ID: c1@bench\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
			msg, err := sip.NewParser().ParseSIP([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			req := msg.(*sip.Request)
			req.SetSource(tt.source)
			req.SetTransport("UDP")
			before := req.String()

			fwd := p.forwardCopy(req)
			p.addVia(fwd, loopHash(req), "UDP")
			fwd.ReplaceHeader(&sip.CSeqHeader{SeqNo: 3, MethodName: sip.BYE})
			fwd.SetBody([]byte("x"))

			if after := req.String(); after != before {
				t.Errorf("received request changed:\n%s\nwas\n%s", after, before)
			}
			vias := fwd.GetHeaders("Via")
			if len(vias) != 2 || vias[1].Value() != tt.wantVia {
				t.Errorf("forwarded Vias %v, want ours then %q", vias, tt.wantVia)
			}
			if mf := fwd.MaxForwards(); mf == nil || mf.Val() != 69 {
				t.Errorf("forwarded Max-Forwards %v, want 69", mf)
			}
			if r := fwd.Route(); r == nil || r.Address.Host != "10.0.0.1" {
				t.Errorf("forwarded Route %v, want ours popped", r)
			}
			if n := testing.AllocsPerRun(100, func() { p.forwardCopy(req) }); n > 12 {
				t.Errorf("forwardCopy allocates %v times, want at most 12 (with a deep copy ~33)", n)
			}
		})
	}
}

// TestResponseDestMatchesSipgo: responseDest, read without building a
// response, is the destination sipgo gives its own response to a received
// request, with and without rport, over UDP and TCP (the fork's
// TestResponseDestination covers the address its server transaction
// resolves).
func TestResponseDestMatchesSipgo(t *testing.T) {
	for _, tc := range []struct {
		name, via, transport, source string
	}{
		{"udp rport", "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bK-a;rport", "UDP", "192.0.2.7:40000"},
		{"udp no rport", "SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bK-b", "UDP", "10.0.0.9:5062"},
		{"udp received", "SIP/2.0/UDP phone.lan;branch=z9hG4bK-c;received=10.0.0.8", "UDP", "10.0.0.8:5060"},
		{"tcp", "SIP/2.0/TCP 10.0.0.9:5060;branch=z9hG4bK-d;rport", "TCP", "10.0.0.9:51234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := "BYE sip:1002@127.0.0.1:5063 SIP/2.0\r\nVia: " + tc.via + "\r\n" +
				"From: <sip:1001@hotdesk.test>;tag=f1\r\nTo: <sip:1002@hotdesk.test>;tag=t1\r\n" +
				"Call-ID: c1@bench\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
			msg, err := sip.NewParser().ParseSIP([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			req := msg.(*sip.Request)
			req.SetTransport(tc.transport)
			req.SetSource(tc.source)
			want := sip.NewResponseFromRequest(req, 100, "Trying", nil).Destination()
			if got := responseDest(req); got != want || got == "" {
				t.Errorf("responseDest %q, sipgo's response goes to %q", got, want)
			}
		})
	}
}
