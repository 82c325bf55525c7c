package sip

import (
	"context"
	"testing"
)

// pxEmergency: the site's emergency numbers.
type pxEmergency map[string]bool

func (e pxEmergency) IsEmergency(_ context.Context, dialled string) bool { return e[dialled] }

// TestEmergencyCallThroughLockout locks the phone's source out (bad
// passwords, as a guessing host on its address would), then dials the
// emergency number from it: the call is routed to the trunk, not refused
// with 403, while other numbers stay refused.
func TestEmergencyCallThroughLockout(t *testing.T) {
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
