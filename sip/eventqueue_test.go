package sip

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// While the consumer is behind, repeated refreshes of a binding with the
// same Call-ID wait as one event: the queue is bounded by the bindings, not
// by the REGISTERs. A new Call-ID (a reboot) and every other kind are kept,
// in order.
func TestEventQueueCoalescesRefreshes(t *testing.T) {
	t.Parallel()
	m := newMetrics(prometheus.NewRegistry(), func() float64 { return 0 })
	var got []Event
	e := newEventQueue(func(ev Event) { got = append(got, ev) }, m)
	bs := stormBindings(1000)
	ev := func(k EventKind, b Binding) []Event { return []Event{{Kind: k, Binding: b}} }
	for i := range bs {
		e.push(ev(Registered, bs[i]))
	}
	for range 20 { // twenty refresh rounds while nothing is consumed
		for i := range bs {
			e.push(ev(Refreshed, bs[i]))
		}
	}
	if n := len(e.q); n != 2000 {
		t.Fatalf("%d events queued after 1,000 registrations and 20,000 refreshes, want 2,000", n)
	}
	if n := testutil.ToFloat64(m.eventsCoalesced); n != 19000 {
		t.Fatalf("coalesced %v, want 19000", n)
	}
	if n := testutil.ToFloat64(m.eventsQueued); n != 2000 {
		t.Fatalf("queued gauge %v, want 2000", n)
	}
	rebooted := bs[7]
	rebooted.CallID = "after-reboot"
	e.push(ev(Refreshed, rebooted))
	e.push(ev(Unregistered, bs[8]))
	e.push(ev(Refreshed, bs[8])) // news again after the unregistration
	if n := len(e.q); n != 2003 {
		t.Fatalf("%d queued, want 2003: a new Call-ID and what follows another kind are kept", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e.run(ctx) // delivers what is queued, then sees ctx done
	if len(got) != 2003 || got[2000].Binding.CallID != "after-reboot" || got[2001].Kind != Unregistered ||
		got[2002].Kind != Refreshed {
		t.Fatalf("delivered %d, tail %v", len(got), got[len(got)-3:])
	}
	// Consumed: the next refresh is news again.
	e.push(ev(Refreshed, bs[0]))
	if len(e.q) != 1 {
		t.Fatalf("a refresh after the queue drained was not queued")
	}
}

// Drains under steady load reuse the queue's two buffers instead of growing
// a new slice each time (the storm's garbage, issue 17), and a burst's large
// buffer is let go once the queue is small again, with the bindings it held.
func TestEventQueueBuffers(t *testing.T) { // not parallel: AllocsPerRun
	bs := stormBindings(5000)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		burst  int // events pushed and drained before the measured rounds
		round  int // events per measured round
		allocs float64
		maxCap int // largest buffer the queue may keep after the rounds
	}{
		{name: "steady", round: 100, allocs: 0, maxCap: 1024},
		{name: "after a burst", burst: 5000, round: 10, allocs: 0, maxCap: 1024},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMetrics(prometheus.NewRegistry(), func() float64 { return 0 })
			var delivered int
			e := newEventQueue(func(Event) { delivered++ }, m)
			fill := func(n int) {
				for i := range n {
					e.push([]Event{{Kind: Registered, Binding: bs[i]}})
				}
			}
			fill(tc.burst)
			e.run(cancelled)
			fill(tc.round) // warm-up: the buffers reach their size
			e.run(cancelled)
			if got := testing.AllocsPerRun(20, func() { fill(tc.round); e.run(cancelled) }); got != tc.allocs {
				t.Errorf("%v allocations per push and drain of %d events, want %v", got, tc.round, tc.allocs)
			}
			if want := tc.burst + 22*tc.round; delivered != want {
				t.Errorf("delivered %d events, want %d", delivered, want)
			}
			if c := max(cap(e.q), cap(e.spare)); c > tc.maxCap {
				t.Errorf("kept a buffer of %d events, want at most %d", c, tc.maxCap)
			}
			for _, ev := range e.spare[:cap(e.spare)] {
				if ev.Binding.AOR != "" {
					t.Fatalf("a drained buffer still holds a binding (%s)", ev.Binding.AOR)
				}
			}
		})
	}
}
