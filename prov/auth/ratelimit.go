package prov

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sourceLimits is one token bucket per source address, so one host cannot
// spend what the others need. Idle buckets (full again) are dropped when
// the map grows, so a scan over many addresses cannot fill memory.
type sourceLimits struct {
	every rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// maxSourceLimits bounds the buckets kept.
const maxSourceLimits = 65536

func newSourceLimits(perMinute int) *sourceLimits {
	return &sourceLimits{every: rate.Limit(float64(perMinute) / 60), burst: perMinute, m: map[string]*rate.Limiter{}}
}

// allow takes a token for source at now.
func (s *sourceLimits) allow(source string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.m[source]
	if !ok {
		if len(s.m) >= maxSourceLimits {
			for k, o := range s.m {
				if o.TokensAt(now) >= float64(s.burst) {
					delete(s.m, k)
				}
			}
		}
		if len(s.m) >= maxSourceLimits {
			return false // every bucket busy: a flood from everywhere
		}
		l = rate.NewLimiter(s.every, s.burst)
		s.m[source] = l
	}
	return l.AllowN(now, 1)
}
