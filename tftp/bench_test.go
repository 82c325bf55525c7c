package tftp

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkTFTPRead is one whole read of a 5 KiB file over loopback, as a
// phone fetches its config: RRQ, eleven 512-byte DATA blocks and their
// ACKs, through the real server and pin/tftp. The client allocates
// nothing, so allocs/op is the server's per transfer.
func BenchmarkTFTPRead(b *testing.B) {
	fs := newMemFS(map[string][]byte{"phone5k.cfg": pattern(5120, 1)})
	ts := startServer(b, testConfig(), fs, nil)
	srv := netip.MustParseAddrPort(ts.addr)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rrq := append([]byte{0, 1}, "phone5k.cfg\x00octet\x00"...)
	buf := make([]byte, 1500)
	ack := []byte{0, 4, 0, 0}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.WriteToUDPAddrPort(rrq, srv); err != nil {
			b.Fatal(err)
		}
		got := 0
		// Bounded: 5,120 bytes are 11 blocks; a lost one fails the run.
		for range 12 {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil || n < 4 || buf[1] != 3 {
				b.Fatalf("block after %d bytes: %v (%d bytes, op %d)", got, err, n, buf[1])
			}
			got += n - 4
			copy(ack[2:], buf[2:4])
			if _, err := c.WriteToUDPAddrPort(ack, from); err != nil {
				b.Fatal(err)
			}
			if n < 516 {
				break
			}
		}
		if got != 5120 {
			b.Fatalf("got %d bytes", got)
		}
	}
}
