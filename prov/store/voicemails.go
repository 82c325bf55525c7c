package store

import (
	"context"
	"time"

	"hotdesk/prov"
)

const vmCols = `id, user_id, from_number, path, duration_ms, size, created_at, heard_at`

func scanVoicemail(sc scanner) (prov.Voicemail, error) {
	var v prov.Voicemail
	var dur, created, heard int64
	err := sc.Scan(&v.ID, &v.UserID, &v.From, &v.Path, &dur, &v.Size, &created, &heard)
	v.Duration, v.Created, v.Heard = time.Duration(dur)*time.Millisecond, fromMS(created), fromMS(heard)
	return v, err
}

// AddVoicemail inserts v and sets its ID; CreatedAt defaults to now.
func (s *Store) AddVoicemail(ctx context.Context, v *prov.Voicemail) error {
	if v.Created.IsZero() {
		v.Created = s.stamp()
	}
	err := s.wq().QueryRowContext(ctx, `INSERT INTO voicemails (user_id, from_number, path, duration_ms, size,
		created_at, heard_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		v.UserID, v.From, v.Path, v.Duration.Milliseconds(), v.Size, ms(v.Created), ms(v.Heard)).Scan(&v.ID)
	return wrap(err, "add voicemail of user %d", v.UserID)
}

// GetVoicemail returns one message.
func (s *Store) GetVoicemail(ctx context.Context, id int64) (prov.Voicemail, error) {
	v, err := scanVoicemail(s.rq().QueryRowContext(ctx, `SELECT `+vmCols+` FROM voicemails WHERE id = $1`, id))
	return v, wrap(err, "get voicemail %d", id)
}

// ListVoicemails returns the user's messages, newest first.
func (s *Store) ListVoicemails(ctx context.Context, userID int64) ([]prov.Voicemail, error) {
	out, err := collect(ctx, s.rq(), scanVoicemail, `SELECT `+vmCols+` FROM voicemails WHERE user_id = $1
		ORDER BY created_at DESC, id DESC`, userID)
	return out, wrap(err, "list voicemails of user %d", userID)
}

// MarkVoicemailHeard sets HeardAt once.
func (s *Store) MarkVoicemailHeard(ctx context.Context, id int64, at time.Time) error {
	if _, err := s.GetVoicemail(ctx, id); err != nil {
		return err
	}
	_, err := s.wq().ExecContext(ctx, `UPDATE voicemails SET heard_at = $1 WHERE id = $2 AND heard_at = 0`, ms(at), id)
	return wrap(err, "mark voicemail %d heard", id)
}

// DeleteVoicemail removes a message's row (the caller removes its file).
func (s *Store) DeleteVoicemail(ctx context.Context, id int64) error {
	return wrap(affected(s.wq().ExecContext(ctx, `DELETE FROM voicemails WHERE id = $1`, id)), "delete voicemail %d", id)
}

// VoicemailBytes is what the user's messages take, and all users'.
func (s *Store) VoicemailBytes(ctx context.Context, userID int64) (user, total int64, err error) {
	err = s.rq().QueryRowContext(ctx, `SELECT COALESCE(SUM(CASE WHEN user_id = $1 THEN size ELSE 0 END), 0),
		COALESCE(SUM(size), 0) FROM voicemails`, userID).Scan(&user, &total)
	return user, total, wrap(err, "voicemail bytes of user %d", userID)
}

// VoicemailsBefore are the messages created before t, oldest first.
func (s *Store) VoicemailsBefore(ctx context.Context, t time.Time, limit int) ([]prov.Voicemail, error) {
	out, err := collect(ctx, s.rq(), scanVoicemail, `SELECT `+vmCols+` FROM voicemails WHERE created_at < $1
		ORDER BY created_at, id LIMIT $2`, ms(t), limit)
	return out, wrap(err, "voicemails before %s", t)
}
