package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
)

func testDevices(t *testing.T, s prov.Store) {
	site := prov.Site{Name: "hq"}
	must(t, s.CreateSite(ctx(t), &site))
	u := prov.User{Username: "alice"}
	must(t, s.CreateUser(ctx(t), &u))
	d := prov.Device{
		MAC: "0004f2000001", Vendor: "Polycom", Model: "VVX 450", Firmware: "6.4.0", SiteID: site.ID,
		AssignedUserID: u.ID, Kind: prov.DeviceManaged, Status: prov.DeviceDeployed, DeploymentPIN: "1234",
		SecurityPIN: "5678", LastSeen: T0, LastIP: "10.0.0.7", ProvUser: "PlcmSpIp", ProvPassword: "pw",
		SIPUser: "dev-1", SIPPassword: "devpw", Authorized: []prov.AuthorizedNumber{{Description: "Sec", Number: "1099"}},
		Params: map[string]string{"up.backlight": "on"}, CreatedAt: T0, UpdatedAt: T0,
	}
	must(t, s.CreateDevice(ctx(t), &d))
	got, err := s.GetDevice(ctx(t), d.MAC)
	must(t, err)
	equal(t, "GetDevice", got, d)
	got, err = s.GetDeviceByID(ctx(t), d.ID)
	must(t, err)
	equal(t, "GetDeviceByID", got, d)

	dup := prov.Device{MAC: d.MAC}
	wantErr(t, s.CreateDevice(ctx(t), &dup), prov.ErrConflict)
	orphan := prov.Device{MAC: "0004f2000099", AssignedUserID: 99999}
	wantErr(t, s.CreateDevice(ctx(t), &orphan), prov.ErrNotFound)
	_, err = s.GetDevice(ctx(t), "000000000000")
	wantErr(t, err, prov.ErrNotFound)

	d.AssignedUserID, d.Status, d.Params = 0, prov.DevicePending, nil
	must(t, s.UpdateDevice(ctx(t), &d))
	got, err = s.GetDeviceByID(ctx(t), d.ID)
	must(t, err)
	equal(t, "after UpdateDevice", got, d)

	for i, vendor := range []string{"Yealink", "Polycom", "Snom"} {
		x := prov.Device{MAC: fmt.Sprintf("0015650000%02d", i), Vendor: vendor, Kind: prov.DeviceThirdParty}
		must(t, s.CreateDevice(ctx(t), &x))
	}
	n, err := s.CountDevices(ctx(t))
	must(t, err)
	equal(t, "CountDevices", n, 4)
	list, total, err := s.ListDevices(ctx(t), prov.DeviceQuery{Search: "POLY"})
	must(t, err)
	if total != 2 || len(list) != 2 || list[0].MAC != "0004f2000001" || list[1].MAC != "001565000001" {
		t.Fatalf("ListDevices search = %d %+v", total, list)
	}
	list, total, err = s.ListDevices(ctx(t), prov.DeviceQuery{Offset: 1, Limit: 2})
	must(t, err)
	if total != 4 || len(list) != 2 || list[0].MAC != "001565000000" {
		t.Fatalf("ListDevices page = %d %+v", total, list)
	}
}

func testSessions(t *testing.T, s prov.Store) {
	u := prov.User{Username: "alice"}
	must(t, s.CreateUser(ctx(t), &u))
	d1 := prov.Device{MAC: "0004f2000001"}
	d2 := prov.Device{MAC: "0004f2000002"}
	must(t, s.CreateDevice(ctx(t), &d1))
	must(t, s.CreateDevice(ctx(t), &d2))
	s1 := prov.Session{ID: "s1", UserID: u.ID, DeviceID: d1.ID, Door: "phone", StartedAt: T0, LastActivity: T0,
		Persistent: true, SIPUser: "u-s1", SIPPassword: "pw"}
	s2 := prov.Session{ID: "s2", UserID: u.ID, DeviceID: d2.ID, Door: "portal", StartedAt: T0.Add(time.Minute),
		LastActivity: T0.Add(time.Minute)}
	must(t, s.CreateSession(ctx(t), &s1))
	must(t, s.CreateSession(ctx(t), &s2))
	wantErr(t, s.CreateSession(ctx(t), &prov.Session{ID: "s1", UserID: u.ID}), prov.ErrConflict)
	wantErr(t, s.CreateSession(ctx(t), &prov.Session{}), prov.ErrInvalid)
	wantErr(t, s.CreateSession(ctx(t), &prov.Session{ID: "bad", DeviceID: 99999}), prov.ErrNotFound)
	got, err := s.GetSession(ctx(t), "s1")
	must(t, err)
	equal(t, "GetSession", got, s1)
	_, err = s.GetSession(ctx(t), "nope")
	wantErr(t, err, prov.ErrNotFound)

	must(t, s.TouchSession(ctx(t), "s1", T0.Add(2*time.Minute)))
	got, err = s.GetSession(ctx(t), "s1")
	must(t, err)
	equal(t, "touched", got.LastActivity, T0.Add(2*time.Minute))
	must(t, s.EndSession(ctx(t), "s2", T0.Add(3*time.Minute), "logout"))
	wantErr(t, s.TouchSession(ctx(t), "s2", T0.Add(4*time.Minute)), prov.ErrNotFound)

	ids := func(q prov.SessionQuery) []string {
		ss, err := s.ListSessions(ctx(t), q)
		must(t, err)
		out := []string{}
		for _, x := range ss {
			out = append(out, x.ID)
		}
		return out
	}
	equal(t, "all", ids(prov.SessionQuery{}), []string{"s2", "s1"})
	equal(t, "active", ids(prov.SessionQuery{ActiveOnly: true}), []string{"s1"})
	equal(t, "by user", ids(prov.SessionQuery{UserID: u.ID, Limit: 1}), []string{"s2"})
	equal(t, "by device", ids(prov.SessionQuery{DeviceID: d2.ID}), []string{"s2"})
	equal(t, "by device active", ids(prov.SessionQuery{DeviceID: d2.ID, ActiveOnly: true}), []string{})
	ended, err := s.GetSession(ctx(t), "s2")
	must(t, err)
	if ended.Active() || !ended.EndedAt.Equal(T0.Add(3*time.Minute)) || ended.EndReason != "logout" {
		t.Fatalf("ended session = %+v", ended)
	}
}

func testEndSessionOnce(t *testing.T, s prov.Store) {
	must(t, s.CreateSession(ctx(t), &prov.Session{ID: "s", StartedAt: T0}))
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() { errs <- s.EndSession(ctx(t), "s", T0.Add(time.Duration(i+1)*time.Second), "race") })
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, prov.ErrNotFound):
			t.Fatalf("EndSession: %v", err)
		}
	}
	equal(t, "successful ends", ok, 1)
	wantErr(t, s.EndSession(ctx(t), "missing", T0, "x"), prov.ErrNotFound)
	wantErr(t, s.EndSession(ctx(t), "s", time.Time{}, "x"), prov.ErrInvalid)
}

func testBindings(t *testing.T, s prov.Store) {
	b1 := prov.Binding{AOR: "sip:1001@hq", Contact: "sip:1001@10.0.0.7:5060", Instance: "<urn:uuid:1>", RegID: "1",
		CallID: "c1", CSeq: 4000000000, Expires: T0.Add(time.Hour), Q: 0.5, Path: []string{"<sip:edge>"},
		Source: "udp:10.0.0.7:5060", Transport: "udp", UserAgent: "VVX", Owner: prov.DeviceOwner(1), Node: "n1", UpdatedAt: T0,
		AuthUser: "dev0004f2000001", DeviceID: 7}
	b2 := prov.Binding{AOR: "sip:1002@hq", Contact: "sip:1002@10.0.0.8", UpdatedAt: T0}
	must(t, s.SaveBindings(ctx(t), []prov.Binding{b1, b2}, nil))
	got, err := s.ListBindings(ctx(t))
	must(t, err)
	equal(t, "ListBindings", got, []prov.Binding{b1, b2})
	b1.CSeq, b1.Path, b1.AuthUser = 5, nil, "s1a2b3c4"
	must(t, s.SaveBindings(ctx(t), []prov.Binding{b1}, []prov.BindingKey{{AOR: b2.AOR, Contact: b2.Contact},
		{AOR: "sip:none", Contact: "x"}}))
	got, err = s.ListBindings(ctx(t))
	must(t, err)
	equal(t, "after upsert+delete", got, []prov.Binding{b1})
	must(t, s.SaveBindings(ctx(t), nil, nil))
}

func testMarkDeployed(t *testing.T, s prov.Store) {
	site := prov.Site{Name: "md"}
	must(t, s.CreateSite(ctx(t), &site))
	d := prov.Device{MAC: "0004f2aa0d01", Kind: prov.DeviceManaged, Status: prov.DeviceNotDeployed, SiteID: site.ID,
		LastIP: "10.0.0.1"}
	must(t, s.CreateDevice(ctx(t), &d))
	ok, err := s.MarkDeployed(ctx(t), d.ID, T0, "10.0.0.9")
	must(t, err)
	got, _ := s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "deployed", []any{ok, got.Status, got.LastIP, got.LastSeen}, []any{true, prov.DeviceDeployed, "10.0.0.9", T0})
	ok, err = s.MarkDeployed(ctx(t), d.ID, T0.Add(time.Second), "")
	must(t, err)
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "refresh keeps the address", []any{ok, got.LastIP, got.LastSeen}, []any{true, "10.0.0.9", T0.Add(time.Second)})
	p := prov.Device{MAC: "0004f2aa0d02", Kind: prov.DeviceManaged, Status: prov.DevicePending, SiteID: site.ID}
	must(t, s.CreateDevice(ctx(t), &p))
	ok, err = s.MarkDeployed(ctx(t), p.ID, T0, "10.0.0.8")
	must(t, err)
	got, _ = s.GetDeviceByID(ctx(t), p.ID)
	equal(t, "pending stays pending", []any{ok, got.Status}, []any{false, prov.DevicePending})
}

func testDeviceSignals(t *testing.T, s prov.Store) {
	_, err := s.DeviceSignals(ctx(t), 7)
	wantErr(t, err, prov.ErrNotFound)
	ds := prov.DeviceSignals{DeviceID: 7, SyncAt: T0, SyncFetchedAt: T0.Add(time.Millisecond),
		BootAt: T0.Add(2 * time.Millisecond), UpdatedAt: T0}
	must(t, s.PutDeviceSignals(ctx(t), ds))
	got, err := s.DeviceSignals(ctx(t), 7)
	must(t, err)
	equal(t, "signals", got, ds)
	reach := prov.Binding{AOR: "sip:1001@hq", Contact: "sip:1001@10.0.0.7:5062", Source: "10.0.0.7:40000",
		Transport: "UDP", Owner: prov.SessionOwner("s1"), Node: "10.0.0.1:5060", AuthUser: "s1a2b3c4", DeviceID: 7}
	ds = prov.DeviceSignals{DeviceID: 7, LineDownSession: "s1", LineDownAt: T0.Add(time.Second), Reach: &reach,
		UpdatedAt: T0.Add(time.Second)}
	must(t, s.PutDeviceSignals(ctx(t), ds))
	got, err = s.DeviceSignals(ctx(t), 7)
	must(t, err)
	equal(t, "signals replaced", got, ds)
	wantErr(t, s.PutDeviceSignals(ctx(t), prov.DeviceSignals{}), prov.ErrInvalid)
}

func testUploads(t *testing.T, s prov.Store) {
	put := func(owner, name, data string, keep int) int {
		t.Helper()
		v, err := s.PutUpload(ctx(t), prov.Upload{Owner: owner, Name: name, Data: []byte(data), CreatedAt: T0}, keep)
		must(t, err)
		return v
	}
	for i := 1; i <= 5; i++ {
		equal(t, "version", put("user:alice", "overrides.cfg", fmt.Sprint("v", i), 3), i)
	}
	equal(t, "other name starts at 1", put("user:alice", "contacts.xml", "c", 3), 1)
	equal(t, "other owner starts at 1", put("device:0004f2000001", "overrides.cfg", "d", 3), 1)
	latest, err := s.LatestUpload(ctx(t), "user:alice", "overrides.cfg")
	must(t, err)
	sum := sha256.Sum256([]byte("v5"))
	want := prov.Upload{Owner: "user:alice", Name: "overrides.cfg", Version: 5, Data: []byte("v5"),
		SHA256: hex.EncodeToString(sum[:]), Size: 2, CreatedAt: T0}
	equal(t, "LatestUpload", latest, want)
	_, err = s.LatestUpload(ctx(t), "user:alice", "nope")
	wantErr(t, err, prov.ErrNotFound)
	latests, err := s.LatestUploads(ctx(t), "user:alice", "overrides.cfg", "contacts.xml", "nope")
	must(t, err)
	var lg []string
	for _, u := range latests {
		lg = append(lg, fmt.Sprintf("%s@%d=%s", u.Name, u.Version, u.Data))
	}
	equal(t, "LatestUploads", lg, []string{"contacts.xml@1=c", "overrides.cfg@5=v5"})
	only, err := s.LatestUploads(ctx(t), "user:alice", "contacts.xml")
	must(t, err)
	equal(t, "LatestUploads of one name", len(only), 1)
	none, err := s.LatestUploads(ctx(t), "user:nobody", "overrides.cfg")
	must(t, err)
	equal(t, "LatestUploads of an owner without uploads", len(none), 0)
	_, err = s.LatestUploads(ctx(t), "user:alice", "a", "b", "c", "d", "e")
	wantErr(t, err, prov.ErrInvalid)
	list, err := s.ListUploads(ctx(t), "user:alice")
	must(t, err)
	var got []string
	for _, u := range list {
		got = append(got, fmt.Sprintf("%s@%d=%s", u.Name, u.Version, u.Data))
	}
	equal(t, "kept versions", got, []string{"contacts.xml@1=c", "overrides.cfg@5=v5", "overrides.cfg@4=v4", "overrides.cfg@3=v3"})
	equal(t, "keep 0 keeps all", put("user:bob", "f", "", 0), 1)
	equal(t, "keep 0 keeps all", put("user:bob", "f", "", 0), 2)
	list, err = s.ListUploads(ctx(t), "user:bob")
	must(t, err)
	equal(t, "bob versions", len(list), 2)
	equal(t, "empty data", len(list[0].Data), 0)
}

// testUploadsConcurrent: many writers of one (owner, name) end with
// consecutive versions, each whole.
func testUploadsConcurrent(t *testing.T, s prov.Store) {
	const writers, each = 8, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int]string{}
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf("writer %d item %d %0200d", w, i, w*100+i)
				v, err := s.PutUpload(ctx(t), prov.Upload{Owner: "user:x", Name: "f", Data: []byte(data)}, 1000)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if prev, dup := seen[v]; dup {
					t.Errorf("version %d returned twice (%q, %q)", v, prev, data)
				}
				seen[v] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	list, err := s.ListUploads(ctx(t), "user:x")
	must(t, err)
	equal(t, "stored versions", len(list), writers*each)
	sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
	for i, u := range list {
		sum := sha256.Sum256(u.Data)
		if u.Version != i+1 || string(u.Data) != seen[u.Version] || u.SHA256 != hex.EncodeToString(sum[:]) || u.Size != len(u.Data) {
			t.Fatalf("version %d: %+v (want data %q)", i+1, u, seen[i+1])
		}
	}
}

func testLeases(t *testing.T, s prov.Store) {
	l := prov.Lease{MAC: "0004f2000001", IP: "10.0.0.7", Hostname: "vvx", VendorClass: "Polycom", Expires: T0, State: "bound"}
	must(t, s.PutLease(ctx(t), l))
	l.IP = "10.0.0.9"
	must(t, s.PutLease(ctx(t), l))
	l0 := prov.Lease{MAC: "000000000001", State: "offered"}
	must(t, s.PutLease(ctx(t), l0))
	got, err := s.ListLeases(ctx(t))
	must(t, err)
	equal(t, "ListLeases", got, []prov.Lease{l0, l})
	must(t, s.DeleteLease(ctx(t), l.MAC))
	wantErr(t, s.DeleteLease(ctx(t), l.MAC), prov.ErrNotFound)
}

func testHistory(t *testing.T, s prov.Store) {
	c1 := prov.CallRecord{CallID: "a", Owner: prov.SessionOwner("s1"), UserID: 7, DeviceID: 3, SessionID: "s1", From: "1001",
		To: "1002", Route: "local", Result: 200, Start: T0, Answer: T0.Add(time.Second), End: T0.Add(time.Minute)}
	c2 := prov.CallRecord{CallID: "b", Owner: prov.DeviceOwner(3), DeviceID: 3, Locked: true, From: "1001", To: "911",
		Route: "emergency", Result: 486, Start: T0.Add(time.Hour)}
	must(t, s.AddCallRecord(ctx(t), &c1))
	must(t, s.AddCallRecord(ctx(t), &c2))
	if c1.ID == 0 || c2.ID == c1.ID {
		t.Fatalf("call record IDs %d %d", c1.ID, c2.ID)
	}
	calls, err := s.ListCallRecords(ctx(t), 7, 0)
	must(t, err)
	equal(t, "calls of user 7", calls, []prov.CallRecord{c1})
	calls, err = s.ListCallRecords(ctx(t), 0, 1)
	must(t, err)
	equal(t, "newest call", calls, []prov.CallRecord{c2})

	events := []prov.AuditEvent{
		{At: T0, Actor: "admin", Action: "user.create", Object: "user:alice", After: `{"a":1}`, Remote: "10.0.0.1"},
		{At: T0.Add(time.Minute), Actor: "admin", Action: "user.update", Object: "user:alice", Before: "x", After: "y"},
		{At: T0.Add(2 * time.Minute), Actor: "alice", Action: "login", Object: "device:1"},
	}
	for i := range events {
		must(t, s.AddAudit(ctx(t), &events[i]))
	}
	tests := []struct {
		name string
		q    prov.AuditQuery
		want []int
	}{
		{"all", prov.AuditQuery{}, []int{2, 1, 0}},
		{"actor", prov.AuditQuery{Actor: "admin"}, []int{1, 0}},
		{"action", prov.AuditQuery{Action: "login"}, []int{2}},
		{"object", prov.AuditQuery{Object: "user:alice", Limit: 1}, []int{1}},
		{"since", prov.AuditQuery{Since: T0.Add(time.Minute)}, []int{2, 1}},
		{"none", prov.AuditQuery{Actor: "nobody"}, nil},
	}
	for _, tc := range tests {
		got, err := s.ListAudit(ctx(t), tc.q)
		must(t, err)
		var want []prov.AuditEvent
		for _, i := range tc.want {
			want = append(want, events[i])
		}
		equal(t, "ListAudit "+tc.name, got, want)
	}
}

func testAdmins(t *testing.T, s prov.Store) {
	n, err := s.CountAdmins(ctx(t))
	must(t, err)
	equal(t, "no admins", n, 0)
	a := prov.Admin{Username: "admin", PasswordHash: "h1", CreatedAt: T0}
	must(t, s.CreateAdmin(ctx(t), &a))
	wantErr(t, s.CreateAdmin(ctx(t), &prov.Admin{Username: "admin"}), prov.ErrConflict)
	a.PasswordHash = "h2"
	must(t, s.UpdateAdmin(ctx(t), &a))
	got, err := s.GetAdmin(ctx(t), "admin")
	must(t, err)
	equal(t, "GetAdmin", got, a)
	_, err = s.GetAdmin(ctx(t), "root")
	wantErr(t, err, prov.ErrNotFound)
	wantErr(t, s.UpdateAdmin(ctx(t), &prov.Admin{ID: 999, Username: "x"}), prov.ErrNotFound)
	n, err = s.CountAdmins(ctx(t))
	must(t, err)
	equal(t, "one admin", n, 1)
	must(t, s.SetAdminUserColumns(ctx(t), a.ID, []string{"username", "email"}))
	got, err = s.GetAdmin(ctx(t), "admin")
	must(t, err)
	equal(t, "saved columns", got.UserColumns, []string{"username", "email"})
	must(t, s.SetAdminUserColumns(ctx(t), a.ID, nil))
	got, _ = s.GetAdmin(ctx(t), "admin")
	equal(t, "columns back to the defaults", got.UserColumns, []string(nil))
	wantErr(t, s.SetAdminUserColumns(ctx(t), 999, nil), prov.ErrNotFound)

	tok := prov.APIToken{Name: "ci", AdminID: a.ID, Hash: "abc", Prefix: "hdt_abcd", CreatedAt: T0,
		ExpiresAt: T0.Add(90 * 24 * time.Hour)}
	must(t, s.CreateToken(ctx(t), &tok))
	wantErr(t, s.CreateToken(ctx(t), &prov.APIToken{Name: "dup", AdminID: a.ID, Hash: "abc"}), prov.ErrConflict)
	wantErr(t, s.CreateToken(ctx(t), &prov.APIToken{Name: "orphan", AdminID: 999, Hash: "def"}), prov.ErrNotFound)
	gotTok, err := s.TokenByHash(ctx(t), "abc")
	must(t, err)
	equal(t, "TokenByHash", gotTok, tok)
	_, err = s.TokenByHash(ctx(t), "zzz")
	wantErr(t, err, prov.ErrNotFound)

	// Listing, last use and revocation.
	tok2 := prov.APIToken{Name: "backup", AdminID: a.ID, Hash: "def", Prefix: "hdt_defg", CreatedAt: T0.Add(time.Second),
		ExpiresAt: T0.Add(time.Hour)}
	must(t, s.CreateToken(ctx(t), &tok2))
	must(t, s.TouchToken(ctx(t), tok.ID, T0.Add(time.Minute)))
	tok.LastUsedAt = T0.Add(time.Minute)
	must(t, s.RevokeToken(ctx(t), tok2.ID, T0.Add(2*time.Minute)))
	must(t, s.RevokeToken(ctx(t), tok2.ID, T0.Add(3*time.Minute))) // the first revocation time stays
	tok2.RevokedAt = T0.Add(2 * time.Minute)
	list, err := s.ListTokens(ctx(t))
	must(t, err)
	equal(t, "ListTokens", list, []prov.APIToken{tok, tok2})
	gotTok, err = s.TokenByHash(ctx(t), "def")
	must(t, err)
	equal(t, "revoked TokenByHash", gotTok, tok2)
	wantErr(t, s.RevokeToken(ctx(t), 999, T0), prov.ErrNotFound)
	wantErr(t, s.TouchToken(ctx(t), 999, T0), prov.ErrNotFound)
}

func testTxRollback(t *testing.T, s prov.Store) {
	boom := errors.New("boom")
	err := s.WithTx(ctx(t), func(tx prov.Store) error {
		u := prov.User{Username: "alice"}
		must(t, tx.CreateUser(ctx(t), &u))
		must(t, tx.AssignNumber(ctx(t), "1001", u.ID))
		must(t, tx.SaveBindings(ctx(t), []prov.Binding{{AOR: "a", Contact: "c"}}, nil))
		if _, err := tx.PutUpload(ctx(t), prov.Upload{Owner: "user:alice", Name: "f"}, 1); err != nil {
			return err
		}
		// The transaction sees its own writes.
		if _, err := tx.GetUser(ctx(t), "alice"); err != nil {
			return err
		}
		return boom
	})
	wantErr(t, err, boom)
	n, err := s.CountUsers(ctx(t))
	must(t, err)
	equal(t, "users after rollback", n, 0)
	nums, err := s.AllNumbers(ctx(t))
	must(t, err)
	equal(t, "numbers after rollback", len(nums), 0)
	bs, err := s.ListBindings(ctx(t))
	must(t, err)
	equal(t, "bindings after rollback", len(bs), 0)
	ups, err := s.ListUploads(ctx(t), "user:alice")
	must(t, err)
	equal(t, "uploads after rollback", len(ups), 0)

	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic not propagated")
			}
		}()
		_ = s.WithTx(ctx(t), func(tx prov.Store) error {
			must(t, tx.CreateUser(ctx(t), &prov.User{Username: "panicky"}))
			panic("boom")
		})
	}()
	_, err = s.GetUser(ctx(t), "panicky")
	wantErr(t, err, prov.ErrNotFound)
}

func testTxCommitNested(t *testing.T, s prov.Store) {
	err := s.WithTx(ctx(t), func(tx prov.Store) error {
		must(t, tx.CreateUser(ctx(t), &prov.User{Username: "outer"}))
		return tx.WithTx(ctx(t), func(inner prov.Store) error {
			return inner.CreateUser(ctx(t), &prov.User{Username: "inner"})
		})
	})
	must(t, err)
	for _, name := range []string{"outer", "inner"} {
		_, err := s.GetUser(ctx(t), name)
		must(t, err)
	}
	// An error from the nested call fails the whole transaction.
	err = s.WithTx(ctx(t), func(tx prov.Store) error {
		must(t, tx.CreateUser(ctx(t), &prov.User{Username: "outer2"}))
		return tx.WithTx(ctx(t), func(inner prov.Store) error {
			return inner.CreateUser(ctx(t), &prov.User{Username: "outer"}) // conflict
		})
	})
	wantErr(t, err, prov.ErrConflict)
	_, err = s.GetUser(ctx(t), "outer2")
	wantErr(t, err, prov.ErrNotFound)
}

func testRecordings(t *testing.T, s prov.Store) {
	r1 := prov.Recording{UserID: 7, CallID: "a", Peer: "1002", Start: T0, DurationMS: 61000, Bytes: 1952044, File: "a.wav"}
	r2 := prov.Recording{UserID: 8, CallID: "b", Peer: "1001", Incoming: true, Start: T0.Add(time.Hour), DurationMS: 500, Bytes: 16044, File: "b.wav"}
	r3 := prov.Recording{UserID: 7, CallID: "c", Peer: "+4930123", Start: T0.Add(2 * time.Hour), File: "c.wav"}
	for _, r := range []*prov.Recording{&r1, &r2, &r3} {
		must(t, s.AddRecording(ctx(t), r))
	}
	if r1.ID == 0 || r2.ID == r1.ID || r3.ID == r2.ID {
		t.Fatalf("recording IDs %d %d %d", r1.ID, r2.ID, r3.ID)
	}
	dup := r1
	wantErr(t, s.AddRecording(ctx(t), &dup), prov.ErrConflict)
	wantErr(t, s.AddRecording(ctx(t), &prov.Recording{UserID: 7, Start: T0}), prov.ErrInvalid)
	got, err := s.ListRecordings(ctx(t), 7, 0)
	must(t, err)
	equal(t, "recordings of user 7", got, []prov.Recording{r3, r1})
	got, err = s.ListRecordings(ctx(t), 0, 2)
	must(t, err)
	equal(t, "newest two", got, []prov.Recording{r3, r2})
	one, err := s.GetRecording(ctx(t), r2.ID)
	must(t, err)
	equal(t, "GetRecording", one, r2)
	must(t, s.DeleteRecording(ctx(t), r2.ID))
	wantErr(t, s.DeleteRecording(ctx(t), r2.ID), prov.ErrNotFound)
	_, err = s.GetRecording(ctx(t), r2.ID)
	wantErr(t, err, prov.ErrNotFound)
}

func testRecordingsIn(t *testing.T, s prov.Store) {
	hq, branch := prov.Site{Name: "hq"}, prov.Site{Name: "branch"}
	must(t, s.CreateSite(ctx(t), &hq))
	must(t, s.CreateSite(ctx(t), &branch))
	ann, ben, cat := fullUser("ann", hq.ID), fullUser("ben", hq.ID), fullUser("cat", branch.ID)
	for _, u := range []*prov.User{&ann, &ben, &cat} {
		must(t, s.CreateUser(ctx(t), u))
	}
	must(t, s.AssignNumber(ctx(t), "2001", ann.ID))
	must(t, s.AssignNumber(ctx(t), "2002", ben.ID))
	must(t, s.AssignNumber(ctx(t), "2003", cat.ID))
	rec := func(u int64, peer, file string, at time.Duration) prov.Recording {
		r := prov.Recording{UserID: u, CallID: file, Peer: peer, Start: T0.Add(at), DurationMS: 1000, Bytes: 9, File: file}
		must(t, s.AddRecording(ctx(t), &r))
		return r
	}
	a1 := rec(ann.ID, "9000", "a1.wav", 0)
	b1 := rec(ben.ID, "9001", "b1.wav", time.Minute)
	c1 := rec(cat.ID, "2001", "c1.wav", 2*time.Minute)
	c2 := rec(cat.ID, "9002", "c2.wav", 3*time.Minute)
	gone := rec(99999, "9003", "gone.wav", 4*time.Minute) // its user is no more
	ids := func(xs []prov.ScopedRecording) []int64 {
		out := []int64{}
		for _, x := range xs {
			out = append(out, x.ID)
		}
		return out
	}
	list := func(sc prov.RecordingScope) []prov.ScopedRecording {
		got, err := s.ListRecordingsIn(ctx(t), sc)
		must(t, err)
		return got
	}
	equal(t, "nothing in scope", ids(list(prov.RecordingScope{})), []int64{})
	equal(t, "own", ids(list(prov.RecordingScope{UserID: ann.ID})), []int64{a1.ID})
	equal(t, "site hq", ids(list(prov.RecordingScope{SiteID: hq.ID})), []int64{b1.ID, a1.ID})
	equal(t, "numbers 2003 and 9001 (user or peer)", ids(list(prov.RecordingScope{Numbers: []string{"2003", "9001"}})),
		[]int64{c2.ID, c1.ID, b1.ID})
	equal(t, "all", ids(list(prov.RecordingScope{All: true})), []int64{gone.ID, c2.ID, c1.ID, b1.ID, a1.ID})
	equal(t, "page 2 of 2", ids(list(prov.RecordingScope{All: true, Offset: 2, Limit: 2})), []int64{c1.ID, b1.ID})
	equal(t, "offset alone", ids(list(prov.RecordingScope{All: true, Offset: 4})), []int64{a1.ID})
	got := list(prov.RecordingScope{UserID: ann.ID, Numbers: []string{"2001"}})
	equal(t, "own or by ann's number", ids(got), []int64{c1.ID, a1.ID})
	want := prov.ScopedRecording{Recording: c1, Owner: "cat", OwnerName: "First cat Last", OwnerSite: branch.ID, ByNumber: true}
	equal(t, "cat's, found by peer 2001", got[0], want)
	equal(t, "ann's own, by her number", got[1].ByNumber, true)
	all := list(prov.RecordingScope{All: true})
	equal(t, "a gone user's", all[0], prov.ScopedRecording{Recording: gone})
}
