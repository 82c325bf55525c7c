package sip

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// persister writes binding changes behind, coalescing per key, in batches:
// REGISTER never waits for a database commit.
type persister struct {
	store    BindingStore
	log      *slog.Logger
	m        *metrics
	interval time.Duration
	batch    int

	mu      sync.Mutex
	pending map[BindingKey]*Binding // nil value = delete
	kick    chan struct{}
}

func newPersister(store BindingStore, log *slog.Logger, m *metrics) *persister {
	return &persister{store: store, log: log, m: m, interval: 100 * time.Millisecond, batch: 1000,
		pending: map[BindingKey]*Binding{}, kick: make(chan struct{}, 1)}
}

func (p *persister) enqueue(ups []Binding, dels []BindingKey) {
	if p.store == nil {
		return
	}
	p.mu.Lock()
	for _, k := range dels {
		p.pending[k] = nil
	}
	for i := range ups {
		b := ups[i]
		p.pending[b.Key()] = &b
	}
	n := len(p.pending)
	p.mu.Unlock()
	if n >= p.batch {
		select {
		case p.kick <- struct{}{}:
		default:
		}
	}
}

// run flushes until ctx ends, then flushes once more.
func (p *persister) run(ctx context.Context) {
	if p.store == nil {
		return
	}
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			p.flush(fctx)
			cancel()
			return
		case <-t.C:
		case <-p.kick:
		}
		p.flush(ctx)
	}
}

func (p *persister) flush(ctx context.Context) {
	p.mu.Lock()
	if len(p.pending) == 0 {
		p.mu.Unlock()
		return
	}
	batch := p.pending
	p.pending = map[BindingKey]*Binding{}
	p.mu.Unlock()
	var ups []Binding
	var dels []BindingKey
	for k, b := range batch {
		if b == nil {
			dels = append(dels, k)
		} else {
			ups = append(ups, *b)
		}
	}
	if err := p.store.SaveBindings(ctx, ups, dels); err != nil {
		p.m.storeErrors.Inc()
		p.log.Warn("saving bindings failed, will retry", "upserts", len(ups), "deletes", len(dels), "err", err)
		// Put the batch back unless a newer change of the same key arrived.
		p.mu.Lock()
		for k, b := range batch {
			if _, newer := p.pending[k]; !newer {
				p.pending[k] = b
			}
		}
		p.mu.Unlock()
		return
	}
	p.m.storeRows.Add(float64(len(ups) + len(dels)))
}

// eventQueue delivers events to Deps.OnEvent on its own goroutine, in order,
// so a slow consumer never blocks the SIP path. While the consumer is
// behind (each event may cost it store work), a refresh of a binding whose
// refresh with the same Call-ID is still waiting is not queued again: it
// would tell the consumer nothing new, and in a boot storm those repeats
// were most of a queue that grew by tens of MB. Refreshes are dropped (and
// counted) above maxQueuedRefreshes; every other kind is kept.
type eventQueue struct {
	fn   func(Event)
	m    *metrics
	mu   sync.Mutex
	q    []Event
	kick chan struct{}
	// waiting is the Call-ID of each binding's refresh in q.
	waiting map[BindingKey]string
	// spare is the slice run delivered last, emptied: the next drain swaps
	// it in for q, so a queue under steady load reuses two buffers instead
	// of regrowing one per drain (~18 MB of garbage per 5 s in a storm).
	// Only run touches it.
	spare []Event
}

// keepEventBuffer says whether run keeps a drained buffer of capacity c
// that held n events for the next drain: a small one always, a large one
// only while it is used (a storm's buffer is let go once the storm ends).
func keepEventBuffer(n, c int) bool {
	return c <= 1024 || n >= c/4
}

const maxQueuedRefreshes = 100000

func newEventQueue(fn func(Event), m *metrics) *eventQueue {
	return &eventQueue{fn: fn, m: m, kick: make(chan struct{}, 1), waiting: map[BindingKey]string{}}
}

func (e *eventQueue) push(evs []Event) {
	if e.fn == nil || len(evs) == 0 {
		return
	}
	e.mu.Lock()
	for _, ev := range evs {
		if ev.Kind == Refreshed {
			k := ev.Binding.Key()
			if cid, ok := e.waiting[k]; ok && cid == ev.Binding.CallID {
				e.m.eventsCoalesced.Inc()
				continue
			}
			if len(e.q) >= maxQueuedRefreshes {
				e.m.eventsDropped.Inc()
				continue
			}
			e.waiting[k] = ev.Binding.CallID
		} else {
			// Whatever follows it for the binding is news again.
			delete(e.waiting, ev.Binding.Key())
		}
		e.q = append(e.q, ev)
	}
	e.m.eventsQueued.Set(float64(len(e.q)))
	e.mu.Unlock()
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

func (e *eventQueue) run(ctx context.Context) {
	if e.fn == nil {
		return
	}
	for {
		e.mu.Lock()
		q := e.q
		e.q, e.spare = e.spare, nil
		if len(e.waiting) > 1024 {
			e.waiting = map[BindingKey]string{} // a storm's map is not kept
		} else {
			clear(e.waiting)
		}
		e.m.eventsQueued.Set(0)
		e.mu.Unlock()
		for i := range q {
			e.fn(q[i])
		}
		if cap(q) > 0 && keepEventBuffer(len(q), cap(q)) {
			clear(q) // the delivered bindings are not kept alive by the buffer
			e.spare = q[:0]
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-e.kick:
		}
	}
}
