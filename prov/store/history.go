package store

import (
	"context"
	"math"
	"strconv"
	"strings"

	"hotdesk/prov"
)

const callCols = `id, call_id, owner, user_id, device_id, session_id, locked, from_number, to_number, route, result,
	start_at, answer_at, end_at`

func scanCall(sc scanner) (prov.CallRecord, error) {
	var c prov.CallRecord
	var start, answer, end int64
	var owner string
	err := sc.Scan(&c.ID, &c.CallID, &owner, &c.UserID, &c.DeviceID, &c.SessionID, &c.Locked, &c.From, &c.To,
		&c.Route, &c.Result, &start, &answer, &end)
	c.Start, c.Answer, c.End = fromMS(start), fromMS(answer), fromMS(end)
	c.Owner, _ = prov.ParseOwner(owner)
	return c, err
}

// AddCallRecord appends c and sets its ID. User and device IDs are not
// foreign keys: history outlives what it mentions.
func (s *Store) AddCallRecord(ctx context.Context, c *prov.CallRecord) error {
	err := s.wq().QueryRowContext(ctx, `INSERT INTO call_records (call_id, owner, user_id, device_id, session_id,
		locked, from_number, to_number, route, result, start_at, answer_at, end_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
		c.CallID, c.Owner.String(), c.UserID, c.DeviceID, c.SessionID, c.Locked, c.From, c.To, c.Route, c.Result,
		ms(c.Start), ms(c.Answer), ms(c.End)).Scan(&c.ID)
	return wrap(err, "add call record %q", c.CallID)
}

// ListCallRecords returns the user's calls (every call when userID is 0),
// newest first. Limit 0 means no limit.
func (s *Store) ListCallRecords(ctx context.Context, userID int64, limit int) ([]prov.CallRecord, error) {
	query := `SELECT ` + callCols + ` FROM call_records`
	var args []any
	if userID != 0 {
		args = append(args, userID)
		query += ` WHERE user_id = $1`
	}
	query += ` ORDER BY start_at DESC, id DESC`
	if limit > 0 {
		args = append(args, limit)
		query += ` LIMIT $` + strconv.Itoa(len(args))
	}
	out, err := collect(ctx, s.rq(), scanCall, query, args...)
	return out, wrap(err, "list call records of user %d", userID)
}

const addAuditSQL = `INSERT INTO audit_events (at, actor, action, object, before_data,
	after_data, remote) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`

// AddAudit appends e and sets its ID; At defaults to now.
func (s *Store) AddAudit(ctx context.Context, e *prov.AuditEvent) error {
	if e.At.IsZero() {
		e.At = s.stamp()
	}
	err := s.wq().QueryRowContext(ctx, addAuditSQL,
		ms(e.At), e.Actor, e.Action, e.Object, e.Before, e.After, e.Remote).Scan(&e.ID)
	return wrap(err, "add audit %s %s", e.Action, e.Object)
}

// ListAudit returns matching events, newest first. Limit 0 means no limit.
func (s *Store) ListAudit(ctx context.Context, q prov.AuditQuery) ([]prov.AuditEvent, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, cond+" $"+strconv.Itoa(len(args)))
	}
	if q.Actor != "" {
		add("actor =", q.Actor)
	}
	if q.Action != "" {
		add("action =", q.Action)
	}
	if q.Object != "" {
		add("object =", q.Object)
	}
	if !q.Since.IsZero() {
		add("at >=", ms(q.Since))
	}
	query := `SELECT id, at, actor, action, object, before_data, after_data, remote FROM audit_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY at DESC, id DESC"
	if q.Limit > 0 {
		args = append(args, q.Limit)
		query += " LIMIT $" + strconv.Itoa(len(args))
	}
	out, err := collect(ctx, s.rq(), func(sc scanner) (prov.AuditEvent, error) {
		var e prov.AuditEvent
		var at int64
		err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Object, &e.Before, &e.After, &e.Remote)
		e.At = fromMS(at)
		return e, err
	}, query, args...)
	return out, wrap(err, "list audit")
}

const recordingCols = `id, user_id, call_id, peer, incoming, start_at, duration_ms, bytes, file`

func scanRecording(sc scanner) (prov.Recording, error) {
	var r prov.Recording
	var start int64
	err := sc.Scan(&r.ID, &r.UserID, &r.CallID, &r.Peer, &r.Incoming, &start, &r.DurationMS, &r.Bytes, &r.File)
	r.Start = fromMS(start)
	return r, err
}

// AddRecording stores r and sets its ID; prov.ErrConflict for a file
// already recorded.
func (s *Store) AddRecording(ctx context.Context, r *prov.Recording) error {
	if r.File == "" || r.Start.IsZero() {
		return wrap(prov.Invalid("file", "a recording needs its file and start"), "add recording")
	}
	err := s.wq().QueryRowContext(ctx, `INSERT INTO recordings (user_id, call_id, peer, incoming, start_at,
		duration_ms, bytes, file) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id`,
		r.UserID, r.CallID, r.Peer, r.Incoming, ms(r.Start), r.DurationMS, r.Bytes, r.File).Scan(&r.ID)
	return wrap(err, "add recording %q", r.File)
}

// ListRecordings returns the user's recordings (all when userID is 0),
// newest first. Limit 0 means no limit.
func (s *Store) ListRecordings(ctx context.Context, userID int64, limit int) ([]prov.Recording, error) {
	query := `SELECT ` + recordingCols + ` FROM recordings`
	var args []any
	if userID != 0 {
		args = append(args, userID)
		query += ` WHERE user_id = $1`
	}
	query += ` ORDER BY start_at DESC, id DESC`
	if limit > 0 {
		args = append(args, limit)
		query += ` LIMIT $` + strconv.Itoa(len(args))
	}
	out, err := collect(ctx, s.rq(), scanRecording, query, args...)
	return out, wrap(err, "list recordings of user %d", userID)
}

// GetRecording returns one recording; prov.ErrNotFound if there is none.
func (s *Store) GetRecording(ctx context.Context, id int64) (prov.Recording, error) {
	r, err := scanRecording(s.rq().QueryRowContext(ctx, `SELECT `+recordingCols+` FROM recordings WHERE id = $1`, id))
	return r, wrap(err, "get recording %d", id)
}

// DeleteRecording removes one recording's row; prov.ErrNotFound if none.
func (s *Store) DeleteRecording(ctx context.Context, id int64) error {
	err := affected(s.wq().ExecContext(ctx, `DELETE FROM recordings WHERE id = $1`, id))
	return wrap(err, "delete recording %d", id)
}

// ListRecordingsIn returns one page of the recordings in sc, newest first,
// with their users' names and sites, in one query.
func (s *Store) ListRecordingsIn(ctx context.Context, sc prov.RecordingScope) ([]prov.ScopedRecording, error) {
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	byNumber := "0 = 1"
	if len(sc.Numbers) > 0 {
		in := make([]string, len(sc.Numbers))
		for i, n := range sc.Numbers {
			in[i] = arg(n)
		}
		list := strings.Join(in, ", ")
		byNumber = `(r.peer IN (` + list + `) OR EXISTS (SELECT 1 FROM numbers n WHERE n.user_id = r.user_id
			AND n.number IN (` + list + `)))`
	}
	var or []string
	if sc.All {
		or = append(or, "1 = 1")
	}
	if sc.UserID != 0 {
		or = append(or, "r.user_id = "+arg(sc.UserID))
	}
	if sc.SiteID != 0 {
		or = append(or, "u.site_id = "+arg(sc.SiteID))
	}
	if len(sc.Numbers) > 0 {
		or = append(or, byNumber)
	}
	if len(or) == 0 {
		return nil, nil
	}
	query := `SELECT r.id, r.user_id, r.call_id, r.peer, r.incoming, r.start_at, r.duration_ms, r.bytes, r.file,
		COALESCE(u.username, ''), COALESCE(u.first_name, ''), COALESCE(u.last_name, ''), COALESCE(u.site_id, 0),
		CASE WHEN ` + byNumber + ` THEN 1 ELSE 0 END
		FROM recordings r LEFT JOIN users u ON u.id = r.user_id
		WHERE ` + strings.Join(or, " OR ") + ` ORDER BY r.start_at DESC, r.id DESC`
	if sc.Limit > 0 || sc.Offset > 0 {
		limit := sc.Limit
		if limit <= 0 {
			limit = math.MaxInt32 // SQLite takes no OFFSET without a LIMIT
		}
		query += ` LIMIT ` + arg(limit) + ` OFFSET ` + arg(max(sc.Offset, 0))
	}
	out, err := collect(ctx, s.rq(), func(sc scanner) (prov.ScopedRecording, error) {
		var x prov.ScopedRecording
		var start, byNum int64
		var first, last string
		err := sc.Scan(&x.ID, &x.UserID, &x.CallID, &x.Peer, &x.Incoming, &start, &x.DurationMS, &x.Bytes, &x.File,
			&x.Owner, &first, &last, &x.OwnerSite, &byNum)
		x.Start, x.ByNumber = fromMS(start), byNum == 1
		x.OwnerName = strings.TrimSpace(first + " " + last)
		return x, err
	}, query, args...)
	return out, wrap(err, "list recordings in scope")
}
