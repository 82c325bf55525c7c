package sip

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/sip/media"
)

// TestRegisterOverWebSocket: a ws:// listener serves SIP over WebSocket
// (RFC 7118): REGISTER is challenged and accepted as over TCP, and the
// binding remembers the WS transport, so requests to it reuse the socket.
func TestRegisterOverWebSocket(t *testing.T) {
	e := startEnv(t, nil, func(c *Config, _ *Deps) { c.Listen = append(c.Listen, "ws://127.0.0.1:0") })
	if e.ws == "" {
		t.Fatal("no ws listener")
	}
	p := newPhone(t, "ws", e.ws)
	res, _ := p.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600,
		contacts: []string{"<sip:x7k2@df7jal23ls0d.invalid;transport=ws>"}})
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER over ws = %d %s", res.StatusCode, res.Reason)
	}
	ev := e.nextEvent(t, Registered)
	if ev.Binding.Transport != "WS" || !strings.HasPrefix(ev.Binding.Source, "127.0.0.1:") {
		t.Fatalf("binding %+v, want transport WS from the socket", ev.Binding)
	}
	if got := ev.Binding.Target(); got != ev.Binding.Source {
		t.Fatalf("target %q, want the WebSocket's source %q", got, ev.Binding.Source)
	}
	// Wrong password over WebSocket: refused as anywhere else.
	q := newPhone(t, "ws", e.ws)
	if res, _ := q.register(t, regOpts{user: "1001", pass: "wrong", to: "1001", expires: 600}); res.StatusCode != 401 && res.StatusCode != 403 {
		t.Fatalf("bad password over ws = %d", res.StatusCode)
	}
}

// TestListenSchemes: ws and wss are accepted, wss needs the certificate.
func TestListenSchemes(t *testing.T) {
	c := DefaultConfig()
	c.Listen = []string{"ws://127.0.0.1:5066"}
	if err := c.Validate(); err != nil {
		t.Fatalf("ws listener: %v", err)
	}
	c.Listen = []string{"wss://127.0.0.1:5067"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tls_cert") {
		t.Fatalf("wss without a certificate: %v, want a tls_cert error", err)
	}
	c.Listen = []string{"sctp://127.0.0.1:5067"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "want udp, tcp, tls, ws or wss") {
		t.Fatalf("unknown scheme: %v", err)
	}
}

// TestBrowserCallWithoutPCMU: the bridge does not transcode, so a
// browser's offer without G.711 µ-law is answered 488 (after the proxy's
// digest), counted, and nothing is forked.
func TestBrowserCallWithoutPCMU(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := startProxyEnvHook(t, func(p *proxy) {
		b, err := media.New(media.Config{RTPAddress: "127.0.0.1", Loopback: true}, slog.New(slog.DiscardHandler), reg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		p.media = b
	}, func(c *Config, _ *ProxyConfig, _ *Deps) { c.Listen = append(c.Listen, "ws://127.0.0.1:0") })
	bob := newUA(t, "bob", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(SoftphoneUserAgent))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	cli, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(e.ws)
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "1002", Host: "hotdesk.test"})
	req.SetTransport("WS")
	req.SetDestination(net.JoinHostPort(host, port))
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "1001", Host: "hotdesk.test"}, Params: sip.NewParams()})
	req.From().Params.Add("tag", "b1")
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: "hotdesk.test"}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\na=fingerprint:sha-256 00\r\n"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := cli.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == 407 {
		req.CSeq().SeqNo++
		if res, err = cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "1001", Password: "alice-sip"}); err != nil {
			t.Fatal(err)
		}
	}
	if res.StatusCode != 488 {
		t.Fatalf("opus-only browser offer = %d %s, want 488", res.StatusCode, res.Reason)
	}
	select {
	case r := <-bob.invites:
		t.Fatalf("an unbridgeable call rang bob: %s", r.StartLine())
	default:
	}
	if n := counterValue(t, reg, "hotdesk_media_sessions_total", "no_codec"); n != 1 {
		t.Fatalf("hotdesk_media_sessions_total{no_codec} = %v", n)
	}
}

// counterValue reads one labelled counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
