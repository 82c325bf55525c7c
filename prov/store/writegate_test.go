package store

import (
	"cmp"
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestInteractiveWritesGoFirst: with SQLite's writer busy (a boot storm's
// transaction) and phones' writes queued for it, a write on a context
// marked prov.Interactive (an API login's session) is the next to run;
// the phones' writes follow in arrival order. database/sql alone hands the
// writer to a random waiter.
func TestInteractiveWritesGoFirst(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	g := s.c.wc.gate
	// waitFor spins until the gate has hi and lo waiters (bounded).
	waitFor := func(hi, lo int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for h, l := g.waiting(); h != hi || l != lo; h, l = g.waiting() {
			if time.Now().After(deadline) {
				t.Fatalf("waiters %d/%d, want %d/%d", h, l, hi, lo)
			}
			runtime.Gosched()
		}
	}
	waitHeld := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !g.isHeld() {
			if time.Now().After(deadline) {
				t.Fatal("the writer was never taken")
			}
			runtime.Gosched()
		}
	}
	audit := func(ctx context.Context, action string) error {
		return s.AddAudit(ctx, prov.NewAuditEvent(time.Unix(1, 0), prov.PhoneActor(""), action, prov.Object{}, nil, nil))
	}
	unblock := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.WithTx(ctx, func(prov.Store) error { <-unblock; return nil }); err != nil {
			t.Error(err)
		}
	})
	waitHeld()
	const phones = 10
	for i := range phones {
		wg.Go(func() {
			if err := audit(ctx, "phone"); err != nil {
				t.Error(err)
			}
		})
		waitFor(0, i+1) // one at a time: their order is known
	}
	wg.Go(func() {
		if err := audit(prov.Interactive(ctx), "login"); err != nil {
			t.Error(err)
		}
	})
	waitFor(1, phones)
	close(unblock)
	wg.Wait()
	evs, err := s.ListAudit(ctx, prov.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var got []prov.AuditEvent
	for _, e := range evs {
		if e.Action == "login" || e.Action == "phone" {
			got = append(got, e)
		}
	}
	if len(got) != phones+1 {
		t.Fatalf("%d writes stored, want %d", len(got), phones+1)
	}
	slices.SortFunc(got, func(a, b prov.AuditEvent) int { return cmp.Compare(a.ID, b.ID) })
	if got[0].Action != "login" {
		t.Fatalf("first write after the busy writer: %q, want the interactive login", got[0].Action)
	}
	// A context ending while it waits leaves the queue and holds nothing.
	unblock2 := make(chan struct{})
	wg.Go(func() { _ = s.WithTx(ctx, func(prov.Store) error { <-unblock2; return nil }) })
	waitHeld()
	cctx, cancel := context.WithCancel(prov.Interactive(ctx))
	errc := make(chan error, 1)
	go func() { errc <- audit(cctx, "gone") }()
	waitFor(1, 0)
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a write whose context ended while it waited succeeded")
	}
	waitFor(0, 0)
	close(unblock2)
	wg.Wait()
	if g.isHeld() {
		t.Fatal("the writer is still held after every write ended")
	}
}
