package store

import (
	"context"
	"database/sql"
	"runtime"
	"testing"

	"hotdesk/prov"
)

// TestInteractiveReadsSkipTheQueue: with every reader connection held (a
// boot storm's provisioning reads), a read on a context marked
// prov.Interactive (an API login) is served at once from its own
// connections; an unmarked read waits for the pool, as before.
func TestInteractiveReadsSkipTheQueue(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	u := prov.User{Username: "alice", FirstName: "A", LastName: "A", Status: prov.StatusActive, Kind: prov.KindPerson}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	pool := s.c.r
	n := pool.Stats().MaxOpenConnections
	var held []*sql.Rows
	release := func() {
		for _, r := range held {
			r.Close()
		}
		held = nil
	}
	defer release()
	for range n {
		r, err := pool.QueryContext(ctx, "SELECT 1")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	base := pool.Stats().WaitCount

	// read runs GetUser on ctx and reports whether it queued for the held
	// pool; a queued read is let through by releasing the pool, so the test
	// ends either way.
	read := func(ctx context.Context) (queued bool) {
		t.Helper()
		done := make(chan error, 1)
		go func() { _, err := s.GetUser(ctx, "alice"); done <- err }()
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				return queued
			default:
			}
			if !queued && pool.Stats().WaitCount > base {
				queued = true
				release()
			}
			runtime.Gosched()
		}
	}
	if read(prov.Interactive(ctx)) {
		t.Fatal("an interactive read queued behind the phones' reads")
	}
	if !read(ctx) {
		t.Fatal("an unmarked read did not use the shared pool (the test holds none of it?)")
	}
}
