package prov

import (
	"slices"
	"strconv"
	"sync"
)

// keyLocks serialises session work per user and per device, so that two
// people logging in on two phones never wait for each other (a login
// storm after a power cut would otherwise queue every login behind one
// mutex) while one user's logins, or one phone's, still happen in order.
type keyLocks struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

func userLockKey(id int64) string   { return "u" + strconv.FormatInt(id, 10) }
func deviceLockKey(id int64) string { return "d" + strconv.FormatInt(id, 10) }

// lock takes every key's lock in sorted order — two callers wanting the
// same keys cannot deadlock — and returns what releases them. A key's
// entry lives only while someone holds or waits for it.
func (k *keyLocks) lock(keys ...string) (unlock func()) {
	keys = slices.Compact(slices.Sorted(slices.Values(keys)))
	held := make([]*keyLock, 0, len(keys))
	for _, key := range keys {
		k.mu.Lock()
		if k.locks == nil {
			k.locks = map[string]*keyLock{}
		}
		l := k.locks[key]
		if l == nil {
			l = &keyLock{}
			k.locks[key] = l
		}
		l.refs++
		k.mu.Unlock()
		l.mu.Lock()
		held = append(held, l)
	}
	return func() {
		for i := len(held) - 1; i >= 0; i-- {
			held[i].mu.Unlock()
			k.mu.Lock()
			if held[i].refs--; held[i].refs == 0 {
				delete(k.locks, keys[i])
			}
			k.mu.Unlock()
		}
	}
}

// size is how many keys are held or waited for (tests).
func (k *keyLocks) size() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.locks)
}
