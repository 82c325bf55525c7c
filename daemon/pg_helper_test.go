package daemon

import (
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"hotdesk/prov/store/pgtest"
)

// postgresServer returns a PostgreSQL for the test (pgtest.Server), with
// room for three nodes' connections; "" when none can be had.
func postgresServer(t testing.TB) string {
	t.Helper()
	return pgtest.Server(t, 300)
}

var pgDBs atomic.Int64

// postgresDB returns the DSN of a new empty database; without PostgreSQL
// t fails (a skipped cluster suite would pass for nothing).
func postgresDB(t testing.TB) string {
	t.Helper()
	admin := postgresServer(t)
	if admin == "" {
		t.Fatal("no PostgreSQL: install the Debian package postgresql (make test does) or set HOTDESK_TEST_POSTGRES_DSN")
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
