package latch

import (
	"net/netip"
	"testing"
)

// TestLatch: the rules a stream's far end follows, step by step.
func TestLatch(t *testing.T) {
	type step struct {
		from string
		ok   bool
		want string // the address after it
	}
	for _, tc := range []struct {
		name      string
		described string
		steps     []step
	}{
		{"phone behind NAT", "10.0.0.5:4000", []step{
			{"192.0.2.7:31000", true, "192.0.2.7:31000"},    // first packet: the NAT's address is learnt
			{"192.0.2.7:31002", true, "192.0.2.7:31002"},    // the NAT's new port: same host
			{"198.51.100.9:5000", false, "192.0.2.7:31002"}, // a stranger
			{"192.0.2.7:31002", true, "192.0.2.7:31002"},
		}},
		{"phone on the LAN, a stranger first", "192.0.2.10:4000", []step{
			{"198.51.100.9:5000", true, "198.51.100.9:5000"}, // before the phone speaks: taken for a NAT
			{"192.0.2.10:4000", true, "192.0.2.10:4000"},     // the described host wins, and pins it
			{"198.51.100.9:5000", false, "192.0.2.10:4000"},
			{"192.0.2.10:4002", true, "192.0.2.10:4002"}, // the phone's own new port
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var l Latch
			if l.Get() != nil {
				t.Fatal("a new latch has an address")
			}
			l.Describe(netip.MustParseAddrPort(tc.described))
			for i, s := range tc.steps {
				if ok := l.Heard(netip.MustParseAddrPort(s.from)); ok != s.ok || l.Get().String() != s.want {
					t.Fatalf("step %d, from %s: heard %v, address %s; want %v, %s", i, s.from, ok, l.Get(), s.ok, s.want)
				}
			}
		})
	}
	var l Latch
	l.Describe(netip.MustParseAddrPort("10.0.0.5:4000"))
	l.Heard(netip.MustParseAddrPort("192.0.2.7:31000"))
	l.Describe(netip.MustParseAddrPort("203.0.113.4:6000")) // a re-INVITE: learning starts again
	if !l.Heard(netip.MustParseAddrPort("198.51.100.9:5000")) || l.Get().String() != "198.51.100.9:5000" {
		t.Fatalf("after a new description: %s", l.Get())
	}
	l.DescribeIfUnset(netip.MustParseAddrPort("10.0.0.9:1"))
	if l.Get().String() != "198.51.100.9:5000" {
		t.Fatalf("DescribeIfUnset replaced a learnt address: %s", l.Get())
	}
}
