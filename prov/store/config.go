package store

import (
	"errors"
	"fmt"
)

// Drivers Open accepts.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// DBFile is the SQLite file name inside the data directory when DSN is empty.
const DBFile = "hotdesk.db"

// LockFile is the file in the data directory a running store holds flock on.
const LockFile = "hotdesk.lock"

// Config is the daemon's `store:` section.
type Config struct {
	// Driver is sqlite (default) or postgres.
	Driver string `yaml:"driver"`
	// DSN is, for sqlite, the database file path (empty: <data_dir>/hotdesk.db);
	// for postgres, a libpq connection string or URL.
	DSN string `yaml:"dsn"`
}

// DefaultConfig is SQLite in the data directory.
func DefaultConfig() Config { return Config{Driver: DriverSQLite} }

// Validate names the offending key relative to the store section.
func (c Config) Validate() error {
	switch c.Driver {
	case DriverSQLite:
	case DriverPostgres:
		if c.DSN == "" {
			return errors.New("dsn: required when driver is postgres")
		}
	default:
		return fmt.Errorf("driver: %q is not sqlite or postgres", c.Driver)
	}
	return nil
}
