package store

import (
	"context"
	"errors"
	"time"

	"hotdesk/prov"
)

const passwordTokenCols = `id, user_id, hash, purpose, created_at, expires_at, used_at`

func scanPasswordToken(sc scanner) (prov.PasswordToken, error) {
	var t prov.PasswordToken
	var created, expires, used int64
	err := sc.Scan(&t.ID, &t.UserID, &t.Hash, &t.Purpose, &created, &expires, &used)
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromMS(created), fromMS(expires), fromMS(used)
	return t, err
}

// passwordTokenKeep is how long a spent or expired link is kept before a
// later CreatePasswordToken deletes it: long enough to tell "used" and
// "expired" apart for a user who clicks an old mail.
const passwordTokenKeep = 30 * 24 * time.Hour

// CreatePasswordToken inserts t (its Hash is the link secret's SHA-256) and
// sets its ID. It also deletes links that expired more than
// passwordTokenKeep ago, so the table stays bounded without a sweeper.
func (s *Store) CreatePasswordToken(ctx context.Context, t *prov.PasswordToken) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = s.stamp()
	}
	if t.ExpiresAt.IsZero() || t.Hash == "" {
		return wrap(prov.Invalid("expires_at", "a link needs a hash and an expiry"), "create password token")
	}
	err := s.inTx(ctx, func(tx *Store) error {
		if _, err := tx.wq().ExecContext(ctx, `DELETE FROM password_tokens WHERE expires_at < $1`,
			ms(t.CreatedAt.Add(-passwordTokenKeep))); err != nil {
			return wrap(err, "prune password tokens")
		}
		err := tx.wq().QueryRowContext(ctx, `INSERT INTO password_tokens (user_id, hash, purpose, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING id`, t.UserID, t.Hash, t.Purpose, ms(t.CreatedAt),
			ms(t.ExpiresAt)).Scan(&t.ID)
		return wrap(err, "create password token for user %d", t.UserID)
	})
	if te := (txError{}); errors.As(err, &te) {
		return wrap(err, "create password token")
	}
	return err
}

// PasswordTokenByHash returns the link whose SHA-256 is hash, spent and
// expired ones included: the caller tells the user which.
func (s *Store) PasswordTokenByHash(ctx context.Context, hash string) (prov.PasswordToken, error) {
	t, err := scanPasswordToken(s.rq().QueryRowContext(ctx,
		`SELECT `+passwordTokenCols+` FROM password_tokens WHERE hash = $1`, hash))
	return t, wrap(err, "password token by hash")
}

// UsePasswordToken spends the link once: prov.ErrNotFound if it is missing,
// already spent or expired at at, so two racing uses succeed exactly once.
func (s *Store) UsePasswordToken(ctx context.Context, id int64, at time.Time) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE password_tokens SET used_at = $1
		WHERE id = $2 AND used_at = 0 AND expires_at > $1`, ms(at), id))
	return wrap(err, "use password token %d", id)
}

// SpendPasswordTokens spends every unspent link of the user: once a
// password is set, older links must not set it again.
func (s *Store) SpendPasswordTokens(ctx context.Context, userID int64, at time.Time) error {
	_, err := s.wq().ExecContext(ctx, `UPDATE password_tokens SET used_at = $1 WHERE user_id = $2 AND used_at = 0`,
		ms(at), userID)
	return wrap(err, "spend password tokens of user %d", userID)
}
