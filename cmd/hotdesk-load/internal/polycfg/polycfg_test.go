package polycfg

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseMaster(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want []string
		err  error
	}{
		{"hotdesk master", read(t, "master.cfg"), []string{"0004f2000001-hotdesk.cfg"}, nil},
		{"placeholder", read(t, "generic_master.cfg"), []string{"0004f2abcdef-hotdesk.cfg"}, nil},
		{"list with spaces, order kept", []byte(`<APPLICATION CONFIG_FILES=" a.cfg, b.cfg ,,[PHONE_MAC_ADDRESS]-x.cfg"/>`),
			[]string{"a.cfg", "b.cfg", "0004f2abcdef-x.cfg"}, nil},
		{"lower-case element and attribute", []byte(`<application config_files="x.cfg"></application>`), []string{"x.cfg"}, nil},
		{"nested in a wrapper, unclosed", []byte(`<?xml version="1.0"?><root><APPLICATION CONFIG_FILES="y.cfg">`), []string{"y.cfg"}, nil},
		{"no CONFIG_FILES", []byte(`<APPLICATION APP_FILE_PATH="sip.ld"/>`), nil, nil},
		{"not a master", []byte(`<polycomConfig><reg reg.1.address="1"/></polycomConfig>`), nil, ErrNotPolycom},
		{"empty", nil, nil, ErrNotPolycom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMaster(tc.data, "0004f2abcdef")
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.ConfigFiles, tc.want) {
				t.Fatalf("ConfigFiles = %q, want %q", m.ConfigFiles, tc.want)
			}
		})
	}
}

func TestAccount(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		line  int
		want  Account
		error bool
	}{
		{"locked device file", read(t, "device_locked.cfg"), 1, Account{Line: 1, Address: "dev0004f2000001",
			UserID: "dev0004f2000001", Password: "devsecret", Domain: "prov.example", Server: "prov.example", Port: 5060}, false},
		{"user line 2 with escaped display name", read(t, "device_with_user.cfg"), 2, Account{Line: 2, Address: "+4930123456",
			UserID: "s-alice-7", Password: "sesssecret", Domain: "prov.example", Server: "prov.example", Port: 5060}, false},
		{"address with host, server from voIpProt, odd case", []byte(`<polycomConfig><reg REG.1.ADDRESS="201@pbx.lan" reg.1.auth.userid="u" reg.1.auth.password="p&amp;q"/>
			<voIpProt voIpProt.server.1.address="10.0.0.1" voIpProt.server.1.port="5070"/></polycomConfig>`), 1,
			Account{Line: 1, Address: "201@pbx.lan", UserID: "u", Password: "p&q", Domain: "pbx.lan", Server: "10.0.0.1", Port: 5070}, false},
		{"no userId: the address user", []byte(`<c><reg reg.3.address="sip:300@x" reg.3.server.1.address="s" reg.3.server.1.port="junk"/></c>`), 3,
			Account{Line: 3, Address: "sip:300@x", UserID: "300", Domain: "x", Server: "s", Port: 5060}, false},
		{"missing line", read(t, "device_locked.cfg"), 2, Account{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseParams(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			a, err := p.Account(tc.line)
			if tc.error {
				if !errors.Is(err, ErrNoAccount) {
					t.Fatalf("err = %v, want ErrNoAccount", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a != tc.want {
				t.Fatalf("Account = %+v\nwant      %+v", a, tc.want)
			}
		})
	}
}

func TestParamsDetails(t *testing.T) {
	p, err := ParseParams(read(t, "device_locked.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if u, pw := p.ProvCredentials(); u != "0004f2000001" || pw != "provsecret" {
		t.Fatalf("ProvCredentials = %q %q", u, pw)
	}
	if v, _ := p.Get("phoneLock.authorized.2.description"); v != "Security & <Ops>" {
		t.Fatalf("escaped value = %q", v)
	}
	if _, err := ParseParams([]byte("just text")); !errors.Is(err, ErrNotPolycom) {
		t.Fatalf("text: err = %v", err)
	}
	big := make([]byte, MaxFileBytes+1)
	if _, err := ParseParams(big); err == nil {
		t.Fatal("oversized file accepted")
	}
	// First listed file wins on merge.
	a := Params{"reg.1.address": "user"}
	a.Merge(Params{"reg.1.address": "device", "x": "1"})
	if a["reg.1.address"] != "user" || a["x"] != "1" {
		t.Fatalf("merge = %v", a)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range []string{"master.cfg", "generic_master.cfg", "device_with_user.cfg", "device_locked.cfg"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS].cfg,,"/>`))
	f.Add([]byte(`<polycomConfig><reg reg.1.address="@" reg.1.server.1.port="99999"/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := ParseMaster(data, "0004f2000001"); err == nil {
			for _, f := range m.ConfigFiles {
				if f == "" {
					t.Fatal("empty file name in CONFIG_FILES")
				}
			}
		}
		p, err := ParseParams(data)
		if err != nil {
			return
		}
		for n := 1; n <= 2; n++ {
			a, err := p.Account(n)
			if err != nil {
				continue
			}
			if a.User() == "" || a.UserID == "" || a.Port < 1 || a.Port > 65535 {
				t.Fatalf("bad account %+v", a)
			}
		}
	})
}

func TestAccounts(t *testing.T) {
	lines := func(p Params) []string {
		var out []string
		for _, a := range p.Accounts() {
			out = append(out, a.User()+"/"+a.UserID)
		}
		return out
	}
	locked, err := ParseParams(read(t, "device_locked.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lines(locked), []string{"dev0004f2000001/dev0004f2000001"}; !slices.Equal(got, want) {
		t.Errorf("locked: %v, want %v", got, want)
	}
	user, err := ParseParams(read(t, "device_with_user.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lines(user), []string{"201/s-alice-7", "+4930123456/s-alice-7"}; !slices.Equal(got, want) {
		t.Errorf("with user: %v, want %v", got, want)
	}
	// Lines in number order, gaps and empty addresses skipped, out-of-range
	// and malformed numbers ignored.
	p, err := ParseParams([]byte(`<reg reg.10.address="ten" reg.2.address="two" reg.3.address=""
		reg.0.address="zero" reg.49.address="big" reg.x.address="bad" reg.4.label="no address"/>`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lines(p), []string{"two/two", "ten/ten"}; !slices.Equal(got, want) {
		t.Errorf("mixed: %v, want %v", got, want)
	}
}
