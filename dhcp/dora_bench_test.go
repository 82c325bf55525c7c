package dhcp

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkDORA: one relayed DISCOVER/OFFER and REQUEST/ACK per op, as
// perfdhcp sends them (giaddr set, option 55, 5,000 MACs in turn), through
// parse, allocation, the lease store and serialising the replies; no
// socket. allocs/op is the server's garbage per exchange.
func BenchmarkDORA(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Mode = ModeServer
	cfg.ServerID = "10.66.0.1"
	cfg.Subnet = "10.66.0.0/16"
	cfg.Range = []string{"10.66.1.0", "10.66.255.254"}
	cfg.LeaseTime = time.Hour
	cfg.BootServer = "10.66.0.1"
	srv, err := New(cfg, Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := srv.loadLeases(ctx); err != nil {
		b.Fatal(err)
	}
	const macs = 5000
	relay := dhcpv4.WithGatewayIP(net.IPv4(10, 66, 0, 2))
	opts := prl(1, 28, 2, 3, 15, 6, 12)
	disc := make([][]byte, macs)
	for i := range disc {
		disc[i] = discoverMsg(b, mac(i+1), relay, opts).ToBytes()
	}
	// The REQUESTs name the address each MAC is offered on a first pass.
	req := make([][]byte, macs)
	peer := netip.MustParseAddrPort("10.66.0.2:67")
	sc := newScratch()
	for i := range disc {
		raw, _, _ := srv.handle(ctx, disc[i], peer, sc)
		offer, err := dhcpv4.FromBytes(raw)
		if err != nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
			b.Fatalf("no offer for %d: %v", i, offer)
		}
		req[i] = requestMsg(b, mac(i+1), offer.YourIPAddr.String(), cfg.ServerID, relay, opts).ToBytes()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		for _, pkt := range [][]byte{disc[i], req[i]} {
			if reply, _, _ := srv.handle(ctx, pkt, peer, sc); reply == nil {
				b.Fatal("no reply")
			}
		}
		i = (i + 1) % macs
	}
}
