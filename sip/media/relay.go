package media

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"

	"hotdesk/sip/media/g711"
	"hotdesk/sip/media/latch"
)

// A Relay anchors a call between two plain-RTP endpoints (desk phones, the
// trunk) on the bridge so it can be recorded: one socket faces the caller,
// one the callee, and each packet is forwarded unchanged to the other side.
// The proxy rewrites every description of the call (offer, answer,
// re-INVITE) with Rewrite, so each side sends to the bridge. G.711 packets
// also reach the Tap (A-law as µ-law, as the Tap takes it); other payload
// types are relayed but not recorded.
type Relay struct {
	b              *Bridge
	caller, callee *net.UDPConn // the sockets facing each side
	peerCaller     latch.Latch
	peerCallee     latch.Latch
	// tap gets the caller's audio as FromBrowser (the WAV's left channel)
	// and the callee's as FromPhone.
	tap Tap
	// FromCaller and ToCaller count relayed packets.
	FromCaller, ToCaller atomic.Int64

	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{}
}

// NewRelay anchors a call between plain endpoints: callerOffer is the
// caller's SDP; it returns the offer for the callee.
func (b *Bridge) NewRelay(callerOffer string, c CallInfo) (*Relay, string, error) {
	from, err := sdpPeer(callerOffer)
	if err != nil {
		b.m.started.WithLabelValues("failed").Inc()
		return nil, "", err
	}
	b.mu.Lock()
	if b.closed || len(b.sessions)+len(b.relays)+b.pending >= b.cfg.MaxSessions {
		b.mu.Unlock()
		b.m.started.WithLabelValues("full").Inc()
		return nil, "", ErrFull
	}
	r := &Relay{b: b, done: make(chan struct{})}
	for _, conn := range []**net.UDPConn{&r.caller, &r.callee} {
		if *conn, err = net.ListenUDP("udp", &net.UDPAddr{IP: b.ip}); err != nil {
			b.mu.Unlock()
			r.closeSockets()
			b.m.started.WithLabelValues("failed").Inc()
			return nil, "", fmt.Errorf("media: rtp socket: %w", err)
		}
	}
	b.relays[r] = struct{}{}
	b.mu.Unlock()
	b.m.sessions.Inc()
	b.m.started.WithLabelValues("ok").Inc()
	if b.cfg.Tap != nil {
		r.tap = b.cfg.Tap(c)
	}
	r.peerCaller.Describe(from)
	r.wg.Add(2)
	go func() { defer r.wg.Done(); r.loop(r.caller, r.callee, &r.peerCaller, &r.peerCallee, true) }()
	go func() { defer r.wg.Done(); r.loop(r.callee, r.caller, &r.peerCallee, &r.peerCaller, false) }()
	return r, rewriteAddr(callerOffer, r.callee.LocalAddr().(*net.UDPAddr)), nil
}

// Rewrite takes a description one side sent (fromCaller: the caller's)
// and returns it for the other: the sender's address is learnt, and the
// address the other side is told is the bridge's socket facing it. A hold
// address (0.0.0.0, port 0) is kept as it is.
func (r *Relay) Rewrite(fromCaller bool, body string) (string, error) {
	a, err := sdpPeer(body)
	if err != nil {
		return "", err
	}
	peer, out := &r.peerCallee, r.caller
	if fromCaller {
		peer, out = &r.peerCaller, r.callee
	}
	if a.Addr().IsUnspecified() || a.Port() == 0 {
		return body, nil
	}
	peer.Describe(a)
	return rewriteAddr(body, out.LocalAddr().(*net.UDPAddr)), nil
}

// loop forwards what in receives to the other side's peer through out.
// The sender's address is learnt from its packets (latch.Latch: symmetric RTP behind
// NAT). Like the bridge's loops it allocates nothing per packet
// (TestRelayForwardAllocs).
func (r *Relay) loop(in, out *net.UDPConn, from, to *latch.Latch, fromCaller bool) {
	buf, ulaw := make([]byte, 1500), make([]byte, 1500)
	var h rtp.Header
	for {
		n, src, err := in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		if !from.Heard(src) {
			r.b.m.foreign.Inc()
			continue // a stranger may not take the call's audio over (latch.Latch)
		}
		dst := to.Get()
		if dst == nil {
			continue
		}
		if r.tap != nil {
			if off, err := h.Unmarshal(buf[:n]); err == nil && off <= n {
				payload := buf[off:n]
				switch h.PayloadType {
				case g711.PCMA:
					g711.AlawToUlaw(ulaw, payload)
					r.tapAudio(fromCaller, ulaw[:len(payload)])
				case g711.PCMU:
					r.tapAudio(fromCaller, payload)
				}
			}
		}
		if fromCaller {
			r.FromCaller.Add(1)
		} else {
			r.ToCaller.Add(1)
		}
		if _, err := out.WriteToUDPAddrPort(buf[:n], *dst); err != nil {
			continue
		}
		r.b.m.relayed.Inc()
	}
}

func (r *Relay) tapAudio(fromCaller bool, payload []byte) {
	if fromCaller {
		r.tap.FromBrowser(payload)
	} else {
		r.tap.FromPhone(payload)
	}
}

func (r *Relay) closeSockets() {
	for _, c := range []*net.UDPConn{r.caller, r.callee} {
		if c != nil {
			c.Close()
		}
	}
}

// Close ends the relay and waits for its loops. Safe to call twice.
func (r *Relay) Close() {
	r.closeOnce.Do(func() {
		close(r.done)
		r.closeSockets()
		r.wg.Wait()
		if r.tap != nil {
			r.tap.Close()
		}
		r.b.mu.Lock()
		delete(r.b.relays, r)
		r.b.mu.Unlock()
		r.b.m.sessions.Dec()
	})
}

// Done is closed when the relay is.
func (r *Relay) Done() <-chan struct{} { return r.done }

// CallerAddr and CalleeAddr are the bridge's sockets facing each side.
func (r *Relay) CallerAddr() *net.UDPAddr { return r.caller.LocalAddr().(*net.UDPAddr) }

// CalleeAddr is the bridge's socket facing the callee.
func (r *Relay) CalleeAddr() *net.UDPAddr { return r.callee.LocalAddr().(*net.UDPAddr) }

// sdpPeer is the audio address of a plain SDP, whatever its codecs.
func sdpPeer(body string) (netip.AddrPort, error) {
	a, _, err := audioStream(body)
	return a, err
}

// rewriteAddr points an SDP's connection lines and its first audio port at
// a; RTCP attributes (a=rtcp) are dropped, as RTCP is not relayed.
func rewriteAddr(body string, a *net.UDPAddr) string {
	ipv := "IP4"
	if a.IP.To4() == nil {
		ipv = "IP6"
	}
	var out []string
	audio := false
	for _, l := range strings.Split(strings.ReplaceAll(body, "\r\n", "\n"), "\n") {
		switch {
		case l == "":
			continue
		case strings.HasPrefix(l, "c=IN "):
			l = "c=IN " + ipv + " " + a.IP.String()
		case strings.HasPrefix(l, "a=rtcp:"):
			continue
		case strings.HasPrefix(l, "m=audio ") && !audio:
			audio = true
			if f := strings.Fields(l); len(f) >= 2 {
				f[1] = strconv.Itoa(a.Port)
				l = strings.Join(f, " ")
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\r\n") + "\r\n"
}
