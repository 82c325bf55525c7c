package tftp

import (
	"net"
	"testing"
	"time"
)

func TestInterfaceMTUCached(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	s := NewServer(nil, nil)
	if mtu, ok := s.interfaceMTU(lo.Index); !ok || mtu != lo.MTU {
		t.Fatalf("interfaceMTU(lo) = %d, %v; want %d", mtu, ok, lo.MTU)
	}
	// A fresh entry is served from the cache, without a lookup.
	s.mtus.Store(lo.Index, mtuEntry{mtu: 1234, at: time.Now()})
	if mtu, _ := s.interfaceMTU(lo.Index); mtu != 1234 {
		t.Fatalf("fresh entry: got %d, want the cached 1234", mtu)
	}
	// A stale one is looked up again.
	s.mtus.Store(lo.Index, mtuEntry{mtu: 1234, at: time.Now().Add(-mtuTTL)})
	if mtu, _ := s.interfaceMTU(lo.Index); mtu != lo.MTU {
		t.Fatalf("stale entry: got %d, want %d", mtu, lo.MTU)
	}
	if _, ok := s.interfaceMTU(1 << 30); ok {
		t.Fatal("unknown index: want ok=false")
	}
}
