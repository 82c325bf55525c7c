package auth

import (
	"testing"
	"time"
)

// TestLockoutSharedBetweenNodes: two Lockouts relaying to each other (two
// nodes of a cluster) lock a key after as many failures in all as one
// Lockout would, whichever door each failure came through, and a success
// clears the failures on both.
func TestLockoutSharedBetweenNodes(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	now := func() time.Time { return t0 }
	type step struct {
		node   int // 0 or 1
		op     string
		locked bool // the pair on both nodes afterwards
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"Try failures alternate", []step{{0, "try", false}, {1, "try", false}, {0, "try", false}, {1, "try", false},
			{0, "try", true}}},
		{"Fail and FailGuess", []step{{0, "fail", false}, {1, "failguess", false}, {0, "failguess", false},
			{1, "fail", false}, {1, "failguess", true}}},
		{"success on one node clears both", []step{{0, "try", false}, {1, "try", false}, {0, "try", false},
			{1, "try", false}, {0, "ok", false}, {1, "try", false}, {0, "try", false}, {1, "try", false},
			{0, "try", false}, {1, "try", true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := [2]*Lockout{NewLockout(LockoutConfig{Threshold: 5}, now), NewLockout(LockoutConfig{Threshold: 5}, now)}
			relays := 0
			for i, l := range nodes {
				other := nodes[1-i]
				l.SetRelay(func(key string, threshold int, failed bool) {
					relays++
					other.Elsewhere(key, threshold, now(), failed)
				})
			}
			const acct, src = "alice", "192.0.2.7"
			pair := acct + "|" + src
			for i, s := range tc.steps {
				l := nodes[s.node]
				switch s.op {
				case "try":
					done, ok := l.TryGuess(acct, src, now())
					if !ok {
						t.Fatalf("step %d: refused before the threshold", i)
					}
					done(true)
				case "fail":
					l.Fail(pair, now())
				case "failguess":
					l.FailGuess(acct, src, now())
				case "ok":
					l.GuessSucceeded(acct, src, now())
				}
				for n, l := range nodes {
					if got := l.Locked(pair, now()); got != s.locked {
						t.Fatalf("step %d (%s on node %d): node %d locked = %v, want %v", i, s.op, s.node, n, got, s.locked)
					}
				}
			}
			if relays == 0 {
				t.Fatal("nothing relayed")
			}
		})
	}
}
