package daemon

import (
	"context"
	"net"
	"strconv"
	"testing"
)

// TestThirdPartySettingsShowTheBoundSIPPort: the settings typed into a
// third-party phone carry the port and transport SIP really listens on
// (here a random one), not a configured 5060, and that account registers
// there.
func TestThirdPartySettingsShowTheBoundSIPPort(t *testing.T) {
	a, addrs := demoDaemon(t)
	admin := &relockEnv{t: t, a: a, addrs: addrs}
	const mac = "0004f2aa0007"
	if code, body := admin.api("POST", "/devices/"+mac+"/assign", `{"user":"bob","kind":"third_party"}`); code != 200 {
		t.Fatalf("assign third-party = %d %v", code, body)
	}
	_, acc := admin.api("GET", "/devices/"+mac+"/sip-account?reveal=1", "")
	_, p, _ := net.SplitHostPort(addrs.SIPUDP[0])
	want, _ := strconv.Atoi(p)
	if want == 5060 || acc["port"] != float64(want) || acc["transport"] != "udp" {
		t.Fatalf("sip-account = %v, want udp port %d", acc, want)
	}
	phone := newHandset(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(int(acc["port"].(float64)))), "test.lan")
	if code := phone.register(t, acc["user_id"].(string), acc["user_id"].(string), acc["password"].(string), 600); code != 200 {
		t.Fatalf("REGISTER with the shown settings = %d", code)
	}
}

// TestClaimAnotherUsersPhoneWithItsSecurityPIN: typed on a phone that is
// carol's desk phone, bob's deployment PIN claims it only together with
// the phone's security PIN (code + PIN + "*" + security PIN); the phone's
// local menus are guarded by its security PIN, which changes with the
// claim.
func TestClaimAnotherUsersPhoneWithItsSecurityPIN(t *testing.T) {
	a, addrs := demoDaemon(t)
	admin := &relockEnv{t: t, a: a, addrs: addrs}
	_, carol := admin.api("POST", "/devices/"+phoneB+"/assign", `{"user":"carol"}`)
	_, bob := admin.api("POST", "/devices/0004f2aa0099/assign", `{"user":"bob"}`)
	carolSec, _ := carol["security_pin"].(string)
	bobPIN, _ := bob["deployment_pin"].(string)
	if carolSec == "" || bobPIN == "" {
		t.Fatalf("assignments %v %v", carol, bob)
	}
	phone := newDeskPhone(t, addrs, phoneB)
	phone.boot()
	admin.assertLocked(phone, phoneB)
	if got := phone.param("device.auth.localAdminPassword"); got != carolSec {
		t.Fatalf("local admin password %q, want the security PIN", got)
	}
	wrong := "00000000"
	if wrong == carolSec {
		wrong = "00000001"
	}
	for _, dialled := range []string{"*77" + bobPIN, "*77" + bobPIN + "*" + wrong} {
		if code, reason := phone.dial(dialled); code != 403 || reason != "Claim failed" {
			t.Fatalf("%s = %d %s", dialled, code, reason)
		}
	}
	mark := phone.mark()
	if code, reason := phone.dial("*77" + bobPIN + "*" + carolSec); code != 480 || reason != "Phone claimed" {
		t.Fatalf("claim with the security PIN = %d %s", code, reason)
	}
	phone.waitResync(mark)
	admin.assertLoggedIn(phone, phoneB, "1002")
	d, err := a.store.GetDevice(context.Background(), phoneB)
	if err != nil || d.SecurityPIN == carolSec || phone.param("device.auth.localUserPassword") != d.SecurityPIN {
		t.Fatalf("after the claim: stored PIN %q, phone's %q (%v)", d.SecurityPIN,
			phone.param("device.auth.localUserPassword"), err)
	}
}
