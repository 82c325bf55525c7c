package provhttp

import (
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// failLimiter is a token bucket per source address, spent by 401 and 404
// answers: MAC guessing and password guessing slow down to one try per
// interval once the burst is gone. Successful requests cost nothing.
type failLimiter struct {
	mu      sync.Mutex
	burst   int
	every   rate.Limit
	now     func() time.Time
	buckets map[netip.Addr]*rate.Limiter
}

// maxBuckets bounds memory under a spoofed-source flood; full buckets are
// forgotten first.
const maxBuckets = 65536

func newFailLimiter(burst int, interval time.Duration, now func() time.Time) *failLimiter {
	return &failLimiter{burst: burst, every: rate.Every(interval), now: now, buckets: map[netip.Addr]*rate.Limiter{}}
}

// blocked reports whether addr has no failures left.
func (l *failLimiter) blocked(addr netip.Addr) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	return ok && b.TokensAt(now) < 1
}

// fail spends one token of addr (none left: nothing to spend).
func (l *failLimiter) fail(addr netip.Addr) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[addr]
	if !ok {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = rate.NewLimiter(l.every, l.burst)
		l.buckets[addr] = b
	}
	b.AllowN(now, 1)
}

func (l *failLimiter) prune(now time.Time) {
	for a, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.buckets, a)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}
