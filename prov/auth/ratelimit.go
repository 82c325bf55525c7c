package auth

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// SourceLimits is one token bucket per source address, so one host cannot
// spend what the others need. Idle buckets (full again) are dropped when
// the map grows, so a scan over many addresses cannot fill memory.
type SourceLimits struct {
	every rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// maxSourceLimits bounds the buckets kept.
const maxSourceLimits = 65536

// NewSourceLimits returns buckets refilled at every tokens a second, each
// holding burst.
func NewSourceLimits(every rate.Limit, burst int) *SourceLimits {
	return &SourceLimits{every: every, burst: burst, m: map[string]*rate.Limiter{}}
}

// PerMinute returns buckets of perMinute tokens, refilled over a minute.
func PerMinute(perMinute int) *SourceLimits {
	return NewSourceLimits(rate.Limit(float64(perMinute)/60), perMinute)
}

// Allow takes a token for source at now.
func (s *SourceLimits) Allow(source string, now time.Time) bool {
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
