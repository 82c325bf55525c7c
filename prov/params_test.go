package prov

import (
	"errors"
	"testing"
)

func TestParseConfigParams(t *testing.T) {
	cases := []struct {
		name, in string
		want     error
	}{
		{"ok", `<polycomConfig><up up.volume.handset="7" se.rt.enabled="1"/></polycomConfig>`, nil},
		{"old root", `<PHONE_CONFIG><OVERRIDES up.volume.handset="7"/></PHONE_CONFIG>`, nil},
		{"device refused", `<polycomConfig device.prov.serverName="evil"/>`, ErrNamespace},
		{"reg refused", `<polycomConfig reg.1.address="x"/>`, ErrNamespace},
		{"dtd", `<!DOCTYPE x [<!ENTITY a "b">]><polycomConfig/>`, ErrMalformed},
		{"two roots", `<polycomConfig/><polycomConfig/>`, ErrMalformed},
		{"wrong root", `<html/>`, ErrMalformed},
		{"unclosed", `<polycomConfig>`, ErrMalformed},
		{"dup", `<polycomConfig><a up.x="1"/><b up.x="2"/></polycomConfig>`, ErrMalformed},
		{"empty", ``, ErrMalformed},
		{"text outside", `<polycomConfig/>junk`, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfigParams([]byte(c.in), DefaultUploadNamespaces)
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestParseDirectory(t *testing.T) {
	cs, err := ParseDirectory([]byte(`<directory><item_list><item><fn>A</fn><ln>B</ln><ct>201</ct><sd>3</sd></item></item_list></directory>`))
	if err != nil || len(cs) != 1 || cs[0].Number != "201" || cs[0].SpeedDial != 3 || cs[0].Position != 1 {
		t.Fatalf("got %+v, %v", cs, err)
	}
	for _, bad := range []string{`<directory><item_list><item><sd>x</sd></item></item_list></directory>`, `<other/>`, `<directory>`} {
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

func TestMACFromUserAgent(t *testing.T) {
	cases := map[string]string{
		"Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37":                                   "0015654aa937",
		"Cisco/SPA508G-7.4.4 (0002FDFF2103)(CBT141400UK)":                                "0002fdff2103",
		"Grandstream Model HW GXP2170 SW 1.0.11.85 DevId 000b82865e6a":                   "000b82865e6a",
		"Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)": "000413741767",
		"FileTransport PolycomVVX-VVX_400-UA/5.9.0.1 (SN:0004f2abcdef) Type/Application": "0004f2abcdef",
		"FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application":                "",
	}
	for ua, want := range cases {
		if got, _ := MACFromUserAgent(ua); got != want {
			t.Errorf("%q = %q, want %q", ua, got, want)
		}
	}
	if v, m, fw := VendorFromUserAgent("FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application"); v != "polycom" || m != "VVX_400" || fw != "4.1.4.7430" {
		t.Errorf("polycom UA = %s %s %s", v, m, fw)
	}
}

// FuzzParseUpload feeds arbitrary bytes to the upload parsers: they must
// never panic, and whatever ParseConfigParams accepts only uses allowed names.
func FuzzParseUpload(f *testing.F) {
	f.Add([]byte(`<polycomConfig><up up.volume.handset="7"/></polycomConfig>`))
	f.Add([]byte(`<directory><item_list><item><fn>A</fn><ct>1</ct><sd>2</sd></item></item_list></directory>`))
	f.Add([]byte(`<!DOCTYPE x><polycomConfig/>`))
	f.Add([]byte(`<PHONE_CONFIG><a b="&amp;&#1;"/></PHONE_CONFIG>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ps, err := ParseConfigParams(b, DefaultUploadNamespaces); err == nil {
			for k := range ps {
				if !allowedParam(k, DefaultUploadNamespaces) || !ValidParamName(k) {
					t.Fatalf("accepted %q", k)
				}
			}
		}
		_, _ = ParseDirectory(b)
		_ = checkWellFormed(b, "")
		_, _ = parseName(string(b))
	})
}
