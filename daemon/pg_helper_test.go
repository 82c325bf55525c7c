package daemon

import (
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
)

// postgresServer returns $HOTDESK_TEST_POSTGRES_DSN, or starts a private
// PostgreSQL (Debian package postgresql) on a free loopback port in a temp
// dir, stopped when t ends; "" if neither is possible. As prov/store's
// tests do.
func postgresServer(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("HOTDESK_TEST_POSTGRES_DSN"); dsn != "" {
		return dsn
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		return ""
	}
	bin := filepath.Dir(bins[len(bins)-1])
	dir, err := os.MkdirTemp("", "hotdesk-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 { // initdb refuses to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			return ""
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	data := filepath.Join(dir, "data")
	run("initdb", "-A", "trust", "-U", "postgres", "-D", data)
	run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "30", "start", "-o",
		fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -p %d -c fsync=off -c max_connections=300", dir, port))
	t.Cleanup(func() { run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop") })
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", port)
}

var pgDBs atomic.Int64

// postgresDB returns the DSN of a new empty database, or skips t.
func postgresDB(t testing.TB) string {
	t.Helper()
	admin := postgresServer(t)
	if admin == "" {
		t.Skip("SKIPPED: no PostgreSQL: install the Debian package postgresql or set HOTDESK_TEST_POSTGRES_DSN")
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	name := fmt.Sprintf("hotdesk_daemon_%d_%d", os.Getpid(), pgDBs.Add(1))
	if _, err := db.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if db, err := sql.Open("pgx", admin); err == nil {
			_, _ = db.Exec("DROP DATABASE " + name + " WITH (FORCE)")
			db.Close()
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}
