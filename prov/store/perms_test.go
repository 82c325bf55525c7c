package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"hotdesk/prov"
)

// Outside systemd (no UMask=0077) the data directory and the database files
// were world readable: any local user could copy the password hashes and SIP
// secrets. Under a permissive umask they are now the daemon user's alone,
// and an existing 0644 database is tightened.
func TestDatabaseFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	st, err := Open(ctx, DefaultConfig(), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A write so the -wal and -shm files exist.
	if err := st.CreateAdmin(ctx, &prov.Admin{Username: "a", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		want := map[string]os.FileMode{dir: 0o700, filepath.Join(dir, DBFile): 0o600,
			filepath.Join(dir, DBFile+"-wal"): 0o600, filepath.Join(dir, DBFile+"-shm"): 0o600,
			filepath.Join(dir, LockFile): 0o600}
		for p, mode := range want {
			fi, err := os.Stat(p)
			if err != nil {
				t.Errorf("%s: %v", when, err)
				continue
			}
			if got := fi.Mode().Perm(); got != mode {
				t.Errorf("%s: %s is %o, want %o", when, filepath.Base(p), got, mode)
			}
		}
	}
	check("new data dir")
	st.Close()
	for _, f := range []string{DBFile, LockFile} {
		if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err = Open(ctx, DefaultConfig(), dir, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateAdmin(ctx, &prov.Admin{Username: "b", PasswordHash: "x"}); err != nil {
		t.Fatal(err)
	}
	check("reopened 0644 database")
}
