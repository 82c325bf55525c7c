package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"hotdesk/prov"
)

// touches records heartbeats; the first write fails, as a busy database's may.
type touches struct {
	prov.ParkStore
	mu  sync.Mutex
	at  []time.Time
	bad bool
}

func (s *touches) TouchNode(_ context.Context, node string, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.bad {
		s.bad = true
		return errors.New("database is busy")
	}
	s.at = append(s.at, at)
	return nil
}

// A node beats every nodeHeartbeat from its start, a failed write is
// retried at the next beat, and it stops with its context.
func TestHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &touches{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- heartbeat(ctx, st, "n1", time.Now, slog.New(slog.DiscardHandler)) }()
		time.Sleep(3*nodeHeartbeat + nodeHeartbeat/2)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		st.mu.Lock()
		defer st.mu.Unlock()
		want := []time.Time{start.Add(nodeHeartbeat), start.Add(2 * nodeHeartbeat), start.Add(3 * nodeHeartbeat)}
		if len(st.at) != len(want) {
			t.Fatalf("heartbeats at %v, want %v (the first write failed)", st.at, want)
		}
		for i := range want {
			if !st.at[i].Equal(want[i]) {
				t.Fatalf("heartbeats at %v, want %v", st.at, want)
			}
		}
		if nodeDeadAfter < 3*nodeHeartbeat {
			t.Fatalf("a node is dead after %v: fewer than three heartbeats (%v) lost", nodeDeadAfter, nodeHeartbeat)
		}
	})
}
