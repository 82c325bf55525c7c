package dhcp

import (
	"context"
	"math/rand/v2"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// checkSpace compares the free index with the allocator's own rule for
// every address of pool 0's range.
func checkSpace(t *testing.T, a *allocator, now time.Time) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reclaim(0, now)
	sp := a.spaces[0]
	var busy uint32
	for ip := sp.lo; ip < sp.lo+sp.size; ip++ {
		i := ip - sp.lo
		bit := sp.busy[i/64]&(1<<(i%64)) != 0
		if want := !a.free(ip, "ff:ff:ff:ff:ff:fe", now); bit != want {
			t.Fatalf("%s: index says busy=%v, allocator %v", u32Addr(ip), bit, want)
		}
		if bit {
			busy++
		}
	}
	if busy != sp.nbusy {
		t.Fatalf("nbusy = %d, counted %d", sp.nbusy, busy)
	}
}

// The free index agrees with the allocator through random offers, commits,
// releases, declines, reservations and expiries, and every offer it makes
// is an address nobody else holds.
func TestSpaceMatchesAllocator(t *testing.T) {
	cfg := baseConfig()
	cfg.Range = []string{"10.0.0.10", "10.0.0.139"} // 130: not a multiple of 64
	cfg.Reservations = []Reservation{{MAC: "00:04:f2:ff:00:01", Address: "10.0.0.20"}, {MAC: "00:04:f2:ff:00:02", Address: "10.0.0.200"}}
	h := newHarness(t, cfg, nil)
	a := h.srv.alloc
	rng := rand.New(rand.NewPCG(1, 2))
	now := h.clk.now()
	holders := map[string]netip.Addr{}
	for step := range 4000 {
		m := mac(rng.IntN(200)).String()
		switch op := rng.IntN(10); {
		case op < 5:
			ip, _, err := a.offer(m, 0, netip.Addr{}, now, time.Duration(1+rng.IntN(60))*time.Second)
			if err == nil {
				for other, held := range holders {
					if held == ip && other != m {
						a.mu.Lock()
						e := a.byIP[addrU32(ip)]
						a.mu.Unlock()
						if e != nil && e.mac == other && e.expires.After(now) {
							t.Fatalf("step %d: %s offered to %s while %s holds it", step, ip, m, other)
						}
					}
				}
				holders[m] = ip
			}
		case op < 7:
			if ip, ok := holders[m]; ok {
				a.commit(m, 0, ip, "", "", now)
			}
		case op < 8:
			if ip, ok := holders[m]; ok {
				a.release(m, ip)
				delete(holders, m)
			}
		case op < 9:
			if ip, ok := holders[m]; ok {
				a.decline(m, ip, now, 30*time.Second)
				delete(holders, m)
			}
		default:
			now = now.Add(time.Duration(rng.IntN(40)) * time.Second)
		}
		checkSpace(t, a, now)
	}
}

// A host inventing MACs exhausts the pool over the real socket; every
// further DISCOVER is answered "exhausted" without probing the range
// (before, each one scanned every address under the allocator's lock).
func TestExhaustedPoolCostsNoScan(t *testing.T) {
	cfg := baseConfig()
	cfg.ServerID = "127.0.0.1"
	cfg.Subnet = "127.0.0.0/8"
	cfg.Range = []string{"127.1.0.0", "127.1.3.255"} // 1024 addresses
	cfg.Router = ""
	cfg.DNS, cfg.NTP = nil, nil
	cfg.Listen = "127.0.0.1:0"
	cfg.Workers = 2
	conn, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := newHarness(t, cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.srv.Serve(ctx, conn) }()
	defer func() {
		cancel()
		<-done
	}()
	cli, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	send := func(from, n int) {
		for i := range n {
			if _, err := cli.WriteTo(discoverMsg(t, mac(from+i)).ToBytes(), conn.LocalAddr()); err != nil {
				t.Fatal(err)
			}
		}
	}
	wait := func(result string, n float64) {
		t.Helper()
		for range 3000 {
			if h.counter("discover", result) >= n {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("discover %s = %v, want %v", result, h.counter("discover", result), n)
	}
	// In batches, so the socket's queue never overflows on a slow machine.
	for b := range 8 {
		send(b*128, 128)
		wait("offer", float64((b+1)*128))
	}
	sp := h.srv.alloc.spaces[0]
	h.srv.alloc.mu.Lock()
	probes := sp.probes
	h.srv.alloc.mu.Unlock()
	const more = 500
	send(100_000, more)
	wait("exhausted", more)
	h.srv.alloc.mu.Lock()
	extra := sp.probes - probes
	h.srv.alloc.mu.Unlock()
	if extra != 0 {
		t.Errorf("%d DISCOVERs to an exhausted pool read %d words of its index, want 0", more, extra)
	}
	checkSpace(t, h.srv.alloc, h.clk.now())
	// When the offers lapse, addresses come back without a scan per request.
	h.clk.add(cfg.OfferHold + time.Second)
	if offer, _ := h.send(discoverMsg(t, mac(200_000))); offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatal("no offer after the offer hold lapsed")
	}
}

// BenchmarkOfferExhausted is one DISCOVER from a new MAC to a full /16
// range: before the free index it probed all 65,536 addresses.
func BenchmarkOfferExhausted(b *testing.B) {
	benchFull(b, 0, func(a *allocator, now time.Time, i int) {
		if _, _, err := a.offer(mac(1<<20+i).String(), 0, netip.Addr{}, now, time.Minute); err != ErrExhausted {
			b.Fatal(err)
		}
	})
}

// BenchmarkOfferLastFree is a DISCOVER to a /16 range with one free address
// (freed by a RELEASE each time): the worst case of the word scan.
func BenchmarkOfferLastFree(b *testing.B) {
	benchFull(b, 1, func(a *allocator, now time.Time, i int) {
		m := mac(1<<20 + i).String()
		ip, _, err := a.offer(m, 0, netip.Addr{}, now, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		a.release(m, ip)
	})
}

// benchFull fills a /16 range but for free addresses, then runs op.
func benchFull(b *testing.B, free int, op func(*allocator, time.Time, int)) {
	cfg := baseConfig()
	cfg.Subnet = "10.0.0.0/8"
	cfg.Range = []string{"10.1.0.0", "10.1.255.255"}
	s, err := compile(cfg, "")
	if err != nil {
		b.Fatal(err)
	}
	a := newAllocator(s.pools, s.resv)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 65536 - free {
		if _, _, err := a.offer(mac(i).String(), 0, netip.Addr{}, now, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		op(a, now, i)
	}
}
