package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
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
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("store: open postgres: %w", err)
	}
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
	c.wc = newStmtCache(db)
	c.rc = c.wc
	return nil
}
