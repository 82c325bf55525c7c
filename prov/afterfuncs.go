package prov

import (
	"sync"
	"time"
)

// afterFuncs runs delayed work the way time.AfterFunc does, but owned: Close
// stops what has not started and waits for what has, so nothing a service
// scheduled outlives it (or a test).
type afterFuncs struct {
	mu     sync.Mutex
	closed bool
	timers map[*time.Timer]struct{}
	wg     sync.WaitGroup
}

// AfterFunc runs f after d unless Close comes first.
func (a *afterFuncs) AfterFunc(d time.Duration, f func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return
	}
	if a.timers == nil {
		a.timers = map[*time.Timer]struct{}{}
	}
	var t *time.Timer
	a.wg.Add(1)
	t = time.AfterFunc(d, func() {
		defer a.wg.Done()
		a.mu.Lock()
		delete(a.timers, t)
		a.mu.Unlock()
		f()
	})
	a.timers[t] = struct{}{}
}

// Close stops the pending work and waits for the running one.
func (a *afterFuncs) Close() {
	a.mu.Lock()
	a.closed = true
	for t := range a.timers {
		if t.Stop() {
			a.wg.Done()
		}
		delete(a.timers, t)
	}
	a.mu.Unlock()
	a.wg.Wait()
}
