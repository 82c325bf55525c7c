package daemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
		failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "failed"})
		go func() { done <- heartbeat(ctx, st, "n1", time.Now, failed, slog.New(slog.DiscardHandler)) }()
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
		if got := testutil.ToFloat64(failed); got != 1 {
			t.Fatalf("failed heartbeats counted %v, want 1", got)
		}
		if nodeDeadAfter < 3*nodeHeartbeat {
			t.Fatalf("a node is dead after %v: fewer than three heartbeats (%v) lost", nodeDeadAfter, nodeHeartbeat)
		}
	})
}

// oneSlot is a park store holding one slot's row.
type oneSlot struct {
	prov.Store
	row prov.ParkedCall
}

func (s oneSlot) GetParkSlot(context.Context, string) (prov.ParkedCall, error) { return s.row, nil }

// A pickup on this node for a slot another node holds goes to that node's
// proxy, unless the node has been silent for nodeDeadAfter (its calls died
// with it) or the row is older than the park timeout.
func TestParkedElsewhereSkipsSilentNodes(t *testing.T) {
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		seen     time.Time
		parkedAt time.Time
		want     string
	}{
		{"alive", now.Add(-nodeHeartbeat), now.Add(-time.Minute), "10.0.0.2:5060"},
		{"never seen (no heartbeat yet)", time.Time{}, now.Add(-time.Minute), "10.0.0.2:5060"},
		{"silent", now.Add(-nodeDeadAfter - time.Second), now.Add(-time.Minute), ""},
		{"past the park timeout", now.Add(-nodeHeartbeat), now.Add(-11 * time.Minute), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := parkSlots{st: oneSlot{row: prov.ParkedCall{Slot: "s1p1", Node: "n2", Addr: "10.0.0.2:5060",
				ParkedAt: tc.parkedAt, NodeSeen: tc.seen}}, node: "n1", now: func() time.Time { return now },
				logger: slog.New(slog.DiscardHandler)}
			if got, _ := p.ParkedElsewhere(context.Background(), "s1p1"); got != tc.want {
				t.Fatalf("handed to %q, want %q", got, tc.want)
			}
		})
	}
}
