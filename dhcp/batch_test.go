package dhcp

import (
	"context"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// serveInform runs an inform-mode server with one reader on a loopback
// socket until the test ends; it returns the socket's address and a client.
func serveInform(t testing.TB) (net.Addr, *net.UDPConn, func()) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Mode = ModeInform
	cfg.Listen = "127.0.0.1:0"
	cfg.Workers = 1
	conn, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, Deps{BootServer: "http://127.0.0.1/prov/"})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	_ = cli.SetReadBuffer(1 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	start := func() { go func() { done <- srv.Serve(ctx, conn) }() }
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v after cancel", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after cancel")
		}
		conn.Close()
		cli.Close()
	})
	return conn.LocalAddr(), cli, start
}

// TestBurstAnswered: requests that queued up before the server read are
// each answered, once, to their own transaction.
func TestBurstAnswered(t *testing.T) {
	addr, cli, start := serveInform(t)
	const n = 53
	want := map[dhcpv4.TransactionID]bool{}
	for i := range n {
		m := msgOf(t, dhcpv4.MessageTypeInform, mac(i+1), prl(66))
		want[m.TransactionID] = true
		if _, err := cli.WriteTo(m.ToBytes(), addr); err != nil {
			t.Fatal(err)
		}
	}
	start()
	buf := make([]byte, 1500)
	for i := range n {
		_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
		k, _, err := cli.ReadFrom(buf)
		if err != nil {
			t.Fatalf("reply %d of %d: %v", i+1, n, err)
		}
		ack, err := dhcpv4.FromBytes(buf[:k])
		if err != nil || ack.MessageType() != dhcpv4.MessageTypeAck || optStr(ack, 66) != "http://127.0.0.1/prov/" {
			t.Fatalf("reply %v, %v", ack, err)
		}
		if !want[ack.TransactionID] {
			t.Fatalf("reply %d: transaction %v unknown or answered twice", i+1, ack.TransactionID)
		}
		delete(want, ack.TransactionID)
	}
}

// BenchmarkInformBurst: 16 INFORMs sent at once and their 16 ACKs, through
// the real socket; per op (16 exchanges) allocations and time.
func BenchmarkInformBurst(b *testing.B) {
	addr, cli, start := serveInform(b)
	start()
	pkts := make([][]byte, 16)
	for i := range pkts {
		pkts[i] = msgOf(b, dhcpv4.MessageTypeInform, mac(i+1), prl(66)).ToBytes()
	}
	buf := make([]byte, 1500)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range pkts {
			if _, err := cli.WriteTo(p, addr); err != nil {
				b.Fatal(err)
			}
		}
		for range pkts {
			_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := cli.ReadFrom(buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkInformPaced offers INFORMs at 3,000/s, as perfdhcp does, and
// reports the process's CPU per exchange (cpu-µs/op, client included):
// at such rates packets rarely queue, so what counts is the cost of each
// wake-up, read and write, not throughput. (Reading with recvmmsg, 16 at a
// time, measured 3–5 % more here than one ReadFrom per packet: not kept.)
func BenchmarkInformPaced(b *testing.B) {
	addr, cli, start := serveInform(b)
	start()
	pkt := msgOf(b, dhcpv4.MessageTypeInform, mac(1), prl(66)).ToBytes()
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for range b.N {
			_ = cli.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := cli.ReadFrom(buf); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	cpu0 := processCPU(b)
	b.ResetTimer()
	tick := time.NewTicker(time.Second / 3000)
	defer tick.Stop()
	for range b.N {
		<-tick.C
		if _, err := cli.WriteTo(pkt, addr); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
