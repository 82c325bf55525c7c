package sip

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// pxEmergency: the site's emergency numbers.
type pxEmergency map[string]bool

func (e pxEmergency) IsEmergency(_ context.Context, dialled string) bool { return e[dialled] }

// TestEmergencyCallThroughLockout locks the phone's source out (bad
// passwords, as a guessing host on its address would), then dials the
// emergency number from it: the call is routed to the trunk, not refused
// with 403, while other numbers stay refused.
func TestEmergencyCallThroughLockout(t *testing.T) {
	t.Parallel()
	trunk := newUA(t, "trunk", "", "answer")
	e := startProxyEnvHook(t, func(p *proxy) { p.emergency = pxEmergency{"112": true} },
		func(c *Config, pc *ProxyConfig, _ *Deps) { c.LockoutThreshold = 3; pc.Trunk.Address = trunk.addr })
	phone := newUA(t, "phone", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	for range 3 {
		if _, res, err := phone.call(callCtx(t), "1002", "dev-aa", "wrong"); err != nil || res.StatusCode != 407 {
			t.Fatalf("bad password: %v %v, want 407", err, res)
		}
	}
	if _, res, err := phone.call(callCtx(t), "1002", "dev-aa", "devpw"); err != nil || res.StatusCode != 403 {
		t.Fatalf("locked source calling 1002: %v %v, want 403", err, res)
	}
	sess, res, err := phone.call(callCtx(t), "112", "dev-aa", "devpw")
	if err != nil || sess == nil {
		t.Fatalf("emergency call from a locked-out source: %v %v, want it routed", err, res)
	}
	recv(t, trunk.invites, "emergency INVITE at the trunk")
	sess.Ack(callCtx(t))
	sess.Bye(callCtx(t))
	// The emergency door lends no unbounded guessing: its failures lock it too.
	for range 3 {
		if _, res, err := phone.call(callCtx(t), "112", "dev-aa", "wrong"); err != nil || res.StatusCode != 407 {
			t.Fatalf("bad password on the emergency door: %v %v, want 407", err, res)
		}
	}
	if _, res, err := phone.call(callCtx(t), "112", "dev-aa", "guess"); err != nil || res.StatusCode != 403 {
		t.Fatalf("guessing through the emergency door: %v %v, want 403", err, res)
	}
}

// forgedBye is an in-dialog BYE (both tags) for no dialog we know, with
// our Route on top and the Request-URI at target: what an attacker sends
// to make the proxy deliver a packet to any host:port.
func forgedBye(proxyAddr, target, callID string) string {
	return "BYE sip:x@" + target + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5997;branch=z9hG4bK" + callID + ";rport\r\n" +
		"Route: <sip:" + proxyAddr + ";lr>\r\n" +
		"From: <sip:1001@hotdesk.test>;tag=forged1\r\nTo: <sip:x@" + target + ">;tag=forged2\r\n" +
		"Call-ID: " + callID + "\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
}

// TestForgedByeIsNotRelayed: a BYE outside any dialog the proxy knows,
// routed through it toward a host:port that is no registered phone nor
// the trunk, is answered 481 and never reaches that port (no relay, no
// port-scan oracle); one toward a registered phone still goes through, as
// after a restart, so calls can end.
func TestForgedByeIsNotRelayed(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	victim, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()
	bob := newUA(t, "bob", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	attacker, err := net.Dial("udp", e.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	answer := func(msg string) *sip.Response {
		t.Helper()
		if _, err := io.WriteString(attacker, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8192)
		for range 10 { // skip a 100 Trying
			_ = attacker.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := attacker.Read(buf)
			if err != nil {
				t.Fatalf("no answer to the forged BYE: %v", err)
			}
			m, err := sip.ParseMessage(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			if res, ok := m.(*sip.Response); ok && res.StatusCode >= 200 {
				return res
			}
		}
		t.Fatal("no final answer")
		return nil
	}
	if res := answer(forgedBye(e.udp, victim.LocalAddr().String(), "forged-a")); res.StatusCode != 481 {
		t.Fatalf("forged BYE to an unknown host:port: %s, want 481", res.Short())
	}
	// The answer is the decision: nothing is on its way to the victim.
	_ = victim.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, from, err := victim.ReadFrom(make([]byte, 8192)); err == nil {
		t.Fatalf("the forged BYE was relayed: %d bytes from %v", n, from)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_relay_refused_total", map[string]string{"reason": "unknown_peer"}); n != 1 {
		t.Fatalf("relay refusals %v, want 1", n)
	}
	// A BYE toward a registered phone, with no dialog state, still goes.
	if res := answer(forgedBye(e.udp, bob.addr, "forged-b")); res.StatusCode != 200 {
		t.Fatalf("BYE to a registered phone: %s, want 200", res.Short())
	}
	recv(t, bob.byes, "BYE at the registered phone")
}

// TestLockedPhoneCannotEscapeThroughRedirectOrForward: a locked phone
// calls its authorized number 1002, which answers 302 toward carol, or
// forwards on busy or always to numbers the phone may not dial: none of
// them rings; an unlocked caller is redirected and forwarded as before.
func TestLockedPhoneCannotEscapeThroughRedirectOrForward(t *testing.T) {
	t.Parallel()
	trunk := newUA(t, "trunk", "", "answer")
	e := startProxyEnv(t, func(_ *Config, pc *ProxyConfig, _ *Deps) { pc.Trunk.Address = trunk.addr })
	locked := newUA(t, "locked", e.udp, "answer")
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "redirect:carol")
	carol := newUA(t, "carol", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	carol.register("1003", "carol-sip", "1003")
	empty := func(ch chan *sip.Request, what string) {
		t.Helper()
		select {
		case r := <-ch:
			t.Fatalf("%s reached: %s", what, r.StartLine())
		default:
		}
	}
	cases := []struct {
		name     string
		mode     string
		handling Handling
		reached  *ua
		lockedTo int // the locked phone's final answer
	}{
		{"302 to another user", "redirect:carol", Handling{}, carol, 302},
		{"forward on busy to a trunk number", "busy", Handling{ForwardBusy: "+4930123"}, trunk, 486},
		{"forward always to another user", "answer", Handling{ForwardAlways: "1003"}, carol, 200},
		{"twin on a trunk number", "busy", Handling{Twin: "+4930124"}, trunk, 486},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bob.setMode(tc.mode, 0)
			e.handling.set("1002", tc.handling)
			defer e.handling.set("1002", Handling{})
			sess, res, err := locked.call(callCtx(t), "1002", "dev-aa", "devpw")
			if err != nil || res == nil || res.StatusCode != tc.lockedTo {
				t.Fatalf("locked phone: %v %v, want %d", err, res, tc.lockedTo)
			}
			if sess != nil { // forward always refused: bob's own phone rang instead
				recv(t, bob.invites, "INVITE at bob")
				sess.Ack(callCtx(t))
				sess.Bye(callCtx(t))
			}
			empty(tc.reached.invites, "the forbidden target")
			for len(bob.invites) > 0 {
				<-bob.invites
			}
			sess, res, err = alice.call(callCtx(t), "1002", "1001", "alice-sip")
			if err != nil || sess == nil {
				t.Fatalf("unlocked caller: %v %v, want answered", err, res)
			}
			recv(t, tc.reached.invites, "INVITE at the target for an unlocked caller")
			sess.Ack(callCtx(t))
			sess.Bye(callCtx(t))
			for len(bob.invites) > 0 {
				<-bob.invites
			}
		})
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_relay_refused_total", map[string]string{"reason": "policy"}); n != 4 {
		t.Errorf("policy refusals %v, want 4", n)
	}
}

// countingHandler counts records at Info and above.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestStrayResponsesAreCountedNotLogged floods the SIP port with responses
// that match no transaction: sipgo wrote one Info line per packet to the
// process's default logger; now each is counted and none is logged.
func TestStrayResponsesAreCountedNotLogged(t *testing.T) {
	t.Parallel()
	var lines atomic.Int64
	prev := slog.Default()
	slog.SetDefault(slog.New(countingHandler{&lines}))
	t.Cleanup(func() { slog.SetDefault(prev) })
	e := startEnv(t, nil)
	c, err := net.Dial("udp", e.udp)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 200
	for i := range n {
		fmt.Fprintf(c, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKstray%d\r\n"+
			"From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: stray%d\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n", i, i)
	}
	stray := e.srv.m.dropped.WithLabelValues("stray_response")
	for i := 0; i < 500 && testutil.ToFloat64(stray) < n; i++ { // bounded wait for the UDP workers
		time.Sleep(10 * time.Millisecond)
	}
	if got := testutil.ToFloat64(stray); got != n {
		t.Fatalf("stray responses counted: %v, want %d", got, n)
	}
	if l := lines.Load(); l != 0 {
		t.Fatalf("%d log lines for %d stray responses, want none", l, n)
	}
}
