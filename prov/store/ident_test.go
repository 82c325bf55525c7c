package store

import (
	"testing"
	"time"

	"hotdesk/prov"
)

// Typed owners, doors and end reasons are stored with the spelling rows
// written before them have: "<kind>:<id>" and the bare names.
func TestIdentityEncodingUnchanged(t *testing.T) {
	s := open(t, t.TempDir())
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	at := time.UnixMilli(1_700_000_000_000)
	b := prov.Binding{AOR: "sip:1001@hq", Contact: "sip:1001@10.0.0.7", Owner: prov.SessionOwner("s1"), UpdatedAt: at}
	must(t, s.SaveBindings(ctx, []prov.Binding{b}, nil))
	c := prov.CallRecord{CallID: "c1", Owner: prov.DeviceOwner(3), Start: at}
	must(t, s.AddCallRecord(ctx, &c))
	u := &prov.User{Username: "alice", Kind: prov.KindPerson, Status: prov.StatusActive}
	must(t, s.CreateUser(ctx, u))
	d := &prov.Device{MAC: "0004f2000001", Kind: prov.DeviceManaged, Status: prov.DeviceNotDeployed}
	must(t, s.CreateDevice(ctx, d))
	sess := prov.Session{ID: "s1", UserID: u.ID, DeviceID: d.ID, Door: prov.DoorFeatureCode, StartedAt: at, LastActivity: at}
	must(t, s.CreateSession(ctx, &sess))
	must(t, s.EndSession(ctx, "s1", at.Add(time.Minute), prov.EndPhoneUnregister))

	var owner, callOwner, door, reason string
	must(t, s.c.r.QueryRowContext(ctx, `SELECT owner FROM bindings WHERE aor = 'sip:1001@hq'`).Scan(&owner))
	must(t, s.c.r.QueryRowContext(ctx, `SELECT owner FROM call_records WHERE call_id = 'c1'`).Scan(&callOwner))
	must(t, s.c.r.QueryRowContext(ctx, `SELECT door, end_reason FROM sessions WHERE id = 's1'`).Scan(&door, &reason))
	if owner != "session:s1" || callOwner != "device:3" || door != "feature_code" || reason != "phone_unregistered" {
		t.Fatalf("stored owner %q, call owner %q, door %q, end reason %q", owner, callOwner, door, reason)
	}

	// A row in the old spelling reads back typed.
	_, err := s.c.w.ExecContext(ctx, `UPDATE bindings SET owner = 'user:42' WHERE aor = 'sip:1001@hq'`)
	must(t, err)
	bs, err := s.ListBindings(ctx)
	must(t, err)
	if len(bs) != 1 || bs[0].Owner != prov.UserOwner(42) {
		t.Fatalf("bindings %+v", bs)
	}
	calls, err := s.ListCallRecords(ctx, 0, 0)
	must(t, err)
	if len(calls) != 1 || calls[0].Owner != prov.DeviceOwner(3) {
		t.Fatalf("calls %+v", calls)
	}
	got, err := s.GetSession(ctx, "s1")
	must(t, err)
	if got.Door != prov.DoorFeatureCode || got.EndReason != prov.EndPhoneUnregister {
		t.Fatalf("session %+v", got)
	}
}
