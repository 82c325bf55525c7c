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
		}, nil)
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

// testLoginState: the login's reads (the user, the active sessions of the
// user or on the phone, the site), with and without the locks; a user gone
// is ErrNotFound, a site gone a zero Site. The locks of LockLoginState are
// held until its release.
func testLoginState(t *testing.T, s prov.Store) {
	site := prov.Site{Name: "hq"}
	must(t, s.CreateSite(ctx(t), &site))
	u, v := prov.User{Username: "alice", SiteID: site.ID}, prov.User{Username: "bob"}
	must(t, s.CreateUser(ctx(t), &u))
	must(t, s.CreateUser(ctx(t), &v))
	d1, d2, d3 := prov.Device{MAC: "0004f2000001"}, prov.Device{MAC: "0004f2000002"}, prov.Device{MAC: "0004f2000003"}
	for _, d := range []*prov.Device{&d1, &d2, &d3} {
		must(t, s.CreateDevice(ctx(t), d))
	}
	add := func(id string, user, dev int64, at time.Time) {
		must(t, s.CreateSession(ctx(t), &prov.Session{ID: id, UserID: user, DeviceID: dev, Door: "api", StartedAt: at}))
	}
	add("a-d2", u.ID, d2.ID, T0)
	add("b-d1", v.ID, d1.ID, T0.Add(time.Second))
	add("b-d3", v.ID, d3.ID, T0.Add(2*time.Second))
	add("a-d3-ended", u.ID, d3.ID, T0.Add(3*time.Second))
	must(t, s.EndSession(ctx(t), "a-d3-ended", T0.Add(4*time.Second), "logout"))
	ids := func(st prov.LoginState) []string {
		out := []string{}
		for _, x := range st.Sessions {
			out = append(out, x.ID)
		}
		return out
	}
	c := cluster(t, s)
	for _, locked := range []bool{false, true} {
		var st prov.LoginState
		var err error
		release := func() {}
		if locked {
			release, st, err = c.LockLoginState(ctx(t), []string{"user:a", "device:1"}, u.ID, d1.ID, site.ID)
		} else {
			st, err = s.LoginState(ctx(t), u.ID, d1.ID, site.ID)
		}
		must(t, err)
		equal(t, "user", st.User.Username, "alice")
		equal(t, "site", st.Site.Name, "hq")
		equal(t, "sessions of alice or on d1, newest first", ids(st), []string{"b-d1", "a-d2"})
		if locked && c.Clustered() {
			short, cancel := context.WithTimeout(ctx(t), 300*time.Millisecond)
			_, err := c.Lock(short, "device:1")
			cancel()
			if err == nil {
				t.Fatal("LockLoginState's lock was not held")
			}
		}
		release()
	}
	again, err := c.Lock(ctx(t), "user:a", "device:1")
	must(t, err)
	again()
	st, err := s.LoginState(ctx(t), u.ID, d3.ID, 0)
	must(t, err)
	equal(t, "no site", st.Site.ID, int64(0))
	_, err = s.LoginState(ctx(t), 99999, d1.ID, site.ID)
	wantErr(t, err, prov.ErrNotFound)
	_, _, err = c.LockLoginState(ctx(t), []string{"user:x"}, 99999, d1.ID, site.ID)
	wantErr(t, err, prov.ErrNotFound)
	// The failed one let go of its lock.
	free, err := c.Lock(ctx(t), "user:x")
	must(t, err)
	free()
}

// testStartSession: the session and its audit event are written together,
// or neither (a session ID taken).
func testStartSession(t *testing.T, s prov.Store) {
	u, d := prov.User{Username: "alice"}, prov.Device{MAC: "0004f2000001"}
	must(t, s.CreateUser(ctx(t), &u))
	must(t, s.CreateDevice(ctx(t), &d))
	sess := prov.Session{ID: "s1", UserID: u.ID, DeviceID: d.ID, Door: "api", StartedAt: T0, SIPUser: "sx", SIPPassword: "pw"}
	ev := prov.AuditEvent{At: T0, Actor: "admin:root", Action: "session.login", Object: "session:s1", After: `{"a":1}`, Remote: "10.0.0.1"}
	must(t, s.StartSession(ctx(t), &sess, &ev))
	if ev.ID == 0 {
		t.Fatal("audit event ID not set")
	}
	got, err := s.GetSession(ctx(t), "s1")
	must(t, err)
	equal(t, "session", got, sess)
	evs, err := s.ListAudit(ctx(t), prov.AuditQuery{Object: "session:s1"})
	must(t, err)
	equal(t, "audit events", len(evs), 1)
	equal(t, "audit event", evs[0].After, `{"a":1}`)
	dup := prov.Session{ID: "s1", UserID: u.ID, DeviceID: d.ID, Door: "api"}
	wantErr(t, s.StartSession(ctx(t), &dup, &prov.AuditEvent{Actor: "x", Action: "session.login", Object: "session:dup"}),
		prov.ErrConflict)
	evs, err = s.ListAudit(ctx(t), prov.AuditQuery{Object: "session:dup"})
	must(t, err)
	equal(t, "audit of the refused session", len(evs), 0)
}

// testMarkDeviceSync: only the check-sync marks change; a new row gets
// them with the rest zero.
func testMarkDeviceSync(t *testing.T, s prov.Store) {
	must(t, s.MarkDeviceSync(ctx(t), 8, T0, time.Time{}))
	got, err := s.DeviceSignals(ctx(t), 8)
	must(t, err)
	if !got.SyncAt.Equal(T0) || !got.SyncFetchedAt.IsZero() || !got.BootAt.IsZero() || got.Reach != nil {
		t.Fatalf("new signals = %+v", got)
	}
	reach := prov.Binding{AOR: "sip:1001@hq", Contact: "sip:1001@10.0.0.7:5062", Source: "10.0.0.7:40000",
		Transport: "UDP", Owner: prov.SessionOwner("s1"), AuthUser: "s1a2b3c4", DeviceID: 8}
	must(t, s.PutDeviceSignals(ctx(t), prov.DeviceSignals{DeviceID: 8, SyncAt: T0, BootAt: T0.Add(time.Second),
		LineDownSession: "s1", LineDownAt: T0.Add(2 * time.Second), Reach: &reach, UpdatedAt: T0}))
	must(t, s.MarkDeviceSync(ctx(t), 8, T0.Add(time.Minute), T0.Add(time.Minute)))
	got, err = s.DeviceSignals(ctx(t), 8)
	must(t, err)
	if !got.SyncAt.Equal(T0.Add(time.Minute)) || !got.SyncFetchedAt.Equal(T0.Add(time.Minute)) ||
		!got.BootAt.Equal(T0.Add(time.Second)) || got.LineDownSession != "s1" || got.Reach == nil || got.Reach.AuthUser != "s1a2b3c4" {
		t.Fatalf("marked signals = %+v", got)
	}
	wantErr(t, s.MarkDeviceSync(ctx(t), 0, T0, T0), prov.ErrInvalid)
}
