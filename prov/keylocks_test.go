package prov

import (
	"sync"
	"testing"
	"time"
)

func TestKeyLocks(t *testing.T) {
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

// The native-logout memory is pruned by the sweep once its window passed:
// a busy site ends native sessions all day, and most phones never ask again.
func TestNativeGoneIsPruned(t *testing.T) {
	s := &Sessions{nativeGone: map[[2]int64]time.Time{}}
	t0 := time.Unix(1_790_000_000, 0)
	for i := range int64(100) {
		s.nativeGone[[2]int64{i, i}] = t0
	}
	s.nativeGone[[2]int64{1000, 1}] = t0.Add(NativeRefuseWindow)
	s.pruneNativeGone(t0.Add(NativeRefuseWindow))
	if len(s.nativeGone) != 1 {
		t.Fatalf("%d entries left, want the one still in its window", len(s.nativeGone))
	}
}
