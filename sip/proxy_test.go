package sip

import (
	"context"
	"github.com/emiago/sipgo/sip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestProxyCallSetupTeardown: alice calls bob through the proxy; the
// INVITE is Record-Routed, ACK and BYE travel through the proxy, the call
// leaves started/answered/ended records and the dialog gauge returns to 0.
func TestProxyCallSetupTeardown(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sess, res, err := alice.call(ctx, "bob", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	inv := recv(t, bob.invites, "INVITE at bob")
	if rr := inv.GetHeader("Record-Route"); rr == nil || !strings.Contains(rr.Value(), e.udp) {
		t.Errorf("Record-Route = %v, want our address %s", rr, e.udp)
	}
	if inv.GetHeader("Proxy-Authorization") != nil {
		t.Error("our Proxy-Authorization was forwarded")
	}
	if mf := inv.MaxForwards(); mf == nil || mf.Val() != 69 {
		t.Errorf("Max-Forwards = %v, want 69", mf)
	}
	if inv.Recipient.User != "1002" {
		t.Errorf("Request-URI %s, want the registered contact", inv.Recipient.String())
	}
	if err := sess.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	recv(t, bob.acks, "ACK at bob")
	if n := metricValue(t, e, "hotdesk_sip_proxy_active_dialogs", nil); n != 1 {
		t.Errorf("active dialogs %v, want 1", n)
	}
	if err := sess.Bye(ctx); err != nil {
		t.Fatalf("BYE: %v", err)
	}
	recv(t, bob.byes, "BYE at bob")
	cid := res.CallID().Value()
	st := e.rec.wait(t, cid, CallStarted)
	an := e.rec.wait(t, cid, CallAnswered)
	end := e.rec.wait(t, cid, CallEnded)
	if st.Caller != (Owner{OwnerUser, "alice"}) || st.Callee != "1002" || st.Route != RouteInternal || st.Locked {
		t.Errorf("started record %+v", st)
	}
	if an.CalleeOwner != (Owner{OwnerUser, "bob"}) || an.Answer.IsZero() {
		t.Errorf("answered record %+v", an)
	}
	if end.End.IsZero() || end.Result != 200 || end.ID != st.ID {
		t.Errorf("ended record %+v", end)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_active_dialogs", nil); n != 0 {
		t.Errorf("active dialogs %v after BYE, want 0", n)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_calls_total", map[string]string{"route": RouteInternal, "result": "answered"}); n != 1 {
		t.Errorf("calls{internal,answered} = %v", n)
	}
	if probs, err := testutil.GatherAndLint(e.reg); err != nil || len(probs) > 0 {
		t.Errorf("metrics lint: %v %v", err, probs)
	}
}

// metricValue reads one sample of the env's registry (0 if absent).
func metricValue(t *testing.T, e *pxEnv, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// callCtx bounds one test call.
func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestProxyFork: bob is registered on two phones; the first to answer wins
// and the other one gets CANCEL.
func TestProxyFork(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	desk := newUA(t, "desk", e.udp, "answer")
	soft := newUA(t, "soft", e.udp, "ring")
	desk.setMode("answer", 300*time.Millisecond)
	desk.register("1002", "bob-sip", "1002")
	soft.register("1002", "bob-sip", "bob")
	sess, res, err := alice.call(callCtx(t), "1002", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	recv(t, desk.invites, "INVITE at desk")
	recv(t, soft.invites, "INVITE at soft")
	recv(t, soft.cancels, "CANCEL at the losing phone")
	none(t, desk.cancels, 100*time.Millisecond, "CANCEL at the winner")
	sess.Ack(callCtx(t))
	recv(t, desk.acks, "ACK at the winner")
	if err := sess.Bye(callCtx(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, desk.byes, "BYE at the winner")
}

// TestProxyCancelBeforeAnswer: the caller gives up while bob's phone rings.
func TestProxyCancelBeforeAnswer(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "ring")
	bob.register("1002", "bob-sip", "1002")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { recv(t, bob.invites, "INVITE at bob"); time.Sleep(200 * time.Millisecond); cancel() }()
	sess, res, err := alice.call(ctx, "1002", "1001", "alice-sip")
	if sess != nil {
		t.Fatalf("call answered: %v", res)
	}
	if err == nil {
		t.Fatalf("WaitAnswer returned no error after cancel: %v", res)
	}
	recv(t, bob.cancels, "CANCEL at bob")
	end := e.rec.wait(t, res.CallID().Value(), CallEnded)
	if end.Result != 487 {
		t.Errorf("ended record result %d, want 487", end.Result)
	}
}

// TestProxyBusyAndDND: a busy phone answers 486; with DND on the phone is
// not rung at all; with DND and forward-on-busy the call goes there.
func TestProxyBusyAndDND(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "busy")
	carol := newUA(t, "carol", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	carol.register("1003", "carol-sip", "1003")
	_, res, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || res == nil || res.StatusCode != 486 {
		t.Fatalf("busy: %v %v", err, res)
	}
	recv(t, bob.invites, "INVITE at busy bob")

	e.handling.set("1002", Handling{DND: true})
	_, res, err = alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || res == nil || res.StatusCode != 486 || res.Reason != "Do Not Disturb" {
		t.Fatalf("DND: %v %v", err, res)
	}
	none(t, bob.invites, 100*time.Millisecond, "INVITE at bob with DND on")

	e.handling.set("1002", Handling{DND: true, ForwardBusy: "carol"})
	sess, res, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("DND + forward busy: %v %v", err, res)
	}
	recv(t, carol.invites, "INVITE at carol")
	sess.Ack(callCtx(t))
	sess.Bye(callCtx(t))
	if rec := e.rec.wait(t, res.CallID().Value(), CallAnswered); rec.ForwardedTo != "carol" {
		t.Errorf("record ForwardedTo %q", rec.ForwardedTo)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_calls_total", map[string]string{"route": RouteInternal, "result": "busy"}); n != 2 {
		t.Errorf("busy calls %v, want 2", n)
	}
}

// TestProxyNoAnswerForward: bob's phone rings 300 ms, then the call is
// cancelled there and forwarded to carol, who answers.
func TestProxyNoAnswerForward(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "ring")
	carol := newUA(t, "carol", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	carol.register("1003", "carol-sip", "1003")
	e.handling.set("1002", Handling{ForwardNoAnswer: "1003", NoAnswerAfter: 300 * time.Millisecond})
	start := time.Now()
	sess, res, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("answered after %v, before the no-answer time", d)
	}
	recv(t, bob.invites, "INVITE at bob")
	recv(t, bob.cancels, "CANCEL at bob")
	recv(t, carol.invites, "INVITE at carol")
	sess.Ack(callCtx(t))
	recv(t, carol.acks, "ACK at carol")
	sess.Bye(callCtx(t))
	recv(t, carol.byes, "BYE at carol")
}

// TestProxyTwinning: bob's mobile rings through the trunk with his desk
// phone; the mobile answers and the desk phone is cancelled.
func TestProxyTwinning(t *testing.T) {
	t.Parallel()
	trunk := newUA(t, "trunk", "", "answer")
	e := startProxyEnv(t, func(_ *Config, pc *ProxyConfig, _ *Deps) { pc.Trunk.Address = trunk.addr })
	trunk.proxy = e.udp
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "ring")
	bob.register("1002", "bob-sip", "1002")
	trunk.setMode("answer", 200*time.Millisecond)
	e.handling.set("1002", Handling{Twin: "+4917012345"})
	sess, res, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	inv := recv(t, trunk.invites, "INVITE at the trunk")
	if inv.Recipient.User != "+4917012345" {
		t.Errorf("trunk Request-URI %s", inv.Recipient.String())
	}
	recv(t, bob.cancels, "CANCEL at bob's desk phone")
	sess.Ack(callCtx(t))
	recv(t, trunk.acks, "ACK at the trunk")
	sess.Bye(callCtx(t))
	recv(t, trunk.byes, "BYE at the trunk")
}

// TestProxyLockedPhone: a device credential of a locked phone reaches its
// authorized number and the emergency number, nothing else (403 with the
// reason, CR/LF stripped); a session credential calls freely.
func TestProxyLockedPhone(t *testing.T) {
	t.Parallel()
	trunk := newUA(t, "trunk", "", "answer")
	e := startProxyEnv(t, func(_ *Config, pc *ProxyConfig, _ *Deps) { pc.Trunk.Address = trunk.addr })
	locked := newUA(t, "locked", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "answer")
	carol := newUA(t, "carol", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	carol.register("1003", "carol-sip", "1003")
	cases := []struct {
		name, user, pass, to string
		code                 int
		reason               string
		at                   *ua
	}{
		{"authorized number", "dev-aa", "devpw", "1002", 200, "", bob},
		{"other user", "dev-aa", "devpw", "1003", 403, "Log in to callX-Injected: 1", nil},
		{"outside number", "dev-aa", "devpw", "+4930123", 403, "Log in to callX-Injected: 1", nil},
		{"emergency", "dev-aa", "devpw", "112", 200, "", trunk},
		{"session credential", "sess-1", "sesspw", "1003", 200, "", carol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess, res, err := locked.call(callCtx(t), tc.to, tc.user, tc.pass)
			if err != nil || res == nil || res.StatusCode != tc.code {
				t.Fatalf("%v %v, want %d", err, res, tc.code)
			}
			if tc.reason != "" && res.Reason != tc.reason {
				t.Errorf("reason %q, want %q", res.Reason, tc.reason)
			}
			stage := CallEnded
			if tc.code == 200 {
				stage = CallAnswered
			}
			rec := e.rec.wait(t, res.CallID().Value(), stage)
			if tc.user == "dev-aa" && !rec.Locked || tc.user != "dev-aa" && rec.Locked {
				t.Errorf("record Locked=%v", rec.Locked)
			}
			if sess != nil {
				recv(t, tc.at.invites, "INVITE at the callee")
				sess.Ack(callCtx(t))
				sess.Bye(callCtx(t))
			}
		})
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_locked_denials_total", nil); n != 2 {
		t.Errorf("locked denials %v, want 2", n)
	}
}

// TestProxyFeatureCodes: *77<user>*<password> and *78 are answered with
// the feature's final response and reason; nothing is routed.
func TestProxyFeatureCodes(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	phone := newUA(t, "phone", e.udp, "answer")
	cases := []struct {
		dialled string
		code    int
		reason  string
	}{
		{"*77bob*secret", 480, "Logged in as bob"},
		{"*77bob*wrong", 403, "Login failed"},
		{"*78", 403, "Logged out"},
	}
	for _, tc := range cases {
		_, res, err := phone.call(callCtx(t), tc.dialled, "dev-aa", "devpw")
		if err != nil || res == nil || res.StatusCode != tc.code || res.Reason != tc.reason {
			t.Fatalf("%s: %v %v, want %d %q", tc.dialled, err, res, tc.code, tc.reason)
		}
		rec := e.rec.wait(t, res.CallID().Value(), CallEnded)
		if rec.Route != RouteFeature || strings.Contains(rec.Dialled, "secret") {
			t.Errorf("record %+v", rec)
		}
	}
}

// TestProxyRefusals: unknown number without trunk → 404, Max-Forwards 0
// → 483, a wrong password → 407 again.
func TestProxyRefusals(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	if _, res, err := alice.call(callCtx(t), "+4930999", "1001", "alice-sip"); err != nil || res.StatusCode != 404 {
		t.Fatalf("no trunk: %v %v, want 404", err, res)
	}
	if _, res, err := alice.call(callCtx(t), "1002", "1001", "wrong"); err != nil || res.StatusCode != 407 {
		t.Fatalf("wrong password: %v %v, want 407", err, res)
	}
	req := sip.NewRequest(sip.INVITE, alice.target("1002"))
	mf := sip.MaxForwardsHeader(0)
	req.AppendHeader(&mf)
	if res := alice.do(req); res.StatusCode != 483 {
		t.Fatalf("Max-Forwards 0: %d, want 483", res.StatusCode)
	}
	bye := sip.NewRequest(sip.BYE, alice.target("1002"))
	if res := alice.do(bye); res.StatusCode != 481 {
		t.Fatalf("BYE outside a dialog: %d, want 481", res.StatusCode)
	}
}

// TestProxyRedirect: bob's phone answers 302 to carol; the proxy recurses
// on the Contact's user (never on its host) and carol's phone rings.
func TestProxyRedirect(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "redirect:carol")
	carol := newUA(t, "carol", e.udp, "answer")
	bob.register("1002", "bob-sip", "1002")
	carol.register("1003", "carol-sip", "1003")
	sess, res, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	recv(t, bob.invites, "INVITE at bob")
	recv(t, carol.invites, "INVITE at carol")
	sess.Ack(callCtx(t))
	sess.Bye(callCtx(t))
	recv(t, carol.byes, "BYE at carol")
}

// TestProxyUnmatchedCancel: a CANCEL for no transaction gets 481.
func TestProxyUnmatchedCancel(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	c := sip.NewRequest(sip.CANCEL, alice.target("1002"))
	if res := alice.do(c); res.StatusCode != 481 {
		t.Fatalf("CANCEL: %d, want 481", res.StatusCode)
	}
}

// TestProxyTimerC: a phone that rings and never answers is cancelled when
// Timer C fires and the caller gets 408 (RFC 3261 §16.6 step 11, §16.7).
func TestProxyTimerC(t *testing.T) {
	t.Parallel()
	e := startProxyEnvHook(t, func(p *proxy) { p.cfg.TimerC = 400 * time.Millisecond })
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "ring")
	bob.register("1002", "bob-sip", "1002")
	_, res, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || res == nil || res.StatusCode != 408 {
		t.Fatalf("%v %v, want 408", err, res)
	}
	recv(t, bob.cancels, "CANCEL at bob")
}

// TestProxyTransportSwitch: alice on UDP calls bob registered over TCP;
// the proxy Record-Routes twice (RFC 5658) and reaches bob over his own
// connection; ACK and BYE cross both transports.
func TestProxyTransportSwitch(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUAT(t, "bob", e.tcp, "answer", "TCP")
	bob.register("1002", "bob-sip", "1002")
	sess, res, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	inv := recv(t, bob.invites, "INVITE at bob over TCP")
	if rr := inv.GetHeaders("Record-Route"); len(rr) != 2 || !strings.Contains(rr[0].Value(), "transport=tcp") ||
		!strings.Contains(rr[1].Value(), "transport=udp") {
		t.Errorf("Record-Route %v, want tcp then udp", rr)
	}
	sess.Ack(callCtx(t))
	recv(t, bob.acks, "ACK at bob")
	if err := sess.Bye(callCtx(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, bob.byes, "BYE at bob")
}

// TestProxyConfigValidate: defaults pass; each bad key is named.
func TestProxyConfigValidate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		mod  func(*ProxyConfig)
		want string
	}{
		{"defaults", func(*ProxyConfig) {}, ""},
		{"trunk", func(c *ProxyConfig) { c.Trunk.Address = "10.0.0.1:5060"; c.TrustedSources = []string{"10.0.0.0/24"} }, ""},
		{"short timer c", func(c *ProxyConfig) { c.TimerC = time.Minute }, "timer_c:"},
		{"branches", func(c *ProxyConfig) { c.MaxBranches = 0 }, "max_branches:"},
		{"redirects", func(c *ProxyConfig) { c.MaxRedirects = 11 }, "max_redirects:"},
		{"dialog ttl", func(c *ProxyConfig) { c.DialogTTL = time.Second }, "dialog_ttl:"},
		{"trusted", func(c *ProxyConfig) { c.TrustedSources = []string{"ten"} }, "trusted_sources[0]:"},
		{"trunk address", func(c *ProxyConfig) { c.Trunk.Address = "10.0.0.1" }, "trunk.address:"},
		{"trunk transport", func(c *ProxyConfig) { c.Trunk.Transport = "sctp" }, "trunk.transport:"},
		{"advertise", func(c *ProxyConfig) { c.Advertise = "a b" }, "advertise:"},
		{"max calls", func(c *ProxyConfig) { c.MaxCalls = 0 }, "max_calls:"},
		{"max dialogs", func(c *ProxyConfig) { c.MaxDialogs = -1 }, "max_dialogs:"},
		{"retry after", func(c *ProxyConfig) { c.RetryAfter = 1500 * time.Millisecond }, "retry_after:"},
	}
	for _, tc := range cases {
		c := DefaultProxyConfig()
		tc.mod(&c)
		err := c.Validate()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestProxyTrunkDigest: the trunk challenges the INVITE; the proxy answers
// with the trunk credentials (next CSeq) and the caller's ACK and BYE reach
// the trunk with the CSeq numbers the trunk expects.
func TestProxyTrunkDigest(t *testing.T) {
	t.Parallel()
	trunk := newUA(t, "trunk", "", "challenge")
	e := startProxyEnv(t, func(_ *Config, pc *ProxyConfig, _ *Deps) {
		pc.Trunk = TrunkConfig{Address: trunk.addr, Transport: "udp", Domain: "carrier.example", Username: "acct", Password: "pw"}
	})
	alice := newUA(t, "alice", e.udp, "answer")
	sess, res, err := alice.call(callCtx(t), "+4930123456", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	first := recv(t, trunk.invites, "first INVITE at the trunk")
	second := recv(t, trunk.invites, "authenticated INVITE at the trunk")
	pa := second.GetHeader("Proxy-Authorization")
	if pa == nil || !strings.Contains(pa.Value(), `username="acct"`) || second.CSeq().SeqNo != first.CSeq().SeqNo+1 {
		t.Fatalf("retry: %v, CSeq %d after %d", pa, second.CSeq().SeqNo, first.CSeq().SeqNo)
	}
	if second.Recipient.Host != "carrier.example" {
		t.Errorf("trunk Request-URI %s", second.Recipient.String())
	}
	if res.CSeq().SeqNo != sess.InviteRequest.CSeq().SeqNo {
		t.Errorf("caller saw CSeq %d, sent %d", res.CSeq().SeqNo, sess.InviteRequest.CSeq().SeqNo)
	}
	sess.Ack(callCtx(t))
	if ack := recv(t, trunk.acks, "ACK at the trunk"); ack.CSeq().SeqNo != second.CSeq().SeqNo {
		t.Errorf("ACK CSeq %d, want %d", ack.CSeq().SeqNo, second.CSeq().SeqNo)
	}
	if err := sess.Bye(callCtx(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, trunk.byes, "BYE at the trunk")
}

// pxTrunks names the site trunk of some callers.
type pxTrunks map[Owner]TrunkConfig

func (t pxTrunks) CallerTrunk(_ context.Context, caller Owner) (TrunkConfig, bool) {
	tc, ok := t[caller]
	return tc, ok
}

// TestProxySiteTrunk: a caller whose site names a trunk calls numbers
// through it, answering its challenge with the site's credentials, and
// the in-dialog requests follow; a caller of a site without one uses the
// configured trunk.
func TestProxySiteTrunk(t *testing.T) {
	t.Parallel()
	main := newUA(t, "trunk", "", "answer")
	branch := newUA(t, "branch-trunk", "", "challenge")
	e := startProxyEnvHook(t, func(p *proxy) {
		p.trunks = pxTrunks{Owner{OwnerUser, "alice"}: {Address: branch.addr, Domain: "branch.example",
			Username: "branch", Password: "pw"}}
	}, func(_ *Config, pc *ProxyConfig, _ *Deps) { pc.Trunk.Address = main.addr })
	alice := newUA(t, "alice", e.udp, "answer")
	sess, res, err := alice.call(callCtx(t), "+4930123456", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, res)
	}
	recv(t, branch.invites, "first INVITE at the site trunk")
	second := recv(t, branch.invites, "authenticated INVITE at the site trunk")
	if pa := second.GetHeader("Proxy-Authorization"); pa == nil || !strings.Contains(pa.Value(), `username="branch"`) {
		t.Fatalf("site trunk credentials: %v", pa)
	}
	if second.Recipient.Host != "branch.example" || second.Recipient.User != "+4930123456" {
		t.Errorf("site trunk Request-URI %s", second.Recipient.String())
	}
	sess.Ack(callCtx(t))
	recv(t, branch.acks, "ACK at the site trunk")
	if err := sess.Bye(callCtx(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, branch.byes, "BYE at the site trunk")

	bob := newUA(t, "bob", e.udp, "answer")
	sess, res, err = bob.call(callCtx(t), "+4930999", "1002", "bob-sip")
	if err != nil || sess == nil {
		t.Fatalf("bob's call: %v %v", err, res)
	}
	if inv := recv(t, main.invites, "INVITE at the configured trunk"); inv.Recipient.User != "+4930999" {
		t.Errorf("configured trunk Request-URI %s", inv.Recipient.String())
	}
	sess.Ack(callCtx(t))
	recv(t, main.acks, "ACK at the configured trunk")
	if err := sess.Bye(callCtx(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, main.byes, "BYE at the configured trunk")
	select {
	case inv := <-branch.invites:
		t.Fatalf("bob's call reached the site trunk: %s", inv.Recipient.String())
	default:
	}
}
