package store

import (
	"context"
	"strconv"
	"strings"

	"hotdesk/prov"
)

const callCols = `id, call_id, owner, user_id, device_id, session_id, locked, from_number, to_number, route, result,
	start_at, answer_at, end_at`

func scanCall(sc scanner) (prov.CallRecord, error) {
	var c prov.CallRecord
	var start, answer, end int64
	err := sc.Scan(&c.ID, &c.CallID, &c.Owner, &c.UserID, &c.DeviceID, &c.SessionID, &c.Locked, &c.From, &c.To,
		&c.Route, &c.Result, &start, &answer, &end)
	c.Start, c.Answer, c.End = fromMS(start), fromMS(answer), fromMS(end)
	return c, err
}

// AddCallRecord appends c and sets its ID. User and device IDs are not
// foreign keys: history outlives what it mentions.
func (s *Store) AddCallRecord(ctx context.Context, c *prov.CallRecord) error {
	err := s.wq().QueryRowContext(ctx, `INSERT INTO call_records (call_id, owner, user_id, device_id, session_id,
		locked, from_number, to_number, route, result, start_at, answer_at, end_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`,
		c.CallID, c.Owner, c.UserID, c.DeviceID, c.SessionID, c.Locked, c.From, c.To, c.Route, c.Result,
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
