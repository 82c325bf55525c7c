package tftp

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// phoneReader fetches a 5 KiB file over loopback as a phone does: RRQ,
// eleven 512-byte DATA blocks, an ACK each, allocating nothing itself, so
// a process-wide allocation count is the server's per transfer.
type phoneReader struct {
	c        *net.UDPConn
	srv      netip.AddrPort
	rrq, ack []byte
	buf      []byte
}

func newPhoneReader(tb testing.TB) *phoneReader {
	fs := newMemFS(map[string][]byte{"phone5k.cfg": pattern(5120, 1)})
	ts := startServer(tb, testConfig(), fs, nil)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &phoneReader{c: c, srv: netip.MustParseAddrPort(ts.addr),
		rrq: append([]byte{0, 1}, "phone5k.cfg\x00octet\x00"...), ack: []byte{0, 4, 0, 0}, buf: make([]byte, 1500)}
}

func (p *phoneReader) read(tb testing.TB) {
	if _, err := p.c.WriteToUDPAddrPort(p.rrq, p.srv); err != nil {
		tb.Fatal(err)
	}
	got := 0
	// Bounded: 5,120 bytes are 11 blocks; a lost one fails the run.
	for range 12 {
		p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, from, err := p.c.ReadFromUDPAddrPort(p.buf)
		if err != nil || n < 4 || p.buf[1] != 3 {
			tb.Fatalf("block after %d bytes: %v (%d bytes, op %d)", got, err, n, p.buf[1])
		}
		got += n - 4
		copy(p.ack[2:], p.buf[2:4])
		if _, err := p.c.WriteToUDPAddrPort(p.ack, from); err != nil {
			tb.Fatal(err)
		}
		if n < 516 {
			break
		}
	}
	if got != 5120 {
		tb.Fatalf("got %d bytes", got)
	}
}

// BenchmarkTFTPRead is one whole read of a 5 KiB file through the real
// server and pin/tftp: allocs/op is the server's per transfer.
func BenchmarkTFTPRead(b *testing.B) {
	p := newPhoneReader(b)
	b.ReportAllocs()
	for b.Loop() {
		p.read(b)
	}
}

// TestReadAllocations: a 5 KiB read costs the server a bounded number of
// allocations. The fork reads ACKs in place and keeps the peer's address
// per transfer, and a transfer logs nothing unless debug lines are on (84
// allocations per transfer before, 46 after); a regression to a boxed
// packet or a *net.UDPAddr per datagram (eleven each) fails this.
func TestReadAllocations(t *testing.T) {
	p := newPhoneReader(t)
	p.read(t) // warm: pools, the MTU cache
	allocs := testing.AllocsPerRun(100, func() { p.read(t) })
	const budget = 55
	if allocs > budget && !raceEnabled {
		t.Fatalf("%.0f allocations per 5 KiB transfer, budget %d", allocs, budget)
	}
	t.Logf("%.0f allocations per 5 KiB transfer", allocs)
}
