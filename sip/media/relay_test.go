package media

import (
	"bytes"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotdesk/sip/media/g711"
)

// recTap keeps what it is given; got ticks once per payload.
type recTap struct {
	mu          sync.Mutex
	left, right [][]byte
	got, closed chan struct{}
}

func (r *recTap) add(to *[][]byte, p []byte) {
	r.mu.Lock()
	*to = append(*to, bytes.Clone(p))
	r.mu.Unlock()
	r.got <- struct{}{}
}
func (r *recTap) FromBrowser(p []byte) { r.add(&r.left, p) }
func (r *recTap) FromPhone(p []byte)   { r.add(&r.right, p) }
func (r *recTap) Close()               { close(r.closed) }

// TestRelay: a call between two plain endpoints anchored on the bridge:
// each side is told the bridge's socket facing it, packets go through
// unchanged both ways, the Tap gets the caller's audio left and the
// callee's A-law right as µ-law, and a hold address (0.0.0.0) is passed on
// as it is.
func TestRelay(t *testing.T) {
	tap := &recTap{got: make(chan struct{}, 100), closed: make(chan struct{})}
	b := newTestBridge(t, func(c CallInfo) Tap {
		if !c.Desk || c.Peer != "2002" {
			t.Errorf("tap asked for %+v", c)
		}
		return tap
	})
	caller, callerGot := phoneRTP(t)
	callee, _ := phoneRTP(t)
	r, offer, err := b.NewRelay(phoneSDP(caller, "0 8")+"a=rtcp:9\r\n", CallInfo{Desk: true, Peer: "2002"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "m=audio " + strconv.Itoa(r.CalleeAddr().Port) + " RTP/AVP 0 8"; !strings.Contains(offer, want) ||
		strings.Contains(offer, "a=rtcp") {
		t.Fatalf("callee's offer %q, want %q and no a=rtcp", offer, want)
	}
	answer, err := r.Rewrite(false, phoneSDP(callee, "8"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "m=audio " + strconv.Itoa(r.CallerAddr().Port) + " RTP/AVP 8"; !strings.Contains(answer, want) {
		t.Fatalf("caller's answer %q, want %q", answer, want)
	}
	hold := strings.Replace(phoneSDP(callee, "8"), "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0", 1)
	if got, err := r.Rewrite(false, hold); err != nil || got != hold {
		t.Fatalf("hold rewritten to %q, %v; want it as it is", got, err)
	}
	send := func(from *net.UDPConn, to *net.UDPAddr, pt uint8, fill byte) {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SSRC: 9}, Payload: bytes.Repeat([]byte{fill}, 160)}
		raw, _ := p.Marshal()
		if _, err := from.WriteToUDP(raw, to); err != nil {
			t.Fatal(err)
		}
	}
	// The callee's packets reach the caller (PCMU counted there: send
	// PCMU from the callee's side too) and the caller's the callee.
	for range 5 {
		send(callee, r.CalleeAddr(), 0, 0x11)
	}
	waitN(t, callerGot, 5, "callee to caller")
	send(callee, r.CalleeAddr(), g711.PCMA, 0x55)
	send(caller, r.CallerAddr(), 0, 0x22)
	waitN(t, tap.got, 7, "the tap")
	r.Close()
	<-tap.closed
	want := make([]byte, 160)
	g711.AlawToUlaw(want, bytes.Repeat([]byte{0x55}, 160))
	if !bytes.Equal(tap.left[0], bytes.Repeat([]byte{0x22}, 160)) || !bytes.Equal(tap.right[5], want) {
		t.Fatalf("tap left %x, right %x; want the caller's µ-law and the callee's A-law as µ-law", tap.left[0][:4], tap.right[5][:4])
	}
	if b.Open() != 0 {
		t.Fatalf("%d open after Close", b.Open())
	}
	// The five the caller got at least (the last two may meet the Close).
	if n := testutil.ToFloat64(b.m.relayed); n < 5 || n > 7 {
		t.Fatalf("hotdesk_media_packets_total{direction=relayed} %v, want 5..7", n)
	}
}

// TestRelayForwardAllocs: a recorded desk call's packets cross the relay
// without an allocation each (addresses as netip.AddrPort, buffers per
// loop), as the bridge's own loops do.
func TestRelayForwardAllocs(t *testing.T) {
	b := newTestBridge(t, nil)
	listen := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		// One deadline for the whole test: a packet the relay loses fails
		// the read instead of hanging it.
		if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	caller, callee := listen(), listen()
	r, _, err := b.NewRelay(phoneSDP(caller, "0"), CallInfo{Desk: true, Peer: "2002"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if _, err := r.Rewrite(false, phoneSDP(callee, "0")); err != nil {
		t.Fatal(err)
	}
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 9}, Payload: make([]byte, 160)}
	raw, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	toCaller, toCallee := r.CallerAddr().AddrPort(), r.CalleeAddr().AddrPort()
	buf := make([]byte, 1500)
	cross := func(from, to *net.UDPConn, via netip.AddrPort) func() {
		return func() {
			if _, err := from.WriteToUDPAddrPort(raw, via); err != nil {
				t.Fatal(err)
			}
			if n, _, err := to.ReadFromUDPAddrPort(buf); err != nil || n != len(raw) {
				t.Fatalf("relayed packet: %d bytes, %v", n, err)
			}
		}
	}
	for _, tc := range []struct {
		name string
		send func()
	}{
		{"caller to callee", cross(caller, callee, toCaller)},
		{"callee to caller", cross(callee, caller, toCallee)},
	} {
		for range 50 { // warm: the sender's address latched, pools filled
			tc.send()
		}
		if got := testing.AllocsPerRun(1000, tc.send); got > 0 {
			t.Errorf("%s: %.1f allocations per packet, want 0", tc.name, got)
		}
	}
}

// TestRelayIgnoresStrangers: once a recorded call's packets flow, another
// host sending to the relay's port is neither relayed nor answered: the
// callee's audio keeps going to the caller (a stranger cannot take the
// call over), and the drop is counted.
func TestRelayIgnoresStrangers(t *testing.T) {
	b := newTestBridge(t, nil)
	listen := func(ip net.IP) *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	caller, callee := listen(net.IPv4(127, 0, 0, 1)), listen(net.IPv4(127, 0, 0, 1))
	stranger := listen(net.IPv4(127, 0, 0, 2)) // another host on the network
	r, _, err := b.NewRelay(phoneSDP(caller, "0"), CallInfo{Desk: true, Peer: "2002"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	if _, err := r.Rewrite(false, phoneSDP(callee, "0")); err != nil {
		t.Fatal(err)
	}
	pkt := func(fill byte) []byte {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 9}, Payload: bytes.Repeat([]byte{fill}, 160)}
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	toCaller, toCallee := r.CallerAddr().AddrPort(), r.CalleeAddr().AddrPort()
	buf := make([]byte, 1500)
	recv := func(c *net.UDPConn) byte {
		t.Helper()
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil || n < 13 {
			t.Fatalf("no relayed packet: %d bytes, %v", n, err)
		}
		return buf[n-1]
	}
	send := func(from *net.UDPConn, to netip.AddrPort, fill byte) {
		t.Helper()
		if _, err := from.WriteToUDPAddrPort(pkt(fill), to); err != nil {
			t.Fatal(err)
		}
	}
	// The call flows: each side learnt.
	send(caller, toCaller, 0x01)
	if got := recv(callee); got != 0x01 {
		t.Fatalf("callee got %#x, want the caller's 0x01", got)
	}
	send(callee, toCallee, 0x02)
	if got := recv(caller); got != 0x02 {
		t.Fatalf("caller got %#x, want the callee's 0x02", got)
	}
	// A stranger sends to the socket facing the caller, then the callee
	// talks: the caller still hears it, the stranger does not, and the
	// callee never got the stranger's packet (the next one it reads is the
	// caller's).
	send(stranger, toCaller, 0x66)
	send(callee, toCallee, 0x03)
	if got := recv(caller); got != 0x03 {
		t.Fatalf("caller got %#x, want the callee's 0x03", got)
	}
	send(caller, toCaller, 0x04)
	if got := recv(callee); got != 0x04 {
		t.Fatalf("callee got %#x after a stranger's packet, want the caller's 0x04", got)
	}
	if err := stranger.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, _, err := stranger.ReadFromUDPAddrPort(buf); err == nil {
		t.Fatalf("the stranger received %d bytes of the call", n)
	}
	if got := testutil.ToFloat64(b.m.foreign); got != 1 {
		t.Fatalf("foreign packets counted %v, want 1", got)
	}
}
