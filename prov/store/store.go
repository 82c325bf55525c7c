package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver (pure Go, no cgo)

	"hotdesk/prov"
)

var _ prov.Store = (*Store)(nil)

// Store implements prov.Store. A Store from Open is safe for concurrent use;
// the Store that WithTx hands to its fn is bound to that transaction and
// must not be used after fn returns.
type Store struct {
	c  *core
	tx *sql.Tx    // nil outside WithTx
	tq *stmtCache // statements prepared in tx
}

// core is what every Store sharing one database holds.
type core struct {
	// w has exactly one connection: SQLite allows one writer at a time, so
	// queueing writers in database/sql instead of in SQLite's busy handler
	// means a write never fails with SQLITE_BUSY, however many goroutines write.
	w *sql.DB
	// r is a pool of query_only connections; in WAL mode they read a
	// consistent snapshot without blocking, or being blocked by, the writer.
	r *sql.DB
	// p is a small pool like r reserved for interactive reads
	// (prov.Interactive): nil for PostgreSQL, whose pool serves both.
	p      *sql.DB
	wc, rc *stmtCache
	driver string
	path   string // the SQLite file; "" for PostgreSQL
	dsn    string // PostgreSQL's, for the event listener's own connection
	// keepalive is Config.EventKeepalive (PostgreSQL's event listener).
	keepalive time.Duration
	lock      *dirLock
	logger    *slog.Logger
	now       func() time.Time
}

// Open opens (creating and migrating if needed) the store cfg names. For
// sqlite with an empty DSN the file is <dataDir>/hotdesk.db. The data dir
// (or, without one, the database file's directory) is locked until Close;
// a second Open on it, from this or another process, fails with an error
// wrapping prov.ErrDataDirLocked. now is the clock (nil: time.Now).
func Open(ctx context.Context, cfg Config, dataDir string, logger *slog.Logger, now func() time.Time) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store: config: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	if cfg.Driver == DriverPostgres {
		return openPostgres(ctx, cfg, dataDir, logger, now)
	}
	path := cfg.DSN
	if path == "" {
		if dataDir == "" {
			return nil, errors.New("store: sqlite needs a data dir or a dsn")
		}
		path = filepath.Join(dataDir, DBFile)
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("store: sqlite path %q must not contain '?' or '#'", path)
	}
	lockDir := dataDir
	if lockDir == "" {
		lockDir = filepath.Dir(path)
	}
	start := time.Now()
	lock, err := lockDataDir(lockDir)
	if err != nil {
		return nil, err
	}
	c := &core{driver: DriverSQLite, path: path, lock: lock, logger: logger, now: now}
	if err := c.openSQLite(ctx); err != nil {
		c.close()
		return nil, err
	}
	logger.Info("store opened", "driver", cfg.Driver, "path", path, "took", time.Since(start).Round(time.Microsecond))
	return &Store{c: c}, nil
}

// sqliteDSN is the modernc DSN for path. busy_timeout only matters for
// readers racing a checkpoint and for other processes (backup tools).
func sqliteDSN(path string, writer bool) string {
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	if writer {
		// BEGIN IMMEDIATE takes the write lock up front, so a transaction
		// that reads then writes cannot fail half way on a lock upgrade.
		return dsn + "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	}
	return dsn + "&_pragma=synchronous(NORMAL)&_query_only=1"
}

// privateDBFiles creates the SQLite file 0600 before SQLite does (it would
// use 0644) and tightens an existing one and its -wal and -shm files: they
// hold password hashes and SIP secrets. SQLite gives the -wal and -shm files
// it creates the main file's mode.
func privateDBFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: create %s: %w", path, err)
	}
	f.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("store: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(p, st.Mode().Perm()&0o700); err != nil {
				return fmt.Errorf("store: restrict %s: %w", p, err)
			}
		}
	}
	return nil
}

// interactiveConns is the SQLite reader connections kept for interactive
// reads: two logins read at once while the phones hold the other pool.
const interactiveConns = 2

func (c *core) openSQLite(ctx context.Context) error {
	if err := privateDBFiles(c.path); err != nil {
		return err
	}
	w, err := sql.Open("sqlite", sqliteDSN(c.path, true))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", c.path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	c.w = w
	var mode string
	if err := w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("store: open %s: %w", c.path, err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("store: open %s: journal_mode is %q, want wal (filesystem without shared memory?)", c.path, mode)
	}
	if err := migrate(ctx, w, "sqlite", c.logger, c.now); err != nil {
		return err
	}
	r, err := sql.Open("sqlite", sqliteDSN(c.path, false))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", c.path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	c.r = r
	if err := r.PingContext(ctx); err != nil {
		return fmt.Errorf("store: open %s: %w", c.path, err)
	}
	p, err := sql.Open("sqlite", sqliteDSN(c.path, false))
	if err != nil {
		return fmt.Errorf("store: open %s: %w", c.path, err)
	}
	p.SetMaxOpenConns(interactiveConns)
	p.SetMaxIdleConns(interactiveConns)
	c.p = p
	c.wc, c.rc = newStmtCache(w), newStmtCache(r)
	c.rc.interactive = newStmtCache(p)
	c.wc.gate = &writeGate{}
	return nil
}

func (c *core) close() error {
	var errs []error
	if c.wc != nil {
		c.wc.close()
	}
	if c.rc != nil && c.rc != c.wc {
		if c.rc.interactive != nil {
			c.rc.interactive.close()
		}
		c.rc.close()
	}
	if c.r != nil && c.r != c.w {
		errs = append(errs, c.r.Close())
	}
	if c.p != nil {
		errs = append(errs, c.p.Close())
	}
	if c.w != nil && c.driver == DriverSQLite {
		// Lets SQLite refresh planner statistics it found missing or stale.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = c.w.ExecContext(ctx, "PRAGMA optimize")
		cancel()
	}
	if c.w != nil {
		// Closing the last connection checkpoints the WAL into the main file.
		errs = append(errs, c.w.Close())
	}
	errs = append(errs, c.lock.release())
	return errors.Join(errs...)
}

// Close closes the database and releases the data dir lock. Calling it on
// the Store WithTx passed to fn is an error.
func (s *Store) Close() error {
	if s.tx != nil {
		return errors.New("store: close: called inside WithTx")
	}
	if err := s.c.close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	s.c.logger.Info("store closed", "path", s.c.path)
	return nil
}

// Ping checks that both the reader pool and the writer answer.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.rq().QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	if s.tx == nil {
		if err := s.c.w.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping writer: %w", err)
		}
	}
	return nil
}

// wq is where writes go: the transaction, or the single writer connection.
func (s *Store) wq() *stmtCache {
	if s.tx != nil {
		return s.tq
	}
	return s.c.wc
}

// rq is where reads go: the transaction (to see its own writes), or the
// reader pool.
func (s *Store) rq() *stmtCache {
	if s.tx != nil {
		return s.tq
	}
	return s.c.rc
}

// WithTx runs fn in one transaction on the writer connection: committed if
// fn returns nil, rolled back otherwise (or if fn panics). Inside a
// transaction it reuses it. fn must use only the Store it is given: the
// outer Store would wait for the writer connection fn holds.
func (s *Store) WithTx(ctx context.Context, fn func(tx prov.Store) error) error {
	err := s.inTx(ctx, func(tx *Store) error { return fn(tx) })
	var te txError
	if errors.As(err, &te) {
		return fmt.Errorf("store: %w", err)
	}
	return err // fn's own error, unchanged
}

// txError is a begin or commit failure, as opposed to an error from fn.
type txError struct {
	op  string
	err error
}

func (e txError) Error() string { return e.op + ": " + e.err.Error() }
func (e txError) Unwrap() error { return e.err }

func (s *Store) inTx(ctx context.Context, fn func(tx *Store) error) (err error) {
	if s.tx != nil {
		return fn(s)
	}
	if g := s.c.wc.gate; g != nil {
		if err := g.acquire(ctx); err != nil {
			return txError{"begin", err}
		}
		defer g.release() // after the commit or rollback below
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return txError{"begin", err}
	}
	committed := false
	defer func() {
		if !committed {
			_ = tx.Rollback()
		}
	}()
	tq := newStmtCache(tx)
	if s.c.driver == DriverPostgres {
		tq = newDirect(tx)
	}
	if err := fn(&Store{c: s.c, tx: tx, tq: tq}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return txError{"commit", err}
	}
	committed = true
	return nil
}
