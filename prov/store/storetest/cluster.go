package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"hotdesk/prov"
)

func cluster(t *testing.T, s prov.Store) prov.ClusterStore {
	t.Helper()
	c, ok := s.(prov.ClusterStore)
	if !ok {
		t.Fatalf("%T does not implement prov.ClusterStore", s)
	}
	return c
}

// testHeldBindings: each node's bindings carry it; a node's delete leaves
// a binding another node took over; an older write does not undo a newer.
func testHeldBindings(t *testing.T, s prov.Store) {
	c := cluster(t, s)
	now := time.Now().Truncate(time.Millisecond).UTC()
	a := prov.Binding{AOR: "sip:1001@hq", Contact: "sip:1001@10.0.0.7:5060", Expires: now.Add(time.Hour),
		UpdatedAt: now, Holder: "a", DeviceID: 3}
	b := prov.Binding{AOR: "sip:1002@hq", Contact: "sip:1002@10.0.0.8", Expires: now.Add(time.Hour),
		UpdatedAt: now, Holder: "b", DeviceID: 4}
	gone := prov.Binding{AOR: "sip:1001@hq", Contact: "sip:1001@10.0.0.9", Expires: now.Add(-time.Second),
		UpdatedAt: now, Holder: "a"}
	must(t, s.SaveBindings(ctx(t), []prov.Binding{a, b, gone}, nil))
	held, err := c.HeldBindings(ctx(t), "a")
	must(t, err)
	equal(t, "held by a", held, []prov.Binding{a, gone})
	live, err := c.AORBindings(ctx(t), a.AOR, now)
	must(t, err)
	equal(t, "live of 1001", live, []prov.Binding{a})
	dev, err := c.LiveDeviceBindings(ctx(t), 4, now)
	must(t, err)
	equal(t, "bindings of device 4", dev, []prov.Binding{b})

	// The phone moves to b: b's write wins, a's older refresh does not.
	moved := a
	moved.Holder, moved.UpdatedAt = "b", now.Add(time.Second)
	must(t, s.SaveBindings(ctx(t), []prov.Binding{moved}, nil))
	must(t, s.SaveBindings(ctx(t), []prov.Binding{a}, nil))
	live, err = c.AORBindings(ctx(t), a.AOR, now)
	must(t, err)
	equal(t, "after the move", live, []prov.Binding{moved})
	// a letting go of it deletes nothing; b's delete does.
	must(t, s.SaveBindings(ctx(t), nil, []prov.BindingKey{{AOR: a.AOR, Contact: a.Contact, Holder: "a"}}))
	live, _ = c.AORBindings(ctx(t), a.AOR, now)
	equal(t, "a's delete", live, []prov.Binding{moved})
	must(t, s.SaveBindings(ctx(t), nil, []prov.BindingKey{{AOR: a.AOR, Contact: a.Contact, Holder: "b"}}))
	live, _ = c.AORBindings(ctx(t), a.AOR, now)
	equal(t, "b's delete", len(live), 0)
}

// testLeaseAddressOnce: one bound lease per address; an expired one gives
// the address up.
func testLeaseAddressOnce(t *testing.T, s prov.Store) {
	later := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	must(t, s.PutLease(ctx(t), prov.Lease{MAC: "0004f2000001", IP: "10.0.0.7", Expires: later, State: "bound"}))
	wantErr(t, s.PutLease(ctx(t), prov.Lease{MAC: "0004f2000002", IP: "10.0.0.7", Expires: later, State: "bound"}),
		prov.ErrConflict)
	// The holder renewing is no conflict; another address is none either.
	must(t, s.PutLease(ctx(t), prov.Lease{MAC: "0004f2000001", IP: "10.0.0.7", Expires: later, State: "bound"}))
	must(t, s.PutLease(ctx(t), prov.Lease{MAC: "0004f2000002", IP: "10.0.0.8", Expires: later, State: "bound"}))
	// Expired, the address goes to the next client.
	must(t, s.PutLease(ctx(t), prov.Lease{MAC: "0004f2000003", IP: "10.0.0.9", Expires: T0, State: "bound"}))
	must(t, s.PutLease(ctx(t), prov.Lease{MAC: "0004f2000004", IP: "10.0.0.9", Expires: later, State: "bound"}))
	ls, err := s.ListLeases(ctx(t))
	must(t, err)
	if len(ls) != 3 || ls[2].MAC != "0004f2000004" {
		t.Fatalf("leases %+v, want the expired holder of 10.0.0.9 replaced", ls)
	}
}

// testClusterLockAndNotify: on a shared store a held lock excludes another
// taker and notifications reach a listener, which resyncs first; on a
// single-node store both are no-ops that never block.
func testClusterLockAndNotify(t *testing.T, s prov.Store) {
	c := cluster(t, s)
	release, err := c.Lock(ctx(t), "user:1", "device:2")
	must(t, err)
	if c.Clustered() {
		short, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
		_, err := c.Lock(short, "device:2")
		cancel()
		if err == nil {
			t.Fatal("a second Lock of a held name succeeded")
		}
	}
	release()
	again, err := c.Lock(ctx(t), "device:2")
	must(t, err)
	again()

	if !c.Clustered() {
		must(t, c.Notify(ctx(t), "x"))
		return
	}
	lctx, stop := context.WithCancel(ctx(t))
	got := make(chan string, 4)
	synced := make(chan struct{}, 4)
	done := make(chan error, 1)
	go func() {
		done <- c.Listen(lctx, func(p string) { got <- p }, func(context.Context) error {
			synced <- struct{}{}
			return nil
		})
	}()
	select {
	case <-synced:
	case <-time.After(10 * time.Second):
		t.Fatal("Listen never resynced")
	}
	must(t, c.Notify(ctx(t), "session_ended|abc"))
	select {
	case p := <-got:
		equal(t, "payload", p, "session_ended|abc")
	case <-time.After(10 * time.Second):
		t.Fatal("notification not delivered")
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
