package store

import (
	"context"
	"strings"
	"time"

	"hotdesk/prov"
)

func scanAdmin(sc scanner) (prov.Admin, error) {
	var a prov.Admin
	var created int64
	var cols string
	err := sc.Scan(&a.ID, &a.Username, &a.PasswordHash, &created, &cols)
	a.CreatedAt = fromMS(created)
	if cols != "" {
		a.UserColumns = strings.Split(cols, ",")
	}
	return a, err
}

// CreateAdmin inserts a and sets its ID; CreatedAt defaults to now.
func (s *Store) CreateAdmin(ctx context.Context, a *prov.Admin) error {
	if a.CreatedAt.IsZero() {
		a.CreatedAt = s.stamp()
	}
	err := s.wq().QueryRowContext(ctx, `INSERT INTO admins (username, password_hash, created_at)
		VALUES ($1, $2, $3) RETURNING id`, a.Username, a.PasswordHash, ms(a.CreatedAt)).Scan(&a.ID)
	return wrap(err, "create admin %q", a.Username)
}

// UpdateAdmin sets the user name and password hash of the admin with a.ID.
func (s *Store) UpdateAdmin(ctx context.Context, a *prov.Admin) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE admins SET username = $1, password_hash = $2 WHERE id = $3`,
		a.Username, a.PasswordHash, a.ID))
	return wrap(err, "update admin %q", a.Username)
}

// GetAdmin returns the admin called username.
func (s *Store) GetAdmin(ctx context.Context, username string) (prov.Admin, error) {
	a, err := scanAdmin(s.rq().QueryRowContext(ctx, `SELECT id, username, password_hash, created_at, user_columns
		FROM admins WHERE username = $1`, username))
	return a, wrap(err, "get admin %q", username)
}

// SetAdminUserColumns keeps the users-list columns the admin chose; the
// keys must not contain commas (nil: back to the defaults).
func (s *Store) SetAdminUserColumns(ctx context.Context, id int64, cols []string) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE admins SET user_columns = $1 WHERE id = $2`,
		strings.Join(cols, ","), id))
	return wrap(err, "set admin %d columns", id)
}

// CountAdmins returns the number of admins (0 at first start).
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.rq().QueryRowContext(ctx, `SELECT count(*) FROM admins`).Scan(&n)
	return n, wrap(err, "count admins")
}

const tokenCols = `id, name, admin_id, hash, prefix, created_at, expires_at, last_used_at, revoked_at`

func scanToken(sc scanner) (prov.APIToken, error) {
	var t prov.APIToken
	var created, expires, used, revoked int64
	err := sc.Scan(&t.ID, &t.Name, &t.AdminID, &t.Hash, &t.Prefix, &created, &expires, &used, &revoked)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = fromMS(created), fromMS(expires), fromMS(used), fromMS(revoked)
	return t, err
}

// CreateToken inserts t (its Hash is the token's SHA-256) and sets its ID.
func (s *Store) CreateToken(ctx context.Context, t *prov.APIToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.stamp()
	}
	err := s.wq().QueryRowContext(ctx, `INSERT INTO api_tokens (name, admin_id, hash, prefix, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`, t.Name, t.AdminID, t.Hash, t.Prefix, ms(t.CreatedAt),
		ms(t.ExpiresAt)).Scan(&t.ID)
	return wrap(err, "create token %q", t.Name)
}

// TokenByHash returns the token whose SHA-256 is hash, expired or revoked
// ones included: the caller decides.
func (s *Store) TokenByHash(ctx context.Context, hash string) (prov.APIToken, error) {
	t, err := scanToken(s.rq().QueryRowContext(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = $1`, hash))
	return t, wrap(err, "token by hash")
}

// ListTokens returns every token, oldest first.
func (s *Store) ListTokens(ctx context.Context) ([]prov.APIToken, error) {
	rows, err := s.rq().QueryContext(ctx, `SELECT `+tokenCols+` FROM api_tokens ORDER BY id`)
	if err != nil {
		return nil, wrap(err, "list tokens")
	}
	defer rows.Close()
	var out []prov.APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, wrap(err, "list tokens")
		}
		out = append(out, t)
	}
	return out, wrap(rows.Err(), "list tokens")
}

// RevokeToken marks the token with id revoked at at; revoking it again
// keeps the first time.
func (s *Store) RevokeToken(ctx context.Context, id int64, at time.Time) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE api_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN $1
		ELSE revoked_at END WHERE id = $2`, ms(at), id))
	return wrap(err, "revoke token %d", id)
}

// TouchToken records that the token with id was used at at.
func (s *Store) TouchToken(ctx context.Context, id int64, at time.Time) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE api_tokens SET last_used_at = $1 WHERE id = $2`, ms(at), id))
	return wrap(err, "touch token %d", id)
}
