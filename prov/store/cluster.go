package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/sys/unix"

	"hotdesk/prov"
)

// Clustered reports whether several nodes may share this store (PostgreSQL).
func (s *Store) Clustered() bool { return s.c.driver == DriverPostgres }

// advisoryKey maps a lock name to PostgreSQL's 64-bit advisory lock space.
func advisoryKey(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("hotdesk:" + name))
	return int64(h.Sum64())
}

// Lock takes the named cluster-wide locks, in sorted order (so two callers
// never deadlock), and returns their release. On PostgreSQL they are
// session advisory locks on one pooled connection, dropped by the server
// if this node dies; on SQLite (one node) it is a no-op.
func (s *Store) Lock(ctx context.Context, names ...string) (func(), error) {
	if !s.Clustered() || len(names) == 0 {
		return func() {}, nil
	}
	conn, stmt, keys, release, err := s.lockConn(ctx, names)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, stmt, keys...); err != nil {
		release()
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	return release, nil
}

// LockLoginState is Lock, then LoginState read once the locks are held, in
// one round trip on PostgreSQL (a pipeline: each statement of it reads
// what was committed when it runs, so the reads see every write made
// under the locks before). A login costs the database round trips more
// than anything else (issue 16's CPU figure).
func (s *Store) LockLoginState(ctx context.Context, names []string, userID, deviceID, siteID int64) (func(), prov.LoginState, error) {
	if !s.Clustered() || len(names) == 0 {
		st, err := s.LoginState(ctx, userID, deviceID, siteID)
		return func() {}, st, err
	}
	conn, stmt, keys, release, err := s.lockConn(ctx, names)
	if err != nil {
		return nil, prov.LoginState{}, err
	}
	var st prov.LoginState
	err = conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		b := &pgx.Batch{}
		b.Queue(stmt, keys...)
		b.Queue(`SELECT `+userCols+` FROM users WHERE id = $1`, userID)
		b.Queue(loginSessionsSQL, userID, deviceID)
		b.Queue(`SELECT `+siteCols+` FROM sites WHERE id = $1`, siteID)
		br := pc.SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		u, err := scanUser(br.QueryRow())
		if errors.Is(err, pgx.ErrNoRows) {
			err = sql.ErrNoRows
		}
		if err != nil {
			return err
		}
		st.User = u
		rows, err := br.Query()
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			sess, err := scanSession(rows)
			if err != nil {
				return err
			}
			st.Sessions = append(st.Sessions, sess)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows.Close()
		if st.Site, err = scanSite(br.QueryRow()); errors.Is(err, pgx.ErrNoRows) {
			st.Site, err = prov.Site{}, nil
		}
		if err != nil {
			return err
		}
		return br.Close()
	})
	if err != nil {
		release()
		return nil, prov.LoginState{}, wrap(err, "lock login state")
	}
	return release, st, nil
}

// lockConn takes a pooled connection for names' locks and returns the
// statement taking them (in sorted order: one statement's target list is
// evaluated left to right), its arguments and the release.
func (s *Store) lockConn(ctx context.Context, names []string) (*sql.Conn, string, []any, func(), error) {
	conn, err := s.c.w.Conn(ctx)
	if err != nil {
		return nil, "", nil, nil, fmt.Errorf("store: lock: %w", err)
	}
	keys := make([]int64, 0, len(names))
	for _, n := range names {
		keys = append(keys, advisoryKey(n))
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	release := func() {
		// Detached: a cancelled caller must still let go of its locks.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock_all()`); err != nil {
			// A connection whose unlock failed must not go back to the
			// pool still holding locks.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		_ = conn.Close()
	}
	calls := make([]string, len(keys))
	args := make([]any, len(keys))
	for i, k := range keys {
		calls[i], args[i] = "pg_advisory_lock($"+strconv.Itoa(i+1)+")", k
	}
	return conn, "SELECT " + strings.Join(calls, ", "), args, release, nil
}

// lockMigrations holds the migration lock on its own connection, so nodes
// starting together migrate one after another (the later ones find the
// schema current).
func lockMigrations(ctx context.Context, db *sql.DB) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: migration lock: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, advisoryKey("migrate")); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("store: migration lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, advisoryKey("migrate"))
		_ = conn.Close()
	}, nil
}

// EventChannel is the PostgreSQL NOTIFY channel cluster events travel on.
const EventChannel = "hotdesk_events"

// Notify sends payload to every node listening (PostgreSQL NOTIFY, sent at
// commit, in order per sender); a no-op on SQLite.
func (s *Store) Notify(ctx context.Context, payload string) error {
	if !s.Clustered() {
		return nil
	}
	_, err := s.c.w.ExecContext(ctx, `SELECT pg_notify($1, $2)`, EventChannel, payload)
	return wrap(err, "notify")
}

// Listen delivers every payload sent with Notify (by any node, this one
// too) to fn until ctx ends, over its own connection. After every
// (re)connection, once LISTEN is in place, it calls resync: notifications
// sent while no connection listened are lost, and the caller re-reads the
// tables instead. lost (may be nil) is called each time the connection is
// lost or cannot be made. Reconnection backs off up to 5 s. Returns nil on
// cancel.
func (s *Store) Listen(ctx context.Context, fn func(payload string), resync func(ctx context.Context) error, lost func(error)) error {
	if !s.Clustered() {
		<-ctx.Done()
		return nil
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, fn, resync)
		if ctx.Err() != nil {
			return nil
		}
		s.c.logger.Warn("store event listener lost its connection; reconnecting", "component", "store", "err", err)
		if lost != nil {
			lost(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

func (s *Store) listenOnce(ctx context.Context, fn func(string), resync func(context.Context) error) error {
	ka := s.c.keepalive
	if ka <= 0 {
		ka = DefaultEventKeepalive
	}
	cfg, err := pgx.ParseConfig(s.c.dsn)
	if err != nil {
		return err
	}
	cfg.DialFunc = keepaliveDialer(ka, cfg.ConnectTimeout).DialContext
	// A server that accepts the connection but never answers (a stalled
	// path) must not hold the reconnection forever.
	cctx, cancel := context.WithTimeout(ctx, max(cfg.ConnectTimeout, 5*ka))
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ka)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+EventChannel); err != nil {
		return err
	}
	if resync != nil {
		if err := resync(ctx); err != nil {
			return fmt.Errorf("resync: %w", err)
		}
	}
	for {
		// A partition that drops packets silently (or a peer that stops
		// answering) looks like a quiet channel: after ka without a
		// notification, ask the server; no answer within ka ends the
		// connection, so the node stops serving on a stale view within
		// about 2*ka instead of when TCP gives up (minutes, or never
		// while a middlebox still acknowledges).
		wctx, cancel := context.WithTimeout(ctx, ka)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			fn(n.Payload)
			continue
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) && !pgconn.Timeout(err) {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, ka)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("keepalive: no answer within %s: %w", ka, err)
		}
	}
}

// keepaliveDialer dials the event connection with TCP keepalives every ka
// and, on TCP, TCP_USER_TIMEOUT of 2*ka: unacknowledged data (the ping)
// ends the connection in the kernel too.
func keepaliveDialer(ka, connectTimeout time.Duration) *net.Dialer {
	return &net.Dialer{Timeout: connectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: ka, Interval: ka, Count: 2},
		Control: func(network, _ string, rc syscall.RawConn) error {
			if !strings.HasPrefix(network, "tcp") {
				return nil
			}
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int((2 * ka).Milliseconds()))
			})
			if err != nil {
				return err
			}
			return serr
		}}
}

// Check connects to a PostgreSQL store without migrating or locking
// anything (hotdeskd check-config, also next to a running node) and
// describes its schema; SQLite is left alone (the running daemon holds it).
func Check(ctx context.Context, cfg Config) (string, error) {
	if err := cfg.Validate(); err != nil {
		return "", fmt.Errorf("store: config: %w", err)
	}
	if cfg.Driver != DriverPostgres {
		return "sqlite (not opened)", nil
	}
	db, err := sql.Open("pgx", cfg.DSN)
	if err != nil {
		return "", fmt.Errorf("store: postgres: %w", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		return "", fmt.Errorf("store: postgres: cannot connect: %w", err)
	}
	ms, err := loadMigrations("postgres")
	if err != nil {
		return "", err
	}
	var current int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
		current = 0 // a new, empty database: the first node creates the schema
	}
	latest := ms[len(ms)-1].version
	if current > latest {
		return "", fmt.Errorf("store: postgres: schema version %d is newer than this hotdeskd knows (%d)", current, latest)
	}
	return fmt.Sprintf("postgres reachable, schema version %d (this hotdeskd: %d)", current, latest), nil
}
