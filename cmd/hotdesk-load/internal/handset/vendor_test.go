package handset

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/icholy/digest"

	"hotdesk/cmd/hotdesk-load/internal/polycfg"
)

// goldens is the real renderer's output (prov/render's golden files, which
// its own tests keep true); the load tool imports no hotdesk package.
const goldens = "../../../../prov/render/testdata"

// goldenServer serves golden files by name as the daemon would, with the
// renderer's example provisioning URL rewritten to the server's own, and
// after the first file demands the device's digest credentials for the
// MAC's own files. It records what was asked, with which User-Agent.
type goldenServer struct {
	*httptest.Server
	files map[string]string // name → golden path
	user  string            // digest user ("": no auth)
	pass  string
	mu    sync.Mutex
	// auth: every request must carry the digest credentials (a 401 first).
	auth  bool
	asked []string
	uas   []string
	authd []bool
}

func newGoldenServer(t *testing.T, files map[string]string, user, pass string) *goldenServer {
	g := &goldenServer{files: files, user: user, pass: pass}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/")
		authd := false
		if c, err := digest.ParseCredentials(r.Header.Get("Authorization")); err == nil && c.Username == g.user {
			want, err := digest.Digest(&digest.Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: c.Algorithm,
				QOP: []string{c.QOP}}, digest.Options{Method: r.Method, URI: c.URI, Username: c.Username,
				Password: g.pass, Cnonce: c.Cnonce, Count: c.Nc})
			authd = err == nil && want.Response == c.Response
		}
		g.mu.Lock()
		if g.auth && !authd {
			g.mu.Unlock()
			w.Header().Set("WWW-Authenticate", `Digest realm="prov", qop="auth", algorithm=MD5, nonce="n1"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		g.asked, g.uas, g.authd = append(g.asked, name), append(g.uas, r.UserAgent()), append(g.authd, authd)
		g.mu.Unlock()
		path, ok := g.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, err := os.ReadFile(filepath.Join(goldens, path))
		if err != nil {
			t.Error(err)
			http.Error(w, err.Error(), 500)
			return
		}
		_, _ = w.Write([]byte(strings.ReplaceAll(string(b), "https://prov.example:8443/p/", g.URL+"/")))
	}))
	t.Cleanup(g.Close)
	return g
}

// TestVendorBootFromRenderedFiles boots each vendor's handset from the
// real renderer's files: the names it asks for in order, its User-Agent,
// the provisioning credentials it takes from them, the lines it would
// register, and how it takes each NOTIFY.
func TestVendorBootFromRenderedFiles(t *testing.T) {
	type acct struct{ line, user, auth, pass, domain, server string }
	tests := []struct {
		vendor *Vendor
		mac    string
		files  map[string]string
		// resync: the files a second fetch (re-sync) asks for.
		boot, resync   []string
		ua             string
		provUser       string
		accounts       []acct
		reload, reboot []string // NOTIFY events it re-syncs on without, with a reboot
		ignored        []string
	}{
		{vendor: Polycom, mac: "0004f2000001",
			files: map[string]string{"0004f2000001.cfg": "locked_master.golden", "0004f2000001-hotdesk.cfg": "locked_device.golden"},
			boot:  []string{"0004f2000001.cfg", "0004f2000001-hotdesk.cfg"}, resync: []string{"0004f2000001.cfg", "0004f2000001-hotdesk.cfg"},
			ua:       "FileTransport PolycomVVX-VVX_400-UA/6.4.0.0000 (SN:0004f2000001) Type/Application",
			provUser: "0004f2000001",
			accounts: []acct{{"1", "dev0004f2000001", "dev0004f2000001", "devsecret", "hq.example", "prov.example"}},
			reload:   []string{"check-sync"}, reboot: []string{"check-sync;reboot=true"}, ignored: []string{"resync", "reboot"}},
		{vendor: Polycom, mac: "0004f2000001",
			files: map[string]string{"0004f2000001.cfg": "keys_master.golden", "0004f2000001-hotdesk.cfg": "keys_device.golden"},
			boot:  []string{"0004f2000001.cfg", "0004f2000001-hotdesk.cfg"}, resync: []string{"0004f2000001.cfg", "0004f2000001-hotdesk.cfg"},
			ua:       "FileTransport PolycomVVX-VVX_400-UA/6.4.0.0000 (SN:0004f2000001) Type/Application",
			provUser: "0004f2000001",
			accounts: []acct{{"1", "201", "s-alice-7", "sesssecret", "hq.example", "prov.example"},
				{"2", "+4930123456", "s-alice-7", "sesssecret", "hq.example", "prov.example"}},
			reload: []string{"check-sync"}, reboot: []string{"check-sync;reboot=true"}},
		{vendor: Yealink, mac: "001565000001",
			files: map[string]string{"y000000000000.cfg": "yealink/locked_master.golden", "001565000001.cfg": "yealink/locked_device.golden"},
			boot:  []string{"y000000000000.cfg", "001565000001.cfg"}, resync: []string{"y000000000000.cfg", "001565000001.cfg"},
			ua:       "Yealink SIP-T46U 108.86.0.20 00:15:65:00:00:01",
			provUser: "001565000001",
			// Registered through the outbound proxy; the AOR's host is the SIP server.
			accounts: []acct{{"1", "dev0004f2000001", "dev0004f2000001", "devsecret", "hq.example", "prov.example"}},
			// The renderer sets sip.notify_reboot_enable = 0.
			reload: []string{"check-sync"}, reboot: []string{"check-sync;reboot=true"}, ignored: []string{"resync"}},
		{vendor: Yealink, mac: "001565000001",
			files: map[string]string{"y000000000000.cfg": "yealink/keys_master.golden", "001565000001.cfg": "yealink/keys_device.golden"},
			boot:  []string{"y000000000000.cfg", "001565000001.cfg"}, resync: []string{"y000000000000.cfg", "001565000001.cfg"},
			ua:       "Yealink SIP-T46U 108.86.0.20 00:15:65:00:00:01",
			provUser: "001565000001",
			accounts: []acct{{"1", "201", "s-alice-7", "sesssecret", "hq.example", "prov.example"},
				{"2", "+4930123456", "s-alice-7", "sesssecret", "hq.example", "prov.example"}},
			reload: []string{"check-sync"}, reboot: []string{"check-sync;reboot=true"}},
		{vendor: Cisco, mac: "00562b000001",
			// Power-on asks for /$PSN.xml; the re-sync follows Profile_Rule.
			files: map[string]string{"8851.xml": "cisco/locked_device.golden", "00562b000001.xml": "cisco/locked_device.golden"},
			boot:  []string{"8851.xml"}, resync: []string{"00562b000001.xml"},
			ua:       "Cisco/CP-8851-3PCC-11.3.7 (00562b000001)(FCH2101ABCD)",
			provUser: "00562b000001",
			accounts: []acct{{"1", "dev0004f2000001", "dev0004f2000001", "devsecret", "hq.example", "prov.example"}},
			reload:   []string{"resync"}, reboot: []string{"reboot"}, ignored: []string{"check-sync"}},
		{vendor: Cisco, mac: "00562b000001",
			files: map[string]string{"8851.xml": "cisco/keys_device.golden", "00562b000001.xml": "cisco/keys_device.golden"},
			boot:  []string{"8851.xml"}, resync: []string{"00562b000001.xml"},
			ua:       "Cisco/CP-8851-3PCC-11.3.7 (00562b000001)(FCH2101ABCD)",
			provUser: "00562b000001",
			accounts: []acct{{"1", "201", "s-alice-7", "sesssecret", "hq.example", "prov.example"},
				{"2", "+4930123456", "s-alice-7", "sesssecret", "hq.example", "prov.example"}},
			reload: []string{"resync"}, reboot: []string{"reboot"}},
	}
	for _, tc := range tests {
		t.Run(tc.vendor.Name+"/"+tc.files[tc.boot[len(tc.boot)-1]], func(t *testing.T) {
			g := newGoldenServer(t, tc.files, tc.provUser, "provsecret")
			h := New(Config{MAC: tc.mac, Vendor: tc.vendor, ProvBase: g.URL, HTTPTimeout: 5 * time.Second})
			defer h.Close()
			ctx := context.Background()
			p, err := h.Boot(ctx)
			if err != nil {
				t.Fatalf("boot: %v (asked %v)", err, g.asked)
			}
			if !slices.Equal(g.asked, tc.boot) {
				t.Fatalf("boot asked for %v, want %v", g.asked, tc.boot)
			}
			for _, ua := range g.uas {
				if ua != tc.ua {
					t.Fatalf("User-Agent %q, want %q", ua, tc.ua)
				}
			}
			if u, pw := tc.vendor.provCreds(p); u != tc.provUser || pw != "provsecret" {
				t.Fatalf("provisioning credentials %q/%q", u, pw)
			}
			var got []acct
			for _, a := range tc.vendor.accounts(p) {
				got = append(got, acct{string(rune('0' + a.Line)), a.User(), a.UserID, a.Password, a.Domain, a.Server})
			}
			if !slices.Equal(got, tc.accounts) {
				t.Fatalf("accounts %v, want %v", got, tc.accounts)
			}
			if sa, server, err := h.Account(1); err != nil || sa.User != tc.accounts[0].user || server != tc.accounts[0].server+":5060" {
				t.Fatalf("Account(1) = %+v %s %v", sa, server, err)
			}
			// A re-sync asks again, answering challenges with the credentials.
			n := len(g.asked)
			g.mu.Lock()
			g.auth = true
			g.mu.Unlock()
			if _, err := h.Boot(ctx); err != nil {
				t.Fatalf("re-sync: %v", err)
			}
			if !slices.Equal(g.asked[n:], tc.resync) {
				t.Fatalf("re-sync asked for %v, want %v", g.asked[n:], tc.resync)
			}
			for _, ev := range tc.reload {
				if reboot, ok := tc.vendor.onEvent(ev, p); !ok || reboot {
					t.Errorf("NOTIFY %s: reboot %v, acted on %v; want a reload", ev, reboot, ok)
				}
			}
			for _, ev := range tc.reboot {
				if reboot, ok := tc.vendor.onEvent(ev, p); !ok || !reboot {
					t.Errorf("NOTIFY %s: reboot %v, acted on %v; want a reboot", ev, reboot, ok)
				}
			}
			for _, ev := range tc.ignored {
				if _, ok := tc.vendor.onEvent(ev, p); ok {
					t.Errorf("NOTIFY %s acted on", ev)
				}
			}
			if tc.vendor.NotifyEvent != tc.reload[0] {
				t.Errorf("NotifyEvent %q", tc.vendor.NotifyEvent)
			}
		})
	}
}

// Without the settings the renderer adds, each vendor's factory default
// holds: a Yealink reboots on every check-sync, a Cisco ignores resync.
func TestVendorFactoryDefaults(t *testing.T) {
	if reboot, ok := Yealink.onEvent("check-sync", polycfg.Params{}); !ok || !reboot {
		t.Error("Yealink default: check-sync must reboot")
	}
	if _, ok := Yealink.onEvent("check-sync", polycfg.Params{"sip.notify_reboot_enable": "2"}); ok {
		t.Error("Yealink sip.notify_reboot_enable=2 ignores check-sync")
	}
	if _, ok := Cisco.onEvent("resync", polycfg.Params{}); ok {
		t.Error("Cisco without Resync_From_SIP ignores resync")
	}
	if reboot, _ := Polycom.onEvent("check-sync", polycfg.Params{"voipprot.sip.specialevent.checksync.alwaysreboot": "1"}); !reboot {
		t.Error("Polycom alwaysReboot=1 reboots")
	}
}

func TestVendorParsers(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func([]byte) (polycfg.Params, error)
		body string
		err  string
	}{
		{"yealink no header", ParseYealink, "a = b\n", "no #!version"},
		{"yealink not key=value", ParseYealink, "#!version:1.0.0.1\njunk\n", "not key = value"},
		{"cisco wrong root", ParseFlatProfile, "<device><a>1</a></device>", "root element device"},
		{"cisco truncated", ParseFlatProfile, "<flat-profile><a>1</a>", "EOF"},
		{"cisco empty", ParseFlatProfile, "", "no <flat-profile>"},
	} {
		if _, err := tc.f([]byte(tc.body)); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
		}
	}
	if u, user, pw := ProfileRule("[--uid a --pwd b]http://x/$MA.xml", "00562b000001"); u != "http://x/00562b000001.xml" || user != "a" || pw != "b" {
		t.Errorf("ProfileRule = %q %q %q", u, user, pw)
	}
	if u, user, _ := ProfileRule("/$PSN.xml", "m"); u != "/$PSN.xml" || user != "" {
		t.Errorf("ProfileRule without options = %q %q", u, user)
	}
	for _, tc := range [][3]string{{"x {mac:} y", "001565000001", "x 00:15:65:00:00:01 y"},
		{"{MAC}/{mac}", "000413abcdef", "000413ABCDEF/000413abcdef"}} {
		if got := expandMAC(tc[0], tc[1]); got != tc[2] {
			t.Errorf("expandMAC(%q) = %q, want %q", tc[0], got, tc[2])
		}
	}
	if v, ok := VendorByName("CISCO"); !ok || v != Cisco {
		t.Error("VendorByName(CISCO)")
	}
	if _, ok := VendorByName("nokia"); ok {
		t.Error("VendorByName(nokia)")
	}
}
