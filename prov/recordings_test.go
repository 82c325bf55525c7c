package prov_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestRecordingsRightsAndBudget: only users with RecordCalls are recorded;
// a user replays (Read) and downloads (Write) only their own recordings;
// retention and the byte budget delete the oldest files and rows.
func TestRecordingsRightsAndBudget(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	dir := t.TempDir()
	recs, err := prov.NewRecordings(prov.RecordingsConfig{Dir: dir, Retention: 48 * time.Hour, MaxBytes: 3000}, f.st, nil,
		slog.New(slog.DiscardHandler), f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := f.st.GetUser(ctx, "alice")
	bob, _ := f.st.GetUser(ctx, "bob")
	owner := "browser:" + itoa(alice.ID) + ".tag"
	if _, ok := recs.Records(ctx, owner, "1002"); ok {
		t.Fatal("recorded without RecordCalls")
	}
	alice.Portal.RecordCalls, alice.Portal.Recordings = true, prov.AccessRead
	if err := f.st.UpdateUser(ctx, &alice); err != nil {
		t.Fatal(err)
	}
	if u, ok := recs.Records(ctx, owner, "1002"); !ok || u.ID != alice.ID {
		t.Fatalf("Records(%s) = %v %v", owner, u.Username, ok)
	}
	if _, ok := recs.Records(ctx, "session:"+itoa(alice.ID), "1002"); ok {
		t.Fatal("a desk phone line was recorded on the bridge")
	}
	add := func(u prov.User, size int) prov.Recording {
		t.Helper()
		name, path := recs.NewFile(u)
		if err := os.WriteFile(path, make([]byte, size), 0o640); err != nil {
			t.Fatal(err)
		}
		r := prov.Recording{UserID: u.ID, CallID: name, Peer: "1002", Start: f.clk.now(), Bytes: int64(size), File: name}
		if err := recs.Finished(ctx, r); err != nil {
			t.Fatal(err)
		}
		f.clk.add(time.Hour)
		list, _ := f.st.ListRecordings(ctx, u.ID, 1)
		return list[0]
	}
	old := add(alice, 1000)
	mid := add(alice, 1000)
	other := add(bob, 500)
	// Read replays her own, not bob's, and does not download.
	if _, fh, err := recs.Open(ctx, alice, mid.ID, false, prov.Actor{Name: "user:alice"}); err != nil {
		t.Fatalf("replay own: %v", err)
	} else {
		fh.Close()
	}
	if _, _, err := recs.Open(ctx, alice, mid.ID, true, prov.Actor{}); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("download with Read = %v, want ErrDenied", err)
	}
	if _, _, err := recs.Open(ctx, alice, other.ID, false, prov.Actor{}); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("replay bob's = %v, want ErrNotFound", err)
	}
	if _, _, err := recs.List(ctx, bob, 0, 50); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("List without access = %v", err)
	}
	// The budget (3000 bytes): a 1000-byte recording more pushes the oldest out.
	newest := add(alice, 1000)
	if _, err := os.Stat(filepath.Join(dir, old.File)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the oldest file survived the budget: %v", err)
	}
	if _, err := f.st.GetRecording(ctx, old.ID); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("the oldest row survived the budget: %v", err)
	}
	// Retention (48 h): two days on, everything but the newest goes.
	f.clk.add(46*time.Hour + time.Minute)
	add(bob, 10)
	all, _ := f.st.ListRecordings(ctx, 0, 0)
	if len(all) != 2 || all[1].ID != newest.ID {
		t.Fatalf("after retention: %+v, want the newest two", all)
	}
}

// TestRecordingsPerNumber: the admin's recorded numbers record a bridged
// call when the softphone user has one of them or the other party is one,
// whatever the user's own flag.
func TestRecordingsPerNumber(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	recs, err := prov.NewRecordings(prov.RecordingsConfig{Dir: t.TempDir(), Numbers: []string{"2002", "5555"}}, f.st, nil,
		slog.New(slog.DiscardHandler), f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := f.st.GetUser(ctx, "alice") // 2001
	bob, _ := f.st.GetUser(ctx, "bob")     // 2002
	for _, tc := range []struct {
		name  string
		user  prov.User
		peer  string
		wantR bool
	}{
		{"neither", alice, "9000", false},
		{"the peer is recorded", alice, "5555", true},
		{"the user's own number is", bob, "9000", true},
		{"no peer, not theirs", alice, "", false},
	} {
		u, ok := recs.Records(ctx, "browser:"+itoa(tc.user.ID)+".t", tc.peer)
		if ok != tc.wantR || (ok && u.ID != tc.user.ID) {
			t.Errorf("%s: Records = %v %v, want %v", tc.name, u.Username, ok, tc.wantR)
		}
	}
	if _, ok := recs.Records(ctx, "session:"+itoa(bob.ID), "9000"); ok {
		t.Error("a desk phone line was recorded on the bridge")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestRecordingsScopes: each of seed 002's four rights (own, group = the
// user's site, others by number list, all) at No/Read/Write decides what
// the user lists, replays and downloads; every replay and download is
// audited with the reader and the recording's user.
func TestRecordingsScopes(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	m := prov.NewManager(prov.ManagerDeps{Store: f.st, Directory: prov.NewDirectory(f.st, nil, f.clk.now),
		Sessions: f.ss, Events: &prov.Events{}, Logger: slog.New(slog.DiscardHandler), Now: f.clk.now})
	recs, err := prov.NewRecordings(prov.RecordingsConfig{Dir: t.TempDir()}, f.st, m, slog.New(slog.DiscardHandler), f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	// carol is on another site, number 3001.
	other := prov.Site{Name: "branch", Domain: "branch.test", Login: openPolicy}
	if err := f.st.CreateSite(ctx, &other); err != nil {
		t.Fatal(err)
	}
	if _, err := prov.NewDirectory(f.st, nil, f.clk.now).CreateUser(ctx, prov.UserInput{Username: "carol", FirstName: "carol",
		LastName: "X", Email: "carol@branch.test", Password: "carol-pw", SiteID: other.ID, Numbers: []string{"3001"}}); err != nil {
		t.Fatal(err)
	}
	users := map[string]prov.User{}
	for _, n := range []string{"alice", "bob", "carol"} {
		users[n], _ = f.st.GetUser(ctx, n)
	}
	rec := map[string]int64{} // whose recording → its ID
	for _, c := range []struct{ who, peer string }{{"alice", "2002"}, {"bob", "9000"}, {"carol", "9001"}, {"carol", "2001"}} {
		name, path := recs.NewFile(users[c.who])
		if err := os.WriteFile(path, []byte("RIFF"), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := recs.Finished(ctx, prov.Recording{UserID: users[c.who].ID, CallID: name, Peer: c.peer, Start: f.clk.now(), Bytes: 4, File: name}); err != nil {
			t.Fatal(err)
		}
		f.clk.add(time.Minute)
		l, _ := f.st.ListRecordings(ctx, users[c.who].ID, 1)
		rec[c.who+">"+c.peer] = l[0].ID
	}
	const N, R, W = prov.AccessNone, prov.AccessRead, prov.AccessWrite
	type want struct{ replay, download []string } // of rec's keys; the rest are not found
	keys := []string{"alice>2002", "bob>9000", "carol>9001", "carol>2001"}
	for _, tc := range []struct {
		name                    string
		own, group, others, all prov.Access
		numbers                 string
		want                    want
	}{
		{"nothing", N, N, N, N, "", want{}},
		{"own read", R, N, N, N, "", want{replay: []string{"alice>2002"}}},
		{"own write", W, N, N, N, "", want{replay: []string{"alice>2002"}, download: []string{"alice>2002"}}},
		{"group read", N, R, N, N, "", want{replay: []string{"alice>2002", "bob>9000"}}},
		{"group write, own read", R, W, N, N, "", want{replay: []string{"alice>2002", "bob>9000"}, download: []string{"alice>2002", "bob>9000"}}},
		// 3001 is carol's number (both hers); 2001 as the other party is none of carol's own
		{"others by number", N, N, W, N, "3001", want{replay: []string{"carol>9001", "carol>2001"}, download: []string{"carol>9001", "carol>2001"}}},
		{"others by peer", N, N, R, N, "9000", want{replay: []string{"bob>9000"}}},
		{"numbers without the right", N, N, N, N, "3001", want{}},
		{"all read, own write", W, N, N, R, "", want{replay: keys, download: []string{"alice>2002"}}},
		{"all write", N, N, N, W, "", want{replay: keys, download: keys}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := users["alice"]
			u.Portal.Recordings, u.Portal.RecordingsGroup, u.Portal.RecordingsOthers, u.Portal.RecordingsAll = tc.own, tc.group, tc.others, tc.all
			u.Portal.RecordingsNumbers = tc.numbers
			list, _, err := recs.List(ctx, u, 0, prov.MaxRecordingsPage)
			if len(tc.want.replay) == 0 {
				if !errors.Is(err, prov.ErrDenied) && len(list) != 0 {
					t.Fatalf("List = %v %v, want nothing", list, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			listed := map[int64]bool{}
			for _, l := range list {
				listed[l.ID] = l.Download
			}
			for _, k := range keys {
				canReplay, canDownload := slices.Contains(tc.want.replay, k), slices.Contains(tc.want.download, k)
				dl, ok := listed[rec[k]]
				if ok != canReplay || dl != canDownload {
					t.Errorf("%s listed %v download %v, want %v %v", k, ok, dl, canReplay, canDownload)
				}
				for _, download := range []bool{false, true} {
					allowed := canReplay
					if download {
						allowed = canDownload
					}
					before, _ := f.st.ListAudit(ctx, prov.AuditQuery{})
					_, fh, err := recs.Open(ctx, u, rec[k], download, prov.Actor{Kind: prov.ActorUser, Name: "alice"})
					after, _ := f.st.ListAudit(ctx, prov.AuditQuery{})
					switch {
					case allowed && err != nil:
						t.Errorf("%s download=%v: %v", k, download, err)
					case !allowed && err == nil:
						t.Errorf("%s download=%v allowed", k, download)
					case !allowed && !canReplay && k != "alice>2002" && !errors.Is(err, prov.ErrNotFound):
						t.Errorf("%s download=%v = %v, want ErrNotFound (not even its existence)", k, download, err)
					}
					if fh != nil {
						fh.Close()
					}
					if audited := len(after) - len(before); allowed != (audited == 1) {
						t.Errorf("%s download=%v: %d audit events", k, download, audited)
					} else if allowed {
						owner := strings.SplitN(k, ">", 2)[0]
						if e := after[0]; e.Object != prov.UserObject(owner).String() || (download != (e.Action == "recording.download")) {
							t.Errorf("%s audited as %+v", k, e)
						}
					}
				}
			}
		})
	}
	p := users["alice"].Portal
	p.RecordingsNumbers, p.RecordingsOthers = "2001, x9", prov.AccessRead
	if _, err := m.UpdateUser(ctx, "alice", prov.UserPatch{Portal: &p}, prov.Actor{Kind: prov.ActorAdmin, Name: "test"}); err == nil {
		t.Fatal("a bad number list was accepted")
	}
	p.RecordingsNumbers = "2001, 3001"
	if _, err := m.UpdateUser(ctx, "alice", prov.UserPatch{Portal: &p}, prov.Actor{Kind: prov.ActorAdmin, Name: "test"}); err != nil {
		t.Fatal(err)
	}
}

// TestRecordingsDeskCalls: whose call between desk phones is recorded: the
// caller's user when theirs is a listed number (outgoing), else the dialled
// user's (incoming), else the caller's for a listed number that is no
// user's (the trunk's); a device account or unlisted numbers are not.
func TestRecordingsDeskCalls(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	recs, err := prov.NewRecordings(prov.RecordingsConfig{Dir: t.TempDir(), Numbers: []string{"2002", "5555"}}, f.st, nil,
		slog.New(slog.DiscardHandler), f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := f.st.GetUser(ctx, "alice") // 2001
	bob, _ := f.st.GetUser(ctx, "bob")     // 2002
	for _, tc := range []struct {
		name, caller, dialled string
		want                  prov.User
		incoming, ok          bool
	}{
		{"the caller's number is listed", "user:" + itoa(bob.ID), "2001", bob, false, true},
		{"the dialled user's number is", "user:" + itoa(alice.ID), "2002", bob, true, true},
		{"a listed trunk number", "user:" + itoa(alice.ID), "5555", alice, false, true},
		{"neither", "user:" + itoa(alice.ID), "9000", prov.User{}, false, false},
		{"a device account to an unlisted user", "device:1", "2001", prov.User{}, false, false},
		{"a device account to a listed user", "device:1", "2002", bob, true, true},
	} {
		u, incoming, ok := recs.RecordsCall(ctx, tc.caller, tc.dialled)
		if ok != tc.ok || incoming != tc.incoming || u.ID != tc.want.ID {
			t.Errorf("%s: RecordsCall = %q incoming %v %v, want %q incoming %v %v", tc.name, u.Username, incoming, ok,
				tc.want.Username, tc.incoming, tc.ok)
		}
	}
}
