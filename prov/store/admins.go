package store

import (
	"context"

	"hotdesk/prov"
)

func scanAdmin(sc scanner) (prov.Admin, error) {
	var a prov.Admin
	var created int64
	err := sc.Scan(&a.ID, &a.Username, &a.PasswordHash, &created)
	a.CreatedAt = fromMS(created)
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
	a, err := scanAdmin(s.rq().QueryRowContext(ctx, `SELECT id, username, password_hash, created_at FROM admins
		WHERE username = $1`, username))
	return a, wrap(err, "get admin %q", username)
}

// CountAdmins returns the number of admins (0 at first start).
func (s *Store) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := s.rq().QueryRowContext(ctx, `SELECT count(*) FROM admins`).Scan(&n)
	return n, wrap(err, "count admins")
}

// CreateToken inserts t (its Hash is the token's SHA-256) and sets its ID.
func (s *Store) CreateToken(ctx context.Context, t *prov.APIToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.stamp()
	}
	err := s.wq().QueryRowContext(ctx, `INSERT INTO api_tokens (name, admin_id, hash, created_at)
		VALUES ($1, $2, $3, $4) RETURNING id`, t.Name, t.AdminID, t.Hash, ms(t.CreatedAt)).Scan(&t.ID)
	return wrap(err, "create token %q", t.Name)
}

// TokenByHash returns the token whose SHA-256 is hash.
func (s *Store) TokenByHash(ctx context.Context, hash string) (prov.APIToken, error) {
	var t prov.APIToken
	var created int64
	err := s.rq().QueryRowContext(ctx, `SELECT id, name, admin_id, hash, created_at FROM api_tokens
		WHERE hash = $1`, hash).Scan(&t.ID, &t.Name, &t.AdminID, &t.Hash, &created)
	t.CreatedAt = fromMS(created)
	return t, wrap(err, "token by hash")
}
