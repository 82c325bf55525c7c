package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
)

func open(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), DefaultConfig(), dir, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // substring of the error; "" = valid
	}{
		{DefaultConfig(), ""},
		{Config{Driver: "sqlite", DSN: "/tmp/x.db"}, ""},
		{Config{Driver: "postgres", DSN: "postgres://localhost/hotdesk"}, ""},
		{Config{Driver: "postgres"}, "dsn: required"},
		{Config{Driver: "mysql"}, `driver: "mysql"`},
		{Config{}, `driver: ""`},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v: Validate() = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := t.Context()
	_, err := Open(ctx, Config{Driver: "postgres", DSN: "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, t.TempDir(), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "open postgres") {
		t.Errorf("postgres without a server: %v", err)
	}
	if _, err := Open(ctx, DefaultConfig(), "", nil, nil); err == nil {
		t.Error("no data dir and no dsn: no error")
	}
	if _, err := Open(ctx, Config{Driver: "bogus"}, t.TempDir(), nil, nil); err == nil {
		t.Error("bad driver: no error")
	}
	// An explicit DSN path works without a data dir (its directory is locked).
	s, err := Open(ctx, Config{Driver: "sqlite", DSN: filepath.Join(t.TempDir(), "custom.db")}, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateEmpty(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	var mode string
	var fk, sync int
	must(t, s.c.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
	must(t, s.c.r.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk))
	must(t, s.c.w.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync))
	if mode != "wal" || fk != 1 || sync != 1 {
		t.Errorf("journal_mode=%s foreign_keys=%d synchronous=%d, want wal 1 1", mode, fk, sync)
	}
	for _, table := range []string{"sites", "users", "numbers", "devices", "sessions", "bindings", "uploads",
		"contacts", "leases", "call_records", "audit_events", "admins", "api_tokens", "schema_version"} {
		var n int
		must(t, s.c.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1`,
			table).Scan(&n))
		if n != 1 {
			t.Errorf("table %s missing", table)
		}
	}
	migs, err := loadMigrations("sqlite")
	must(t, err)
	version := func() int {
		var v, rows int
		must(t, s.c.r.QueryRowContext(ctx, `SELECT MAX(version), count(*) FROM schema_version`).Scan(&v, &rows))
		if rows != len(migs) {
			t.Errorf("schema_version has %d rows, want %d", rows, len(migs))
		}
		return v
	}
	if v := version(); v != migs[len(migs)-1].version {
		t.Errorf("schema version %d, want %d", v, migs[len(migs)-1].version)
	}
	must(t, s.Close())
	s = open(t, dir) // reopening applies nothing twice
	version()
	// A schema from a newer hotdeskd is refused, not run on.
	_, err = s.c.w.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES (9999, 'future', 0)`)
	must(t, err)
	must(t, s.Close())
	_, err = Open(ctx, DefaultConfig(), dir, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "newer than this hotdeskd") {
		t.Fatalf("open newer schema: %v", err)
	}
	// The failed Open released the lock.
	if l, err := lockDataDir(dir); err != nil {
		t.Fatalf("lock after failed open: %v", err)
	} else {
		must(t, l.release())
	}
}

func TestReopenKeepsData(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s := open(t, dir)
	u := prov.User{Username: "alice", LoginHA1: map[string]string{"MD5": "x"}}
	must(t, s.CreateUser(ctx, &u))
	must(t, s.AssignNumber(ctx, "1001", u.ID))
	d := prov.Device{MAC: "0004f2000001", AssignedUserID: u.ID}
	must(t, s.CreateDevice(ctx, &d))
	must(t, s.SaveBindings(ctx, []prov.Binding{{AOR: "sip:1001@x", Contact: "sip:c"}}, nil))
	_, err := s.PutUpload(ctx, prov.Upload{Owner: "user:alice", Name: "f", Data: []byte("data")}, 3)
	must(t, err)
	must(t, s.Close())

	s = open(t, dir)
	defer s.Close()
	got, err := s.UserByNumber(ctx, "1001")
	must(t, err)
	if got.ID != u.ID || got.LoginHA1["MD5"] != "x" {
		t.Errorf("user after reopen: %+v", got)
	}
	gd, err := s.GetDevice(ctx, d.MAC)
	must(t, err)
	bs, err := s.ListBindings(ctx)
	must(t, err)
	up, err := s.LatestUpload(ctx, "user:alice", "f")
	must(t, err)
	if gd.AssignedUserID != u.ID || len(bs) != 1 || string(up.Data) != "data" {
		t.Errorf("after reopen: device %+v bindings %+v upload %+v", gd, bs, up)
	}
}

func TestLockSameProcess(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	_, err := Open(t.Context(), DefaultConfig(), dir, nil, nil)
	if !errors.Is(err, prov.ErrDataDirLocked) {
		t.Fatalf("second Open: %v, want ErrDataDirLocked", err)
	}
	if !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("error does not name the dir and holder: %v", err)
	}
	must(t, s.Close())
	s = open(t, dir) // released by Close
	must(t, s.Close())
}

// TestConcurrentWriters: many goroutines write at once, with readers
// alongside; none may see SQLITE_BUSY or any other error.
func TestConcurrentWriters(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	ctx := t.Context()
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				u := prov.User{Username: fmt.Sprintf("w%d-%d", w, i)}
				err := s.WithTx(ctx, func(tx prov.Store) error {
					if err := tx.CreateUser(ctx, &u); err != nil {
						return err
					}
					return tx.AssignNumber(ctx, fmt.Sprintf("%d%03d", w+1, i), u.ID)
				})
				if err == nil {
					err = s.AddAudit(ctx, &prov.AuditEvent{Actor: "t", Action: "x", Object: u.Username})
				}
				if err == nil {
					_, _, err = s.ListUsers(ctx, prov.UserQuery{Limit: 10})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n, err := s.CountUsers(ctx)
	must(t, err)
	if n != writers*each {
		t.Fatalf("%d users, want %d", n, writers*each)
	}
}

func TestIntegrityCheckFindsDamage(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := t.Context()
	must(t, s.IntegrityCheck(ctx))
	// Break a foreign key behind the store's back.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, DBFile))
	must(t, err)
	_, err = db.ExecContext(ctx, `INSERT INTO numbers (number, user_id) VALUES ('1', 4242)`)
	must(t, err)
	must(t, db.Close())
	if err := s.IntegrityCheck(ctx); err == nil || !strings.Contains(err.Error(), "foreign keys") {
		t.Fatalf("IntegrityCheck = %v", err)
	}
	must(t, s.Close())
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
