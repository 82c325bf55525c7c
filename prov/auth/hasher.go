package auth

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Hasher hashes and verifies login passwords with argon2id, at most slots
// at a time. Each hash holds Argon2Params.Memory (19 MiB by default) for
// its whole run, and argon2 with p=1 keeps one core busy: more hashes in
// parallel than there are cores only add memory — a burst of logins after
// a power cut would otherwise cost the appliance hundreds of MB — without
// finishing any sooner. One Hasher is shared by every door and the portal.
type Hasher struct {
	params Argon2Params
	slots  chan struct{}
	// dummy is verified against for an unknown name, so a login for a user
	// who does not exist costs as much as one for a user who does. Made on
	// first need: it would otherwise cost every start one hash.
	dummyOnce sync.Once
	dummy     string
	runs      atomic.Uint64
	// work counts argon2id computations, the cost a timing attacker sees.
	work    atomic.Uint64
	waiting atomic.Int64
}

// NewHasher returns a Hasher with the given cost; concurrent ≤ 0 means one
// hash per CPU the runtime may use.
func NewHasher(p Argon2Params, concurrent int) *Hasher {
	if concurrent <= 0 {
		concurrent = runtime.GOMAXPROCS(0)
	}
	return &Hasher{params: p, slots: make(chan struct{}, concurrent)}
}

// Runs is how many hashes and verifications have started.
func (h *Hasher) Runs() uint64 { return h.runs.Load() }

// Work is how many argon2id computations have run: every verification
// costs one, whether the hash is a user's, missing or malformed.
func (h *Hasher) Work() uint64 { return h.work.Load() }

// Waiting is how many callers wait for a slot now.
func (h *Hasher) Waiting() int64 { return h.waiting.Load() }

func (h *Hasher) acquire() {
	h.waiting.Add(1)
	h.slots <- struct{}{}
	h.waiting.Add(-1)
	h.runs.Add(1)
}

func (h *Hasher) release() { <-h.slots }

// Hash returns the argon2id PHC string of password.
func (h *Hasher) Hash(password string) (string, error) {
	h.acquire()
	defer h.release()
	return HashPassword(password, h.params)
}

// Verify reports whether password matches hash (a malformed hash never does).
func (h *Hasher) Verify(hash, password string) bool {
	ok, _ := h.VerifyContext(context.Background(), hash, password) // Background never ends
	return ok
}

// VerifyContext is Verify for a caller that may go away while it waits
// for a slot (a phone or browser that dropped the request): then it
// returns ctx's error without hashing, and the attempt is not a failed
// guess. A missing or malformed hash (a user imported without a password)
// costs the same argon2id work as a real one and never matches, so timing
// does not tell such a user from one with a password.
func (h *Hasher) VerifyContext(ctx context.Context, hash, password string) (bool, error) {
	ph, ok := parsePHC(hash)
	if !ok {
		ph, _ = parsePHC(h.dummyHash())
	}
	h.waiting.Add(1)
	select {
	case h.slots <- struct{}{}:
		h.waiting.Add(-1)
	case <-ctx.Done():
		h.waiting.Add(-1)
		return false, ctx.Err()
	}
	h.runs.Add(1)
	defer h.release()
	if ph.want == nil {
		return false, nil // no dummy either (crypto/rand failed): refuse
	}
	h.work.Add(1)
	match := ph.verify(password)
	return ok && match, nil
}

// dummyHash is verified against for an unknown name or a missing hash.
func (h *Hasher) dummyHash() string {
	h.dummyOnce.Do(func() {
		// Hash fails only when crypto/rand does; the empty dummy then
		// still refuses.
		h.dummy, _ = h.Hash(RandomSecret(8))
	})
	return h.dummy
}

// VerifyNobodyContext is VerifyNobody for a caller that may go away; it
// returns nil when it spent the time (the answer is always "no").
func (h *Hasher) VerifyNobodyContext(ctx context.Context, password string) error {
	_, err := h.VerifyContext(ctx, "", password)
	return err
}

// VerifyNobody spends the time of a real check and always fails: the
// answer for an unknown name must not be faster than for a wrong password.
func (h *Hasher) VerifyNobody(password string) bool {
	_ = h.VerifyNobodyContext(context.Background(), password) // Background never ends
	return false
}
