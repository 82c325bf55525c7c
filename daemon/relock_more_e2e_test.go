package daemon

import (
	"context"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestYealinkRebootsOnEveryCheckSync: a phone that reboots on each
// check-sync (Yealink's default) comes back with new Call-IDs for every
// line; that is it applying the login, not the user leaving, and the
// logout still relocks it.
func TestYealinkRebootsOnEveryCheckSync(t *testing.T) {
	e := newRelockEnv(t)
	e.phone.rebootOnSync = true
	e.login(prov.DoorAPI)
	sess := e.assertLoggedIn(e.phone, phoneA, "1001")
	// A settings change: another check-sync, another reboot.
	mark := e.phone.mark()
	if code, body := e.api("POST", "/devices/"+phoneA+"/check-sync", "{}"); code/100 != 2 {
		t.Fatalf("check-sync = %d %v", code, body)
	}
	e.phone.waitResync(mark)
	if again := e.assertLoggedIn(e.phone, phoneA, "1001"); again.ID != sess.ID {
		t.Fatalf("the reboots replaced the session %s by %s", sess.ID, again.ID)
	}
	mark = e.phone.mark()
	if code, reason := e.phone.dial("*78"); code != 480 || reason != "Logged out" {
		t.Fatalf("*78 = %d %s", code, reason)
	}
	e.phone.waitResync(mark)
	e.assertLocked(e.phone, phoneA)
}

// TestPhoneRebootEndsOnlyNonPersistentLogins: a reboot the phone makes on
// its own (new Call-IDs after a boot-file fetch) ends a login unless the
// site keeps logins across reboots.
func TestPhoneRebootEndsOnlyNonPersistentLogins(t *testing.T) {
	for _, persistent := range []bool{false, true} {
		e := newRelockEnv(t)
		e.setPolicy(func(p *prov.LoginPolicy) { p.Persistent = persistent })
		e.login(prov.DoorAPI)
		sess := e.assertLoggedIn(e.phone, phoneA, "1001")
		mark := e.phone.mark()
		e.phone.reboot()
		// Wait until the daemon has taken the reboot's registration (it
		// clears the boot-file fetch it answers), then judge.
		e.waitSignals(func(s prov.DeviceSignals) bool { return s.BootAt.IsZero() })
		got, _ := e.a.store.GetSession(context.Background(), sess.ID)
		if persistent {
			if !got.Active() {
				t.Fatalf("persistent login ended by a reboot (%s)", got.EndReason)
			}
			e.assertLoggedIn(e.phone, phoneA, "1001")
			continue
		}
		e.phone.waitResync(mark)
		e.assertLocked(e.phone, phoneA)
		if got, _ = e.a.store.GetSession(context.Background(), sess.ID); got.Active() || got.EndReason != prov.EndReboot {
			t.Fatalf("after a reboot: active=%v reason=%q, want %q", got.Active(), got.EndReason, prov.EndReboot)
		}
	}
}

// TestAssignedBeforeFirstBoot: a managed phone assigned before it ever
// booted gets its locked profile first (the secure bootstrap: whoever
// fetches its files first is not known to be that phone); typing the
// deployment PIN on it proves it is, and it registers its user's line.
// That still makes it Deployed, and unassigning reaches it through that line.
func TestAssignedBeforeFirstBoot(t *testing.T) {
	a, addrs := demoDaemon(t)
	admin := &relockEnv{t: t, a: a, addrs: addrs}
	code, body := admin.api("POST", "/devices/"+phoneB+"/assign", `{"user":"carol"}`)
	if code/100 != 2 {
		t.Fatalf("assign = %d %v", code, body)
	}
	pin, _ := body["deployment_pin"].(string)
	phone := newDeskPhone(t, addrs, phoneB)
	phone.boot()
	admin.assertLocked(phone, phoneB)
	mark := phone.mark()
	if code, reason := phone.dial("*77" + pin); code != 480 || reason != "Phone claimed" {
		t.Fatalf("claim = %d %s", code, reason)
	}
	phone.waitResync(mark)
	admin.assertLoggedIn(phone, phoneB, "1003")
	waitDeployed(t, a, phoneB)
	// Deployed, its files need its digest credentials now.
	if code, _ := phone.fetch(phoneB+"-hotdesk.cfg", "", ""); code != 401 {
		t.Fatalf("deployed device file without credentials = %d, want 401", code)
	}
	mark = phone.mark()
	if code, body := admin.api("POST", "/devices/"+phoneB+"/unassign", ""); code/100 != 2 {
		t.Fatalf("unassign = %d %v", code, body)
	}
	phone.waitResync(mark)
	admin.assertLocked(phone, phoneB)
}

// TestPreassignedPhoneFetchedFirstByAnotherHost is the attack a security review found
// (High 2): an admin assigns a phone that has not booted, and another host
// asks for its files first, naming its MAC. It gets the locked profile and
// the provisioning credentials, but never the user's line, even when it
// authenticates with them; the real phone, which then gets 401, is seen as
// an identity conflict; the admin hands out new credentials, which the real
// phone takes, and verifies it: the line goes to the phone, the attacker's
// credentials are dead.
func TestPreassignedPhoneFetchedFirstByAnotherHost(t *testing.T) {
	a, addrs := demoDaemon(t)
	admin := &relockEnv{t: t, a: a, addrs: addrs}
	if code, body := admin.api("POST", "/devices/"+phoneB+"/assign", `{"user":"carol"}`); code/100 != 2 {
		t.Fatalf("assign = %d %v", code, body)
	}
	attacker := newDeskPhone(t, addrs, phoneB) // same MAC, same User-Agent: all it can fake
	code, first := attacker.fetch(phoneB+"-hotdesk.cfg", "", "")
	if code != 200 {
		t.Fatalf("first fetch = %d", code)
	}
	creds := params(first)
	user, pass := creds["device.prov.user"], creds["device.prov.password"]
	if pass == "" {
		t.Fatalf("the first fetch got no credentials:\n%s", first)
	}
	for _, name := range []string{phoneB + "-hotdesk.cfg", "carol.cfg"} {
		code, body := attacker.fetch(name, user, pass)
		if strings.Contains(body, "1003") || params(body)["reg.1.auth.password"] != "" && !strings.Contains(body, "dev"+phoneB) {
			t.Fatalf("%s with the stolen credentials = %d, carries carol's line:\n%s", name, code, body)
		}
	}
	// The real phone boots: it has no credentials, gets 401.
	if code, _ := attacker.fetch(phoneB+"-hotdesk.cfg", user, "wrong"); code != 401 {
		t.Fatalf("wrong credentials = %d", code)
	}
	_, d := admin.api("GET", "/devices/"+phoneB, "")
	conflict, _ := d["identity_conflict"].(map[string]any)
	if conflict["reason"] != prov.ConflictWrongCredentials {
		t.Fatalf("no identity conflict on the device: %v", d)
	}
	if code, body := admin.api("POST", "/devices/"+phoneB+"/reset-credentials", ""); code != 200 {
		t.Fatalf("reset-credentials = %d %v", code, body)
	}
	phone := newDeskPhone(t, addrs, phoneB)
	phone.boot()
	admin.assertLocked(phone, phoneB)
	if code, _ := attacker.fetch(phoneB+"-hotdesk.cfg", user, pass); code != 401 {
		t.Fatalf("the stolen credentials after the reset = %d, want 401", code)
	}
	mark := phone.mark()
	if code, body := admin.api("POST", "/devices/"+phoneB+"/verify", ""); code != 200 {
		t.Fatalf("verify = %d %v", code, body)
	}
	phone.waitResync(mark)
	admin.assertLoggedIn(phone, phoneB, "1003")
}

// TestUnassignThirdPartyPhoneRotatesItsAccount: hotdesk cannot
// re-provision a third-party phone, so unassigning it changes the SIP
// password of the account typed into it: it can neither register nor
// call, and the user sees only the new password when a phone is assigned
// again.
func TestUnassignThirdPartyPhoneRotatesItsAccount(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	admin := &relockEnv{t: t, a: a, addrs: addrs}
	const mac = "0004f2aa0001"
	if code, body := admin.api("POST", "/devices/"+mac+"/assign", `{"user":"bob","kind":"third_party"}`); code/100 != 2 {
		t.Fatalf("assign third-party = %d %v", code, body)
	}
	_, acc := admin.api("GET", "/devices/"+mac+"/sip-account?reveal=1", "")
	oldPass, _ := acc["password"].(string)
	if oldPass == "" {
		t.Fatalf("sip-account = %v", acc)
	}
	phone := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := phone.register(t, "1002", "1002", oldPass, 600); code != 200 {
		t.Fatalf("third-party phone REGISTER = %d", code)
	}
	d, _ := a.store.GetDevice(ctx, mac)
	admin.waitBindings(d, func(bs []prov.Binding) bool { return len(bs) == 1 }, "the third-party phone's binding")
	if code, body := admin.api("POST", "/devices/"+mac+"/unassign", ""); code/100 != 2 {
		t.Fatalf("unassign = %d %v", code, body)
	}
	admin.waitBindings(d, func(bs []prov.Binding) bool { return len(bs) == 0 }, "no binding")
	phone.callIDs["1002"] = "" // a fresh registration attempt
	if code := phone.register(t, "1002", "1002", oldPass, 600); code == 200 {
		t.Fatal("the unassigned third-party phone registered again with its old password")
	}
	if code, _ := phone.call(t, "1001", "1002", oldPass); code != 401 && code != 407 && code != 403 {
		t.Fatalf("the unassigned third-party phone called out: %d", code)
	}
	events, err := a.store.ListAudit(ctx, prov.AuditQuery{Action: "device.unassign"})
	if err != nil || len(events) != 1 || !strings.Contains(events[0].After, `"sip_password_rotated":true`) {
		t.Fatalf("audit of the unassignment: %+v, %v", events, err)
	}
	if code, body := admin.api("POST", "/devices/"+mac+"/assign", `{"user":"bob","kind":"third_party"}`); code/100 != 2 {
		t.Fatalf("re-assign = %d %v", code, body)
	}
	_, acc = admin.api("GET", "/devices/"+mac+"/sip-account?reveal=1", "")
	newPass, _ := acc["password"].(string)
	if newPass == "" || newPass == oldPass {
		t.Fatalf("password after rotation = %q (old %q)", newPass, oldPass)
	}
	if code := phone.register(t, "1002", "1002", newPass, 600); code != 200 {
		t.Fatalf("REGISTER with the new password = %d", code)
	}
}
