package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestLockedPhoneCallsAndFeatureCodes: a locked phone reaches only its
// authorized and emergency numbers; *77 logs in, after which it calls
// freely and calls for the user ring it; *78 logs out again.
func TestLockedPhoneCallsAndFeatureCodes(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	dev, phone := lockedHandset(t, a, addrs, "0004f2000001")
	bob := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob's softphone REGISTER = %d", code)
	}

	code, reason := phone.call(t, "1002", dev.SIPUser, dev.SIPPassword)
	if code != 403 || reason != prov.LockedReason {
		t.Fatalf("locked phone calling bob = %d %q, want 403 %q", code, reason, prov.LockedReason)
	}
	select {
	case u := <-bob.invites:
		t.Fatalf("a locked phone's call rang %s", u)
	default:
	}
	// Authorized (1000) and emergency (911) numbers pass the policy; with
	// no trunk configured they end at 404, not at the lock.
	for _, n := range []string{"1000", "911"} {
		if code, reason := phone.call(t, n, dev.SIPUser, dev.SIPPassword); code == 403 {
			t.Fatalf("locked phone calling %s = %d %q: refused by the lock", n, code, reason)
		}
	}
	// The trunk would get "+1000" as dialled, another number than the
	// authorized 1000: the policy judges the number the trunk receives.
	if code, reason := phone.call(t, "+1000", dev.SIPUser, dev.SIPPassword); code != 403 || reason != prov.LockedReason {
		t.Fatalf("locked phone calling +1000 (authorized: 1000) = %d %q, want 403 %q", code, reason, prov.LockedReason)
	}
	// A user is the same user with or without '+', for routing and policy.
	if code, reason := phone.call(t, "+1002", dev.SIPUser, dev.SIPPassword); code != 403 || reason != prov.LockedReason {
		t.Fatalf("locked phone calling +1002 = %d %q, want 403 %q", code, reason, prov.LockedReason)
	}

	code, reason = phone.call(t, "*77alice*wrong-password", dev.SIPUser, dev.SIPPassword)
	if code != 403 || !strings.Contains(reason, "failed") {
		t.Fatalf("feature-code login with a wrong password = %d %q", code, reason)
	}
	code, reason = phone.call(t, "*77alice*alice-demo", dev.SIPUser, dev.SIPPassword)
	if !strings.Contains(reason, "Logged in as alice") {
		t.Fatalf("feature-code login = %d %q", code, reason)
	}
	phone.waitNotify(t, "check-sync")
	sess, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID)
	if !ok || sess.Door != prov.DoorFeatureCode {
		t.Fatalf("no feature-code session: %+v", sess)
	}
	if code := phone.register(t, "1001", sess.SIPUser, sess.SIPPassword, 600); code != 200 {
		t.Fatalf("alice's line = %d", code)
	}
	time.Sleep(5 * time.Millisecond) // so the call's activity is later than the login
	if code, _ := phone.call(t, "1002", sess.SIPUser, sess.SIPPassword); code != 486 {
		t.Fatalf("alice calling bob = %d, want bob's 486", code)
	}
	if u := <-bob.invites; u == "" {
		t.Fatal("bob's phone not rung")
	}
	if code, _ := bob.call(t, "alice", "1002", "bob-sip"); code != 486 {
		t.Fatalf("bob calling alice = %d, want her phone's 486", code)
	}
	<-phone.invites
	var got prov.Session
	eventually(func() bool { // the call record reaches prov off the SIP path
		got, _ = a.store.GetSession(ctx, sess.ID)
		return got.LastActivity.After(sess.LastActivity)
	})
	if !got.LastActivity.After(sess.LastActivity) {
		t.Fatalf("a call on the session's line did not count as activity: %v vs %v", got.LastActivity, sess.LastActivity)
	}

	code, reason = phone.call(t, "*78", dev.SIPUser, dev.SIPPassword)
	if !strings.Contains(reason, "Logged out") {
		t.Fatalf("*78 = %d %q", code, reason)
	}
	phone.waitNotify(t, "check-sync")
	// From now on a call to alice does not ring that phone.
	if code, _ := bob.call(t, "1001", "1002", "bob-sip"); code == 486 {
		t.Fatal("a call to alice still rang the logged-out phone")
	}
	select {
	case <-phone.invites:
		t.Fatal("logged-out phone rang for alice")
	case <-time.After(100 * time.Millisecond):
	}
	recs, err := a.store.ListCallRecords(ctx, 0, 100)
	if err != nil || len(recs) < 3 {
		t.Fatalf("call records: %d, %v", len(recs), err)
	}
	// The history says who called by number (it said session:<id>).
	froms := map[string]bool{}
	for _, r := range recs {
		froms[r.From] = true
		if strings.Contains(r.From, ":") {
			t.Errorf("call record From %q is an owner key, not a number", r.From)
		}
	}
	if !froms["1001"] || !froms["1002"] {
		t.Errorf("call records From = %v, want alice's 1001 and bob's 1002", froms)
	}
}

// TestCallHandlingAppliesAtOnce: what a user sets in their portal (here
// through the same Manager call) changes the next call: DND, then forward
// always to another user.
func TestCallHandlingAppliesAtOnce(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	alice := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := alice.register(t, "1001", "1001", "alice-sip", 600); code != 200 {
		t.Fatalf("alice REGISTER = %d", code)
	}
	carol := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := carol.register(t, "1003", "1003", "carol-sip", 600); code != 200 {
		t.Fatalf("carol REGISTER = %d", code)
	}
	bob := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER = %d", code)
	}
	me := prov.Actor{Kind: prov.ActorUser, Name: "alice"}
	if _, err := a.svc.manager.SetCallHandling(ctx, "alice", prov.CallHandling{DND: true}, me); err != nil {
		t.Fatal(err)
	}
	if code, reason := bob.call(t, "1001", "1002", "bob-sip"); code != 486 || !strings.Contains(reason, "Disturb") {
		t.Fatalf("call to alice on DND = %d %q", code, reason)
	}
	select {
	case <-alice.invites:
		t.Fatal("DND still rang alice's phone")
	default:
	}
	if _, err := a.svc.manager.SetCallHandling(ctx, "alice", prov.CallHandling{ForwardAlways: "1003"}, me); err != nil {
		t.Fatal(err)
	}
	if code, _ := bob.call(t, "1001", "1002", "bob-sip"); code != 486 {
		t.Fatalf("call to alice forwarded to carol = %d, want carol's 486", code)
	}
	select {
	case <-carol.invites:
	case <-time.After(settleTimeout):
		t.Fatal("forward always did not ring carol")
	}
}

// TestEmergencyCallFromLockedOutPhone: bad passwords from the phone's
// address lock it out (one host guessing there); the site's emergency
// number (911) still passes the lock — with no trunk configured it ends
// at 404, not at the lockout's 403 — while other numbers stay refused.
func TestEmergencyCallFromLockedOutPhone(t *testing.T) {
	a, addrs := demoDaemon(t)
	dev, phone := lockedHandset(t, a, addrs, "0004f2000001")
	for i := range a.cfg.SIP.LockoutThreshold {
		if code, _ := phone.call(t, "1000", dev.SIPUser, "wrong"); code != 407 && code != 403 {
			t.Fatalf("bad password %d = %d", i, code)
		}
	}
	if code, reason := phone.call(t, "1000", dev.SIPUser, dev.SIPPassword); code != 403 || reason != "Forbidden" {
		t.Fatalf("locked-out phone calling 1000 = %d %q, want the lockout's 403", code, reason)
	}
	if code, reason := phone.call(t, "911", dev.SIPUser, dev.SIPPassword); code == 403 {
		t.Fatalf("locked-out phone calling 911 = %d %q: refused", code, reason)
	}
}

// TestSiteTrunkRoutesOutboundCalls: with no sip.proxy.trunk configured, a
// user of a site whose trunk is set calls numbers through that trunk; a
// site without one still has nowhere to send them (404).
func TestSiteTrunkRoutesOutboundCalls(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	carrier := newHandset(t, addrs.SIPUDP[0], "test.lan") // answers busy: enough to see it was reached
	alice := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := alice.register(t, "1001", "1001", "alice-sip", 600); code != 200 {
		t.Fatalf("alice REGISTER = %d", code)
	}
	if code, _ := alice.call(t, "+4930123456", "1001", "alice-sip"); code != 404 {
		t.Fatalf("call to a number with no trunk = %d, want 404", code)
	}
	u, err := a.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	site, err := a.store.GetSite(ctx, u.SiteID)
	if err != nil {
		t.Fatal(err)
	}
	site.Trunk = prov.Trunk{Address: "sip:" + carrier.addr, Username: "branch", Password: "pw"}
	if _, err := a.svc.manager.UpdateSite(ctx, site.ID, site, prov.AdminActor("test", "")); err != nil {
		t.Fatal(err)
	}
	if code, _ := alice.call(t, "+4930123456", "1001", "alice-sip"); code != 486 {
		t.Fatalf("call through the site trunk = %d, want the carrier's 486", code)
	}
	select {
	case n := <-carrier.invites:
		if n != "+4930123456" {
			t.Fatalf("the site trunk was asked for %q", n)
		}
	default:
		t.Fatal("the call did not reach the site trunk")
	}
}
