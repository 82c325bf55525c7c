package files

import (
	"context"
	"sync"
	"time"

	"hotdesk/prov"
)

// enrollBatcher creates enrolled devices in group commits. SQLite has one
// writer: in a boot storm thousands of phones enroll at once, and one
// transaction per device queues every fetch on the writer connection. One
// goroutine at a time creates everything requested so far in one
// transaction; requests arriving meanwhile form the next batch.
type enrollBatcher struct {
	store prov.Store

	mu      sync.Mutex
	pending []*enrollReq
	running bool
	wg      sync.WaitGroup
}

type enrollReq struct {
	d    prov.Device
	err  error
	done chan struct{}
}

// maxEnrollBatch bounds one transaction, so other writers wait at most that long.
const maxEnrollBatch = 256

// create stores d as CreateDevice does (setting its ID). Errors as
// CreateDevice's: ErrConflict when the MAC exists already.
func (b *enrollBatcher) create(ctx context.Context, d *prov.Device) error {
	r := &enrollReq{d: *d, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	if !b.running {
		b.running = true
		b.wg.Add(1)
		go b.run()
	}
	b.mu.Unlock()
	select {
	case <-r.done:
		*d = r.d
		return r.err
	case <-ctx.Done():
		// The device may still be created; the phone's next fetch finds it.
		return ctx.Err()
	}
}

func (b *enrollBatcher) run() {
	defer b.wg.Done()
	for {
		b.mu.Lock()
		n := min(len(b.pending), maxEnrollBatch)
		if n == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = b.pending[n:]
		if len(b.pending) == 0 {
			b.pending = nil
		}
		b.mu.Unlock()
		b.write(batch)
	}
}

// write creates a batch in one transaction; when that fails (typically a
// MAC created meanwhile by someone else) each device is created on its own
// so that each request gets its own answer.
func (b *enrollBatcher) write(batch []*enrollReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() {
		for _, r := range batch {
			close(r.done)
		}
	}()
	todo := make([]*enrollReq, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	for _, r := range batch {
		if seen[r.d.MAC] { // the same phone asked twice: it exists once the first is created
			r.err = prov.ErrConflict
			continue
		}
		seen[r.d.MAC] = true
		todo = append(todo, r)
	}
	orig := make([]prov.Device, len(todo))
	for i, r := range todo {
		orig[i] = r.d
	}
	err := b.store.WithTx(ctx, func(tx prov.Store) error {
		for _, r := range todo {
			if err := tx.CreateDevice(ctx, &r.d); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return
	}
	if len(todo) == 1 {
		todo[0].err = err
		return
	}
	for i, r := range todo {
		r.d = orig[i]
		r.err = b.store.CreateDevice(ctx, &r.d)
	}
}

// wait returns when no batch is being written.
func (b *enrollBatcher) wait() { b.wg.Wait() }
