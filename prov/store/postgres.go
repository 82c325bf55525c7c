package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

func openPostgres(ctx context.Context, cfg Config, dataDir string, logger *slog.Logger, now func() time.Time) (*Store, error) {
	// The data dir still holds this node's other state, so it is still locked.
	var lock *dirLock
	if dataDir != "" {
		l, err := lockDataDir(dataDir)
		if err != nil {
			return nil, err
		}
		lock = l
	}
	start := time.Now()
	c := &core{driver: DriverPostgres, lock: lock, logger: logger, now: now, keepalive: cfg.eventKeepalive()}
	if err := c.openPostgres(ctx, cfg.DSN); err != nil {
		c.close()
		return nil, err
	}
	logger.Info("store opened", "driver", cfg.Driver, "took", time.Since(start).Round(time.Microsecond))
	return &Store{c: c}, nil
}

// openPostgres runs the same store code on PostgreSQL. There is no single
// writer here: the server takes row locks, and the few read-modify-write
// operations either use ON CONFLICT or retry on a unique violation.
func (c *core) openPostgres(ctx context.Context, dsn string) error {
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return fmt.Errorf("store: open postgres: %w", err)
	}
	// pgx prepares each query text once per connection and keeps it (its
	// default mode, named so it stays); the store does not prepare through
	// database/sql on top (newDirect). Both cost the same daemon CPU per
	// login, cold or warm (BenchmarkStoreDriverCPU, README "Performance"),
	// but pgx drops a statement that failed and prepares it again, where a
	// *sql.Stmt kept it: after another node's migration changed a column,
	// a query failed on every later use of each connection
	// (TestPostgresStatementAfterSchemaChange).
	pc.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	db := stdlib.OpenDB(*pc)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	c.w, c.r, c.dsn = db, db, dsn
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open postgres: %w", err)
	}
	unlock, err := lockMigrations(ctx, db)
	if err != nil {
		return err
	}
	defer unlock()
	if err := migrate(ctx, db, "postgres", c.logger, c.now); err != nil {
		return err
	}
	c.wc = newDirect(db)
	c.rc = c.wc
	return nil
}
