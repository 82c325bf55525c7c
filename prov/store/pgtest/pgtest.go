// Package pgtest starts a private PostgreSQL for tests: the store's
// conformance suite and the daemon's multi-node tests run against a real
// server, not a mock.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// DSNEnv names a PostgreSQL to use instead of starting one.
const DSNEnv = "HOTDESK_TEST_POSTGRES_DSN"

// Server returns $HOTDESK_TEST_POSTGRES_DSN, or starts a private PostgreSQL
// (Debian package postgresql) on a free loopback port in a temp dir,
// stopped when t ends; "" if neither is possible. maxConns 0 keeps the
// server's default.
func Server(t testing.TB, maxConns int) string {
	t.Helper()
	if dsn := os.Getenv(DSNEnv); dsn != "" {
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
	run := func(name string, args ...string) ([]byte, error) {
		cmd := exec.Command(filepath.Join(bin, name), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		return cmd.CombinedOutput()
	}
	data := filepath.Join(dir, "data")
	if out, err := run("initdb", "-A", "trust", "-U", "postgres", "-D", data); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	opts := fmt.Sprintf("-k %s -c listen_addresses=127.0.0.1 -c fsync=off", dir)
	if maxConns > 0 {
		opts += fmt.Sprintf(" -c max_connections=%d", maxConns)
	}
	// The free port is chosen before the server binds it: another process
	// may take it meanwhile, so a start that cannot bind tries another.
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		out, err := run("pg_ctl", "-D", data, "-l", filepath.Join(dir, "log"), "-w", "-t", "30", "start",
			"-o", fmt.Sprintf("%s -p %d", opts, port))
		if err == nil {
			t.Cleanup(func() { _, _ = run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop") })
			return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", port)
		}
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		if attempt == 4 || !strings.Contains(string(log), "could not bind") {
			t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
		}
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
