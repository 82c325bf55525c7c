package store

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// scanner is *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

// ms stores a time as unix milliseconds; the zero time is 0.
func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the inverse of ms, in UTC.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// nullID stores the 0 ID ("none") as NULL so foreign keys accept it; reads
// use COALESCE(col, 0).
func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// codec encodes and decodes JSON columns, keeping the first error so a
// row's columns can be handled in one expression list. Empty values are
// stored as "" and decoded without calling encoding/json: most users and
// devices have no params, and loading 10,000 of each at start-up is hot.
type codec struct{ err error }

func (c *codec) enc(v any, empty bool) string {
	if empty || c.err != nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		c.err = err
		return ""
	}
	return string(b)
}

func (c *codec) dec(s string, v any) {
	if s == "" || c.err != nil {
		return
	}
	c.err = json.Unmarshal([]byte(s), v)
}

// likePattern is a case-insensitive substring pattern for `lower(col) LIKE $n ESCAPE '\'`.
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// collect runs query and scans every row with scan.
func collect[T any](ctx context.Context, q reader, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// stamp is now at the precision stored (milliseconds, UTC), so a struct
// the store stamped equals the same struct read back.
func (s *Store) stamp() time.Time { return fromMS(s.c.now().UnixMilli()) }
