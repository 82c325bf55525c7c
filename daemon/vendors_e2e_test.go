package daemon

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
			if tc.vendor == ciscoPhone {
				// The XML directory service, as the device.
				code, body := p.fetch(p.param("XML_Directory_Service_URL"), p.param("XML_User_Name"), p.param("XML_Password"))
				if code != 200 || !strings.Contains(body, "<CiscoIPPhoneDirectory>") {
					t.Fatalf("directory = %d\n%s", code, body)
				}
			}
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
			if code, body := e.api("PATCH", "/devices/"+tc.mac, `{"params":{"`+name+`":"`+tc.override[1]+`"}}`); code != 200 {
				t.Fatalf("PATCH override = %d %v", code, body)
			}
			p.waitParam(tc.override[0], tc.override[1])
			if code, body := e.api("PATCH", "/devices/"+tc.mac, `{"params":{"`+tc.bad+`":"1"}}`); code != 400 {
				t.Fatalf("PATCH unknown %s = %d %v, want 400", tc.bad, code, body)
			}
			// A user's profile parameters are checked against the vendor's names too.
			if code, body := e.api("PATCH", "/users/alice", `{"params":{"`+tc.bad+`":"1"}}`); code != 400 {
				t.Fatalf("PATCH user's unknown %s = %d %v, want 400", tc.bad, code, body)
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

// TestYealinkLocalUpload: the settings a Yealink uploads (<mac>-local.cfg)
// are stored and merged into what it fetches — the device's while locked,
// the logged-in user's above everything while a user is on it — and what a
// phone may not set (its lines' credentials, its provisioning server) is
// left out. <mac>-contact.xml is kept and read back.
func TestYealinkLocalUpload(t *testing.T) {
	const mac = "001565000003"
	e := newPhoneEnv(t, yealinkPhone, mac, nil)
	p := e.phone
	if code := p.upload(mac+"-local.cfg", "#!version:1.0.0.1\nfeatures.dnd.enable = 1\n"+
		"static.auto_provision.server.url = http://evil.example/\naccount.1.password = x\n"); code/100 != 2 {
		t.Fatalf("PUT local.cfg = %d", code)
	}
	if code := p.upload(mac+"-contact.xml", `<root_contact><contact display_name="Bob" office_number="202"/></root_contact>`); code/100 != 2 {
		t.Fatalf("PUT contact.xml = %d", code)
	}
	p.reload()
	if p.param("features.dnd.enable") != "1" || strings.Contains(p.param("static.auto_provision.server.url"), "evil") {
		t.Fatalf("merged upload: dnd=%q url=%q", p.param("features.dnd.enable"), p.param("static.auto_provision.server.url"))
	}
	p.mu.Lock()
	pu, pp := p.provUser, p.provPass
	p.mu.Unlock()
	if code, body := p.fetch(mac+"-contact.xml", pu, pp); code != 200 || !strings.Contains(body, `display_name="Bob"`) {
		t.Fatalf("contact.xml read back = %d %s", code, body)
	}
	// Logged in, the user's own upload goes above the device's.
	e.login(prov.DoorAPI)
	e.assertLoggedIn(p, mac, "1001")
	if code := p.upload(mac+"-local.cfg", "#!version:1.0.0.1\nfeatures.dnd.enable = 0\n"); code/100 != 2 {
		t.Fatalf("PUT user's local.cfg = %d", code)
	}
	p.reload()
	if p.param("features.dnd.enable") != "0" {
		t.Fatalf("the user's upload does not win: dnd=%q", p.param("features.dnd.enable"))
	}
	mark := p.mark()
	if code, reason := p.dial("*78"); code != 480 || reason != "Logged out" {
		t.Fatalf("*78 = %d %s", code, reason)
	}
	p.waitResync(mark)
	e.assertLocked(p, mac)
	if p.param("features.dnd.enable") != "1" {
		t.Fatalf("after the logout the device's own setting should be back: dnd=%q", p.param("features.dnd.enable"))
	}
}

// TestYealinkRebootFlag models sip.notify_reboot_enable: set to 1 (the
// factory default) the phone reboots on each check-sync, and a login
// still comes through that reboot and a logout still relocks it.
func TestYealinkRebootFlag(t *testing.T) {
	e := newPhoneEnv(t, yealinkPhone, "001565000002", nil)
	p := e.phone
	if code, body := e.api("PATCH", "/devices/001565000002", `{"params":{"yealink:sip.notify_reboot_enable":"1"}}`); code != 200 {
		t.Fatalf("PATCH = %d %v", code, body)
	}
	p.waitParam("sip.notify_reboot_enable", "1")
	before := p.rebootCount()
	e.login(prov.DoorAPI)
	e.assertLoggedIn(p, "001565000002", "1001")
	if p.rebootCount() <= before {
		t.Fatal("with sip.notify_reboot_enable = 1 the login's check-sync did not reboot the phone")
	}
	mark := p.mark()
	if code, reason := p.dial("*78"); code != 480 || reason != "Logged out" {
		t.Fatalf("*78 = %d %s", code, reason)
	}
	p.waitResync(mark)
	e.assertLocked(p, "001565000002")
}

// TestXMLBrowserLogin: the locked profile gives a Yealink a line key that
// opens the login door in its XML browser, a Cisco MPP its XML service
// (the Services button), a Snom an Action URL function key; the input
// screen each shows is submitted as the phone submits it (a GET of its URL
// with the fields appended; Snom's one field per screen, its InputToken
// replaced), and the phone re-syncs into the user's line. The same key
// then offers the logout, which relocks it.
func TestXMLBrowserLogin(t *testing.T) {
	type input struct {
		URL    string   `xml:"URL"`
		Fields []string `xml:"InputField>Parameter"`
		Items  []string `xml:"InputItem>QueryStringParam"`
	}
	for _, tc := range []struct {
		vendor   *phoneVendor
		mac, key string
		root, ok string
	}{
		{yealinkPhone, "001565000004", "linekey.10.value", "YealinkIPPhoneInputScreen", "<YealinkIPPhoneTextScreen"},
		{ciscoPhone, "00562b000004", "XML_Service_URL", "CiscoIPPhoneInput", "<CiscoIPPhoneText>"},
		{snomPhone, "000413000004", "fkey.11", "SnomIPPhoneInput", "<SnomIPPhoneText>"},
	} {
		t.Run(tc.vendor.name, func(t *testing.T) {
			e := newPhoneEnv(t, tc.vendor, tc.mac, nil)
			p := e.phone
			link := p.param(tc.key)
			if tc.vendor == snomPhone {
				// Function key type "url" (Action URL) opens the minibrowser.
				var ok bool
				if link, ok = strings.CutPrefix(link, "url "); !ok {
					t.Fatalf("%s = %q, want an Action URL key", tc.key, link)
				}
			}
			if link == "" {
				t.Fatalf("no login door in %s", tc.key)
			}
			code, page := fetch(t, &http.Client{}, "GET", link, nil)
			var submit string
			if tc.vendor == snomPhone {
				// One field per screen: the minibrowser fetches Url with the
				// InputToken replaced by what was typed.
				submit = snomSubmit(t, code, page, "User ID", "alice")
				code, page = fetch(t, &http.Client{}, "GET", submit, nil)
				submit = snomSubmit(t, code, page, "Password", "alice-demo")
			} else {
				var in input
				err := xml.Unmarshal([]byte(page), &in)
				fields := append(in.Fields, in.Items...)
				if code != 200 || err != nil || !strings.Contains(page, "<"+tc.root) || len(fields) != 2 {
					t.Fatalf("login page = %d %v\n%s", code, err, page)
				}
				submit = in.URL + "&" + url.Values{fields[0]: {"alice"}, fields[1]: {"alice-demo"}}.Encode()
			}
			mark := p.mark()
			if code, body := fetch(t, &http.Client{}, "GET", submit, nil); code != 200 || !strings.Contains(body, "Logged in") ||
				!strings.Contains(body, tc.ok) {
				t.Fatalf("submit = %d\n%s", code, body)
			}
			p.waitResync(mark)
			e.assertLoggedIn(p, tc.mac, "1001")
			// A forged token logs nobody in.
			bad := strings.Replace(submit, "t=", "t=1", 1)
			if code, _ := fetch(t, &http.Client{}, "GET", bad, nil); code != 404 {
				t.Fatalf("forged token = %d, want 404", code)
			}
			xmlLogout(t, e, link, tc.ok)
		})
	}
}

// xmlLogout: with alice logged in, the login key opens the XML browser's
// menu (SnomIPPhoneMenu, YealinkIPPhoneTextMenu, CiscoIPPhoneMenu) whose
// "Log out" item (a GET under the logout form's token) relocks the phone;
// a forged one is refused.
func xmlLogout(t *testing.T, e *relockEnv, link, text string) {
	t.Helper()
	code, page := fetch(t, &http.Client{}, "GET", link, nil)
	var menu struct {
		XMLName xml.Name
		Items   []struct{ Name, Prompt, URL, URI string } `xml:"MenuItem"`
	}
	err := xml.Unmarshal([]byte(page), &menu)
	if code != 200 || err != nil || !strings.HasSuffix(menu.XMLName.Local, "Menu") || len(menu.Items) != 2 ||
		menu.Items[0].Name+menu.Items[0].Prompt != "Log out" {
		t.Fatalf("login key while logged in = %d %v\n%s", code, err, page)
	}
	out := menu.Items[0].URL + menu.Items[0].URI
	// The other item opens the input screen again, for someone else.
	if code, body := fetch(t, &http.Client{}, "GET", menu.Items[1].URL+menu.Items[1].URI, nil); code != 200 ||
		!strings.Contains(body, "Input") {
		t.Fatalf("menu's Log in = %d\n%s", code, body)
	}
	if code, _ := fetch(t, &http.Client{}, "GET", strings.Replace(out, "t=", "t=1", 1), nil); code != 404 {
		t.Fatalf("forged logout token = %d, want 404", code)
	}
	mark := e.phone.mark()
	if code, body := fetch(t, &http.Client{}, "GET", out, nil); code != 200 || !strings.Contains(body, "Logged out") ||
		!strings.Contains(body, text) {
		t.Fatalf("logout = %d\n%s", code, body)
	}
	e.phone.waitResync(mark)
	e.assertLocked(e.phone, e.mac)
}

// snomSubmit reads a SnomIPPhoneInput screen asking for want and returns
// the URL the minibrowser fetches once value is typed.
func snomSubmit(t *testing.T, code int, page, want, value string) string {
	t.Helper()
	var in struct {
		XMLName xml.Name `xml:"SnomIPPhoneInput"`
		URL     string   `xml:"Url"`
		Items   []struct {
			DisplayName, InputToken, InputFlags string
		} `xml:"InputItem"`
	}
	if err := xml.Unmarshal([]byte(page), &in); code != 200 || err != nil || len(in.Items) != 1 ||
		in.Items[0].DisplayName != want || in.Items[0].InputToken == "" || !strings.Contains(in.URL, in.Items[0].InputToken) {
		t.Fatalf("snom screen for %s = %d %v\n%s", want, code, err, page)
	}
	return strings.ReplaceAll(in.URL, in.Items[0].InputToken, url.QueryEscape(value))
}

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

// TestVendorFeatureKeys: the keys the portal programs for alice (a BLF
// on bob, DND by the site's code) land on the Yealink, Cisco MPP, Snom and Fanvil she
// logs in on, in each vendor's own key programming; the logout leaves
// none behind.
func TestVendorFeatureKeys(t *testing.T) {
	for _, tc := range []struct {
		vendor    *phoneVendor
		mac       string
		want      map[string]string
		afterward map[string]string
	}{
		{yealinkPhone, "001565000005",
			map[string]string{"linekey.2.type": "16", "linekey.2.value": "1002", "linekey.2.label": "Bob",
				"linekey.3.type": "13", "linekey.3.value": "*66", "linekey.3.label": "DND"},
			map[string]string{"linekey.2.type": "0", "linekey.3.type": "0", "linekey.2.value": ""}},
		{ciscoPhone, "00562b000005",
			map[string]string{"Extension_2_": "Disabled", "Extended_Function_2_": "fnc=blf+sd;sub=1002@$PROXY;ext=1002@$PROXY;nme=Bob",
				"Extension_3_": "Disabled", "Extended_Function_3_": "fnc=sd;ext=*66@$PROXY;vid=1;nme=DND"},
			map[string]string{"Extension_2_": "2", "Extended_Function_2_": "", "Extended_Function_3_": ""}},
		{snomPhone, "000413000005",
			map[string]string{"fkey.1": "blf sip:1002@test.lan", "fkey.2": "speed *66"},
			map[string]string{"fkey.1": "line", "fkey.2": "line"}},
		{fanvilPhone, "0c383e000005",
			map[string]string{"dsskey.dssSide.1.Fkey.1.Type": "2", "dsskey.dssSide.1.Fkey.1.Value": "SIP1",
				"dsskey.dssSide.1.Fkey.2.Type": "1", "dsskey.dssSide.1.Fkey.2.Value": "1002@1/ba", "dsskey.dssSide.1.Fkey.2.Title": "Bob",
				"dsskey.dssSide.1.Fkey.3.Type": "1", "dsskey.dssSide.1.Fkey.3.Value": "*66@1/f", "dsskey.dssSide.1.Fkey.3.Title": "DND"},
			map[string]string{"dsskey.dssSide.1.Fkey.2.Type": "0", "dsskey.dssSide.1.Fkey.2.Value": "", "dsskey.dssSide.1.Fkey.3.Type": "0"}},
	} {
		t.Run(tc.vendor.name, func(t *testing.T) {
			e := newPhoneEnv(t, tc.vendor, tc.mac, nil)
			site := strconv.FormatInt(e.dev.SiteID, 10)
			if code, body := e.api("PATCH", "/sites/"+site, `{"feature_codes":{"dnd":"*66"}}`); code != 200 {
				t.Fatalf("site feature codes = %d %v", code, body)
			}
			if code, body := e.api("PUT", "/users/alice/keys", `{"keys":[{"kind":"blf","target":"1002","label":"Bob"},{"kind":"dnd"}]}`); code != 200 {
				t.Fatalf("PUT keys = %d %v", code, body)
			}
			e.login(prov.DoorAPI)
			e.assertLoggedIn(e.phone, tc.mac, "1001")
			for k, v := range tc.want {
				if got := e.phone.param(k); got != v {
					t.Errorf("logged in: %s = %q, want %q", k, got, v)
				}
			}
			mark := e.phone.mark()
			if code, reason := e.phone.dial("*78"); code != 480 || reason != "Logged out" {
				t.Fatalf("*78 = %d %s", code, reason)
			}
			e.phone.waitResync(mark)
			e.assertLocked(e.phone, tc.mac)
			for k, v := range tc.afterward {
				if got := e.phone.param(k); got != v {
					t.Errorf("after the logout: %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestVendorFailoverAndFirmware: with cluster.nodes and
// provisioning.firmware_urls configured, each vendor's phone fetches a
// file from the real daemon that names the other node in its own failover
// parameter (Snom's failover is per identity, not rendered) and the
// vendor's firmware URL in its own firmware parameter.
func TestVendorFailoverAndFirmware(t *testing.T) {
	for _, tc := range []struct {
		vendor   *phoneVendor
		mac      string
		backup   string // the parameter naming the other node
		firmware string // the parameter naming the firmware
	}{
		{yealinkPhone, "001565000002", "account.1.outbound_proxy.2.address", "static.firmware.url"},
		{ciscoPhone, "00562b000002", "Alternate_Outbound_Proxy_1_", "Upgrade_Rule"},
		{gsPhone, "000b82000002", "P2312", "P192"},
		{fanvilPhone, "0c383e000002", "sip.line.1.BackupAddr", "fwCheck.UpgradeServer1"},
		{snomPhone, "000413000002", "", "firmware_status"},
	} {
		t.Run(tc.vendor.name, func(t *testing.T) {
			e := newPhoneEnv(t, tc.vendor, tc.mac, func(c *Config) {
				c.Cluster.Nodes = []string{"192.0.2.7"}
				c.Provisioning.FirmwareURLs = map[string]string{tc.vendor.name: "http://192.0.2.9/fw/" + tc.vendor.name}
			})
			p := e.phone
			if tc.backup != "" && !strings.HasPrefix(p.param(tc.backup), "192.0.2.7") {
				t.Errorf("%s = %q, want the other node 192.0.2.7", tc.backup, p.param(tc.backup))
			}
			if got := p.param(tc.firmware); !strings.Contains(got, "192.0.2.9/fw/"+tc.vendor.name) {
				t.Errorf("%s = %q, want the configured firmware", tc.firmware, got)
			}
		})
	}
}

// TestCiscoExtensionMobility: a Cisco MPP with EM_Enable signs alice in at
// its Sign in softkey, and hotdesk decides (the rule's signed-in branch
// fetches the profile with the typed login): a wrong password is refused,
// the right one opens a native session and the phone registers her line.
// However the session then ends without the phone signing out — an
// admin's logout, *78, a reboot — the phone re-syncs still holding her
// login and gets its locked profile, not a new login, and another re-sync
// with that login stays locked. Signing out and in again on the phone is
// a new login, and signing out ends it.
func TestCiscoExtensionMobility(t *testing.T) {
	for _, end := range []string{"admin", "*78", "reboot"} {
		t.Run(end, func(t *testing.T) {
			const mac = "00562b0000e1"
			e := newPhoneEnv(t, ciscoPhone, mac, nil)
			p := e.phone
			if p.param("EM_Enable") != "Yes" {
				t.Fatalf("EM_Enable = %q, want Yes", p.param("EM_Enable"))
			}
			if p.emSignIn("alice", "not-her-password") {
				t.Fatal("a wrong password signed in")
			}
			e.assertLocked(p, mac)
			if !p.emSignIn("alice", "alice-demo") {
				t.Fatal("sign-in refused")
			}
			sess := e.assertLoggedIn(p, mac, "1001")
			if sess.Door != prov.DoorNative {
				t.Fatalf("door %q, want native", sess.Door)
			}
			mark := p.mark()
			switch end {
			case "admin":
				if code, _ := e.api("DELETE", "/sessions/"+sess.ID, ""); code/100 != 2 {
					t.Fatalf("admin logout = %d", code)
				}
			case "*78":
				if code, reason := p.dial("*78"); code != 480 || reason != "Logged out" {
					t.Fatalf("*78 = %d %s", code, reason)
				}
			case "reboot":
				// Until the daemon has taken the login's registration, a
				// fetch is the phone applying the login, not a reboot.
				e.waitSignals(func(s prov.DeviceSignals) bool { return s.SyncAt.IsZero() })
				p.reboot() // still signed in: it boots with her login
			}
			p.waitResync(mark)
			e.assertLocked(p, mac)
			if got, _ := e.a.store.GetSession(context.Background(), sess.ID); got.Active() {
				t.Fatal("the session is still active")
			}
			p.mu.Lock()
			holding := p.native != nil
			p.mu.Unlock()
			if !holding {
				t.Fatal("the phone no longer holds the login: the stale re-sync was not exercised")
			}
			// Its next re-sync with the ended login is no login either.
			p.reload()
			e.assertLocked(p, mac)
			if _, ok, _ := e.a.svc.sessions.ActiveOn(context.Background(), e.dev.ID); ok {
				t.Fatal("a re-sync with the ended login logged alice in again")
			}
			// Signing out and in on the phone: a new login.
			p.logoutOnPhone()
			e.assertLocked(p, mac)
			if !p.emSignIn("alice", "alice-demo") {
				t.Fatal("signing in again refused")
			}
			again := e.assertLoggedIn(p, mac, "1001")
			if again.ID == sess.ID {
				t.Fatal("the ended session came back")
			}
			// Signing out on the phone ends the session.
			p.logoutOnPhone()
			e.assertLocked(p, mac)
			if got, _ := e.a.store.GetSession(context.Background(), again.ID); got.Active() || got.EndReason != prov.EndLogout {
				t.Fatalf("after signing out: active=%v reason=%q", got.Active(), got.EndReason)
			}
		})
	}
}
