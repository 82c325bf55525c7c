// Package vmtest is a test RTP peer for voicemail: it offers PCMU with
// telephone-event, sends frames and RFC 4733 digits, and collects what it
// receives, so tests compare audio end to end.
package vmtest

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// Peer is one call's RTP side.
type Peer struct {
	conn   *net.UDPConn
	remote netip.AddrPort
	seq    uint16
	ts     uint32
	evTS   uint32

	mu    sync.Mutex
	audio [][]byte
	more  chan struct{}
	done  chan struct{}
}

// NewPeer listens for RTP on loopback; Close stops it.
func NewPeer() (*Peer, error) { return NewPeerAt(net.IPv4(127, 0, 0, 1)) }

// NewPeerAt is NewPeer on another loopback address (127.0.0.2: another
// host than the caller's).
func NewPeerAt(ip net.IP) (*Peer, error) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	p := &Peer{conn: c, seq: 100, ts: 16000, more: make(chan struct{}, 1), done: make(chan struct{})}
	go p.read()
	return p, nil
}

func (p *Peer) read() {
	defer close(p.done)
	buf := make([]byte, 1500)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		var pk rtp.Packet
		if pk.Unmarshal(buf[:n]) != nil || pk.PayloadType != 0 {
			continue
		}
		p.mu.Lock()
		p.audio = append(p.audio, append([]byte(nil), pk.Payload...))
		p.mu.Unlock()
		select {
		case p.more <- struct{}{}:
		default:
		}
	}
}

// Aim makes p send where other sends: a stranger aiming at other's call.
func (p *Peer) Aim(other *Peer) { p.remote = other.remote }

// Close stops the peer.
func (p *Peer) Close() { p.conn.Close(); <-p.done }

// Offer is the SDP offer: PCMU and telephone-event 101.
func (p *Peer) Offer() []byte {
	port := p.conn.LocalAddr().(*net.UDPAddr).Port
	return []byte(fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=audio %d RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n", port))
}

// Answer reads the answer's address and port.
func (p *Peer) Answer(sdp []byte) error {
	var ip, port string
	for _, l := range strings.Split(string(sdp), "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "c=IN IP4 "); ok {
			ip = v
		}
		if v, ok := strings.CutPrefix(l, "m=audio "); ok {
			port = strings.Fields(v)[0]
		}
	}
	n, err := strconv.Atoi(port)
	a, err2 := netip.ParseAddr(ip)
	if err != nil || err2 != nil {
		return errors.New("vmtest: answer without address/port")
	}
	p.remote = netip.AddrPortFrom(a, uint16(n))
	return nil
}

// Send sends PCMU payloads as consecutive 20 ms frames, unpaced (loopback
// keeps them in order; the recipient places them by timestamp).
func (p *Peer) Send(frames [][]byte) error {
	for _, f := range frames {
		if err := p.write(0, f, len(f)); err != nil {
			return err
		}
	}
	return nil
}

func (p *Peer) write(pt uint8, payload []byte, samples int) error {
	pk := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, SequenceNumber: p.seq, Timestamp: p.ts, SSRC: 0x1234},
		Payload: payload}
	if pt != 0 {
		pk.Timestamp = p.evTS
	}
	p.seq++
	p.ts += uint32(samples)
	b, err := pk.Marshal()
	if err != nil {
		return err
	}
	_, err = p.conn.WriteToUDPAddrPort(b, p.remote)
	return err
}

// Digit sends an RFC 4733 telephone-event: three updates and the three
// end packets, all with the event's timestamp.
func (p *Peer) Digit(d byte) error {
	ev := strings.IndexByte("0123456789*#", d)
	if ev < 0 {
		return fmt.Errorf("vmtest: digit %q", d)
	}
	p.evTS = p.ts
	for i := range 6 {
		flags := byte(10) // volume
		if i >= 3 {
			flags |= 0x80
		}
		dur := uint16((i + 1) * 160)
		if err := p.write(101, []byte{byte(ev), flags, byte(dur >> 8), byte(dur)}, 0); err != nil {
			return err
		}
	}
	p.ts += 6 * 160
	return nil
}

// Received waits until at least n audio payloads arrived (or timeout) and
// returns them all.
func (p *Peer) Received(n int, timeout time.Duration) [][]byte {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		got := p.audio
		p.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-p.more:
		case <-deadline.C:
			return got
		}
	}
}

// Reset forgets what was received.
func (p *Peer) Reset() {
	p.mu.Lock()
	p.audio = nil
	p.mu.Unlock()
}

// Ramp is n samples of a deterministic test signal.
func Ramp(n, seed int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(((i*37+seed*101)%2000)*8 - 8000)
	}
	return out
}
