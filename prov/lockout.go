package prov

import (
	"sync"
	"time"
)

// LockoutConfig sets when repeated failures lock a key out and for how long.
type LockoutConfig struct {
	// Threshold failures within Window lock the key.
	Threshold int
	Window    time.Duration
	// Base is the first lock time; each further lock doubles it up to Max.
	Base time.Duration
	Max  time.Duration
}

// Lockout counts failures per key (a user, a device, a source address) and
// refuses a key for a growing time once it fails too often.
type Lockout struct {
	cfg  LockoutConfig
	now  func() time.Time
	mu   sync.Mutex
	keys map[string]*lockState
}

type lockState struct {
	fails       int
	pending     int
	first       time.Time
	lockedUntil time.Time
	locks       int
}

// NewLockout returns a Lockout; zero config fields take safe defaults
// (5 failures in 15 min lock for 1 min, doubling up to 1 h).
func NewLockout(cfg LockoutConfig, now func() time.Time) *Lockout {
	if cfg.Threshold <= 0 {
		cfg.Threshold = 5
	}
	if cfg.Window <= 0 {
		cfg.Window = 15 * time.Minute
	}
	if cfg.Base <= 0 {
		cfg.Base = time.Minute
	}
	if cfg.Max <= 0 {
		cfg.Max = time.Hour
	}
	return &Lockout{cfg: cfg, now: now, keys: map[string]*lockState{}}
}

// Locked reports whether key is refused at t.
func (l *Lockout) Locked(key string, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.keys[key]
	return st != nil && t.Before(st.lockedUntil)
}

// Try starts an attempt for key. Attempts in flight count with the
// failures, so parallel guesses cannot all pass before the first failure
// is recorded. ok is false while the key is locked or at its limit. done
// ends the attempt (failed: record a failure); later calls do nothing.
func (l *Lockout) Try(key string, t time.Time) (done func(failed bool), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(key, t)
	if t.Before(st.lockedUntil) || st.fails+st.pending >= l.cfg.Threshold {
		return func(bool) {}, false
	}
	st.pending++
	var once sync.Once
	return func(failed bool) {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if cur := l.keys[key]; cur == st {
				st.pending--
				if failed {
					l.failLocked(st, t)
				}
			}
		})
	}, true
}

// Fail records a failure and locks the key when it crosses the threshold.
func (l *Lockout) Fail(key string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failLocked(l.state(key, t), t)
}

func (l *Lockout) state(key string, t time.Time) *lockState {
	st := l.keys[key]
	if st == nil {
		if len(l.keys) > 100000 {
			l.pruneLocked(t)
		}
		st = &lockState{first: t}
		l.keys[key] = st
	}
	return st
}

func (l *Lockout) failLocked(st *lockState, t time.Time) {
	if t.Sub(st.first) > l.cfg.Window {
		st.fails, st.first = 0, t
	}
	st.fails++
	if st.fails >= l.cfg.Threshold {
		d := l.cfg.Base << min(st.locks, 20)
		if d > l.cfg.Max || d <= 0 {
			d = l.cfg.Max
		}
		st.lockedUntil = t.Add(d)
		st.locks++
		st.fails = 0
	}
}

// Succeed forgets the key's failures and, once a lock has run out, its
// lock history too, so old typos do not keep doubling the next lock.
func (l *Lockout) Succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.keys[key]; st != nil && st.pending == 0 && !l.now().Before(st.lockedUntil) {
		delete(l.keys, key)
	} else if st != nil {
		st.fails = 0
	}
}

// pruneLocked drops stale entries so a scan cannot grow memory forever.
func (l *Lockout) pruneLocked(t time.Time) {
	for k, st := range l.keys {
		if st.pending == 0 && t.After(st.lockedUntil) && t.Sub(st.first) > l.cfg.Window {
			delete(l.keys, k)
		}
	}
}
