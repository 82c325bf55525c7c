package sip

import (
	"strings"
	"testing"
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
