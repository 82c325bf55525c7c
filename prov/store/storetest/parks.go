package storetest

import (
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
)

// testParkSlots: a slot is claimed once across nodes; the holder may claim
// again; a stale row is taken over; releases free only the holder's rows.
func testParkSlots(t *testing.T, s prov.Store) {
	site := prov.Site{Name: "hq"}
	must(t, s.CreateSite(ctx(t), &site))
	a := prov.ParkedCall{Slot: "s1p1", SiteID: site.ID, Node: "a", Addr: "10.0.0.1:5060", ParkedAt: T0}
	_, err := s.GetParkSlot(ctx(t), a.Slot)
	wantErr(t, err, prov.ErrNotFound)
	stale := T0.Add(-10 * time.Minute)
	must(t, s.ClaimParkSlot(ctx(t), a, stale, time.Time{}))
	got, err := s.GetParkSlot(ctx(t), a.Slot)
	must(t, err)
	equal(t, "GetParkSlot", got, a)

	b := prov.ParkedCall{Slot: a.Slot, SiteID: site.ID, Node: "b", Addr: "10.0.0.2:5060", ParkedAt: T0.Add(time.Second)}
	wantErr(t, s.ClaimParkSlot(ctx(t), b, stale, time.Time{}), prov.ErrConflict)
	got, err = s.GetParkSlot(ctx(t), a.Slot)
	must(t, err)
	equal(t, "after another node's refused claim", got, a)
	again := a
	again.ParkedAt = T0.Add(2 * time.Second)
	must(t, s.ClaimParkSlot(ctx(t), again, stale, time.Time{})) // the holder's own, after a lost release

	must(t, s.ReleaseParkSlot(ctx(t), a.Slot, "b")) // not b's: kept
	if _, err := s.GetParkSlot(ctx(t), a.Slot); err != nil {
		t.Fatalf("another node's release freed the slot: %v", err)
	}
	// A node that died: its row older than the park timeout is taken over.
	must(t, s.ClaimParkSlot(ctx(t), b, again.ParkedAt.Add(time.Millisecond), time.Time{}))
	got, err = s.GetParkSlot(ctx(t), a.Slot)
	must(t, err)
	equal(t, "stale row taken over", got, b)
	must(t, s.ReleaseParkSlot(ctx(t), b.Slot, "b"))
	_, err = s.GetParkSlot(ctx(t), b.Slot)
	wantErr(t, err, prov.ErrNotFound)

	// A restarted node frees its rows, not the others'.
	for i, n := range []string{"a", "a", "b"} {
		must(t, s.ClaimParkSlot(ctx(t), prov.ParkedCall{Slot: "s1p" + string(rune('5'+i)), SiteID: site.ID, Node: n,
			ParkedAt: T0}, stale, time.Time{}))
	}
	must(t, s.ReleaseNodeParkSlots(ctx(t), "a"))
	for slot, want := range map[string]error{"s1p5": prov.ErrNotFound, "s1p6": prov.ErrNotFound, "s1p7": nil} {
		_, err := s.GetParkSlot(ctx(t), slot)
		wantErr(t, err, want)
	}

	// Nodes racing for one free slot: exactly one wins.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.ClaimParkSlot(ctx(t), prov.ParkedCall{Slot: "s1p9", SiteID: site.ID,
				Node: "n" + string(rune('0'+i)), ParkedAt: T0}, stale, time.Time{})
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		default:
			wantErr(t, err, prov.ErrConflict)
		}
	}
	if won != 1 {
		t.Fatalf("%d nodes claimed one slot at once, want 1", won)
	}

	// Heartbeats: a slot held by a node seen since deadBefore is kept, by
	// one silent since is taken over at once; a node never seen is judged
	// by the park timeout alone.
	dead := T0.Add(-30 * time.Second)
	for _, n := range []struct {
		node string
		seen time.Time
	}{{"alive", T0.Add(-10 * time.Second)}, {"silent", T0.Add(-time.Minute)}} {
		must(t, s.TouchNode(ctx(t), n.node, n.seen))
	}
	must(t, s.TouchNode(ctx(t), "alive", T0.Add(-20*time.Second))) // older: ignored
	for i, tc := range []struct {
		holder string
		want   error
	}{{"alive", prov.ErrConflict}, {"silent", nil}, {"never-seen", prov.ErrConflict}} {
		slot := "s1q" + string(rune('1'+i))
		must(t, s.ClaimParkSlot(ctx(t), prov.ParkedCall{Slot: slot, SiteID: site.ID, Node: tc.holder, ParkedAt: T0}, stale, dead))
		held, err := s.GetParkSlot(ctx(t), slot)
		must(t, err)
		if wantSeen := map[string]time.Time{"alive": T0.Add(-10 * time.Second), "silent": T0.Add(-time.Minute)}[tc.holder]; !held.NodeSeen.Equal(wantSeen) {
			t.Fatalf("slot of %s: node seen %v, want %v", tc.holder, held.NodeSeen, wantSeen)
		}
		wantErr(t, s.ClaimParkSlot(ctx(t), prov.ParkedCall{Slot: slot, SiteID: site.ID, Node: "taker", ParkedAt: T0.Add(time.Second)},
			stale, dead), tc.want)
	}
}
