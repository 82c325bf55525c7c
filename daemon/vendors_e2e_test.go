package daemon

import (
	"context"
	"testing"

	"hotdesk/prov"
)

// TestVendorPhonesEndToEnd boots a simulated phone of each vendor besides
// Polycom (its User-Agent, its files, its NOTIFY event and how it takes
// it) and takes it through fetch, REGISTER of the locked profile, logins
// through the API and a feature code, logouts, and the relock — each
// applied by a re-sync without a reboot. Then an admin's raw override for
// that vendor reaches the phone, a bad one is refused, and the
// effective-config API shows the vendor's parameters.
func TestVendorPhonesEndToEnd(t *testing.T) {
	for _, tc := range []struct {
		vendor   *phoneVendor
		mac      string
		model    string
		noReboot [2]string // the parameter that keeps a re-sync from rebooting
		override [2]string // a raw override and the value it takes
		bad      string    // a name the vendor does not know
	}{
		{yealinkPhone, "001565000001", "SIP-T46U", [2]string{"sip.notify_reboot_enable", "0"},
			[2]string{"features.dnd.enable", "1"}, "yealink:no_such_param"},
		{ciscoPhone, "00562b000001", "CP-8851-3PCC", [2]string{"Resync_From_SIP", "Yes"},
			[2]string{"Call_Waiting_Serv", "No"}, "cisco:not-a-name"},
		// Snom takes check-sync;reboot=false without any setting of its own.
		{snomPhone, "000413000001", "D785", [2]string{}, [2]string{"call_waiting", "off"}, "snom:Call-Waiting"},
		// Grandstream: P81 (Unregister On Reboot) 0 keeps a reboot from
		// dropping the account's other phones; check-sync reloads.
		{gsPhone, "000b82000001", "GRP2614", [2]string{"P81", "0"}, [2]string{"P91", "1"}, "grandstream:account.1.sip.server"},
		// Poly Edge E runs UC Software: the Polycom renderer, detected by its UA.
		{polyEdgePhone, "64167f000001", "Edge_E450", [2]string{"voIpProt.SIP.specialEvent.checkSync.alwaysReboot", "0"},
			[2]string{"up.backlight.idleIntensity", "1"}, "bogus.x"},
		{fanvilPhone, "0c383e000001", "X4", [2]string{}, [2]string{"phone.DialPlan", "{ x+ }"}, "fanvil:nosuch.section"},
	} {
		t.Run(tc.vendor.name, func(t *testing.T) {
			e := newPhoneEnv(t, tc.vendor, tc.mac, nil)
			p := e.phone
			if e.dev.Vendor != tc.vendor.name || e.dev.Model != tc.model {
				t.Fatalf("enrolled as %q %q, want %s %s", e.dev.Vendor, e.dev.Model, tc.vendor.name, tc.model)
			}
			if code, body := e.api("GET", "/devices/"+tc.mac, ""); code != 200 || body["vendor"] != tc.vendor.name || body["model"] != tc.model {
				t.Fatalf("API device = %d %v", code, body)
			}
			if got := p.param(tc.noReboot[0]); tc.noReboot[0] != "" && got != tc.noReboot[1] {
				t.Fatalf("%s = %q, want %q", tc.noReboot[0], got, tc.noReboot[1])
			}
			if p.param("Profile_Rule") == "" && tc.vendor == ciscoPhone {
				t.Fatal("no Profile_Rule: the phone would stay on $PSN.xml")
			}

			e.login(prov.DoorAPI)
			e.assertLoggedIn(p, tc.mac, "1001")
			mark := p.mark()
			if code, reason := p.dial("*78"); code != 480 || reason != "Logged out" {
				t.Fatalf("*78 = %d %s", code, reason)
			}
			p.waitResync(mark)
			e.assertLocked(p, tc.mac)

			e.login(prov.DoorFeatureCode)
			sess := e.assertLoggedIn(p, tc.mac, "1001")
			mark = p.mark()
			if code, _ := e.api("DELETE", "/sessions/"+sess.ID, ""); code/100 != 2 {
				t.Fatalf("DELETE session = %d", code)
			}
			p.waitResync(mark)
			e.assertLocked(p, tc.mac)
			if p.rebootCount() != 0 {
				t.Fatalf("the phone rebooted %d times; every re-sync should have reloaded it", p.rebootCount())
			}

			// A raw override for this vendor reaches the phone; a name the
			// vendor does not know is refused.
			name := tc.vendor.name + ":" + tc.override[0]
			if tc.vendor.name == "polycom" {
				name = tc.override[0] // Polycom's parameters keep their bare names
			}
			mark = p.mark()
			if code, body := e.api("PATCH", "/devices/"+tc.mac, `{"params":{"`+name+`":"`+tc.override[1]+`"}}`); code != 200 {
				t.Fatalf("PATCH override = %d %v", code, body)
			}
			p.waitResync(mark)
			if got := p.param(tc.override[0]); got != tc.override[1] {
				t.Fatalf("override %s = %q on the phone, want %q", tc.override[0], got, tc.override[1])
			}
			if code, body := e.api("PATCH", "/devices/"+tc.mac, `{"params":{"`+tc.bad+`":"1"}}`); code != 400 {
				t.Fatalf("PATCH unknown %s = %d %v, want 400", tc.bad, code, body)
			}
			code, _ := e.api("GET", "/devices/"+tc.mac+"/effective-config", "")
			if code != 200 {
				t.Fatalf("effective-config = %d", code)
			}
			eff, err := e.a.svc.files.EffectiveConfig(context.Background(), tc.mac)
			if err != nil {
				t.Fatal(err)
			}
			found := map[string]prov.Param{}
			for _, prm := range eff {
				found[prm.Name] = prm
			}
			if tc.noReboot[0] != "" && found[tc.noReboot[0]].Value != tc.noReboot[1] || found[tc.override[0]].Layer != prov.LayerDevice {
				t.Fatalf("effective config lacks %s or the device override: %v", tc.noReboot[0], eff)
			}
		})
	}
}

// TestYealinkRebootFlag models sip.notify_reboot_enable: set to 1 (the
// factory default) the phone reboots on each check-sync, and a login
// still comes through that reboot and a logout still relocks it.
func TestYealinkRebootFlag(t *testing.T) {
	e := newPhoneEnv(t, yealinkPhone, "001565000002", nil)
	p := e.phone
	mark := p.mark()
	if code, body := e.api("PATCH", "/devices/001565000002", `{"params":{"yealink:sip.notify_reboot_enable":"1"}}`); code != 200 {
		t.Fatalf("PATCH = %d %v", code, body)
	}
	p.waitResync(mark)
	if p.param("sip.notify_reboot_enable") != "1" {
		t.Fatal("the flag did not reach the phone")
	}
	before := p.rebootCount()
	e.login(prov.DoorAPI)
	e.assertLoggedIn(p, "001565000002", "1001")
	if p.rebootCount() <= before {
		t.Fatal("with sip.notify_reboot_enable = 1 the login's check-sync did not reboot the phone")
	}
	mark = p.mark()
	if code, reason := p.dial("*78"); code != 480 || reason != "Logged out" {
		t.Fatalf("*78 = %d %s", code, reason)
	}
	p.waitResync(mark)
	e.assertLocked(p, "001565000002")
}

// TestVendorRebootEndsLogin: a phone of each vendor that reboots on its
// own ends a login that is not persistent, as a Polycom does — which needs
// its device file (all a Cisco MPP or a Grandstream fetches) to count as
// the boot-file fetch, and its check-sync fetch to count as the answer
// to a check-sync (else a second check-sync within the coalescing window
// is dropped as unanswered).
func TestVendorRebootEndsLogin(t *testing.T) {
	for _, tc := range []struct {
		vendor *phoneVendor
		mac    string
	}{
		{gsPhone, "000b82000002"}, {ciscoPhone, "00562b000002"}, {snomPhone, "000413000002"}, {fanvilPhone, "0c383e000002"},
	} {
		t.Run(tc.vendor.name, func(t *testing.T) {
			e := newPhoneEnv(t, tc.vendor, tc.mac, nil)
			e.login(prov.DoorAPI)
			sess := e.assertLoggedIn(e.phone, tc.mac, "1001")
			// Until the daemon has taken the login's registration, a fetch
			// is the phone applying the login's check-sync, not a reboot.
			e.waitSignals(func(s prov.DeviceSignals) bool { return s.SyncAt.IsZero() })
			mark := e.phone.mark()
			e.phone.reboot()
			e.phone.waitResync(mark)
			e.assertLocked(e.phone, tc.mac)
			if got, _ := e.a.store.GetSession(context.Background(), sess.ID); got.Active() || got.EndReason != prov.EndReboot {
				t.Fatalf("after a reboot: active=%v reason=%q, want %q", got.Active(), got.EndReason, prov.EndReboot)
			}
		})
	}
}
