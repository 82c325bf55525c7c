package sip

import (
	"sync"
	"time"
)

// lockout counts failed authentications per key ("ip:…" or "user:…") and
// refuses a key for a growing time after threshold failures, so scanners
// (svcrack/svwar) neither guess passwords nor tell users apart: unknown
// usernames are counted exactly like known ones.
type lockout struct {
	mu sync.Mutex
	m  map[string]*failState
	// good remembers keys that authenticated, and when: the sources an
	// account is known to work from, which an attack on the account as a
	// whole must not lock out.
	good      map[string]time.Time
	threshold int
	base, max time.Duration
	window    time.Duration
	maxKeys   int
}

type failState struct {
	fails       int
	last        time.Time
	lockedUntil time.Time
	level       int // lockouts so far; the next lasts base<<level
}

func newLockout(cfg Config) *lockout {
	return &lockout{m: map[string]*failState{}, good: map[string]time.Time{}, threshold: cfg.LockoutThreshold,
		base: cfg.LockoutBase, max: cfg.LockoutMax, window: cfg.LockoutWindow, maxKeys: 200000}
}

// locked reports whether key is refused now.
func (l *lockout) locked(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	return s != nil && now.Before(s.lockedUntil)
}

// fail records a failure and reports whether key is now locked.
func (l *lockout) fail(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	if s == nil {
		if len(l.m) >= l.maxKeys {
			l.sweepLocked(now)
		}
		s = &failState{}
		l.m[key] = s
	}
	if now.Sub(s.last) > l.window && !now.Before(s.lockedUntil) {
		s.fails = 0
		if now.Sub(s.last) > l.max+l.window {
			s.level = 0
		}
	}
	s.fails++
	s.last = now
	if s.fails >= l.threshold {
		d := l.base << min(s.level, 30)
		if d > l.max || d <= 0 {
			d = l.max
		}
		s.lockedUntil = now.Add(d)
		s.level++
		s.fails = 0
		return true
	}
	return false
}

// succeed forgets the failures of key (a correct password resets the count
// but not a running lockout) and reports whether it had any.
func (l *lockout) succeed(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.m[key]
	if s == nil {
		return false
	}
	had := s.fails > 0
	if s.lockedUntil.IsZero() {
		delete(l.m, key)
	} else {
		s.fails = 0
	}
	return had
}

// knownGoodFor is how long a source that authenticated stays trusted for
// the account when the account as a whole is under attack.
const knownGoodFor = 7 * 24 * time.Hour

// remember records that key authenticated now.
func (l *lockout) remember(key string, now time.Time) {
	l.mu.Lock()
	if len(l.good) >= l.maxKeys {
		for k, at := range l.good {
			if now.Sub(at) > knownGoodFor {
				delete(l.good, k)
			}
		}
	}
	if len(l.good) < l.maxKeys {
		l.good[key] = now
	}
	l.mu.Unlock()
}

// known reports whether key authenticated within knownGoodFor.
func (l *lockout) known(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.good[key]
	return ok && now.Sub(at) <= knownGoodFor
}

// sweep forgets idle keys.
func (l *lockout) sweep(now time.Time) {
	l.mu.Lock()
	l.sweepLocked(now)
	l.mu.Unlock()
}

func (l *lockout) sweepLocked(now time.Time) {
	for k, at := range l.good {
		if now.Sub(at) > knownGoodFor {
			delete(l.good, k)
		}
	}
	for k, s := range l.m {
		if now.After(s.lockedUntil) && now.Sub(s.last) > l.window+l.max {
			delete(l.m, k)
		} else if now.After(s.lockedUntil) && s.level == 0 && now.Sub(s.last) > l.window {
			delete(l.m, k)
		}
	}
}

// accountBudget is the lockout of an account across all sources: five
// times the per-source threshold, so a distributed guess is bounded too.
func accountBudget(cfg Config) Config {
	cfg.LockoutThreshold *= 5
	return cfg
}
