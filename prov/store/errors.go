package store

import (
	"database/sql"
	"errors"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"hotdesk/prov"
)

// classify maps driver errors onto prov's sentinels, keeping the driver's
// text (it names the constraint) for the log.
func classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return prov.ErrNotFound
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_ROWID:
			return fmt.Errorf("%w (%v)", prov.ErrConflict, err)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return fmt.Errorf("%w: a referenced row is missing (%v)", prov.ErrNotFound, err)
		}
	}
	// pgconn.PgError, for the PostgreSQL store sharing this code.
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		switch pg.SQLState() {
		case "23505":
			return fmt.Errorf("%w (%v)", prov.ErrConflict, err)
		case "23503":
			return fmt.Errorf("%w: a referenced row is missing (%v)", prov.ErrNotFound, err)
		}
	}
	return err
}

// wrap is the one way errors leave the store: "store: <op>: <cause>".
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("store: "+format+": %w", append(args, classify(err))...)
}

// affected turns "no row changed" into prov.ErrNotFound.
func affected(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return prov.ErrNotFound
	}
	return nil
}
