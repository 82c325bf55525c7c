package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Backup writes a consistent copy of the live database to path with
// VACUUM INTO: it reads one snapshot, so writers carry on meanwhile. The copy
// is written beside path and renamed into place once synced, so path is
// either absent or a whole backup. An existing path is refused.
func (s *Store) Backup(ctx context.Context, path string) error {
	if s.tx != nil {
		return errors.New("store: backup: not possible inside a transaction")
	}
	if s.c.driver != DriverSQLite {
		return errors.New("store: backup: not supported on postgres (use pg_dump)")
	}
	return backupSQLite(ctx, s.c.path, path, s.c.logger)
}

// BackupDataDir backs up the store of a data directory from another
// process (`hotdeskd backup`) while the daemon may be serving: it takes no
// lock and only reads one snapshot, so the daemon carries on writing.
func BackupDataDir(ctx context.Context, cfg Config, dataDir, path string, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("store: config: %w", err)
	}
	if cfg.Driver != DriverSQLite {
		return errors.New("store: backup: not supported on postgres (use pg_dump)")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	db := cfg.DSN
	if db == "" {
		db = filepath.Join(dataDir, DBFile)
	}
	if _, err := os.Stat(db); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	return backupSQLite(ctx, db, path, logger)
}

// backupSQLite writes a VACUUM INTO copy of db to path, atomically.
func backupSQLite(ctx context.Context, dbPath, path string, logger *slog.Logger) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("store: backup: %s already exists", path)
	}
	tmp := path + ".partial"
	_ = os.Remove(tmp)
	// A one-off connection: the reader pool is query_only, which VACUUM INTO
	// refuses, and the writer must stay free for the daemon.
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	start := time.Now()
	if _, err := db.ExecContext(ctx, `VACUUM INTO $1`, tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: backup to %s: %w", path, err)
	}
	if err := syncFile(tmp); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("store: backup: %w", err)
	}
	if err := syncFile(filepath.Dir(path)); err != nil {
		return fmt.Errorf("store: backup: %w", err)
	}
	logger.Info("store backup written", "path", path, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// IntegrityCheck runs PRAGMA integrity_check and foreign_key_check and
// returns an error describing the first problems found.
func (s *Store) IntegrityCheck(ctx context.Context) error {
	if s.c.driver != DriverSQLite {
		return s.Ping(ctx) // the server checks its own pages
	}
	return wrap(integrityCheck(ctx, s.rq()), "integrity check")
}

func integrityCheck(ctx context.Context, q reader) error {
	var problems []string
	rows, err := q.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return err
		}
		if line != "ok" && len(problems) < 10 {
			problems = append(problems, line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var fk int
	if err := q.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&fk); err != nil {
		return err
	}
	if fk > 0 {
		problems = append(problems, fmt.Sprintf("%d rows violate foreign keys", fk))
	}
	if len(problems) > 0 {
		return fmt.Errorf("database is damaged: %s", strings.Join(problems, "; "))
	}
	return nil
}

// Restore replaces the SQLite database in dataDir by the backup at
// backupPath. It refuses while a daemon holds the data dir (an error
// wrapping prov.ErrDataDirLocked), and checks a copy of the backup with
// integrity_check before swapping it in. The replaced database is kept as
// hotdesk.db.pre-restore-<unix time>.
func Restore(ctx context.Context, backupPath, dataDir string) error {
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	defer lock.release()
	live := filepath.Join(dataDir, DBFile)
	staged := live + ".restoring"
	removeDB(staged)
	if err := copyFile(backupPath, staged); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	if err := verifyBackup(ctx, staged); err != nil {
		removeDB(staged)
		return fmt.Errorf("store: restore: backup %s: %w", backupPath, err)
	}
	if _, err := os.Stat(live); err == nil {
		// Move the WAL and shared-memory files too: a stale WAL left beside
		// the restored file would be replayed into it and corrupt it.
		aside := fmt.Sprintf("%s.pre-restore-%d", live, time.Now().Unix())
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Rename(live+suffix, aside+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("store: restore: set old database aside: %w", err)
			}
		}
	}
	if err := os.Rename(staged, live); err != nil {
		return fmt.Errorf("store: restore: %w", err)
	}
	return syncFile(dataDir)
}

// verifyBackup opens path as a database, checks it and that it is one of
// ours, and closes it cleanly (leaving no -wal behind).
func verifyBackup(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := integrityCheck(ctx, db); err != nil {
		return err
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("not a hotdesk database: %w", err)
	}
	migs, err := loadMigrations("sqlite")
	if err != nil {
		return err
	}
	if newest := migs[len(migs)-1].version; v > newest {
		return fmt.Errorf("schema version %d is newer than this hotdeskd knows (%d)", v, newest)
	}
	return db.Close()
}

func removeDB(path string) {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		_ = os.Remove(path + suffix)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// syncFile fsyncs a file or directory so a rename survives a power cut.
func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
