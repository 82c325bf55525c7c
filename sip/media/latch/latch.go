// Package latch holds the far end of a plain RTP stream as the media
// bridge, its relays and voicemail learn it (see Latch).
package latch

import (
	"net/netip"
	"sync/atomic"
)

// Latch is the far end of one plain RTP stream: where its packets go, and
// whose packets are the stream's. A description (SDP) sets it. The first
// packet that arrives after that may move it to another host, since a
// phone behind NAT sends from another address than it describes
// (symmetric RTP, as rtpengine's learning does); from then on only a
// packet from the same host may move it (a NAT's new port). A packet from
// the described host always belongs to the stream and, once heard, pins it
// there. So a stranger on the network who sends to the bridge's port
// neither takes a call's audio over nor speaks into it, except in the
// moment before a phone behind NAT sends its first packet. The zero Latch
// knows no address.
type Latch struct {
	addr      atomic.Pointer[netip.AddrPort]
	described atomic.Pointer[netip.AddrPort]
	learned   atomic.Bool // a packet set addr
	pinned    atomic.Bool // the described host was heard
}

// Describe sets the address a description gives.
func (l *Latch) Describe(a netip.AddrPort) {
	l.described.Store(&a)
	l.addr.Store(&a)
	l.learned.Store(false)
	l.pinned.Store(false)
}

// DescribeIfUnset is Describe unless a packet or description set it before.
func (l *Latch) DescribeIfUnset(a netip.AddrPort) {
	if l.addr.CompareAndSwap(nil, &a) {
		l.described.Store(&a)
	}
}

// Get is where the stream's packets go (nil: not known yet).
func (l *Latch) Get() *netip.AddrPort { return l.addr.Load() }

// Heard reports whether a packet from src belongs to the stream, learning
// src as its address when it may. It allocates only when the address moves.
func (l *Latch) Heard(src netip.AddrPort) bool {
	p := l.addr.Load()
	if d := l.described.Load(); d != nil && d.Addr() == src.Addr() {
		if p == nil || *p != src {
			l.move(src)
		}
		if !l.pinned.Load() {
			l.pinned.Store(true)
		}
		return true
	}
	if l.pinned.Load() {
		return false
	}
	if p != nil && *p == src {
		if !l.learned.Load() {
			l.learned.Store(true)
		}
		return true
	}
	if p != nil && l.learned.Load() && p.Addr() != src.Addr() {
		return false
	}
	l.move(src)
	return true
}

func (l *Latch) move(src netip.AddrPort) {
	moved := src
	l.addr.Store(&moved)
	l.learned.Store(true)
}
