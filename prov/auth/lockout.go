package auth

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
	// good remembers the sources each account succeeded from, and when:
	// an attack on the account as a whole must not lock them out.
	good map[string]time.Time
	// relay, when set, is told of every failure counted here and of a
	// success that cleared failures (see SetRelay).
	relay Relay
}

// Relay carries a Lockout's results to the other nodes of a cluster, whose
// same-named Lockout replays them with Elsewhere: key, the threshold the
// failure counts against, and whether it failed (else: a success cleared
// the key's failures). It is called without the Lockout's lock held and
// must not block.
type Relay func(key string, threshold int, failed bool)

// SetRelay makes this Lockout share its counts with the other nodes; call
// it before the Lockout is used.
func (l *Lockout) SetRelay(r Relay) { l.relay = r }

// Elsewhere counts another node's result for key as if it happened here:
// a failure against threshold (a guess spread over the nodes is locked out
// as on one), or a success clearing the key's failures.
func (l *Lockout) Elsewhere(key string, threshold int, t time.Time, failed bool) {
	if threshold <= 0 {
		threshold = l.cfg.Threshold
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if failed {
		l.failLockedN(l.state(key, t), t, threshold)
		return
	}
	l.succeedLocked(key)
}

func (l *Lockout) relayed(key string, threshold int, failed bool) {
	if l.relay != nil {
		l.relay(key, threshold, failed)
	}
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
	return &Lockout{cfg: cfg, now: now, keys: map[string]*lockState{}, good: map[string]time.Time{}}
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
	return l.try(key, t, l.cfg.Threshold)
}

func (l *Lockout) try(key string, t time.Time, threshold int) (done func(failed bool), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := l.state(key, t)
	if t.Before(st.lockedUntil) || st.fails+st.pending >= threshold {
		return func(bool) {}, false
	}
	st.pending++
	var once sync.Once
	return func(failed bool) {
		once.Do(func() {
			l.mu.Lock()
			if cur := l.keys[key]; cur == st {
				st.pending--
				if failed {
					l.failLockedN(st, t, threshold)
				}
			}
			l.mu.Unlock()
			if failed {
				l.relayed(key, threshold, true)
			}
		})
	}, true
}

// Fail records a failure and locks the key when it crosses the threshold.
func (l *Lockout) Fail(key string, t time.Time) {
	l.mu.Lock()
	l.failLocked(l.state(key, t), t)
	l.mu.Unlock()
	l.relayed(key, l.cfg.Threshold, true)
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

func (l *Lockout) failLocked(st *lockState, t time.Time) { l.failLockedN(st, t, l.cfg.Threshold) }

func (l *Lockout) failLockedN(st *lockState, t time.Time, threshold int) {
	if t.Sub(st.first) > l.cfg.Window {
		st.fails, st.first = 0, t
	}
	st.fails++
	if st.fails >= threshold {
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
	had := l.succeedLocked(key)
	l.mu.Unlock()
	if had {
		l.relayed(key, 0, false)
	}
}

// succeedLocked is Succeed's work; it reports whether key had failures.
func (l *Lockout) succeedLocked(key string) bool {
	st := l.keys[key]
	if st == nil {
		return false
	}
	had := st.fails > 0
	if st.pending == 0 && !l.now().Before(st.lockedUntil) {
		delete(l.keys, key)
	} else {
		st.fails = 0
	}
	return had
}

// pruneLocked drops stale entries so a scan cannot grow memory forever.
func (l *Lockout) pruneLocked(t time.Time) {
	for k, st := range l.keys {
		if st.pending == 0 && t.After(st.lockedUntil) && t.Sub(st.first) > l.cfg.Window {
			delete(l.keys, k)
		}
	}
}

// AccountBudget is how many failures an account may take from all its
// sources together, in thresholds: a guess spread over many hosts is
// bounded too.
const AccountBudget = 5

// knownGoodFor is how long a source an account succeeded from stays
// trusted for it while the account as a whole is under attack.
const knownGoodFor = 7 * 24 * time.Hour

// TryGuess starts a password check of account from source. Failures lock
// the (account, source) pair at the threshold, so a guesser locks out only
// itself, never the account's owner at every door; they also spend the
// account's budget (AccountBudget thresholds), after which only sources
// the account succeeded from recently may try. Attempts in flight count,
// as with Try; a correct password is told with GuessSucceeded.
func (l *Lockout) TryGuess(account, source string, t time.Time) (done func(failed bool), ok bool) {
	pair := account + "|" + source
	donePair, ok := l.try(pair, t, l.cfg.Threshold)
	if !ok {
		return func(bool) {}, false
	}
	doneAcct := func(bool) {}
	if !l.knownGood(pair, t) {
		if doneAcct, ok = l.try(account, t, l.cfg.Threshold*AccountBudget); !ok {
			donePair(false)
			return func(bool) {}, false
		}
	}
	return func(failed bool) { donePair(failed); doneAcct(failed) }, true
}

// GuessSucceeded records a correct password of account from source: the
// pair's failures are forgotten and the source is trusted for the account.
func (l *Lockout) GuessSucceeded(account, source string, t time.Time) {
	pair := account + "|" + source
	l.Succeed(pair)
	l.remember(pair, t)
}

// FailGuess records a wrong password of account from source after the
// fact, for doors where many requests with the same credentials run at
// once (a script's Basic auth, checked once for all of them): the pair's
// failures, and the account's budget unless the source is known good.
func (l *Lockout) FailGuess(account, source string, t time.Time) {
	pair := account + "|" + source
	good := l.knownGood(pair, t)
	l.mu.Lock()
	l.failLocked(l.state(pair, t), t)
	if !good {
		l.failLockedN(l.state(account, t), t, l.cfg.Threshold*AccountBudget)
	}
	l.mu.Unlock()
	l.relayed(pair, l.cfg.Threshold, true)
	if !good {
		l.relayed(account, l.cfg.Threshold*AccountBudget, true)
	}
}

// LockedGuess reports whether TryGuess would refuse account from source
// now (for doors that answer "locked" before reading a password).
func (l *Lockout) LockedGuess(account, source string, t time.Time) bool {
	pair := account + "|" + source
	if l.Locked(pair, t) {
		return true
	}
	return !l.knownGood(pair, t) && l.Locked(account, t)
}

func (l *Lockout) knownGood(pair string, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.good[pair]
	return ok && t.Sub(at) <= knownGoodFor
}

func (l *Lockout) remember(pair string, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.good) >= 100000 {
		for k, at := range l.good {
			if t.Sub(at) > knownGoodFor {
				delete(l.good, k)
			}
		}
		if len(l.good) >= 100000 {
			return // full of live entries: new sources are simply not trusted
		}
	}
	l.good[pair] = t
}
