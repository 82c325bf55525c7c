package dhcp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"reflect"
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

// FuzzParseInto: parseInto reads any datagram as dhcpv4.FromBytes does —
// both fail, or both give the same header fields and options — also into a
// message that held another packet before.
func FuzzParseInto(f *testing.F) {
	long := bytes.Repeat([]byte{'x'}, 300) // split over two option 43s, concatenated on parsing
	relayed := discoverMsg(f, mac(5), dhcpv4.WithGatewayIP(net.ParseIP("10.0.0.254")), vendor("Yealink SIP-T46U"),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 2, 'a', 'b'})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, long)))
	relayed.ServerHostName, relayed.BootFileName = "sname", "boot/file"
	for _, p := range [][]byte{relayed.ToBytes(), requestMsg(f, mac(1), "10.0.0.100", testServerID).ToBytes()} {
		f.Add(p)
		f.Add(p[:250]) // no End option
	}
	f.Add([]byte{1, 1, 6, 0})
	noEnd := msgOf(f, dhcpv4.MessageTypeInform, mac(2)).ToBytes()
	f.Add(append(noEnd[:240:240], 53, 1, 8, 12, 0, 12, 3, 'a', 'b', 'c', 0, 0, 255)) // empty first, then a value
	f.Add(append(noEnd[:240:240], 53, 1, 8, 60))                                     // a code without its length
	prev := relayed.ToBytes()
	f.Fuzz(func(t *testing.T, pkt []byte) {
		want, wantErr := dhcpv4.FromBytes(pkt)
		var got dhcpv4.DHCPv4
		if err := parseInto(prev, &got); err != nil {
			t.Fatal(err)
		}
		gotErr := parseInto(pkt, &got)
		if (gotErr != nil) != (wantErr != nil) {
			t.Fatalf("parseInto error %v, FromBytes error %v", gotErr, wantErr)
		}
		if wantErr != nil {
			return
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("parseInto\n%#v\nFromBytes\n%#v", &got, want)
		}
	})
}
