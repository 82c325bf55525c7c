package store_test

import (
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"sync"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// TestPostgresNodesStartingTogetherMigrateOnce: nodes opening one new
// database at the same time migrate it once, under the advisory lock;
// without it they race to create the same tables.
func TestPostgresNodesStartingTogetherMigrateOnce(t *testing.T) {
	admin := postgresDSN(t)
	if admin == "" {
		t.Fatal("no PostgreSQL: install the Debian package postgresql (make test does) or set " + PostgresDSNEnv)
	}
	adminDB, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer adminDB.Close()
	for round := range 3 {
		name := fmt.Sprintf("hotdesk_migrate_%d_%d", os.Getpid(), round)
		if _, err := adminDB.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(admin)
		u.Path = "/" + name
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				s, err := store.Open(t.Context(), store.Config{Driver: store.DriverPostgres, DSN: u.String()}, "",
					slog.New(slog.DiscardHandler), nil)
				if err == nil {
					err = s.Close()
				}
				errs <- err
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: a node starting beside others failed: %v", round, err)
			}
		}
		db, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		var n, distinct int
		if err := db.QueryRow(`SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_version`).Scan(&n, &distinct); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if n != distinct || n == 0 {
			t.Fatalf("round %d: schema_version has %d rows for %d versions", round, n, distinct)
		}
		if _, err := adminDB.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPostgresStatementAfterSchemaChange: a statement cached before
// another node's migration changed a column it returns fails once on a
// connection and then works: pgx drops a statement that failed from its
// cache and prepares it again. A *sql.Stmt kept its server-side statement
// and failed on every later use of that connection.
func TestPostgresStatementAfterSchemaChange(t *testing.T) {
	admin := postgresDSN(t)
	if admin == "" {
		t.Fatal("no PostgreSQL: install the Debian package postgresql (make test does) or set " + PostgresDSNEnv)
	}
	adminDB, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { adminDB.Close() }) // after the DROP below
	name := fmt.Sprintf("hotdesk_schema_%d", os.Getpid())
	if _, err := adminDB.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := adminDB.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Error(err)
		}
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	s := openOrFail(t, store.Config{Driver: store.DriverPostgres, DSN: u.String()}, t.TempDir())
	ctx := t.Context()
	site := prov.Site{Name: "hq"}
	if err := s.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	for range 3 { // prepared and cached
		if _, err := s.GetSite(ctx, site.ID); err != nil {
			t.Fatal(err)
		}
	}
	other, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	// TEXT to VARCHAR changes the statement's result type.
	if _, err := other.Exec(`ALTER TABLE sites ALTER COLUMN name TYPE VARCHAR(200)`); err != nil {
		t.Fatal(err)
	}
	const poolConns = 16 // openPostgres's pool: at most one failure per connection
	var failed int
	for range poolConns + 1 {
		if _, err = s.GetSite(ctx, site.ID); err == nil {
			break
		}
		failed++
	}
	if err != nil {
		t.Fatalf("GetSite still fails after %d tries: %v", failed, err)
	}
	for range 3 {
		if got, err := s.GetSite(ctx, site.ID); err != nil || got.Name != "hq" {
			t.Fatalf("GetSite after the change = %+v, %v", got, err)
		}
	}
	t.Logf("%d failure(s) after the schema change", failed)
}
