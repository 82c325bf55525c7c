package provhttp

import (
	"net/netip"
	"sync"
	"time"
)

// failLimiter is a token bucket per source address, spent by 401 and 404
// answers: MAC guessing and password guessing slow down to one try per
// interval once the burst is gone. Successful requests cost nothing.
type failLimiter struct {
	mu       sync.Mutex
	burst    float64
	interval time.Duration
	now      func() time.Time
	buckets  map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds memory under a spoofed-source flood; full buckets are
// forgotten first.
const maxBuckets = 65536

func newFailLimiter(burst int, interval time.Duration, now func() time.Time) *failLimiter {
	return &failLimiter{burst: float64(burst), interval: interval, now: now, buckets: map[netip.Addr]*bucket{}}
}

func (l *failLimiter) refill(b *bucket, now time.Time) {
	b.tokens = min(l.burst, b.tokens+float64(now.Sub(b.at))/float64(l.interval))
	b.at = now
}

// blocked reports whether addr has no failures left.
func (l *failLimiter) blocked(addr netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	if !ok {
		return false
	}
	l.refill(b, l.now())
	return b.tokens < 1
}

// fail spends one token of addr.
func (l *failLimiter) fail(addr netip.Addr) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[addr] = b
	}
	l.refill(b, now)
	b.tokens = max(0, b.tokens-1)
}

func (l *failLimiter) prune(now time.Time) {
	for a, b := range l.buckets {
		if l.refill(b, now); b.tokens >= l.burst {
			delete(l.buckets, a)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
