package store_test

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync/atomic"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/store"
	"hotdesk/prov/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) prov.Store {
		return openOrFail(t, store.DefaultConfig(), t.TempDir())
	})
}

func openOrFail(t *testing.T, cfg store.Config, dataDir string) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), cfg, dataDir, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// PostgresDSNEnv names a PostgreSQL server the conformance suite may create
// and drop databases on, e.g. postgres://postgres@127.0.0.1:55432/postgres;
// without it the test starts its own server if PostgreSQL is installed.
const PostgresDSNEnv = "HOTDESK_TEST_POSTGRES_DSN"

// TestConformancePostgres runs the same suite on PostgreSQL, one fresh
// database per test, proving the store's SQL is shared.
func TestConformancePostgres(t *testing.T) {
	admin := postgresDSN(t)
	if admin == "" {
		t.Fatal("no PostgreSQL: install the Debian package postgresql (make test does) or set " + PostgresDSNEnv)
	}
	adminDB, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer adminDB.Close()
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) prov.Store {
		name := fmt.Sprintf("hotdesk_test_%d_%d", os.Getpid(), n.Add(1))
		if _, err := adminDB.ExecContext(t.Context(), "CREATE DATABASE "+name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if _, err := adminDB.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
				t.Error(err)
			}
		})
		u, err := url.Parse(admin)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		return openOrFail(t, store.Config{Driver: store.DriverPostgres, DSN: u.String()}, t.TempDir())
	})
}
