package prov_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
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
	if _, ok := recs.Records(ctx, owner); ok {
		t.Fatal("recorded without RecordCalls")
	}
	alice.Portal.RecordCalls, alice.Portal.Recordings = true, prov.AccessRead
	if err := f.st.UpdateUser(ctx, &alice); err != nil {
		t.Fatal(err)
	}
	if u, ok := recs.Records(ctx, owner); !ok || u.ID != alice.ID {
		t.Fatalf("Records(%s) = %v %v", owner, u.Username, ok)
	}
	if _, ok := recs.Records(ctx, "session:"+itoa(alice.ID)); ok {
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
	if _, err := recs.List(ctx, bob); !errors.Is(err, prov.ErrDenied) {
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

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
