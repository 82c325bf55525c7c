package store

import (
	"errors"
	"fmt"
	"time"
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
	// EventKeepalive bounds how long the PostgreSQL event listener's
	// connection may stay silent: after that long without a notification it
	// pings, and a ping unanswered for as long ends the connection (the
	// node goes not ready and resynchronises after reconnecting). Its
	// socket also gets TCP keepalives and TCP_USER_TIMEOUT of twice this.
	// 0: DefaultEventKeepalive.
	EventKeepalive time.Duration `yaml:"event_keepalive"`
}

// DefaultEventKeepalive notices a silent partition within about 4 s.
const DefaultEventKeepalive = 2 * time.Second

// eventKeepalive is EventKeepalive or its default.
func (c Config) eventKeepalive() time.Duration {
	if c.EventKeepalive <= 0 {
		return DefaultEventKeepalive
	}
	return c.EventKeepalive
}

// DefaultConfig is SQLite in the data directory.
func DefaultConfig() Config {
	return Config{Driver: DriverSQLite, EventKeepalive: DefaultEventKeepalive}
}

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
	if k := c.EventKeepalive; k != 0 && (k < 500*time.Millisecond || k > time.Minute) {
		return fmt.Errorf("event_keepalive: %s: want 0 (default %s) or within 500ms..1m", k, DefaultEventKeepalive)
	}
	return nil
}
