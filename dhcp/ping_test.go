package dhcp

import (
	"context"
	"net/netip"
	"testing"
	"time"
)

// TestICMPPing pings through a veth pair of its own: the server end answers,
// an unused address on the link does not. No packet leaves the namespaces.
func TestICMPPing(t *testing.T) {
	requireRoot(t)
	p := newVethPair(t, true)
	var up, down bool
	must(t, inNetns(p.cliNS, func() error {
		ctx := context.Background()
		up = icmpPing(ctx, netip.MustParseAddr(p.serverIP), 2*time.Second)
		down = icmpPing(ctx, netip.MustParseAddr(p.prefix+".99"), 300*time.Millisecond)
		return nil
	}))
	if !up {
		t.Errorf("%s did not answer", p.serverIP)
	}
	if down {
		t.Errorf("%s.99 (nobody) answered", p.prefix)
	}
}
