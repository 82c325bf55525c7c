package media

import (
	"net/netip"
	"sync/atomic"
)

// latch is the far end of one plain RTP stream: where its packets go. A
// description (SDP) sets it; the first packet that arrives after that may
// move it anywhere, since a phone behind NAT sends from another address
// than it describes (symmetric RTP, as rtpengine's learning does). From
// then on only a packet from the same host may move it (a NAT's new port):
// a stranger's packets sent to the bridge's port are dropped, so nobody on
// the network takes a call's audio over by sending to it.
type latch struct {
	addr    atomic.Pointer[netip.AddrPort]
	learned atomic.Bool
}

// describe sets the address a description gives.
func (l *latch) describe(a netip.AddrPort) {
	l.addr.Store(&a)
	l.learned.Store(false)
}

// describeIfUnset is describe unless a packet or description set it before.
func (l *latch) describeIfUnset(a netip.AddrPort) {
	l.addr.CompareAndSwap(nil, &a)
}

// get is where the stream's packets go (nil: not known yet).
func (l *latch) get() *netip.AddrPort { return l.addr.Load() }

// heard reports whether a packet from src belongs to the stream, learning
// src as its address when it may. It allocates only when the address moves.
func (l *latch) heard(src netip.AddrPort) bool {
	p := l.addr.Load()
	if p != nil && *p == src {
		if !l.learned.Load() {
			l.learned.Store(true)
		}
		return true
	}
	if p != nil && l.learned.Load() && p.Addr() != src.Addr() {
		return false
	}
	moved := src
	l.addr.Store(&moved)
	l.learned.Store(true)
	return true
}
