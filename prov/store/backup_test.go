package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"hotdesk/prov"
)

// TestBackupWhileWriting takes a backup while another goroutine writes,
// restores it into a fresh data dir and checks that every row acknowledged
// before the backup began is there.
func TestBackupWhileWriting(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	defer s.Close()

	acked, stop := auditWriter(s)
	waitFor(t, "first writes", func() bool { return len(acked()) >= 50 })
	before := acked()

	backup := filepath.Join(t.TempDir(), "backup.db")
	must(t, s.Backup(ctx, backup))
	n := len(acked())
	waitFor(t, "writes after backup", func() bool { return len(acked()) >= n+20 })
	must(t, stop())
	if err := s.Backup(ctx, backup); err == nil {
		t.Error("Backup over an existing file: no error")
	}
	if _, err := os.Stat(backup + ".partial"); !os.IsNotExist(err) {
		t.Errorf("partial file left behind: %v", err)
	}

	fresh := filepath.Join(t.TempDir(), "restored")
	must(t, Restore(ctx, backup, fresh))
	r := open(t, fresh)
	defer r.Close()
	must(t, r.IntegrityCheck(ctx))
	events, err := r.ListAudit(ctx, prov.AuditQuery{Actor: "writer"})
	must(t, err)
	have := make(map[int64]bool, len(events))
	for _, e := range events {
		have[e.ID] = true
	}
	for _, id := range before {
		if !have[id] {
			t.Fatalf("event %d acknowledged before the backup is missing from it", id)
		}
	}
	t.Logf("%d events acknowledged before the backup, %d in it, %d written in all", len(before), len(events), len(acked()))
}

func TestRestore(t *testing.T) {
	ctx := t.Context()
	src := open(t, t.TempDir())
	must(t, src.CreateUser(ctx, &prov.User{Username: "from-backup"}))
	backup := filepath.Join(t.TempDir(), "b.db")
	must(t, src.Backup(ctx, backup))
	must(t, src.Close())

	dir := t.TempDir()
	live := open(t, dir)
	must(t, live.CreateUser(ctx, &prov.User{Username: "replaced"}))

	// Refused while the daemon holds the data dir.
	if err := Restore(ctx, backup, dir); !errors.Is(err, prov.ErrDataDirLocked) {
		t.Fatalf("Restore on a locked dir: %v", err)
	}
	must(t, live.Close())

	// A damaged backup is refused and the live database left alone.
	bad := filepath.Join(t.TempDir(), "bad.db")
	must(t, os.WriteFile(bad, []byte("this is not a database, just text long enough to look like one"), 0o600))
	if err := Restore(ctx, bad, dir); err == nil {
		t.Fatal("Restore of a damaged backup: no error")
	}
	notOurs := filepath.Join(t.TempDir(), "other.db")
	other := open(t, filepath.Dir(notOurs))
	_, err := other.c.w.ExecContext(ctx, `DROP TABLE schema_version`)
	must(t, err)
	must(t, other.Backup(ctx, notOurs))
	must(t, other.Close())
	if err := Restore(ctx, notOurs, dir); err == nil {
		t.Fatal("Restore of a database without schema_version: no error")
	}
	s := open(t, dir)
	if _, err := s.GetUser(ctx, "replaced"); err != nil {
		t.Fatalf("live data after refused restores: %v", err)
	}
	must(t, s.Close())

	must(t, Restore(ctx, backup, dir))
	s = open(t, dir)
	defer s.Close()
	if _, err := s.GetUser(ctx, "from-backup"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "replaced"); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("old data still visible: %v", err)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, DBFile+".pre-restore-*"))
	if len(aside) == 0 {
		t.Error("replaced database not kept aside")
	}
}

// auditWriter adds audit events in a loop until stop; acked returns the IDs
// whose AddAudit has returned.
func auditWriter(s *Store) (acked func() []int64, stop func() error) {
	var mu sync.Mutex
	var ids []int64
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-quit:
				done <- nil
				return
			default:
			}
			e := prov.AuditEvent{Actor: "writer", Action: "tick", Object: "x"}
			if err := s.AddAudit(context.Background(), &e); err != nil {
				done <- err
				return
			}
			mu.Lock()
			ids = append(ids, e.ID)
			mu.Unlock()
		}
	}()
	acked = func() []int64 {
		mu.Lock()
		defer mu.Unlock()
		return append([]int64(nil), ids...)
	}
	return acked, func() error { close(quit); return <-done }
}
