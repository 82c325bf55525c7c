package files

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"testing"

	"hotdesk/prov"
)

func TestParseConfigParams(t *testing.T) {
	cases := []struct {
		name, in string
		want     error
	}{
		{"ok", `<polycomConfig><up up.volume.handset="7" se.rt.enabled="1"/></polycomConfig>`, nil},
		{"old root", `<PHONE_CONFIG><OVERRIDES up.volume.handset="7"/></PHONE_CONFIG>`, nil},
		{"any parameter parses", `<polycomConfig device.prov.serverName="x" reg.1.address="y"/>`, nil},
		{"dtd", `<!DOCTYPE x [<!ENTITY a "b">]><polycomConfig/>`, ErrMalformed},
		{"two roots", `<polycomConfig/><polycomConfig/>`, ErrMalformed},
		{"wrong root", `<html/>`, ErrMalformed},
		{"unclosed", `<polycomConfig>`, ErrMalformed},
		{"dup", `<polycomConfig><a up.x="1"/><b up.x="2"/></polycomConfig>`, ErrMalformed},
		{"bad name", `<polycomConfig><a x:y="1"/></polycomConfig>`, ErrMalformed},
		{"empty", ``, ErrMalformed},
		{"text outside", `<polycomConfig/>junk`, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfigParams([]byte(c.in))
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
			if _, err2 := SplitConfigUpload([]byte(c.in), DefaultUploadNamespaces); (err == nil) != (err2 == nil) {
				t.Errorf("SplitConfigUpload err = %v, ParseConfigParams err = %v", err2, err)
			}
		})
	}
}

// TestUploadParamRefusal: a phone keeps what it owns (preferences, line
// labels and key counts, PTT channels, forwarding) and never sets what would
// re-point it or carries a secret.
func TestUploadParamRefusal(t *testing.T) {
	cases := map[string]string{
		"up.volume.handset": "", "se.rt.1.name": "", "lcl.ml.lang": "", "call.callsPerLineKey": "",
		"feature.enhancedFeatureKeys.enabled": "", "dir.local.readonly": "", "reg.1.label": "",
		"reg.2.lineKeys": "", "reg.1.ringType": "", "reg.1.fwd.busy.contact": "", "reg.12.callsPerLineKey": "",
		"ptt.channel.3.subscribed": "", "ptt.displayName": "", "divert.1.contact": "", "lineKey.4.category": "",
		"attendant.resourceList.1.address": "", "attendant.resourceList.1.label": "",
		"tcpIpApp.sntp.gmtOffset": "", "prov.login.localPassword": "", "prov.login.localPassword.hashed": "",

		"prov.login.defaultPassword": RefusedProvisioning, "prov.polling.enabled": RefusedProvisioning,
		"device.prov.serverName": RefusedProvisioning, "device.set": RefusedProvisioning,
		"reg.1.auth.password": RefusedSecret, "reg.1.auth.userId": RefusedSecret, "dir.corp.password": RefusedSecret,
		"dir.corp.user": RefusedSecret, "up.password": RefusedSecret,
		"reg.1.address": RefusedAddress, "reg.1.server.1.address": RefusedAddress, "reg.1.server.1.port": RefusedAddress,
		"dir.corp.address": RefusedAddress, "dir.corp.port": RefusedAddress, "ptt.address": RefusedAddress,
		"ptt.port": RefusedAddress, "call.server.x": RefusedAddress, "mb.main.home": RefusedAddress,
		"reg.1.displayName": RefusedNotPhoneOwned, "reg.1.type": RefusedNotPhoneOwned, "reg.x.label": RefusedNotPhoneOwned,
		"reg.1": RefusedNotPhoneOwned, "voIpProt.SIP.enable": RefusedNotPhoneOwned,
		"dialplan.routing.emergency.1.value": RefusedNotPhoneOwned, "phoneLock.authorized.1.value": RefusedNotPhoneOwned,
		"tcpIpApp.sntp.resyncPeriod": RefusedNotPhoneOwned, "sec.tagSerialNo": RefusedNotPhoneOwned,
	}
	for name, want := range cases {
		if got := UploadParamRefusal(name, DefaultUploadNamespaces); got != want {
			t.Errorf("%s: refusal %q, want %q", name, got, want)
		}
	}
}

func TestSplitConfigUpload(t *testing.T) {
	whole := `<PHONE_CONFIG><OVERRIDES up.volume.handset="7" reg.1.label="Sales"/></PHONE_CONFIG>`
	up, err := SplitConfigUpload([]byte(whole), DefaultUploadNamespaces)
	if err != nil || string(up.Data) != whole || len(up.Refused) != 0 || up.Params["reg.1.label"] != "Sales" {
		t.Fatalf("nothing refused: the file as uploaded; got %q %+v %v", up.Data, up.Refused, err)
	}
	mixed := `<polycomConfig><up up.volume.handset="7" up.note="a&amp;&quot;b&#xA;c"/>` +
		`<reg reg.1.label="Sales" reg.1.address="evil" reg.1.auth.password="x"/><device device.prov.serverName="evil"/></polycomConfig>`
	up, err = SplitConfigUpload([]byte(mixed), DefaultUploadNamespaces)
	if err != nil {
		t.Fatal(err)
	}
	want := []RefusedParam{{"reg.1.address", RefusedAddress}, {"reg.1.auth.password", RefusedSecret},
		{"device.prov.serverName", RefusedProvisioning}}
	if fmt.Sprint(up.Refused) != fmt.Sprint(want) {
		t.Errorf("refused %v, want %v", up.Refused, want)
	}
	back, err := ParseConfigParams(up.Data)
	if err != nil {
		t.Fatalf("stored file does not parse: %v\n%s", err, up.Data)
	}
	wantKept := map[string]string{"up.volume.handset": "7", "up.note": "a&\"b\nc", "reg.1.label": "Sales"}
	if !maps.Equal(back, wantKept) || !maps.Equal(up.Params, wantKept) {
		t.Errorf("kept %v (stored %v), want %v", up.Params, back, wantKept)
	}
	if !strings.HasPrefix(string(up.Data), "<?xml") || !strings.Contains(string(up.Data), "<polycomConfig>") {
		t.Errorf("stored file keeps its root:\n%s", up.Data)
	}
}

func TestParseDirectory(t *testing.T) {
	cs, err := ParseDirectory([]byte(`<directory><item_list><item><fn>A</fn><ln>B</ln><ct>201</ct><sd>3</sd></item></item_list></directory>`))
	if err != nil || len(cs) != 1 || cs[0].Number != "201" || cs[0].SpeedDial != 3 || cs[0].Position != 1 {
		t.Fatalf("got %+v, %v", cs, err)
	}
	cs, err = ParseDirectory([]byte(`<directory><item_list><item><fn>A</fn><ct>201</ct><pt>SIP</pt><rt>5</rt>` +
		`<dc>202</dc><ad>1</ad><ar>0</ar><bw>1</bw><bb>0</bb></item></item_list></directory>`))
	want := prov.ContactPhone{Protocol: "SIP", RingType: "5", DivertContact: "202", AutoDivert: "1", AutoReject: "0",
		BuddyWatch: "1", BuddyBlock: "0"}
	if err != nil || len(cs) != 1 || cs[0].Phone != want {
		t.Fatalf("every field: got %+v, %v", cs, err)
	}
	for _, bad := range []string{`<directory><item_list><item><sd>x</sd></item></item_list></directory>`, `<other/>`, `<directory>`,
		`<directory><item_list><item><ad>yes</ad></item></item_list></directory>`,
		`<directory><item_list><item><pt>XMPP</pt></item></item_list></directory>`,
		`<directory><item_list><item><rt>loud</rt></item></item_list></directory>`,
		`<directory><item_list><item><dc>` + strings.Repeat("1", 200) + `</dc></item></item_list></directory>`} {
		if _, err := ParseDirectory([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

func TestParseName(t *testing.T) {
	cases := []struct {
		in   string
		kind FileKind
		mac  string
		user string
		bad  bool
	}{
		{in: "000000000000.cfg", kind: KindMaster},
		{in: "0004F2000001.cfg", kind: KindMaster, mac: "0004f2000001"},
		{in: "0004f2000001-hotdesk.cfg", kind: KindDeviceConfig, mac: "0004f2000001"},
		{in: "0004f2000001-web.cfg", kind: KindOverride, mac: "0004f2000001"},
		{in: "0004f2000001-app.log", kind: KindLog, mac: "0004f2000001"},
		{in: "alice.cfg", kind: KindUserConfig, user: "alice"},
		{in: "john.doe-directory.xml", kind: KindDirectory, user: "john.doe"},
		{in: "fw/sip.ld", kind: KindStatic},
		{in: "../etc/passwd", bad: true}, {in: "/etc/passwd", bad: true}, {in: "a\x00.cfg", bad: true},
		{in: `a\b.cfg`, bad: true}, {in: "a%2e.cfg", bad: true}, {in: "é.cfg", bad: true}, {in: "a//b", bad: true},
		{in: ".hidden", bad: true}, {in: "", bad: true},
	}
	for _, c := range cases {
		pn, err := parseName(c.in)
		if c.bad {
			if !errors.Is(err, ErrBadName) {
				t.Errorf("%q accepted", c.in)
			}
			continue
		}
		if err != nil || pn.kind != c.kind || pn.mac != c.mac || pn.user != c.user {
			t.Errorf("%q = %+v, %v", c.in, pn, err)
		}
	}
}

func FuzzParseUpload(f *testing.F) {
	f.Add([]byte(`<polycomConfig><up up.volume.handset="7"/></polycomConfig>`))
	f.Add([]byte(`<directory><item_list><item><fn>A</fn><ct>1</ct><sd>2</sd></item></item_list></directory>`))
	f.Add([]byte(`<!DOCTYPE x><polycomConfig/>`))
	f.Add([]byte(`<PHONE_CONFIG><a b="&amp;&#1;"/></PHONE_CONFIG>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if up, err := SplitConfigUpload(b, DefaultUploadNamespaces); err == nil {
			for k := range up.Params {
				if UploadParamRefusal(k, DefaultUploadNamespaces) != "" || !prov.ValidParamName(k) {
					t.Fatalf("accepted %q", k)
				}
			}
			back, err := ParseConfigParams(up.Data)
			if err != nil || !maps.Equal(back, up.Params) {
				t.Fatalf("stored file parses to %v (%v), kept %v", back, err, up.Params)
			}
		}
		_, _ = ParseDirectory(b)
		_ = checkWellFormed(b, "")
		_, _ = parseName(string(b))
	})
}

// FuzzParseName: every name a phone can ask for either fails to parse or
// yields a consistent classification (a profile directory only in front of
// a user, directory or call-list file; a MAC of 12 lowercase hex digits).
func FuzzParseName(f *testing.F) {
	for _, s := range []string{"000000000000.cfg", "0004f2000001-hotdesk.cfg", "alice.cfg", "profiles/alice.cfg",
		"contacts/0004f2000001-directory.xml", "fw/sip.ld", "a/b/c.cfg", "../x", "calls/bob-calls.xml"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		pn, err := parseName(p)
		if err != nil {
			return
		}
		if _, cerr := cleanName(p); cerr != nil {
			t.Fatalf("%q parsed but is not clean: %v", p, cerr)
		}
		if pn.dir != "" {
			if _, ok := pn.profileDir(prov.ProfileDirs{}); !ok || pn.full != pn.dir+"/"+pn.name || strings.Contains(pn.name, "/") {
				t.Fatalf("%q: inconsistent profile directory %+v", p, pn)
			}
		} else if pn.path() != p {
			t.Fatalf("%q: path %q", p, pn.path())
		}
		if pn.mac != "" && (len(pn.mac) != 12 || strings.ToLower(pn.mac) != pn.mac || !isHex12(pn.mac)) {
			t.Fatalf("%q: MAC %q", p, pn.mac)
		}
		if pn.user != "" && pn.kind != KindUserConfig && pn.kind != KindOverride && pn.kind != KindDirectory && pn.kind != KindCalls {
			t.Fatalf("%q: user %q on a %s file", p, pn.user, pn.kind)
		}
		if err := prov.ValidateParams("params", map[string]string{p: p}, true); err == nil && !prov.ValidParamName(p) {
			t.Fatalf("%q accepted as a parameter name", p)
		}
	})
}
