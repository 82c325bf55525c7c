package store

import (
	"context"
	"time"

	"hotdesk/prov"
)

const webSessionCols = `key_hash, csrf, admin, name, created_at, seen_at, flash, sp_user, sp_user_id, sp_number,
	sp_ha1_md5, sp_ha1_sha256, sp_expires`

func scanWebSession(sc scanner) (prov.WebSession, error) {
	var w prov.WebSession
	var created, seen, expires int64
	err := sc.Scan(&w.Key, &w.CSRF, &w.Admin, &w.Name, &created, &seen, &w.Flash, &w.Softphone.Username,
		&w.Softphone.UserID, &w.Softphone.Number, &w.Softphone.HA1MD5, &w.Softphone.HA1SHA256, &expires)
	w.Created, w.Seen, w.Softphone.Expires = fromMS(created), fromMS(seen), fromMS(expires)
	return w, err
}

// webSessions runs a query returning sessions (DELETE … RETURNING too).
func (s *Store) webSessions(ctx context.Context, q *stmtCache, query string, args ...any) ([]prov.WebSession, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []prov.WebSession
	for rows.Next() {
		w, err := scanWebSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// CreateWebSession inserts w; prov.ErrConflict for a taken key.
func (s *Store) CreateWebSession(ctx context.Context, w *prov.WebSession) error {
	if w.Key == "" || w.Name == "" {
		return wrap(prov.Invalid("key", "a portal session needs a key and a name"), "create web session")
	}
	if w.Created.IsZero() {
		w.Created = s.stamp()
	}
	if w.Seen.IsZero() {
		w.Seen = w.Created
	}
	_, err := s.wq().ExecContext(ctx, `INSERT INTO web_sessions (key_hash, csrf, admin, name, created_at, seen_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, w.Key, w.CSRF, w.Admin, w.Name, ms(w.Created), ms(w.Seen))
	return wrap(err, "create web session")
}

// GetWebSession returns one session.
func (s *Store) GetWebSession(ctx context.Context, key string) (prov.WebSession, error) {
	w, err := scanWebSession(s.rq().QueryRowContext(ctx, `SELECT `+webSessionCols+` FROM web_sessions WHERE key_hash = $1`, key))
	return w, wrap(err, "get web session")
}

// CountWebSessions counts the stored sessions.
func (s *Store) CountWebSessions(ctx context.Context) (int, error) {
	var n int
	err := s.rq().QueryRowContext(ctx, `SELECT COUNT(*) FROM web_sessions`).Scan(&n)
	return n, wrap(err, "count web sessions")
}

// TouchWebSession records a request; never moves seen_at back.
func (s *Store) TouchWebSession(ctx context.Context, key string, at time.Time) error {
	_, err := s.wq().ExecContext(ctx, `UPDATE web_sessions SET seen_at = $1 WHERE key_hash = $2 AND seen_at < $1`,
		ms(at), key)
	return wrap(err, "touch web session")
}

// SetWebSessionFlash sets the one-shot message.
func (s *Store) SetWebSessionFlash(ctx context.Context, key, flash string) error {
	_, err := s.wq().ExecContext(ctx, `UPDATE web_sessions SET flash = $1 WHERE key_hash = $2`, flash, key)
	return wrap(err, "set web session flash")
}

// ClearWebSessionFlash clears the message if it is still flash; false
// when another request took it first.
func (s *Store) ClearWebSessionFlash(ctx context.Context, key, flash string) (bool, error) {
	err := affected(s.wq().ExecContext(ctx, `UPDATE web_sessions SET flash = '' WHERE key_hash = $1 AND flash = $2`,
		key, flash))
	if err == prov.ErrNotFound {
		return false, nil
	}
	return err == nil, wrap(err, "clear web session flash")
}

// DeleteWebSession deletes one session and returns it.
func (s *Store) DeleteWebSession(ctx context.Context, key string) (prov.WebSession, error) {
	w, err := scanWebSession(s.wq().QueryRowContext(ctx, `DELETE FROM web_sessions WHERE key_hash = $1
		RETURNING `+webSessionCols, key))
	return w, wrap(err, "delete web session")
}

// PruneWebSessions deletes and returns the expired sessions.
func (s *Store) PruneWebSessions(ctx context.Context, seenBefore, createdBefore time.Time) ([]prov.WebSession, error) {
	out, err := s.webSessions(ctx, s.wq(), `DELETE FROM web_sessions WHERE seen_at < $1 OR created_at < $2
		RETURNING `+webSessionCols, ms(seenBefore), ms(createdBefore))
	return out, wrap(err, "prune web sessions")
}

// DeleteOldestWebSession deletes and returns the least recently seen session.
func (s *Store) DeleteOldestWebSession(ctx context.Context) (prov.WebSession, error) {
	w, err := scanWebSession(s.wq().QueryRowContext(ctx, `DELETE FROM web_sessions WHERE key_hash =
		(SELECT key_hash FROM web_sessions ORDER BY seen_at, key_hash LIMIT 1) RETURNING `+webSessionCols))
	return w, wrap(err, "delete oldest web session")
}

// DeleteUserWebSessions deletes and returns a user's sessions but keep's.
func (s *Store) DeleteUserWebSessions(ctx context.Context, name, keep string) ([]prov.WebSession, error) {
	out, err := s.webSessions(ctx, s.wq(), `DELETE FROM web_sessions WHERE name = $1 AND admin = $2 AND key_hash <> $3
		RETURNING `+webSessionCols, name, false, keep)
	return out, wrap(err, "delete web sessions of %s", name)
}

// SetWebSoftphone sets the session's softphone account.
func (s *Store) SetWebSoftphone(ctx context.Context, key string, sp prov.WebSoftphone) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE web_sessions SET sp_user = $1, sp_user_id = $2, sp_number = $3,
		sp_ha1_md5 = $4, sp_ha1_sha256 = $5, sp_expires = $6 WHERE key_hash = $7`, sp.Username, sp.UserID, sp.Number,
		sp.HA1MD5, sp.HA1SHA256, ms(sp.Expires), key))
	return wrap(err, "set web softphone")
}

// ClearWebSoftphones drops a user's softphone accounts and returns the
// sessions that had one (as they were).
func (s *Store) ClearWebSoftphones(ctx context.Context, userID int64) ([]prov.WebSession, error) {
	var out []prov.WebSession
	err := s.inTx(ctx, func(tx *Store) error {
		var err error
		out, err = tx.webSessions(ctx, tx.wq(), `SELECT `+webSessionCols+` FROM web_sessions
			WHERE sp_user_id = $1 AND sp_user <> ''`, userID)
		if err != nil {
			return err
		}
		_, err = tx.wq().ExecContext(ctx, `UPDATE web_sessions SET sp_user = '', sp_user_id = 0, sp_number = '',
			sp_ha1_md5 = '', sp_ha1_sha256 = '', sp_expires = 0 WHERE sp_user_id = $1`, userID)
		return err
	})
	return out, wrap(err, "clear web softphones of user %d", userID)
}

// ListWebSoftphones returns the sessions with a live softphone account.
func (s *Store) ListWebSoftphones(ctx context.Context, now time.Time) ([]prov.WebSession, error) {
	out, err := s.webSessions(ctx, s.rq(), `SELECT `+webSessionCols+` FROM web_sessions
		WHERE sp_user <> '' AND sp_expires > $1`, ms(now))
	return out, wrap(err, "list web softphones")
}
