package storetest

import (
	"testing"
	"time"

	"hotdesk/prov"
)

// testNativeLogouts: one mark per (device, user), replaced by a later one;
// clearing a device forgets its marks only; pruning forgets the old ones.
func testNativeLogouts(t *testing.T, s prov.Store) {
	_, err := s.NativeLogoutAt(ctx(t), 7, 1)
	wantErr(t, err, prov.ErrNotFound)
	must(t, s.PutNativeLogout(ctx(t), 7, 1, T0))
	must(t, s.PutNativeLogout(ctx(t), 7, 2, T0))
	must(t, s.PutNativeLogout(ctx(t), 8, 1, T0.Add(time.Minute)))
	must(t, s.PutNativeLogout(ctx(t), 7, 1, T0.Add(time.Second)))
	at, err := s.NativeLogoutAt(ctx(t), 7, 1)
	must(t, err)
	equal(t, "replaced mark", at, T0.Add(time.Second))
	must(t, s.ClearNativeLogouts(ctx(t), 7))
	must(t, s.ClearNativeLogouts(ctx(t), 7)) // nothing left: no error
	for _, u := range []int64{1, 2} {
		_, err = s.NativeLogoutAt(ctx(t), 7, u)
		wantErr(t, err, prov.ErrNotFound)
	}
	at, err = s.NativeLogoutAt(ctx(t), 8, 1)
	must(t, err)
	equal(t, "other device's mark", at, T0.Add(time.Minute))
	must(t, s.PutNativeLogout(ctx(t), 9, 1, T0))
	must(t, s.PruneNativeLogouts(ctx(t), T0.Add(time.Second)))
	_, err = s.NativeLogoutAt(ctx(t), 9, 1)
	wantErr(t, err, prov.ErrNotFound)
	if _, err = s.NativeLogoutAt(ctx(t), 8, 1); err != nil {
		t.Fatalf("a mark after the cut was pruned: %v", err)
	}
	wantErr(t, s.PutNativeLogout(ctx(t), 0, 1, T0), prov.ErrInvalid)
}

// testHeldSyncs: a node's held check-sync is replaced by its next one,
// read back whole (captured lines with their digest usernames and
// passwords), shows in the device's signals, and is taken once: by its
// node, or by any node taking every node's.
func testHeldSyncs(t *testing.T, s prov.Store) {
	reach := prov.Binding{AOR: "sip:1001@hq", Contact: "sip:1001@10.0.0.7:5062", Source: "10.0.0.7:40000",
		Transport: "UDP", Owner: prov.SessionOwner("s1"), Node: "10.0.0.1:5060", AuthUser: "s1a2b3c4", DeviceID: 7,
		Holder: "n1"}
	must(t, s.PutDeviceSignals(ctx(t), prov.DeviceSignals{DeviceID: 7, SyncAt: T0, UpdatedAt: T0}))
	sig, err := s.DeviceSignals(ctx(t), 7)
	must(t, err)
	equal(t, "no held check-sync", sig.HeldSync, false)
	must(t, s.HoldSync(ctx(t), prov.HeldSync{DeviceID: 7, Node: "n1", Due: T0}))
	h1 := prov.HeldSync{DeviceID: 7, Node: "n1", Due: T0.Add(time.Second),
		Targets: []prov.HeldTarget{{Binding: reach, Password: "pw1"}}, Secrets: map[string]string{"s1a2b3c4": "pw1"}}
	must(t, s.HoldSync(ctx(t), h1))
	h2 := prov.HeldSync{DeviceID: 7, Node: "n2", Due: T0.Add(2 * time.Second)}
	must(t, s.HoldSync(ctx(t), h2))
	must(t, s.HoldSync(ctx(t), prov.HeldSync{DeviceID: 8, Node: "n1", Due: T0}))
	sig, err = s.DeviceSignals(ctx(t), 7)
	must(t, err)
	equal(t, "held check-sync in the signals", sig.HeldSync, true)
	mine, err := s.HeldSyncsOf(ctx(t), "n1")
	must(t, err)
	if len(mine) != 2 {
		t.Fatalf("n1 holds %+v, want two", mine)
	}
	equal(t, "n1's check-sync for 7", mine[1], h1)
	got, err := s.TakeHeldSyncs(ctx(t), 7, "n2")
	must(t, err)
	equal(t, "n2's taken", got, []prov.HeldSync{h2})
	got, err = s.TakeHeldSyncs(ctx(t), 7, "n2")
	must(t, err)
	equal(t, "n2's taken twice", len(got), 0)
	must(t, s.HoldSync(ctx(t), h2))
	got, err = s.TakeHeldSyncs(ctx(t), 7, "")
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("every node's taken: %+v", got)
	}
	sig, err = s.DeviceSignals(ctx(t), 7)
	must(t, err)
	equal(t, "none held after the take", sig.HeldSync, false)
	must(t, s.PruneHeldSyncs(ctx(t), T0.Add(time.Millisecond)))
	got, err = s.TakeHeldSyncs(ctx(t), 8, "")
	must(t, err)
	equal(t, "pruned", len(got), 0)
	wantErr(t, s.HoldSync(ctx(t), prov.HeldSync{Node: "n1", Due: T0}), prov.ErrInvalid)
}
