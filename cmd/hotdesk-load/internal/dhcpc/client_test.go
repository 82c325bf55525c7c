package dhcpc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"hotdesk/cmd/hotdesk-load/internal/dhcpc/dhcptest"
)

// newLoopback serves r on loopback and returns a client talking to it.
func newLoopback(t *testing.T, r *dhcptest.Responder, cfg Config) *Client {
	t.Helper()
	srv, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if !r.ServerID.IsValid() {
		r.ServerID = netip.MustParseAddr("127.0.0.1")
	}
	if !r.Pool.IsValid() {
		r.Pool = netip.MustParseAddr("127.78.0.10")
	}
	r.Serve(t, srv)
	conn, err := ListenInterface("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Conn, cfg.Server = conn, srv.LocalAddr()
	if cfg.RTO == 0 {
		cfg.RTO, cfg.Tries = 100*time.Millisecond, 3
	}
	c := New(cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

// onType applies f to replies of type typ.
func onType(typ dhcpv4.MessageType, f func(resp *dhcpv4.DHCPv4) []byte) func(req, resp *dhcpv4.DHCPv4) []byte {
	return func(_, resp *dhcpv4.DHCPv4) []byte {
		if resp.MessageType() == typ {
			return f(resp)
		}
		return resp.ToBytes()
	}
}

func TestAcquire(t *testing.T) {
	boot := map[uint8]string{66: "http://127.0.0.1:8080/"}
	tests := []struct {
		name     string
		edit     func(req, resp *dhcpv4.DHCPv4) []byte
		wantKind string
		check    func(t *testing.T, l Lease, st Stats)
	}{
		{"ok", nil, "", func(t *testing.T, l Lease, st Stats) {
			if l.Addr != netip.MustParseAddr("127.78.0.10") || l.BootServer != boot[66] || l.BootOption != 66 ||
				l.LeaseTime != time.Hour || l.ServerID != netip.MustParseAddr("127.0.0.1") {
				t.Errorf("lease %+v", l)
			}
			// A loaded test host may answer after the first timeout.
			if st.Sent != 2+int64(l.Retransmits) || st.Retransmits != int64(l.Retransmits) || st.Replies < 2 {
				t.Errorf("stats %+v, lease retransmits %d", st, l.Retransmits)
			}
		}},
		{"lost offer is retransmitted", dhcptest.DropFirst(dhcpv4.MessageTypeOffer), "", func(t *testing.T, l Lease, st Stats) {
			if l.Retransmits < 1 || st.Sent != 2+int64(l.Retransmits) {
				t.Errorf("retransmits %d, stats %+v", l.Retransmits, st)
			}
		}},
		{"lost ack is retransmitted", dhcptest.DropFirst(dhcpv4.MessageTypeAck), "", func(t *testing.T, l Lease, st Stats) {
			if l.Retransmits < 1 {
				t.Errorf("retransmits %d", l.Retransmits)
			}
		}},
		{"no offer", onType(dhcpv4.MessageTypeOffer, func(*dhcpv4.DHCPv4) []byte { return nil }), "timeout_offer", nil},
		{"no ack", onType(dhcpv4.MessageTypeAck, func(*dhcpv4.DHCPv4) []byte { return nil }), "timeout_ack", nil},
		{"nak", onType(dhcpv4.MessageTypeAck, func(r *dhcpv4.DHCPv4) []byte {
			r.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeNak))
			return r.ToBytes()
		}), "nak", nil},
		{"nak from another server is ignored", onType(dhcpv4.MessageTypeAck, func(r *dhcpv4.DHCPv4) []byte {
			r.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeNak))
			r.UpdateOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 9, 9, 9)))
			return r.ToBytes()
		}), "timeout_ack", nil},
		{"offer without option 54", onType(dhcpv4.MessageTypeOffer, func(r *dhcpv4.DHCPv4) []byte {
			r.Options.Del(dhcpv4.OptionServerIdentifier)
			return r.ToBytes()
		}), "bad_offer", nil},
		{"offer without yiaddr", onType(dhcpv4.MessageTypeOffer, func(r *dhcpv4.DHCPv4) []byte {
			r.YourIPAddr = net.IPv4zero
			return r.ToBytes()
		}), "bad_offer", nil},
		{"ack of another address", onType(dhcpv4.MessageTypeAck, func(r *dhcpv4.DHCPv4) []byte {
			r.YourIPAddr = net.IPv4(127, 78, 9, 9)
			return r.ToBytes()
		}), "bad_ack", nil},
		{"offer for another chaddr is not ours", onType(dhcpv4.MessageTypeOffer, func(r *dhcpv4.DHCPv4) []byte {
			r.ClientHWAddr = net.HardwareAddr{2, 0, 0, 0, 0, 9}
			return r.ToBytes()
		}), "timeout_offer", func(t *testing.T, _ Lease, st Stats) {
			if st.WrongHW < 3 {
				t.Errorf("stats %+v", st)
			}
		}},
		{"truncated offer", onType(dhcpv4.MessageTypeOffer, func(r *dhcpv4.DHCPv4) []byte {
			return r.ToBytes()[:241] // the first option's code, no length
		}), "malformed_reply", func(t *testing.T, _ Lease, st Stats) {
			if st.Malformed != 1 {
				t.Errorf("stats %+v", st)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &dhcptest.Responder{Options: boot, Edit: tc.edit}
			c := newLoopback(t, r, Config{VendorClass: "Polycom-VVX400"})
			l, err := c.Acquire(context.Background(), testMAC)
			var de *Error
			switch {
			case tc.wantKind == "" && err != nil:
				t.Fatalf("Acquire: %v", err)
			case tc.wantKind != "" && (!errors.As(err, &de) || de.Kind != tc.wantKind):
				t.Fatalf("Acquire err = %v, want kind %s", err, tc.wantKind)
			}
			if tc.check != nil {
				tc.check(t, l, c.Stats())
			}
		})
	}
}

// Many handsets on one socket each get their own lease: replies are told
// apart by xid (and chaddr), none is lost or crossed.
func TestAcquireDemux(t *testing.T) {
	const n = 300
	r := &dhcptest.Responder{Options: map[uint8]string{160: "http://p/"}, Edit: dhcptest.DropFirst(dhcpv4.MessageTypeOffer)}
	// Tries enough for a starved machine (the race detector beside other
	// work): what is asserted is that no reply is lost or crossed.
	c := newLoopback(t, r, Config{RTO: 300 * time.Millisecond, Tries: 6})
	var wg sync.WaitGroup
	var mu sync.Mutex
	owner := map[netip.Addr]string{}
	var fails atomic.Int64
	for i := range n {
		wg.Go(func() {
			hw := net.HardwareAddr{0, 4, 0xf3, 0, byte(i >> 8), byte(i)}
			l, err := c.Acquire(context.Background(), hw)
			if err != nil || l.Ack.HWAddr().String() != hw.String() || l.BootOption != 160 {
				fails.Add(1)
				t.Errorf("%v: %+v %v", hw, l, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if o, dup := owner[l.Addr]; dup {
				t.Errorf("%v leased to %s and %v", l.Addr, o, hw)
			}
			owner[l.Addr] = hw.String()
		})
	}
	wg.Wait()
	st := c.Stats()
	t.Logf("stats %+v", st)
	// Every first OFFER is dropped, so every handset retransmits at least
	// once; a burst may also overflow the responder's socket and cost more.
	if len(owner) != n || st.Replies < 2*n || st.Retransmits < n || st.WrongHW != 0 || st.Malformed != 0 {
		t.Errorf("%d leases, %d failures, stats %+v", len(owner), fails.Load(), st)
	}
}

func TestAcquireContextAndClose(t *testing.T) {
	r := &dhcptest.Responder{Edit: func(_, _ *dhcpv4.DHCPv4) []byte { return nil }}
	c := newLoopback(t, r, Config{RTO: time.Second, Tries: 5})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Acquire(ctx, testMAC); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deadline: %v", err)
	}
	errc := make(chan error, 1)
	go func() { _, err := c.Acquire(context.Background(), testMAC); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	c.Close()
	var de *Error
	if err := <-errc; !errors.As(err, &de) || de.Kind != "socket" {
		t.Errorf("after Close: %v", err)
	}
	if _, err := c.Acquire(context.Background(), net.HardwareAddr{1, 2}); !errors.As(err, &de) || de.Kind != "bad_mac" {
		t.Errorf("short MAC: %v", err)
	}
}

// TestDispatch feeds datagrams straight to the demultiplexer.
func TestDispatch(t *testing.T) {
	c := New(Config{Conn: newNopConn()})
	defer c.Close()
	xid, w := c.register(testMAC)
	defer c.unregister(xid)
	msg := func(op byte, x uint32, hw net.HardwareAddr) []byte {
		m := &Message{Op: op, HType: 1, HLen: 6, XID: x, Options: Options{OptMsgType: {byte(Offer)}}}
		copy(m.CHAddr[:], hw)
		return m.Marshal()
	}
	tests := []struct {
		name string
		in   []byte
		want Stats
		got  int // replies queued for the waiter
	}{
		{"short", []byte{1, 2, 3}, Stats{Malformed: 1}, 0},
		{"unknown xid", msg(OpReply, xid+1, testMAC), Stats{Unmatched: 1}, 0},
		{"unknown xid, garbage", append(msg(OpReply, xid+1, testMAC)[:240], 53), Stats{Malformed: 1}, 0},
		{"request echoed", msg(OpRequest, xid, testMAC), Stats{Unmatched: 1}, 0},
		{"other chaddr", msg(OpReply, xid, net.HardwareAddr{2, 0, 0, 0, 0, 1}), Stats{WrongHW: 1}, 0},
		{"ours", msg(OpReply, xid, testMAC), Stats{Replies: 1}, 1},
		{"ours, garbage", append(msg(OpReply, xid, testMAC)[:240], 53), Stats{Malformed: 1, Replies: 1}, 1},
	}
	for _, tc := range tests {
		before := c.Stats()
		c.dispatch(tc.in)
		after := c.Stats()
		d := Stats{Replies: after.Replies - before.Replies, Unmatched: after.Unmatched - before.Unmatched,
			WrongHW: after.WrongHW - before.WrongHW, Malformed: after.Malformed - before.Malformed}
		if d != tc.want || len(w.ch) != tc.got {
			t.Errorf("%s: stats delta %+v queued %d; want %+v, %d", tc.name, d, len(w.ch), tc.want, tc.got)
		}
		for len(w.ch) > 0 {
			<-w.ch
		}
	}
	for range cap(w.ch) + 1 {
		c.dispatch(msg(OpReply, xid, testMAC))
	}
	if st := c.Stats(); st.Overflow != 1 {
		t.Errorf("overflow %d, want 1", st.Overflow)
	}
}

func TestJitter(t *testing.T) {
	for _, d := range []time.Duration{0, time.Nanosecond, time.Second} {
		for range 100 {
			if j := jitter(d); j < d*3/4 || j > d*5/4 {
				t.Fatalf("jitter(%v) = %v", d, j)
			}
		}
	}
}
