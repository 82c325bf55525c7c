package files

import (
	"context"
	"sync"
	"time"

	"hotdesk/prov"
)

// groupWriter runs the one-row writes of many requests in one transaction
// (group commit), each request waiting for its own result: nothing is
// answered before its write is committed, so a crash loses no write a
// phone was told of. SQLite has one writer, and in a boot storm every new
// phone's enrolment and credentials hand-out was a commit of its own (a
// MAC created twice in one batch fails it; each then runs alone and the
// second gets ErrConflict, as on its own). One goroutine at a
// time writes everything asked so far; writes asked meanwhile form the
// next batch.
type groupWriter struct {
	store prov.Store

	mu      sync.Mutex
	pending []*groupReq
	running bool
	wg      sync.WaitGroup
}

type groupReq struct {
	ctx  context.Context
	fn   func(ctx context.Context, st prov.Store) error
	err  error
	done chan struct{}
}

// maxGroup bounds one transaction, so other writers wait at most that long.
const maxGroup = 256

// do runs fn against the store inside a batch's transaction and returns
// its error. fn may run twice (alone, after its batch failed on another
// write), so it must set its results afresh each time. A request whose
// ctx is done before its batch runs is not written (ctx's error); once
// written, do returns the result whatever ctx says since, so a caller
// never takes a committed write for one not made.
func (g *groupWriter) do(ctx context.Context, fn func(ctx context.Context, st prov.Store) error) error {
	r := &groupReq{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if !g.running {
		g.running = true
		g.wg.Add(1)
		go g.run()
	}
	g.mu.Unlock()
	<-r.done
	return r.err
}

func (g *groupWriter) run() {
	defer g.wg.Done()
	for {
		g.mu.Lock()
		n := min(len(g.pending), maxGroup)
		if n == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		batch := g.pending[:n:n]
		g.pending = g.pending[n:]
		if len(g.pending) == 0 {
			g.pending = nil
		}
		g.mu.Unlock()
		g.write(batch)
	}
}

// write runs a batch in one transaction; when that fails, each write runs
// on its own so that each request gets its own answer.
func (g *groupWriter) write(batch []*groupReq) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	todo := make([]*groupReq, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.err = err
			close(r.done)
			continue
		}
		todo = append(todo, r)
	}
	defer func() {
		for _, r := range todo {
			close(r.done)
		}
	}()
	if len(todo) == 0 {
		return
	}
	err := g.store.WithTx(ctx, func(tx prov.Store) error {
		for _, r := range todo {
			if err := r.fn(ctx, tx); err != nil {
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
	for _, r := range todo {
		r.err = r.fn(ctx, g.store)
	}
}

// wait returns when no batch is being written.
func (g *groupWriter) wait() { g.wg.Wait() }
