package dhcp

import (
	"container/heap"
	"math/bits"
	"time"
)

// space indexes the addresses of one pool's dynamic range that a new client
// may not get: held by an unexpired entry, or reserved for some MAC. With
// it, finding a free address costs a word scan from a cursor and an
// exhausted pool answers at once, instead of probing the whole range under
// the allocator's lock for every DISCOVER a host invents MACs for.
//
// Entries expire by the clock, not by an event: a heap ordered by expiry
// releases their bits when an offer looks (reclaim). An expired entry stays
// in the allocator's maps (its client may come back to it); it only stops
// blocking others.
type space struct {
	lo     uint32   // first address of the range
	size   uint32   // addresses in the range
	busy   []uint64 // bit i: lo+i is not for a new client
	nbusy  uint32
	cursor uint32 // offset the next search starts at
	queue  expiryQueue
	probes uint64 // words read by next, for tests
}

func newSpace(lo, hi uint32) *space {
	n := hi - lo + 1
	return &space{lo: lo, size: n, busy: make([]uint64, (uint64(n)+63)/64)}
}

func (s *space) has(ip uint32) bool { return ip >= s.lo && ip-s.lo < s.size }

// mark sets or clears ip's bit; idempotent.
func (s *space) mark(ip uint32, busy bool) {
	if !s.has(ip) {
		return
	}
	i := ip - s.lo
	w, b := i/64, uint64(1)<<(i%64)
	switch {
	case busy && s.busy[w]&b == 0:
		s.busy[w] |= b
		s.nbusy++
	case !busy && s.busy[w]&b != 0:
		s.busy[w] &^= b
		s.nbusy--
	}
}

// next returns a clear address at or after the cursor (wrapping), or false
// when every bit is set. It reads at most one pass of words.
func (s *space) next() (uint32, bool) {
	if s.nbusy >= s.size {
		return 0, false
	}
	words := uint32(len(s.busy))
	start := s.cursor % s.size
	for k := uint32(0); k <= words; k++ {
		w := (start/64 + k) % words
		s.probes++
		free := ^s.busy[w]
		if k == 0 {
			free &= ^uint64(0) << (start % 64) // from the cursor on
		}
		if w == words-1 && s.size%64 != 0 {
			free &= uint64(1)<<(s.size%64) - 1 // past the range
		}
		if free != 0 {
			i := w*64 + uint32(bits.TrailingZeros64(free))
			s.cursor = i + 1
			return s.lo + i, true
		}
	}
	return 0, false
}

// expiryQueue is a min-heap of entries by expiry; an entry is in it at most
// once, at entry.qi (-1: not queued), so an extended offer is re-sorted in
// place.
type expiryQueue []*entry

func (q expiryQueue) Len() int           { return len(q) }
func (q expiryQueue) Less(i, j int) bool { return q[i].expires.Before(q[j].expires) }
func (q expiryQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].qi, q[j].qi = i, j
}
func (q *expiryQueue) Push(x any) {
	e := x.(*entry)
	e.qi = len(*q)
	*q = append(*q, e)
}
func (q *expiryQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	e.qi = -1
	return e
}

// spaceOf returns the index of e's pool's range, or nil.
func (a *allocator) spaceOf(pool int) *space {
	if pool < 0 || pool >= len(a.spaces) {
		return nil
	}
	return a.spaces[pool]
}

// installed marks e's address busy and queues its expiry. Called with mu
// held whenever e becomes byIP[e.ip] or its expiry moves.
func (a *allocator) installed(e *entry) {
	sp := a.spaceOf(e.pool)
	if sp == nil || !sp.has(e.ip) {
		return
	}
	sp.mark(e.ip, true)
	if e.queued {
		heap.Fix(&sp.queue, e.qi)
		return
	}
	e.queued = true
	heap.Push(&sp.queue, e)
}

// vacated clears ip's bit unless the address is reserved. Called with mu
// held when ip's entry left or expired.
func (a *allocator) vacated(pool int, ip uint32) {
	if _, reserved := a.resvIP[ip]; reserved {
		return
	}
	if sp := a.spaceOf(pool); sp != nil {
		sp.mark(ip, false)
	}
}

// reclaim releases the addresses whose entries expired by now. Each entry
// is pushed and popped once per expiry it gets, so this is amortised
// O(log n) per allocation.
func (a *allocator) reclaim(pool int, now time.Time) {
	sp := a.spaceOf(pool)
	if sp == nil {
		return
	}
	for len(sp.queue) > 0 && !sp.queue[0].expires.After(now) {
		e := heap.Pop(&sp.queue).(*entry)
		e.queued = false
		if a.byIP[e.ip] != e {
			continue // replaced or dropped already
		}
		a.vacated(pool, e.ip)
	}
}
