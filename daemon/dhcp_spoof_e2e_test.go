package daemon

import (
	"context"
	"maps"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"hotdesk/prov"
)

// TestSpoofedDHCPNeitherMapsAddressesNorEndsLogins is a host on the LAN
// sending DHCP packets with a victim phone's MAC to the daemon's DHCP
// socket: nothing in them is authenticated.
//   - INFORM with its own address as ciaddr used to tie that address to the
//     victim's MAC, so its TFTP fetches counted as the victim's;
//   - DISCOVERs used to be a reboot hint: the phone's next registration
//     with new Call-IDs (a phone may re-register so after a network blip)
//     then ended the user's login as a reboot.
func TestSpoofedDHCPNeitherMapsAddressesNorEndsLogins(t *testing.T) {
	e := newRelockEnvWith(t, func(c *Config) {
		c.explicit["dhcp.mode"] = true
		c.DHCP.Mode = "server"
		c.DHCP.Listen = "127.0.0.1:0"
		c.DHCP.ServerID = "127.0.0.1"
		c.DHCP.Subnet = "127.0.0.0/8"
		c.DHCP.Range = []string{"127.0.0.100", "127.0.0.120"}
		c.DHCP.LeaseTime = time.Hour
	})
	e.login(prov.DoorAPI)
	sess := e.assertLoggedIn(e.phone, phoneA, "1001")

	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	server, err := net.ResolveUDPAddr("udp4", e.addrs.DHCP)
	if err != nil {
		t.Fatal(err)
	}
	victim, _ := net.ParseMAC("00:04:f2:00:00:01") // phone A
	attacker := netip.MustParseAddr("127.0.0.2")
	send := func(typ dhcpv4.MessageType, mods ...dhcpv4.Modifier) {
		t.Helper()
		m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(victim), dhcpv4.WithMessageType(typ)}, mods...)...)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteTo(m.ToBytes(), server); err != nil {
			t.Fatal(err)
		}
	}
	packets := func(typ string) float64 {
		var n float64
		mfs, _ := e.a.reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() != "hotdesk_dhcp_packets_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if labelValue(m.GetLabel(), "type") == typ && labelValue(m.GetLabel(), "result") != "dropped" {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	waitPackets := func(typ string, n float64) {
		t.Helper()
		if eventually(func() bool { return packets(typ) >= n }) {
			return
		}
		t.Fatalf("the DHCP server did not take %v %s packets (has %v)", n, typ, packets(typ))
	}

	// INFORM: answered with options, but the attacker's address stays
	// nobody's (the server observes a packet before it counts it).
	send(dhcpv4.MessageTypeInform, dhcpv4.WithClientIP(attacker.AsSlice()))
	waitPackets("inform", 1)
	if mac, ok := e.a.book.AddrToMAC(attacker); ok {
		t.Errorf("an INFORM tied %s to %s", attacker, mac)
	}

	// DISCOVERs, then the phone registers its line again with a new Call-ID
	// (no boot-file fetch: it did not reboot).
	const discovers = 5
	for range discovers {
		send(dhcpv4.MessageTypeDiscover)
	}
	waitPackets("discover", discovers)
	e.phone.mu.Lock()
	lines := maps.Clone(e.phone.lines)
	e.phone.mu.Unlock()
	for user, l := range lines {
		l.callID = newToken() + "@" + phoneA
		if code := e.phone.register(l, 600); code != 200 {
			t.Fatalf("re-REGISTER %s = %d", user, code)
		}
		e.phone.mu.Lock()
		e.phone.lines[user] = l
		e.phone.mu.Unlock()
	}
	e.assertLoggedIn(e.phone, phoneA, "1001")
	got, err := e.a.store.GetSession(context.Background(), sess.ID)
	if err != nil || !got.Active() {
		t.Fatalf("spoofed DISCOVERs ended the login: active=%v reason=%q err=%v", got.Active(), got.EndReason, err)
	}
	if s, err := e.a.store.DeviceSignals(context.Background(), e.dev.ID); err == nil && !s.BootAt.IsZero() {
		t.Errorf("a DISCOVER was taken as a boot (BootAt %v)", s.BootAt)
	}
}
