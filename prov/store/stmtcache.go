package store

import (
	"context"
	"database/sql"
	"sync"

	"hotdesk/prov"
)

// stmtCache runs queries through prepared statements kept per query text.
// modernc spends more time compiling a statement than running a one-row
// INSERT or lookup, so reusing them roughly halves a 10,000-user import.
// The set of query texts is fixed by this package, so the cache is bounded.
type stmtCache struct {
	q  querier // *sql.DB or *sql.Tx
	mu sync.Mutex
	m  map[string]*sql.Stmt
	// interactive, when set, serves the queries of a context marked by
	// prov.Interactive (its own connections).
	interactive *stmtCache
	// direct passes queries straight to q (PostgreSQL): pgx keeps its
	// own statement cache per connection (see openPostgres).
	direct bool
	// gate, when set, is taken around each statement: SQLite's writer.
	gate *writeGate
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// reader is what list helpers need; *stmtCache, *sql.DB and *sql.Tx have it.
type reader interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func newStmtCache(q querier) *stmtCache { return &stmtCache{q: q, m: make(map[string]*sql.Stmt)} }

// newDirect is a stmtCache that prepares nothing (PostgreSQL).
func newDirect(q querier) *stmtCache {
	return &stmtCache{q: q, m: make(map[string]*sql.Stmt), direct: true}
}

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st, nil
	}
	st, err := c.q.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.m[query] = st
	return st, nil
}

// ExecContext runs query as a cached prepared statement.
func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if c.direct {
		return c.q.ExecContext(ctx, query, args...)
	}
	if c.gate != nil {
		if err := c.gate.acquire(ctx); err != nil {
			return nil, err
		}
		defer c.gate.release()
	}
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryContext runs query as a cached prepared statement.
func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if c.interactive != nil && prov.IsInteractive(ctx) {
		return c.interactive.QueryContext(ctx, query, args...)
	}
	if c.direct {
		return c.q.QueryContext(ctx, query, args...)
	}
	if c.gate != nil {
		// Released when the statement has run: the rows keep the
		// connection, and the next holder waits for it in database/sql,
		// alone.
		if err := c.gate.acquire(ctx); err != nil {
			return nil, err
		}
		defer c.gate.release()
	}
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs query as a cached prepared statement. A *sql.Row
// cannot be made from an error, so a failed prepare runs the query
// unprepared to report it.
func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if c.interactive != nil && prov.IsInteractive(ctx) {
		return c.interactive.QueryRowContext(ctx, query, args...)
	}
	if c.direct {
		return c.q.QueryRowContext(ctx, query, args...)
	}
	if c.gate != nil {
		if err := c.gate.acquire(ctx); err != nil {
			return c.q.QueryRowContext(ctx, query, args...) // reports ctx's error
		}
		defer c.gate.release()
	}
	st, err := c.stmt(ctx, query)
	if err != nil {
		return c.q.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// close closes every cached statement (a transaction's close with it).
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
}
