package render

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// vendorViews are fixtureViews as a phone of vendor (its MAC prefix) sees
// them, with raw overrides for that vendor at every level.
func vendorViews(vendor, mac string) map[string]*prov.View {
	views := fixtureViews()
	for _, v := range views {
		if v.Device.MAC == "" {
			continue
		}
		v.Device.Vendor, v.Device.MAC, v.Device.ProvUser = vendor, mac, mac
	}
	raw := map[string]map[string]string{
		"yealink":     {"site": "features.dnd.enable", "device": "features.dnd.enable", "user": "lang.wui"},
		"cisco":       {"site": "Call_Waiting_Serv", "device": "Call_Waiting_Serv", "user": "Time_Format"},
		"snom":        {"site": "call_waiting", "device": "call_waiting", "user": "web_language"},
		"grandstream": {"site": "P91", "device": "P91", "user": "P104"},
		"fanvil":      {"site": "phone.DialPlan", "device": "phone.DialPlan", "user": "phone.display.BackLight"},
	}[vendor]
	for _, v := range views {
		if v.Device.MAC == "" {
			continue
		}
		v.Site.Params = map[string]string{"up.backlight.idleIntensity": "1", vendor + ":" + raw["site"]: "site"}
		v.Device.Params = map[string]string{vendor + ":" + raw["device"]: "device"}
		if v.User != nil {
			u := *v.User
			u.Params = map[string]string{vendor + ":" + raw["user"]: "user"}
			v.User = &u
		}
	}
	return views
}

var vendorMACs = map[string]string{"yealink": "001565000001", "cisco": "00562b000001", "snom": "000413000001", "grandstream": "000b82000001", "fanvil": "0c383e000001"}

// TestVendorGolden renders every file of every fixture for each vendor
// besides Polycom, compares it with testdata/<vendor>/<fixture>_<kind>.golden
// and parses it back with the vendor's format rules (parseVendorFile).
func TestVendorGolden(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kinds := []files.FileKind{files.KindMaster, files.KindDeviceConfig, files.KindDirectory}
	for vendor, mac := range vendorMACs {
		for name, v := range vendorViews(vendor, mac) {
			if v.Device.MAC == "" {
				v.Device.Vendor = vendor // the generic profile of a phone that said nothing
			}
			for _, k := range kinds {
				t.Run(vendor+"/"+name+"_"+string(k), func(t *testing.T) {
					got, err := s.Render(context.Background(), k, v)
					if errors.Is(err, prov.ErrNotFound) {
						got = []byte("not found\n")
					} else if err != nil {
						t.Fatal(err)
					} else if _, err := parseVendorFile(vendor, k, got); err != nil {
						t.Fatalf("does not parse back: %v\n%s", err, got)
					}
					golden := filepath.Join("testdata", vendor, name+"_"+string(k)+".golden")
					if *update {
						if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
							t.Fatal(err)
						}
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
}

// clusterConfig is a three-node cluster, the fixtures' server first, with
// a firmware URL for every vendor.
func clusterConfig() Config {
	fw := map[string]string{}
	for vendor := range vendorMACs {
		fw[vendor] = "http://fw.example/" + vendor + "/current"
	}
	return Config{Nodes: []string{"prov.example", "10.0.0.12", "10.0.0.13:5070"}, FirmwareURLs: fw}
}

// TestVendorClusterGolden renders the logged-in device file of every
// vendor in a cluster with a firmware URL into
// testdata/<vendor>/cluster_device.golden, parsed back as the phone reads it.
func TestVendorClusterGolden(t *testing.T) {
	s, err := New(clusterConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for vendor, mac := range vendorMACs {
		t.Run(vendor, func(t *testing.T) {
			got, err := s.Render(context.Background(), files.KindDeviceConfig, vendorViews(vendor, mac)["web"])
			if err != nil {
				t.Fatal(err)
			}
			if _, err := parseVendorFile(vendor, files.KindDeviceConfig, got); err != nil {
				t.Fatalf("does not parse back: %v\n%s", err, got)
			}
			golden := filepath.Join("testdata", vendor, "cluster_device.golden")
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

// TestVendorClusterNodes: in a cluster, every line of every vendor (but
// Snom, see snom.go) names the next node, not the one that served the
// file, in that vendor's failover parameter; the vendor's firmware
// parameter carries its URL; without a cluster the parameters are empty.
func TestVendorClusterNodes(t *testing.T) {
	cluster, err := New(clusterConfig(), nil)
	if err != nil {
		t.Fatal(err)
	}
	single, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type param struct{ name, want string }
	cases := map[string]struct {
		backup   func(line int) []param
		firmware string
	}{
		"yealink": {func(i int) []param {
			a := fmt.Sprintf("account.%d.outbound_proxy.2.", i)
			return []param{{a + "address", "10.0.0.12"}, {a + "port", "5060"}}
		}, "static.firmware.url"},
		"cisco": {func(i int) []param {
			return []param{{fmt.Sprintf("Alternate_Outbound_Proxy_%d_", i), "10.0.0.12:5060"},
				{fmt.Sprintf("Dual_Registration_%d_", i), "Yes"}}
		}, "Upgrade_Rule"},
		"grandstream": {func(i int) []param {
			if i == 1 {
				return []param{{"P2312", "10.0.0.12:5060"}, {"P2333", "10.0.0.12:5060"}}
			}
			return []param{{fmt.Sprintf("P2%d12", i+2), "10.0.0.12:5060"}}
		}, "P192"},
		"fanvil": {func(i int) []param {
			n := fmt.Sprintf("sip.line.%d.", i)
			return []param{{n + "BackupAddr", "10.0.0.12"}, {n + "BackupPort", "5060"}}
		}, "fwCheck.UpgradeServer1"},
		"snom": {func(int) []param { return nil }, "firmware_status"},
	}
	for vendor, c := range cases {
		views := vendorViews(vendor, vendorMACs[vendor])
		for _, view := range []string{"locked", "web"} {
			get := func(s *Set) map[string]string {
				b, err := s.Render(context.Background(), files.KindDeviceConfig, views[view])
				if err != nil {
					t.Fatal(err)
				}
				m, err := parseVendorFile(vendor, files.KindDeviceConfig, b)
				if err != nil {
					t.Fatal(err)
				}
				return m
			}
			got, alone := get(cluster), get(single)
			lines := 1
			if view == "web" {
				lines = 2
			}
			for i := 1; i <= lines; i++ {
				for _, p := range c.backup(i) {
					if got[p.name] != p.want {
						t.Errorf("%s %s: %s = %q, want %q", vendor, view, p.name, got[p.name], p.want)
					}
					if v := alone[p.name]; v != "" && v != "No" {
						t.Errorf("%s %s without a cluster: %s = %q, want it empty", vendor, view, p.name, v)
					}
				}
			}
			if !strings.Contains(got[c.firmware], "fw.example") || alone[c.firmware] != "" {
				t.Errorf("%s %s: firmware %s = %q (without a URL: %q)", vendor, view, c.firmware, got[c.firmware], alone[c.firmware])
			}
		}
	}
}

// TestVendorFiles checks what each rendered file means to the phone: the
// locked profile registers the device account only, a login the user's
// lines (and disables the device account's), no secret without secrets,
// re-sync without reboot, raw overrides by precedence.
func TestVendorFiles(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	type want struct{ user1, auth1, pass1, enable2, noReboot, overrideKey string }
	cases := map[string]struct {
		line func(i int, k string) string
		keys want
	}{
		"yealink": {func(i int, k string) string { return fmt.Sprintf("account.%d.%s", i, k) },
			want{"user_name", "auth_name", "password", "enable", "sip.notify_reboot_enable=0", "features.dnd.enable"}},
		"cisco": {func(i int, k string) string { return fmt.Sprintf("%s_%d_", k, i) },
			want{"User_ID", "Auth_ID", "Password", "Line_Enable", "Resync_From_SIP=Yes", "Call_Waiting_Serv"}},
		// Snom needs no setting to take check-sync;reboot=false without a reboot.
		"snom": {func(i int, k string) string { return fmt.Sprintf("%s.%d", k, i) },
			want{"user_name", "user_pname", "user_pass", "user_active", "", "call_waiting"}},
		// Grandstream: account 1's P-values, then P<n+2>01… (gsLines).
		// (whether a plain check-sync reboots it is not documented).
		"grandstream": {gsKey, want{"user", "auth", "pass", "active", "", "P91"}},
		"fanvil": {func(i int, k string) string { return fmt.Sprintf("sip.line.%d.%s", i, k) },
			want{"PhoneNumber", "RegisterUser", "RegisterPswd", "EnableReg", "", "phone.DialPlan"}},
	}
	for vendor, c := range cases {
		views := vendorViews(vendor, vendorMACs[vendor])
		get := func(view string) map[string]string {
			t.Helper()
			b, err := s.Render(context.Background(), files.KindDeviceConfig, views[view])
			if err != nil {
				t.Fatalf("%s %s: %v", vendor, view, err)
			}
			m, err := parseVendorFile(vendor, files.KindDeviceConfig, b)
			if err != nil {
				t.Fatalf("%s %s: %v", vendor, view, err)
			}
			return m
		}
		locked, web, tftp := get("locked"), get("web"), get("tftp")
		k := c.keys
		if locked[c.line(1, k.user1)] != "dev0004f2000001" || locked[c.line(1, k.pass1)] != "devsecret" {
			t.Errorf("%s locked: line 1 is not the device account: %v", vendor, locked)
		}
		if web[c.line(1, k.user1)] != "201" || web[c.line(2, k.user1)] != "+4930123456" ||
			web[c.line(1, k.auth1)] != "s-alice-7" || web[c.line(1, k.pass1)] != "sesssecret" {
			t.Errorf("%s logged in: lines are not the user's: %v", vendor, web)
		}
		off := map[string]string{"yealink": "0", "cisco": "No", "snom": "off", "grandstream": "0", "fanvil": "0"}[vendor]
		if web[c.line(3, k.enable2)] != off || locked[c.line(2, k.enable2)] != off {
			t.Errorf("%s: unused lines are not disabled", vendor)
		}
		for key, val := range tftp {
			if strings.Contains(val, "secret") || strings.Contains(val, "48151623") {
				t.Errorf("%s TFTP file carries a secret: %s = %s", vendor, key, val)
			}
		}
		nr, nv, _ := strings.Cut(k.noReboot, "=")
		if nr != "" && locked[nr] != nv {
			t.Errorf("%s: %s = %q, want %q (re-sync without reboot)", vendor, nr, locked[nr], nv)
		}
		// Device overrides beat the site's; another vendor's are left out.
		if locked[k.overrideKey] != "device" {
			t.Errorf("%s: raw override %s = %q, want the device's", vendor, k.overrideKey, locked[k.overrideKey])
		}
		for key := range locked {
			if strings.Contains(key, "backlight") || strings.Contains(key, ":") {
				t.Errorf("%s renders another vendor's parameter %s", vendor, key)
			}
		}
		eff, err := s.Effective(views["web"])
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, p := range eff {
			if p.Name == k.overrideKey {
				found = p.Value == "device" && p.Layer == prov.LayerDevice
			}
			if strings.Contains(p.Value, "secret") || strings.Contains(p.Value, "48151623") {
				t.Errorf("%s effective config shows a secret: %s = %s", vendor, p.Name, p.Value)
			}
		}
		if !found {
			t.Errorf("%s: effective config does not show the device override %s", vendor, k.overrideKey)
		}
	}
}

// BenchmarkVendorFiles is the vendors' reading of the names a Polycom
// phone fetches, which the namespace asks for on every fetch.
func BenchmarkVendorFiles(b *testing.B) {
	s, err := New(Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"0004f2000001-hotdesk.cfg", "0004f2000001.cfg", "alice.cfg", "0004f2000001-directory.xml"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				s.VendorFiles(name)
			}
		})
	}
}

// TestVendorNames checks which names each vendor answers and how.
func TestVendorNames(t *testing.T) {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want []files.VendorFile
	}{
		{"y000000000000.cfg", []files.VendorFile{{Vendor: "yealink", Kind: files.KindMaster, Boot: true}}},
		{"y000000000025.cfg", []files.VendorFile{{Vendor: "yealink", Kind: files.KindMaster, Boot: true}}},
		{"001565ABCDEF.cfg", []files.VendorFile{{Vendor: "yealink", Kind: files.KindDeviceConfig, MAC: "001565abcdef", Enroll: true},
			{Vendor: "fanvil", Kind: files.KindDeviceConfig, MAC: "001565abcdef", Enroll: true}}},
		{"f0X4hw1.100.cfg", []files.VendorFile{{Vendor: "fanvil", Kind: files.KindMaster, Boot: true}}},
		{"F0V00X300000.cfg", []files.VendorFile{{Vendor: "fanvil", Kind: files.KindMaster, Boot: true}}},
		{"F0000X600000.cfg", []files.VendorFile{{Vendor: "fanvil", Kind: files.KindMaster, Boot: true}}},
		{"fanvil_x210_v2_hwv2_0.txt", []files.VendorFile{{Vendor: "fanvil", Kind: files.KindMaster, Boot: true}}},
		{"f0abcdef.cfg", nil},
		{"001565abcdef-local.cfg", []files.VendorFile{{Vendor: "yealink", Kind: files.KindOverride, MAC: "001565abcdef", Suffix: "local.cfg"}}},
		{"001565abcdef-contact.xml", []files.VendorFile{{Vendor: "yealink", Kind: files.KindOverride, MAC: "001565abcdef", Suffix: "contact.xml"}}},
		{"001565abcdef-directory.xml", []files.VendorFile{{Vendor: "yealink", Kind: files.KindDirectory, MAC: "001565abcdef", Suffix: "directory.xml"},
			{Vendor: "cisco", Kind: files.KindDirectory, MAC: "001565abcdef", Suffix: "directory.xml"},
			{Vendor: "snom", Kind: files.KindDirectory, MAC: "001565abcdef", Suffix: "directory.xml"}}},
		{"8851.xml", []files.VendorFile{{Vendor: "cisco", Kind: files.KindDeviceConfig, Boot: true}}},
		{"6871.xml", []files.VendorFile{{Vendor: "cisco", Kind: files.KindDeviceConfig, Boot: true}}},
		{"00562b000001.xml", []files.VendorFile{{Vendor: "cisco", Kind: files.KindDeviceConfig, MAC: "00562b000001", Boot: true},
			{Vendor: "snom", Kind: files.KindDeviceConfig, MAC: "00562b000001", Enroll: true}}},
		{"snomD785.htm", []files.VendorFile{{Vendor: "snom", Kind: files.KindMaster, Boot: true}}},
		{"snom710.htm", []files.VendorFile{{Vendor: "snom", Kind: files.KindMaster, Boot: true}}},
		{"snomD785-000413ABCDEF.htm", []files.VendorFile{{Vendor: "snom", Kind: files.KindDeviceConfig, MAC: "000413abcdef", Enroll: true}}},
		{"000413abcdef-directory.xml", []files.VendorFile{{Vendor: "yealink", Kind: files.KindDirectory, MAC: "000413abcdef", Suffix: "directory.xml"},
			{Vendor: "cisco", Kind: files.KindDirectory, MAC: "000413abcdef", Suffix: "directory.xml"},
			{Vendor: "snom", Kind: files.KindDirectory, MAC: "000413abcdef", Suffix: "directory.xml"}}},
		{"snomD785-00041.htm", nil},
		{"cfg000b82abcdef.xml", []files.VendorFile{{Vendor: "grandstream", Kind: files.KindDeviceConfig, MAC: "000b82abcdef", Boot: true}}},
		{"cfggxp2170.xml", []files.VendorFile{{Vendor: "grandstream", Kind: files.KindMaster, Boot: true}}},
		{"cfgGRP2614.xml", []files.VendorFile{{Vendor: "grandstream", Kind: files.KindMaster, Boot: true}}},
		{"cfg.xml", []files.VendorFile{{Vendor: "grandstream", Kind: files.KindMaster, Boot: true}}},
		{"cfg000b82abcdef", nil},
		{"000000000000.cfg", nil},
		{"alice.cfg", nil},
		{"0004f2000001-hotdesk.cfg", nil},
		{"88511.xml", nil},
	} {
		got := s.VendorFiles(tc.name)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("VendorFiles(%q) = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		vendor string
		reboot bool
		want   string
	}{
		{"polycom", false, "check-sync"}, {"", true, "check-sync;reboot=true"},
		{"yealink", false, "check-sync;reboot=false"}, {"yealink", true, "check-sync;reboot=true"},
		{"cisco", false, "resync"}, {"Cisco", true, "reboot"},
		{"snom", false, "check-sync;reboot=false"}, {"snom", true, "reboot"},
		{"grandstream", false, "check-sync"}, {"grandstream", true, "check-sync;reboot=true"},
		{"fanvil", false, "check-sync"}, {"fanvil", true, "check-sync;reboot=true"},
	} {
		if got := SyncEvent(tc.vendor, tc.reboot); got != tc.want || s.SyncEvent(tc.vendor, tc.reboot) != tc.want {
			t.Errorf("SyncEvent(%q, %v) = %q, want %q", tc.vendor, tc.reboot, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name         string
		known, vknow bool
	}{
		{"up.backlight.idleIntensity", true, true}, {"bogus.x", false, true},
		{"yealink:features.dnd.enable", true, true}, {"yealink:account.1.label", true, true},
		{"yealink:nonsense_param", false, true}, {"cisco:Line_Enable_1_", true, true},
		{"cisco:line enable", false, true}, {"acme:x.y", false, false}, {"polycom:up.x", false, false},
		{"grandstream:P271", true, true},
		{"fanvil:sip.line.1.EnableReg", true, true}, {"fanvil:Version", true, true}, {"fanvil:bogus.x", false, true},
		{"fanvil:sip.1", false, true}, {"grandstream:account.1", false, true},
		{"snom:user_pass.1", true, true}, {"snom:fkey.0", true, true}, {"snom:Call-Waiting", false, true},
	} {
		if k, vk := s.KnownParam(tc.name); k != tc.known || vk != tc.vknow {
			t.Errorf("KnownParam(%q) = %v, %v; want %v, %v", tc.name, k, vk, tc.known, tc.vknow)
		}
	}
}

// parseVendorFile parses a rendered file by the vendor's documented format
// and returns its parameters.
func parseVendorFile(vendor string, kind files.FileKind, b []byte) (map[string]string, error) {
	if kind == files.KindDirectory {
		return nil, parseDirectory(vendor, b)
	}
	switch vendor {
	case "yealink":
		return parseYealinkCfg(b)
	case "cisco":
		return parseFlatProfile(b)
	case "snom":
		return parseSnomSettings(b)
	case "grandstream":
		return parseGSProvision(b)
	case "fanvil":
		return parseSysConf(b)
	}
	return nil, fmt.Errorf("no parser for %s", vendor)
}

var yealinkKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$`)

// parseYealinkCfg reads Yealink's auto-provisioning file: the first line
// "#!version:1.0.0.1", then "key = value" lines and '#' comments; keys are
// lowercase dotted names, each set once.
func parseYealinkCfg(b []byte) (map[string]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	m := map[string]string{}
	first := true
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if first {
			if line != "#!version:1.0.0.1" {
				return nil, fmt.Errorf("line 1 is %q, not the version header", line)
			}
			first = false
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, " = ")
		if !ok || !yealinkKeyRE.MatchString(k) {
			return nil, fmt.Errorf("line %d: %q is not key = value", n, line)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("line %d: %s set twice", n, k)
		}
		m[k] = v
	}
	if first {
		return nil, errors.New("empty file")
	}
	return m, sc.Err()
}

// parseFlatProfile reads Cisco's <flat-profile>: one element per
// parameter, text only, with an optional ua="na|ro|rw" attribute.
func parseFlatProfile(b []byte) (map[string]string, error) {
	var doc struct {
		XMLName xml.Name `xml:"flat-profile"`
		Params  []struct {
			XMLName xml.Name
			UA      string `xml:"ua,attr"`
			Value   string `xml:",chardata"`
			Inner   []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, p := range doc.Params {
		switch {
		case len(p.Inner) > 0:
			return nil, fmt.Errorf("%s has child elements", p.XMLName.Local)
		case p.UA != "" && p.UA != "na" && p.UA != "ro" && p.UA != "rw":
			return nil, fmt.Errorf("%s: ua=%q", p.XMLName.Local, p.UA)
		case !ciscoParamRE.MatchString(p.XMLName.Local):
			return nil, fmt.Errorf("%q is not a parameter name", p.XMLName.Local)
		}
		if _, dup := m[p.XMLName.Local]; dup {
			return nil, fmt.Errorf("%s set twice", p.XMLName.Local)
		}
		m[p.XMLName.Local] = p.Value
	}
	return m, nil
}

// parseDirectory reads the XML browser directory (YealinkIPPhoneDirectory,
// CiscoIPPhoneDirectory): DirectoryEntry elements with Name and Telephone.
func parseDirectory(vendor string, b []byte) error {
	var doc struct {
		XMLName xml.Name
		Entries []struct {
			Name      string `xml:"Name"`
			Telephone string `xml:"Telephone"`
		} `xml:"DirectoryEntry"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return err
	}
	root := map[string]string{"yealink": "YealinkIPPhoneDirectory", "cisco": "CiscoIPPhoneDirectory",
		"snom": "SnomIPPhoneDirectory"}[vendor]
	if doc.XMLName.Local != root {
		return fmt.Errorf("root %s, want %s", doc.XMLName.Local, root)
	}
	for _, e := range doc.Entries {
		if e.Telephone == "" {
			return fmt.Errorf("entry %q without a number", e.Name)
		}
	}
	return nil
}

var snomSettingRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func parseSnomSettings(b []byte) (map[string]string, error) {
	type setting struct {
		XMLName xml.Name
		Perm    *string `xml:"perm,attr"`
		Idx     string  `xml:"idx,attr"`
		Context string  `xml:"context,attr"`
		Value   string  `xml:",chardata"`
		Inner   []struct {
			XMLName xml.Name
		} `xml:",any"`
	}
	var doc struct {
		XMLName xml.Name `xml:"settings"`
		Phone   struct {
			S []setting `xml:",any"`
		} `xml:"phone-settings"`
		Keys struct {
			S []setting `xml:",any"`
		} `xml:"functionKeys"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	m := map[string]string{}
	idxRE := regexp.MustCompile(`^[0-9]{1,3}$`)
	add := func(s setting, key bool) error {
		name := s.XMLName.Local
		switch {
		case len(s.Inner) > 0:
			return fmt.Errorf("%s has child elements", name)
		case !snomSettingRE.MatchString(name):
			return fmt.Errorf("%q is not a setting name", name)
		case s.Perm == nil || *s.Perm != "R" && *s.Perm != "RW" && *s.Perm != "":
			return fmt.Errorf("%s: perm missing or not R/RW", name)
		case s.Idx != "" && !idxRE.MatchString(s.Idx):
			return fmt.Errorf("%s: idx=%q", name, s.Idx)
		case key && (name != "fkey" || s.Idx == "" || s.Context != "active"):
			return fmt.Errorf("function key %s idx=%q context=%q", name, s.Idx, s.Context)
		}
		if s.Idx != "" {
			name += "." + s.Idx
		}
		if _, dup := m[name]; dup {
			return fmt.Errorf("%s set twice", name)
		}
		m[name] = s.Value
		return nil
	}
	for _, s := range doc.Phone.S {
		if err := add(s, false); err != nil {
			return nil, err
		}
	}
	for _, s := range doc.Keys.S {
		if err := add(s, true); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func gsKey(i int, k string) string {
	if i == 1 {
		return map[string]string{"user": "P35", "auth": "P36", "pass": "P34", "active": "P271"}[k]
	}
	return fmt.Sprintf("P%d%s", i+2, map[string]string{"user": "04", "auth": "05", "pass": "06", "active": "01"}[k])
}

var gsPValueRE = regexp.MustCompile(`^P[0-9]{1,5}$`)

func parseGSProvision(b []byte) (map[string]string, error) {
	var doc struct {
		XMLName xml.Name `xml:"gs_provision"`
		Version string   `xml:"version,attr"`
		MAC     *string  `xml:"mac"`
		Config  []struct {
			Version string `xml:"version,attr"`
			Params  []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
				Inner   []struct {
					XMLName xml.Name
				} `xml:",any"`
			} `xml:",any"`
		} `xml:"config"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	if doc.Version != "1" || len(doc.Config) != 1 || doc.Config[0].Version != "1" {
		return nil, fmt.Errorf("gs_provision version %q with %d config elements", doc.Version, len(doc.Config))
	}
	if doc.MAC != nil {
		if _, ok := prov.NormalizeMAC(*doc.MAC); !ok || len(*doc.MAC) != 12 {
			return nil, fmt.Errorf("mac %q", *doc.MAC)
		}
	}
	m := map[string]string{}
	for _, p := range doc.Config[0].Params {
		switch {
		case len(p.Inner) > 0:
			return nil, fmt.Errorf("%s has child elements", p.XMLName.Local)
		case !gsPValueRE.MatchString(p.XMLName.Local):
			return nil, fmt.Errorf("%q is not a P-value", p.XMLName.Local)
		}
		if _, dup := m[p.XMLName.Local]; dup {
			return nil, fmt.Errorf("%s set twice", p.XMLName.Local)
		}
		m[p.XMLName.Local] = p.Value
	}
	return m, nil
}

var fanvilElemRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]*$`)

func parseSysConf(b []byte) (map[string]string, error) {
	type node struct {
		XMLName xml.Name
		Index   string `xml:"index,attr"`
		Value   string `xml:",chardata"`
		Kids    []node `xml:",any"`
	}
	var root node
	if err := xml.Unmarshal(b, &root); err != nil {
		return nil, err
	}
	if root.XMLName.Local != "sysConf" {
		return nil, fmt.Errorf("root %s, want sysConf", root.XMLName.Local)
	}
	m := map[string]string{}
	idxRE := regexp.MustCompile(`^[0-9]{1,3}$`)
	var walk func(n node, path string) error
	walk = func(n node, path string) error {
		for _, k := range n.Kids {
			name := k.XMLName.Local
			if !fanvilElemRE.MatchString(name) || k.Index != "" && !idxRE.MatchString(k.Index) {
				return fmt.Errorf("%s: element %q index %q", path, name, k.Index)
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			if k.Index != "" {
				p += "." + k.Index
			}
			if len(k.Kids) > 0 {
				if strings.TrimSpace(k.Value) != "" {
					return fmt.Errorf("%s mixes text and elements", p)
				}
				if err := walk(k, p); err != nil {
					return err
				}
				continue
			}
			if _, dup := m[p]; dup {
				return fmt.Errorf("%s set twice", p)
			}
			m[p] = k.Value
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return nil, err
	}
	if m["Version"] == "" {
		return nil, errors.New("no Version")
	}
	return m, nil
}

// TestVendorSRVGolden: with cluster.srv_domain set, every vendor's lines
// name the SRV domain in that vendor's DNS SRV mode and no backup node
// (the records list every node); golden files testdata/<vendor>/srv_*.
func TestVendorSRVGolden(t *testing.T) {
	cfg := clusterConfig()
	cfg.SRVDomain = "sip.example"
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	type param struct{ name, want string }
	for _, tc := range []struct {
		vendor, view string
		kind         files.FileKind
		golden       string
		want         []param
	}{
		{"polycom", "native", files.KindUserConfig, "srv_user.golden", []param{{"reg.1.server.1.address", "sip.example"},
			{"reg.1.server.1.port", "0"}, {"reg.1.server.1.transport", "DNSnaptr"}, {"reg.1.server.2.address", ""},
			{"reg.2.server.1.transport", "DNSnaptr"}}},
		{"yealink", "web", files.KindDeviceConfig, "yealink/srv_device.golden", []param{
			{"account.1.sip_server.1.address", "sip.example"}, {"account.1.sip_server.1.port", "0"},
			{"account.1.sip_server.1.transport_type", "3"}, {"account.1.outbound_proxy_enable", "0"},
			{"account.1.outbound_proxy.2.address", ""}}},
		{"cisco", "web", files.KindDeviceConfig, "cisco/srv_device.golden", []param{{"Proxy_1_", "sip.example"},
			{"Use_DNS_SRV_1_", "Yes"}, {"DNS_SRV_Auto_Prefix_1_", "Yes"}, {"Use_Outbound_Proxy_1_", "No"},
			{"Dual_Registration_1_", "No"}, {"Alternate_Outbound_Proxy_1_", ""}}},
		{"grandstream", "web", files.KindDeviceConfig, "grandstream/srv_device.golden", []param{{"P48", "sip.example"},
			{"P103", "1"}, {"P2312", ""}, {"P2333", ""}}},
		{"fanvil", "web", files.KindDeviceConfig, "fanvil/srv_device.golden", []param{
			{"sip.line.1.ProxyAddr", "sip.example"}, {"sip.line.1.DNSSRV", "1"}, {"sip.line.1.BackupAddr", ""}}},
		{"snom", "web", files.KindDeviceConfig, "snom/srv_device.golden", []param{{"user_outbound.1", "sip.example"}}},
	} {
		t.Run(tc.vendor, func(t *testing.T) {
			var v *prov.View
			if tc.vendor == "polycom" {
				v = fixtureViews()[tc.view]
			} else {
				v = vendorViews(tc.vendor, vendorMACs[tc.vendor])[tc.view]
			}
			got, err := s.Render(context.Background(), tc.kind, v)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]string
			if tc.vendor == "polycom" {
				m, err = files.ParseConfigParams(got)
			} else {
				m, err = parseVendorFile(tc.vendor, tc.kind, got)
			}
			if err != nil {
				t.Fatalf("does not parse back: %v\n%s", err, got)
			}
			for _, p := range tc.want {
				if m[p.name] != p.want {
					t.Errorf("%s = %q, want %q", p.name, m[p.name], p.want)
				}
			}
			golden := filepath.Join("testdata", tc.golden)
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
