package main

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"hotdesk/cmd/hotdesk-load/internal/dhcpc/dhcptest"
	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// dhcpStormArgs are stormArgs without -target, plus the DHCP step against
// a responder on loopback: the shared socket is bound to lo, and the pool
// (127.78.0.0/16) is local there, as the bench's local route makes it.
func dhcpStormArgs(f *fakeDaemon, server string, extra ...string) []string {
	args := stormArgs(f, "-n", "8", "-dhcp", "lo", "-dhcp-listen", "127.0.0.1:0", "-dhcp-server", server,
		"-dhcp-rto", "100ms", "-dhcp-tries", "3")
	i := slices.Index(args, "-target")
	args = slices.Delete(args, i, i+2)
	return append(args, extra...)
}

func serveDHCP(t *testing.T, r *dhcptest.Responder) string {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.ServerID = netip.MustParseAddr("127.0.0.1")
	if !r.Pool.IsValid() {
		r.Pool = netip.MustParseAddr("127.78.0.10")
	}
	r.Serve(t, conn)
	return conn.LocalAddr().String()
}

func TestStormDHCP(t *testing.T) {
	const n = 8
	dead := "http://127.0.0.1:1/"
	tests := []struct {
		name       string
		opts       func(prov string) map[uint8]string
		edit       func(req, resp *dhcpv4.DHCPv4) []byte
		pool       string
		extra      func(f *fakeDaemon) []string
		wantErrors map[string]int
		wantFigs   map[string]float64
	}{
		{name: "boot server from option 66", opts: func(p string) map[uint8]string { return map[uint8]string{66: p} },
			wantFigs: map[string]float64{"dhcp_leases": n, "dhcp_boot_server_option66": n, "devices_registered": n}},
		{name: "option 160 wins over 66", opts: func(p string) map[uint8]string { return map[uint8]string{66: dead, 160: p} },
			wantFigs: map[string]float64{"dhcp_boot_server_option160": n, "devices_registered": n}},
		{name: "bare host in option 66 means http", opts: func(p string) map[uint8]string {
			return map[uint8]string{66: strings.TrimPrefix(p, "http://")}
		}, wantFigs: map[string]float64{"devices_registered": n}},
		{name: "lost offers are retransmitted", opts: func(p string) map[uint8]string { return map[uint8]string{66: p} },
			edit: dhcptest.DropFirst(dhcpv4.MessageTypeOffer), wantFigs: map[string]float64{"dhcp_handsets_retransmitting": n, "devices_registered": n}},
		{name: "no boot server", opts: func(string) map[uint8]string { return nil },
			wantErrors: map[string]int{"dhcp_no_option66": n}},
		{name: "no boot server but -target", opts: func(string) map[uint8]string { return nil },
			extra:    func(f *fakeDaemon) []string { return []string{"-target", f.prov.URL} },
			wantFigs: map[string]float64{"dhcp_leases_without_boot_server": n, "devices_registered": n}},
		{name: "tftp boot server", opts: func(string) map[uint8]string { return map[uint8]string{66: "tftp://127.0.0.1/"} },
			wantErrors: map[string]int{"dhcp_boot_server_unusable": n}},
		{name: "nak", opts: func(p string) map[uint8]string { return map[uint8]string{66: p} },
			edit: func(_, resp *dhcpv4.DHCPv4) []byte {
				if resp.MessageType() == dhcpv4.MessageTypeAck {
					resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeNak))
				}
				return resp.ToBytes()
			}, wantErrors: map[string]int{"dhcp_nak": n}},
		{name: "silent server", opts: func(string) map[uint8]string { return nil },
			edit:       func(_, _ *dhcpv4.DHCPv4) []byte { return nil },
			wantErrors: map[string]int{"dhcp_timeout_offer": n}},
		{name: "leased address not local", opts: func(p string) map[uint8]string { return map[uint8]string{66: p} },
			pool: "192.0.2.10", wantErrors: map[string]int{"dhcp_addr_unusable": n}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeDaemon(t)
			r := &dhcptest.Responder{Options: tc.opts(f.prov.URL), Edit: tc.edit}
			if tc.pool != "" {
				r.Pool = netip.MustParseAddr(tc.pool)
			}
			js := filepath.Join(t.TempDir(), "s.json")
			args := dhcpStormArgs(f, serveDHCP(t, r), "-json", js)
			if tc.extra != nil {
				args = append(args, tc.extra(f)...)
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"storm"}, args...), &out, &errb)
			s := readSummary(t, js)
			t.Log("\n" + out.String() + errb.String())
			if want := map[bool]int{true: 0, false: 1}[len(tc.wantErrors) == 0]; code != want {
				t.Fatalf("exit %d, want %d", code, want)
			}
			if len(tc.wantErrors) > 0 && !maps.Equal(s.Errors, tc.wantErrors) {
				t.Errorf("errors %v, want %v", s.Errors, tc.wantErrors)
			}
			for k, v := range tc.wantFigs {
				if s.Counters[k] != v {
					t.Errorf("figure %s = %v, want %v", k, s.Counters[k], v)
				}
			}
			if len(tc.wantErrors) == 0 {
				checkDHCPSteps(t, s, f, n)
			}
		})
	}
}

func readSummary(t *testing.T, path string) stats.Summary {
	t.Helper()
	var s stats.Summary
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkDHCPSteps: every handset has a dhcp sample and registered from the
// address it leased, not from -src-cidr's range.
func checkDHCPSteps(t *testing.T, s stats.Summary, f *fakeDaemon, n int) {
	t.Helper()
	counts := map[string]int{}
	for _, st := range s.Steps {
		counts[st.Name] = st.Count
	}
	for _, step := range []string{"dhcp", "dhcp_offer", "dhcp_ack", "boot_fetch", "device_register"} {
		if counts[step] != n {
			t.Errorf("step %s count %d, want %d (%v)", step, counts[step], n, counts)
		}
	}
	if s.Marks["all_leased"] <= 0 {
		t.Errorf("marks %v", s.Marks)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for user, b := range f.bindings {
		if !strings.HasPrefix(b.target, "127.78.0.") {
			t.Errorf("%s registered from %s, not a leased address", user, b.target)
		}
	}
}

func TestDHCPConfigValidate(t *testing.T) {
	ok := dhcpConfig{iface: "eth0", listen: "0.0.0.0:68", server: "255.255.255.255:67", rto: time.Second, tries: 4}
	tests := []struct {
		name string
		edit func(c *dhcpConfig)
		ok   bool
	}{
		{"defaults", func(*dhcpConfig) {}, true},
		{"no tries", func(c *dhcpConfig) { c.tries = 0 }, false},
		{"too many tries", func(c *dhcpConfig) { c.tries = 11 }, false},
		{"no rto", func(c *dhcpConfig) { c.rto = 0 }, false},
		{"huge rto", func(c *dhcpConfig) { c.rto = time.Minute }, false},
		{"ipv6 server", func(c *dhcpConfig) { c.server = "[::1]:67" }, false},
		{"bad listen", func(c *dhcpConfig) { c.listen = "nowhere" }, false},
		{"off: nothing checked", func(c *dhcpConfig) { c.iface, c.tries = "", 0 }, true},
	}
	for _, tc := range tests {
		c := ok
		tc.edit(&c)
		if err := c.validate(); (err == nil) != tc.ok {
			t.Errorf("%s: validate = %v", tc.name, err)
		}
	}
}
