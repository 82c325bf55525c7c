package daemon

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// TestVendorPhonesThroughDHCP boots a phone of each vendor besides Polycom
// (which TestPlugAndPlayThroughNetns covers) out of its box: a real DHCP
// exchange — Debian's dhclient in a network namespace, sending that
// vendor's option 60, with the daemon as the LAN's DHCP server on the
// other end of a veth pair — gives it an address and option 66, the
// daemon's provisioning URL. The phone fetches its vendor's files from
// that URL, registers its locked profile, is logged in and out through the
// API and relocked, each by a re-sync without a reboot.
func TestVendorPhonesThroughDHCP(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIPPING vendor DHCP test: it needs root to create network namespaces (make test runs as root)")
	}
	dhclient, err := exec.LookPath("dhclient")
	if err != nil {
		t.Fatal("dhclient not found: install isc-dhcp-client (make test does)")
	}
	for i, tc := range []struct {
		vendor *phoneVendor
		mac    string
		class  string // the option 60 its firmware sends
	}{
		{yealinkPhone, "001565000021", "yealink"},
		{ciscoPhone, "00562b000021", "Cisco Systems, Inc. IP Phone CP-8851-3PCC"},
		{snomPhone, "000413000021", "snomD785"},
		{gsPhone, "000b82000021", "Grandstream GRP2614 dslforum.org"},
		{fanvilPhone, "0c383e000021", "Fanvil X4"},
	} {
		t.Run(tc.vendor.name, func(t *testing.T) {
			l := newDHCPLink(t, i, tc.mac)
			var lease map[string]string
			e := newPhoneEnvPrep(t, tc.vendor, tc.mac, func(cfg *Config) {
				d, err := Parse([]byte(`data_dir: /nonexistent
dhcp:
  mode: server
  interface: ` + l.srvIf + `
  subnet: ` + l.prefix + `.0/24
  range: [` + l.prefix + `.100, ` + l.prefix + `.120]
  router: ` + l.serverIP + `
  lease_time: 1h
`))
				if err != nil {
					t.Fatal(err)
				}
				cfg.DHCP = d.DHCP
				cfg.explicit["dhcp.mode"] = true // the demo turns an implicit one off
				// The provisioning URL option 66 carries is the daemon's own
				// listener on the LAN side.
				cfg.Provisioning.HTTPListen = l.serverIP + ":0"
			}, func(e *relockEnv) {
				// The site covers the LAN the daemon serves by DHCP.
				e.updateSite(func(s *prov.Site) { s.Subnets = append(s.Subnets, l.prefix+".0/24") })
				lease = l.dhclient(t, dhclient, tc.class)
				want := "http://" + e.addrs.HTTP + "/"
				if lease["new_tftp_server_name"] != want {
					t.Fatalf("option 66 = %q, want the daemon's provisioning URL %q", lease["new_tftp_server_name"], want)
				}
				ip, err := netip.ParseAddr(lease["new_ip_address"])
				if err != nil || !strings.HasPrefix(ip.String(), l.prefix+".") {
					t.Fatalf("leased %q, want an address of %s.0/24", lease["new_ip_address"], l.prefix)
				}
				// The daemon tells the phone's vendor from the lease's option 60.
				class, ok := e.a.book.AddrToVendorClass(ip)
				if !ok || class != tc.class || files.VendorFromClass(class) != tc.vendor.name {
					t.Fatalf("lease %s: option 60 %q (%v), want %q naming %s", ip, class, ok, tc.class, tc.vendor.name)
				}
				// The phone boots from what DHCP gave it.
				e.phone.provBase = strings.TrimSuffix(lease["new_tftp_server_name"], "/")
			})
			p := e.phone
			if e.dev.Vendor != tc.vendor.name {
				t.Fatalf("enrolled as %q, want %s", e.dev.Vendor, tc.vendor.name)
			}
			waitDeployed(t, e.a, tc.mac) // the registrar's event, on its own goroutine
			e.login(prov.DoorAPI)
			sess := e.assertLoggedIn(p, tc.mac, "1001")
			mark := p.mark()
			if code, _ := e.api("DELETE", "/sessions/"+sess.ID, ""); code/100 != 2 {
				t.Fatalf("DELETE session = %d", code)
			}
			p.waitResync(mark)
			e.assertLocked(p, tc.mac)
			if p.rebootCount() != 0 {
				t.Fatalf("the phone rebooted %d times; every re-sync should have reloaded it", p.rebootCount())
			}
		})
	}
}

// dhcpLink is a veth pair: the server end in this namespace (where the
// daemon under test runs, on a test-network address), the client end, with
// the phone's MAC, in a namespace of its own.
type dhcpLink struct {
	cliNS, srvIf, cliIf string
	prefix, serverIP    string
	dir                 string
}

func newDHCPLink(t *testing.T, n int, mac string) *dhcpLink {
	t.Helper()
	id := fmt.Sprintf("%d%d", os.Getpid()%10000, n)
	// 198.18.0.0/15 is set aside for network tests (RFC 2544).
	l := &dhcpLink{cliNS: "hdv-" + id + "-c", srvIf: "hdv" + id + "s", cliIf: "hdv" + id + "c",
		prefix: fmt.Sprintf("198.18.%d", (os.Getpid()*7+n)%250+1), dir: t.TempDir()}
	l.serverIP = l.prefix + ".1"
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sh("ip", "netns", "add", l.cliNS)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", l.cliNS).Run() })
	sh("ip", "link", "add", l.srvIf, "type", "veth", "peer", "name", l.cliIf)
	// Deleting the server end deletes the pair (the namespace's deletion
	// would too).
	t.Cleanup(func() { _ = exec.Command("ip", "link", "delete", l.srvIf).Run() })
	sh("ip", "link", "set", l.cliIf, "netns", l.cliNS)
	hw := make([]string, 0, 6)
	for i := 0; i < 12; i += 2 {
		hw = append(hw, mac[i:i+2])
	}
	sh("ip", "-n", l.cliNS, "link", "set", "dev", l.cliIf, "address", strings.Join(hw, ":"))
	sh("ip", "addr", "add", l.serverIP+"/24", "dev", l.srvIf)
	sh("ip", "link", "set", l.srvIf, "up")
	sh("ip", "-n", l.cliNS, "link", "set", "lo", "up")
	sh("ip", "-n", l.cliNS, "link", "set", l.cliIf, "up")
	return l
}

// dhclient runs one DORA in the client namespace with option 60 class and
// returns what the lease gave (dhclient's script environment).
func (l *dhcpLink) dhclient(t *testing.T, bin, class string) map[string]string {
	t.Helper()
	// Written aside and renamed: the file is polled and must never be
	// read half written.
	script := "#!/bin/sh\nenv > \"" + l.dir + "/.env.$reason\" && mv \"" + l.dir + "/.env.$reason\" \"" + l.dir + "/env.$reason\"\n"
	if err := os.WriteFile(filepath.Join(l.dir, "script.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("send vendor-class-identifier %q;\nrequest subnet-mask, routers, tftp-server-name;\n", class)
	if err := os.WriteFile(filepath.Join(l.dir, "dhclient.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	client := exec.Command("ip", "netns", "exec", l.cliNS, bin, "-4", "-d", "-1",
		"-cf", filepath.Join(l.dir, "dhclient.conf"), "-lf", filepath.Join(l.dir, "leases"),
		"-pf", filepath.Join(l.dir, "pid"), "-sf", filepath.Join(l.dir, "script.sh"), l.cliIf)
	out := &strings.Builder{}
	client.Stdout, client.Stderr = out, out
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Process.Kill(); _ = client.Wait() })
	env := map[string]string{}
	for deadline := time.Now().Add(25 * time.Second); ; {
		if b, err := os.ReadFile(filepath.Join(l.dir, "env.BOUND")); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, "="); ok {
					env[k] = strings.Trim(v, "'")
				}
			}
			return env
		}
		if time.Now().After(deadline) {
			t.Fatalf("dhclient never bound:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
