package render

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func fixtureSite() prov.Site {
	return prov.Site{ID: 1, Name: "HQ", Domain: "hq.example", TimeZone: "Europe/Berlin", Language: "de",
		Login:      prov.LoginPolicy{Enabled: true, Required: true, AutomaticLogout: 30, Persistent: false, DefaultUser: "lobby"},
		Authorized: []prov.AuthorizedNumber{{Description: "Reception", Number: "100"}, {Description: "Security & <Ops>", Number: "199"}},
		Emergency:  []string{"112", "110"},
		Params:     map[string]string{"up.backlight.idleIntensity": "1", "se.rt.enabled": "1"}}
}

func fixtureDevice() prov.Device {
	return prov.Device{ID: 7, MAC: "0004f2000001", Vendor: "polycom", Model: "VVX_400", SiteID: 1,
		Status: prov.DeviceDeployed, ProvUser: "0004f2000001", ProvPassword: "provsecret",
		Kind: prov.DeviceManaged, AssignedUserID: 3, SecurityPIN: "48151623",
		SIPUser: "dev0004f2000001", SIPPassword: "devsecret",
		Params: map[string]string{"up.backlight.idleIntensity": "2"}}
}

func fixtureUser() *prov.User {
	return &prov.User{ID: 3, Username: "alice", FirstName: "Alice", LastName: "O'Neil \"AJ\"", Language: "en-GB",
		SIPPassword: "permanent", Params: map[string]string{"se.rt.enabled": "0", "up.volume.handset": "7"}}
}

func fixtureViews() map[string]*prov.View {
	server := prov.ServerInfo{BaseURL: "https://prov.example:8443/p", Host: "prov.example"}
	locked := &prov.View{Device: fixtureDevice(), Site: fixtureSite(), Secrets: true, Server: server,
		DeviceWeb: &prov.UploadParams{Name: "web.cfg", Version: 2, Params: map[string]string{"up.screenSaver.enabled": "1"}}}
	sess := &prov.Session{ID: "s1", UserID: 3, DeviceID: 7, Door: "native", SIPUser: "s-alice-7", SIPPassword: "sesssecret"}
	native := *locked
	native.User, native.Session, native.Numbers = fixtureUser(), sess, []string{"201", "+4930123456"}
	native.Contacts = []prov.Contact{{Position: 1, FirstName: "Bob", LastName: "B&B", Number: "202", SpeedDial: 1},
		{Position: 2, FirstName: "Carol", Number: "+4930999", Label: "<mobile>",
			Phone: prov.ContactPhone{Protocol: "SIP", RingType: "4", DivertContact: "sip:vm&1@x", AutoDivert: "1",
				AutoReject: "0", BuddyWatch: "1", BuddyBlock: "0"}}}
	native.UserPhone = &prov.UploadParams{Name: "phone.cfg", Version: 4, Params: map[string]string{"up.volume.handset": "9"}}
	web := native
	s2 := *sess
	s2.Door = "web"
	web.Session, web.UserInDevice = &s2, true
	tftp := *locked
	tftp.Secrets = false
	// keys: button programming on a web-door login (the keys land in the
	// device's own file): two keys for the line, a BLF, a speed dial, DND
	// and forward (with the site's codes).
	keys := web
	ku := *fixtureUser()
	ku.Params = map[string]string{prov.ParamLineKeys: "2"}
	ku.Keys = []prov.FeatureKey{{Kind: prov.KeyBLF, Target: "202", Label: "Bob"}, {Kind: prov.KeySpeedDial, Target: "+4930999"},
		{Kind: prov.KeyDND}, {Kind: prov.KeyForward, Target: "2002", Label: "Fwd Bob"}, {Kind: prov.KeyBLF, Target: "203"}}
	keys.User = &ku
	keys.Site.FeatureCodes = prov.FeatureCodes{Login: "*55", Logout: "*56", DND: "*78", Forward: "*72", Voicemail: "*97"}
	return map[string]*prov.View{
		"generic": {Server: server}, "locked": locked, "native": &native, "web": &web, "tftp": &tftp, "keys": &keys,
	}
}

// TestGolden renders every file of every fixture and compares it with
// testdata/<fixture>_<kind>.golden; -update rewrites them.
func TestGolden(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []files.FileKind{files.KindMaster, files.KindDeviceConfig, files.KindUserConfig, files.KindDirectory}
	for name, v := range fixtureViews() {
		for _, k := range kinds {
			t.Run(name+"_"+string(k), func(t *testing.T) {
				got, err := s.Render(context.Background(), k, v)
				if errors.Is(err, prov.ErrNotFound) {
					got = []byte("not found\n")
				} else if err != nil {
					t.Fatal(err)
				} else if err := wellFormed(got); err != nil {
					t.Fatalf("not well-formed XML: %v\n%s", err, got)
				}
				golden := filepath.Join("testdata", name+"_"+string(k)+".golden")
				if *update {
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != string(want) {
					t.Errorf("%s differs from golden (run with -update):\n%s", golden, got)
				}
			})
		}
	}
}

func wellFormed(b []byte) error {
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		_, err := d.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
	}
}

// TestConfigRules checks the Polycom rules on rendered files: device.*
// only with device.set and device.<x>.set, escaped values, no secrets over TFTP.
func TestConfigRules(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	views := fixtureViews()
	body, err := s.Render(context.Background(), files.KindDeviceConfig, views["locked"])
	if err != nil {
		t.Fatal(err)
	}
	params, err := files.ParseConfigParams(body)
	if err != nil {
		t.Fatalf("rendered file does not parse back: %v", err)
	}
	for k := range params {
		if x, ok := strings.CutPrefix(k, "device."); ok && !strings.HasSuffix(x, ".set") && x != "set" {
			if params["device.set"] != "1" || params["device."+x+".set"] != "1" {
				t.Errorf("%s without device.set/device.%s.set", k, x)
			}
		}
	}
	if got := params["phoneLock.authorized.2.description"]; got != "Security & <Ops>" {
		t.Errorf("escaped value round trip = %q", got)
	}
	if params["reg.1.auth.password"] != "devsecret" || params["device.prov.password"] != "provsecret" {
		t.Errorf("secrets missing over HTTP")
	}
	if params["device.auth.localAdminPassword"] != "48151623" || params["device.auth.localUserPassword"] != "48151623" ||
		params["device.auth.localAdminPassword.set"] != "1" {
		t.Errorf("the security PIN does not guard the phone's menus: %v", params)
	}
	tb, err := s.Render(context.Background(), files.KindDeviceConfig, views["tftp"])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(tb), "secret") || strings.Contains(strings.ToLower(string(tb)), "password") {
		t.Errorf("TFTP device file carries a secret:\n%s", tb)
	}
	if !strings.Contains(string(tb), `device.prov.serverName="prov.example:8443/p"`) ||
		!strings.Contains(string(tb), `device.prov.serverType="HTTPS"`) {
		t.Errorf("TFTP boot file does not move the phone to HTTPS:\n%s", tb)
	}
}

// TestPrecedenceMatrix sets one parameter in every combination of layers
// and checks the highest layer wins, and that effective-config names it.
func TestPrecedenceMatrix(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const p = "up.precedence.test"
	// Bit order = precedence order, lowest first.
	type setter func(v *prov.View, val string)
	setters := []struct {
		layer prov.Layer
		set   setter
	}{
		{prov.LayerSite, func(v *prov.View, val string) { v.Site.Params = map[string]string{p: val} }},
		{prov.LayerUser, func(v *prov.View, val string) { v.User.Params = map[string]string{p: val} }},
		{prov.LayerDevice, func(v *prov.View, val string) { v.Device.Params = map[string]string{p: val} }},
		{prov.LayerDevice, func(v *prov.View, val string) {
			v.DeviceWeb = &prov.UploadParams{Name: "web.cfg", Version: 1, Params: map[string]string{p: val}}
		}},
		{prov.LayerDevice, func(v *prov.View, val string) {
			v.DevicePhone = &prov.UploadParams{Name: "phone.cfg", Version: 1, Params: map[string]string{p: val}}
		}},
		{prov.LayerUserPhone, func(v *prov.View, val string) {
			v.UserPhone = &prov.UploadParams{Name: "phone.cfg", Version: 1, Params: map[string]string{p: val}}
		}},
	}
	for mask := 0; mask < 1<<len(setters); mask++ {
		v := &prov.View{Device: fixtureDevice(), Site: prov.Site{ID: 1, Name: "HQ"}, User: fixtureUser(), Secrets: true,
			Session: &prov.Session{Door: "native"}}
		v.Device.Params, v.User.Params = nil, nil
		want, wantLayer := "", prov.Layer("")
		for i, st := range setters {
			if mask&(1<<i) != 0 {
				val := "v" + string(rune('0'+i))
				st.set(v, val)
				want, wantLayer = val, st.layer
			}
		}
		eff, _ := s.Effective(v)
		var got prov.Param
		for _, e := range eff {
			if e.Name == p {
				got = e
			}
		}
		if got.Value != want || got.Layer != wantLayer {
			t.Errorf("mask %06b: effective %s = %q from %q, want %q from %q", mask, p, got.Value, got.Layer, want, wantLayer)
		}
		// The user profile the phone loads on top carries the winner too.
		body, err := s.Render(context.Background(), files.KindUserConfig, v)
		if err != nil {
			t.Fatal(err)
		}
		params, _ := files.ParseConfigParams(body)
		if wantLayer != prov.LayerSite && wantLayer != "" && params[p] != want {
			t.Errorf("mask %06b: <user>.cfg %s = %q, want %q", mask, p, params[p], want)
		}
	}
}

// TestTemplateOverride replaces the master template from a directory.
func TestTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "polycom"), 0o755); err != nil {
		t.Fatal(err)
	}
	tpl := `<APPLICATION APP_FILE_PATH="custom.ld" CONFIG_FILES="{{xml .ConfigFiles}}"/>`
	if err := os.WriteFile(filepath.Join(dir, "polycom", "master.cfg.tmpl"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{TemplatesDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Render(context.Background(), files.KindMaster, fixtureViews()["locked"])
	if err != nil {
		t.Fatal(err)
	}
	if want := `<APPLICATION APP_FILE_PATH="custom.ld" CONFIG_FILES="0004f2000001-hotdesk.cfg"/>`; string(got) != want {
		t.Errorf("override = %s", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "polycom", "master.cfg.tmpl"), []byte("{{.Broken"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{TemplatesDir: dir}, nil); err == nil {
		t.Error("a broken admin template was accepted")
	}
}

// TestSecurityPINGuardsLocalMenus: a managed desk phone's local admin and
// user passwords are its security PIN; a phone without a user keeps the
// phone's own, a third-party phone gets nothing, and a site that sets its
// own admin password keeps it.
func TestSecurityPINGuardsLocalMenus(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		edit        func(v *prov.View)
		admin, user string
	}{
		{"assigned managed phone", func(*prov.View) {}, "48151623", "48151623"},
		{"unassigned phone", func(v *prov.View) { v.Device.AssignedUserID, v.Device.SecurityPIN = 0, "" }, "", ""},
		{"third-party phone", func(v *prov.View) { v.Device.Kind = prov.DeviceThirdParty }, "", ""},
		{"site admin password", func(v *prov.View) {
			v.Site.Params = map[string]string{"device.auth.localAdminPassword": "site-admin-pw"}
		}, "site-admin-pw", "48151623"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := *fixtureViews()["locked"]
			tc.edit(&v)
			body, err := s.Render(context.Background(), files.KindDeviceConfig, &v)
			if err != nil {
				t.Fatal(err)
			}
			params, err := files.ParseConfigParams(body)
			if err != nil {
				t.Fatal(err)
			}
			if params["device.auth.localAdminPassword"] != tc.admin || params["device.auth.localUserPassword"] != tc.user {
				t.Fatalf("admin %q user %q, want %q %q", params["device.auth.localAdminPassword"],
					params["device.auth.localUserPassword"], tc.admin, tc.user)
			}
		})
	}
}

// TestClusterNodesNamedInLines: with cluster nodes configured, every line
// names the node that served the file first and the others after it, in
// order, without repeating the first.
func TestClusterNodesNamedInLines(t *testing.T) {
	s, err := New(Config{Nodes: []string{"prov.example", "10.0.0.12", "10.0.0.13:5070"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ view, file, line string }{
		{"locked", "device", "reg.1."},
		{"native", "user", "reg.1."},
		{"native", "user", "reg.2."},
	} {
		kind := files.KindDeviceConfig
		if tc.file == "user" {
			kind = files.KindUserConfig
		}
		body, err := s.Render(context.Background(), kind, fixtureViews()[tc.view])
		if err != nil {
			t.Fatal(err)
		}
		p, err := files.ParseConfigParams(body)
		if err != nil {
			t.Fatal(err)
		}
		got := [][2]string{}
		for i := 1; i <= 4; i++ {
			pre := tc.line + "server." + strconv.Itoa(i) + "."
			if p[pre+"address"] != "" {
				got = append(got, [2]string{p[pre+"address"], p[pre+"port"]})
			}
		}
		want := [][2]string{{"prov.example", "5060"}, {"10.0.0.12", "5060"}, {"10.0.0.13", "5070"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %s %s servers %v, want %v", tc.view, tc.file, tc.line, got, want)
		}
	}
}

// TestPolycomConfigAsTemplate: the master, device and user files written without
// the template are the built-in template's bytes, for every fixture and
// for values that need escaping (quotes, markup, controls, non-ASCII,
// invalid UTF-8) or none.
func TestPolycomConfigAsTemplate(t *testing.T) {
	fast, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	viaTemplate, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	viaTemplate.def.(*polycom).builtinConfig = false
	viaTemplate.def.(*polycom).builtinMaster = false
	views := fixtureViews()
	odd := *views["native"]
	odd.Device.Params = map[string]string{"up.a": `q"'&<>`, "up.b": "tab\tnl\ncr\r", "up.c": "Grüße ☎", "up.d": "bad\xff\xfe",
		"up.e": "ctl\x01\x7f", "up.f": "", "device.sntp.serverName": "ntp", "device.set": "0", "device.x.set": "2", "zz": "last"}
	odd.Site.ProfileDirs = prov.ProfileDirs{Contacts: "c&d", UserProfiles: "u<p>", CallLists: `"cl"`}
	views["odd"] = &odd
	for name, v := range views {
		for _, k := range []files.FileKind{files.KindMaster, files.KindDeviceConfig, files.KindUserConfig} {
			t.Run(name+"_"+string(k), func(t *testing.T) {
				want, werr := viaTemplate.Render(context.Background(), k, v)
				got, gerr := fast.Render(context.Background(), k, v)
				if !errors.Is(gerr, werr) && (gerr == nil || werr == nil || gerr.Error() != werr.Error()) {
					t.Fatalf("error %v, the template's %v", gerr, werr)
				}
				if string(got) != string(want) {
					t.Errorf("differs from the template's:\n%s\nwant:\n%s", got, want)
				}
			})
		}
	}
	for _, tc := range []struct {
		name   string
		params []kv
	}{
		{"none", nil},
		{"one", []kv{{"a.b", "c"}}},
		{"groups", []kv{{"a", "1"}, {"a.b", "<"}, {"b.c", "&"}, {"c", ""}}},
	} {
		t.Run("direct_"+tc.name, func(t *testing.T) {
			var groups []group
			for _, q := range tc.params {
				g, _, _ := strings.Cut(q.Name, ".")
				if len(groups) == 0 || groups[len(groups)-1].Name != g {
					groups = append(groups, group{Name: g})
				}
				groups[len(groups)-1].Params = append(groups[len(groups)-1].Params, q)
			}
			want, err := viaTemplate.def.(*polycom).exec("config.cfg", struct {
				Comment string
				Groups  []group
			}{"c", groups})
			if err != nil {
				t.Fatal(err)
			}
			if got := polycomConfig("c", tc.params); string(got) != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestXMLEscapeAsEncodingXML: the copy-free path changes nothing
// encoding/xml would escape.
func TestXMLEscapeAsEncodingXML(t *testing.T) {
	for _, s := range []string{"", "plain 1.2.3", `q"`, "a'b", "&", "<>", "\t\n\r", "\x00\x1f\x7f", "ü", "\xff", "\uFFFD", "\U0001F4DE"} {
		var b bytes.Buffer
		if err := xml.EscapeText(&b, []byte(s)); err != nil {
			t.Fatal(err)
		}
		got, err := xmlEscape(s)
		if err != nil || got != b.String() {
			t.Errorf("xmlEscape(%q) = %q, %v; encoding/xml %q", s, got, err, b.String())
		}
		var w bytes.Buffer
		if writeXMLEscaped(&w, s); w.String() != b.String() {
			t.Errorf("writeXMLEscaped(%q) = %q; encoding/xml %q", s, w.String(), b.String())
		}
	}
}

// TestConfigTemplateOverride: an admin's config.cfg template is used for
// the device and user files (they are written without a template only
// while the built-in one is in use).
func TestConfigTemplateOverride(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "polycom"), 0o755); err != nil {
		t.Fatal(err)
	}
	tpl := `{{.Comment}}:{{range .Groups}} {{.Name}}={{len .Params}}{{end}}`
	if err := os.WriteFile(filepath.Join(dir, "polycom", "config.cfg.tmpl"), []byte(tpl), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{TemplatesDir: dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v := fixtureViews()["native"]
	v.User.Params = map[string]string{"up.a": "1", "up.b": "2", "se.rt.enabled": "0"}
	v.UserPhone = nil
	v.Device.Params = nil
	v.DeviceWeb = nil
	got, err := s.Render(context.Background(), files.KindUserConfig, v)
	if err != nil {
		t.Fatal(err)
	}
	if want := "user profile: lcl=1 reg=14 se=1 up=2"; string(got) != want { // her lines, language and params
		t.Errorf("user file through the admin's template = %q, want %q", got, want)
	}
}
