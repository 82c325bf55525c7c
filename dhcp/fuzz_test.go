package dhcp

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// FuzzHandle feeds arbitrary datagrams to the packet handler of a server with
// vendor classes and reservations: it must never panic, and every reply must
// be a well-formed BOOTREPLY that fits in one Ethernet frame.
func FuzzHandle(f *testing.F) {
	seeds := []*dhcpv4.DHCPv4{
		discoverMsg(f, mac(1), vendor("Polycom-VVX400"), prl(1, 3, 66, 160)),
		requestMsg(f, mac(1), "10.0.0.100", testServerID),
		requestMsg(f, mac(2), "10.0.0.20", ""),
		msgOf(f, dhcpv4.MessageTypeInform, mac(3), dhcpv4.WithClientIP(net.ParseIP("10.0.0.50")), prl(66, 150, 43)),
		msgOf(f, dhcpv4.MessageTypeDecline, mac(1), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(testServerID))),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP("10.0.0.100")))),
		msgOf(f, dhcpv4.MessageTypeRelease, mac(1), dhcpv4.WithClientIP(net.ParseIP("10.0.0.100")),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(testServerID)))),
		discoverMsg(f, mac(4), dhcpv4.WithGatewayIP(net.ParseIP("10.0.0.254")), dhcpv4.WithoutOption(dhcpv4.OptionParameterRequestList)),
	}
	for _, s := range seeds {
		f.Add(s.ToBytes())
	}
	f.Add([]byte{1, 1, 6, 0})
	cfg := baseConfig()
	cfg.Range = []string{"10.0.0.100", "10.0.0.103"}
	cfg.Reservations = []Reservation{{MAC: "00:04:f2:00:00:02", Address: "10.0.0.20", Hostname: "r"}}
	cfg.VendorClasses = []VendorClass{{Match: "Polycom-*", Options: map[int]string{160: "http://x/"}, Option43: map[int]string{1: "a"}}}
	cfg.Option150 = []string{"10.0.0.5"}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		h := newHarness(t, cfg, nil)
		for range 2 { // twice: the second pass sees the state the first left
			raw, dst, _ := h.srv.handle(context.Background(), pkt, netip.MustParseAddrPort("0.0.0.0:68"), newScratch())
			if raw == nil {
				continue
			}
			if len(raw) > maxPacket || !dst.IsValid() {
				t.Fatalf("reply of %d bytes to %v", len(raw), dst)
			}
			back, err := dhcpv4.FromBytes(raw)
			if err != nil || back.OpCode != dhcpv4.OpcodeBootReply {
				t.Fatalf("reply does not parse as a BOOTREPLY: %v", err)
			}
		}
	})
}
