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
