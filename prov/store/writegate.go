package store

import (
	"context"
	"slices"
	"sync"

	"hotdesk/prov"
)

// writeGate orders the waiters for SQLite's single writer connection. A
// context marked by prov.Interactive (a person waiting: an API login or
// logout) goes before every other waiter; the others go in arrival order.
// database/sql hands a freed connection to a random waiter, so in a boot
// storm a login's write queued behind hundreds of phones' writes (login
// p99 4.9 s). People are few and each waits on one or two writes, so the
// phones are not starved.
type writeGate struct {
	mu     sync.Mutex
	held   bool
	hi, lo []chan struct{}
}

// acquire waits for the writer. On success the caller must release; a
// context that ends while waiting returns its error and holds nothing.
func (g *writeGate) acquire(ctx context.Context) error {
	g.mu.Lock()
	if !g.held {
		g.held = true
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	if prov.IsInteractive(ctx) {
		g.hi = append(g.hi, ch)
	} else {
		g.lo = append(g.lo, ch)
	}
	g.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, q := range []*[]chan struct{}{&g.hi, &g.lo} {
		if i := slices.Index(*q, ch); i >= 0 {
			*q = slices.Delete(*q, i, i+1)
			return ctx.Err()
		}
	}
	// Handed over just as ctx ended: it is ours, and the caller's store
	// call fails on ctx and releases it.
	return nil
}

// release hands the writer to the next waiter, interactive first.
func (g *writeGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	var next chan struct{}
	switch {
	case len(g.hi) > 0:
		next, g.hi = g.hi[0], g.hi[1:]
	case len(g.lo) > 0:
		next, g.lo = g.lo[0], g.lo[1:]
	default:
		g.held = false
		return
	}
	close(next)
}

// waiting is how many wait, interactive and not (tests).
func (g *writeGate) waiting() (int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.hi), len(g.lo)
}

// isHeld reports whether someone holds the writer (tests).
func (g *writeGate) isHeld() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}
