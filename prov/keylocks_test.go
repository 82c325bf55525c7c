package prov

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"hotdesk/prov/auth"
)

func TestKeyLocks(t *testing.T) {
	t.Parallel()
	var k keyLocks
	unlockA := k.lock("u1", "d1")

	// Another key is free at once.
	done := make(chan struct{})
	go func() { k.lock("u2", "d2")(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a lock on other keys waited for u1/d1")
	}

	// Sharing one key waits until it is released.
	got := make(chan struct{})
	go func() { k.lock("d1", "u3")(); close(got) }()
	select {
	case <-got:
		t.Fatal("d1 was taken twice")
	case <-time.After(50 * time.Millisecond):
	}
	unlockA()
	<-got
	if n := k.size(); n != 0 {
		t.Errorf("%d keys left after every lock was released", n)
	}
}

// TestKeyLocksNoDeadlock: callers asking for the same keys in opposite
// orders all finish, and a counter guarded only by the shared key is
// never raced.
func TestKeyLocksNoDeadlock(t *testing.T) {
	t.Parallel()
	var k keyLocks
	var wg sync.WaitGroup
	counter := 0
	for i := range 200 {
		wg.Go(func() {
			keys := []string{"u1", "d1", "u1"}
			if i%2 == 1 {
				keys = []string{"d1", "u1"}
			}
			defer k.lock(keys...)()
			counter++
		})
	}
	wg.Wait()
	if counter != 200 {
		t.Errorf("counter %d, want 200", counter)
	}
	if n := k.size(); n != 0 {
		t.Errorf("%d keys left", n)
	}
}

// TryGuess: failures lock the (account, source) pair; spread over many
// sources they spend the account's budget, after which fresh sources are
// refused and the ones the account succeeded from are not. In-flight
// attempts count, so parallel guesses cannot all pass.
func TestTryGuessBudget(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_790_000_000, 0)
	l := auth.NewLockout(auth.LockoutConfig{Threshold: 3}, func() time.Time { return t0 })
	l.GuessSucceeded("user:bob", "10.0.0.20", t0)
	for range 3 {
		done, ok := l.TryGuess("user:bob", "10.0.0.66", t0)
		if !ok {
			t.Fatal("refused before the threshold")
		}
		done(true)
	}
	if _, ok := l.TryGuess("user:bob", "10.0.0.66", t0); ok {
		t.Fatal("the guessing source is not locked")
	}
	if done, ok := l.TryGuess("user:bob", "10.0.0.21", t0); !ok {
		t.Fatal("one source's guesses locked the account")
	} else {
		done(false)
	}
	for i := range 3*auth.AccountBudget - 3 {
		done, ok := l.TryGuess("user:bob", "10.0.1."+strconv.Itoa(i), t0)
		if !ok {
			t.Fatalf("guess %d refused before the budget was spent", i)
		}
		done(true)
	}
	if _, ok := l.TryGuess("user:bob", "10.0.0.99", t0); ok || !l.LockedGuess("user:bob", "10.0.0.99", t0) {
		t.Fatal("budget spent: a fresh source still tries")
	}
	if _, ok := l.TryGuess("user:bob", "10.0.0.20", t0); !ok || l.LockedGuess("user:bob", "10.0.0.20", t0) {
		t.Fatal("budget spent: the account's own source is refused")
	}
	// In flight: three parallel guesses from one source fill its limit.
	var dones []func(bool)
	for range 3 {
		done, ok := l.TryGuess("user:carol", "10.0.0.7", t0)
		if !ok {
			t.Fatal("refused in flight too early")
		}
		dones = append(dones, done)
	}
	if _, ok := l.TryGuess("user:carol", "10.0.0.7", t0); ok {
		t.Fatal("a fourth parallel guess passed")
	}
	for _, d := range dones {
		d(false)
	}
}
