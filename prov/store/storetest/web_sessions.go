package storetest

import (
	"sort"
	"testing"
	"time"

	"hotdesk/prov"
)

func testWebSessions(t *testing.T, s prov.Store) {
	mk := func(key, name string, admin bool, created time.Time) prov.WebSession {
		w := prov.WebSession{Key: key, CSRF: "csrf-" + key, Admin: admin, Name: name, Created: created, Seen: created}
		must(t, s.CreateWebSession(ctx(t), &w))
		return w
	}
	a1 := mk("k-a1", "alice", false, T0)
	mk("k-a2", "alice", false, T0.Add(time.Minute))
	mk("k-adm", "alice", true, T0.Add(2*time.Minute)) // an admin named like a user is not a user's session
	wantErr(t, s.CreateWebSession(ctx(t), &prov.WebSession{Key: "k-a1", Name: "x", Created: T0}), prov.ErrConflict)
	got, err := s.GetWebSession(ctx(t), "k-a1")
	must(t, err)
	equal(t, "GetWebSession", got, a1)
	_, err = s.GetWebSession(ctx(t), "nope")
	wantErr(t, err, prov.ErrNotFound)
	if n, err := s.CountWebSessions(ctx(t)); err != nil || n != 3 {
		t.Fatalf("CountWebSessions = %d, %v; want 3", n, err)
	}

	// Seen moves forward only.
	must(t, s.TouchWebSession(ctx(t), "k-a1", T0.Add(10*time.Minute)))
	must(t, s.TouchWebSession(ctx(t), "k-a1", T0.Add(5*time.Minute)))
	if got, _ := s.GetWebSession(ctx(t), "k-a1"); !got.Seen.Equal(T0.Add(10 * time.Minute)) {
		t.Fatalf("seen %v after touches", got.Seen)
	}

	// The flash is taken once.
	must(t, s.SetWebSessionFlash(ctx(t), "k-a1", "Saved."))
	if ok, err := s.ClearWebSessionFlash(ctx(t), "k-a1", "Saved."); !ok || err != nil {
		t.Fatalf("ClearWebSessionFlash = %v, %v", ok, err)
	}
	if ok, err := s.ClearWebSessionFlash(ctx(t), "k-a1", "Saved."); ok || err != nil {
		t.Fatalf("second ClearWebSessionFlash = %v, %v; want false", ok, err)
	}

	// The softphone account: set, listed while live, cleared per user.
	sp := prov.WebSoftphone{Username: "web-x", UserID: 7, Number: "2001", HA1MD5: "m", HA1SHA256: "s",
		Expires: T0.Add(time.Hour)}
	must(t, s.SetWebSoftphone(ctx(t), "k-a1", sp))
	wantErr(t, s.SetWebSoftphone(ctx(t), "nope", sp), prov.ErrNotFound)
	live, err := s.ListWebSoftphones(ctx(t), T0)
	must(t, err)
	if len(live) != 1 || live[0].Key != "k-a1" {
		t.Fatalf("ListWebSoftphones = %+v", live)
	}
	equal(t, "softphone", live[0].Softphone, sp)
	if live, _ := s.ListWebSoftphones(ctx(t), T0.Add(time.Hour)); len(live) != 0 {
		t.Fatalf("expired softphone listed: %+v", live)
	}
	cleared, err := s.ClearWebSoftphones(ctx(t), 7)
	must(t, err)
	if len(cleared) != 1 || cleared[0].Softphone.Username != "web-x" {
		t.Fatalf("ClearWebSoftphones = %+v", cleared)
	}
	if live, _ := s.ListWebSoftphones(ctx(t), T0); len(live) != 0 {
		t.Fatalf("cleared softphone listed: %+v", live)
	}

	// A user's other sessions go, the kept one and the admin's stay.
	gone, err := s.DeleteUserWebSessions(ctx(t), "alice", "k-a1")
	must(t, err)
	if len(gone) != 1 || gone[0].Key != "k-a2" {
		t.Fatalf("DeleteUserWebSessions = %+v", gone)
	}

	// Expired: seen too long ago or created too long ago.
	must(t, s.TouchWebSession(ctx(t), "k-adm", T0.Add(40*time.Minute)))
	mk("k-b", "bob", false, T0.Add(20*time.Minute))
	mk("k-c", "carol", false, T0.Add(30*time.Minute))
	gone, err = s.PruneWebSessions(ctx(t), T0.Add(11*time.Minute), T0.Add(time.Minute))
	must(t, err)
	keys := []string{}
	for _, g := range gone {
		keys = append(keys, g.Key)
	}
	sort.Strings(keys)
	equal(t, "pruned", keys, []string{"k-a1"})
	gone, err = s.PruneWebSessions(ctx(t), T0, T0.Add(3*time.Minute))
	must(t, err)
	if len(gone) != 1 || gone[0].Key != "k-adm" {
		t.Fatalf("pruned by age %+v", gone)
	}

	old, err := s.DeleteOldestWebSession(ctx(t))
	must(t, err)
	if old.Key != "k-b" {
		t.Fatalf("oldest = %q, want k-b", old.Key)
	}
	w, err := s.DeleteWebSession(ctx(t), "k-c")
	must(t, err)
	if w.Name != "carol" {
		t.Fatalf("deleted %+v", w)
	}
	_, err = s.DeleteWebSession(ctx(t), "k-c")
	wantErr(t, err, prov.ErrNotFound)
	_, err = s.DeleteOldestWebSession(ctx(t))
	wantErr(t, err, prov.ErrNotFound)
}
