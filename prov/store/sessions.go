package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"hotdesk/prov"
)

const sessionCols = `id, COALESCE(user_id, 0), COALESCE(device_id, 0), door, started_at, last_activity, persistent,
	ended_at, end_reason, sip_user, sip_password`

func scanSession(sc scanner) (prov.Session, error) {
	var s prov.Session
	var started, last, ended int64
	err := sc.Scan(&s.ID, &s.UserID, &s.DeviceID, &s.Door, &started, &last, &s.Persistent, &ended, &s.EndReason,
		&s.SIPUser, &s.SIPPassword)
	s.StartedAt, s.LastActivity, s.EndedAt = fromMS(started), fromMS(last), fromMS(ended)
	return s, err
}

const createSessionSQL = `INSERT INTO sessions (id, user_id, device_id, door, started_at,
	last_activity, persistent, ended_at, end_reason, sip_user, sip_password)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// CreateSession inserts sess; the caller picks the ID. StartedAt defaults
// to now and LastActivity to StartedAt.
func (s *Store) CreateSession(ctx context.Context, sess *prov.Session) error {
	if sess.ID == "" {
		return wrap(prov.Invalid("id", "required"), "create session")
	}
	if sess.StartedAt.IsZero() {
		sess.StartedAt = s.stamp()
	}
	if sess.LastActivity.IsZero() {
		sess.LastActivity = sess.StartedAt
	}
	_, err := s.wq().ExecContext(ctx, createSessionSQL,
		sess.ID, nullID(sess.UserID), nullID(sess.DeviceID), sess.Door, ms(sess.StartedAt), ms(sess.LastActivity),
		sess.Persistent, ms(sess.EndedAt), sess.EndReason, sess.SIPUser, sess.SIPPassword)
	return wrap(err, "create session %q", sess.ID)
}

// GetSession returns the session with id, active or ended.
func (s *Store) GetSession(ctx context.Context, id string) (prov.Session, error) {
	sess, err := scanSession(s.rq().QueryRowContext(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id = $1`, id))
	return sess, wrap(err, "get session %q", id)
}

// EndSession ends an active session once; prov.ErrNotFound if it does not
// exist or has already ended, so two racing logouts end it exactly once.
func (s *Store) EndSession(ctx context.Context, id string, at time.Time, reason prov.EndReason) error {
	if at.IsZero() {
		return wrap(prov.Invalid("at", "zero time"), "end session %q", id)
	}
	err := affected(s.wq().ExecContext(ctx, `UPDATE sessions SET ended_at = $2, end_reason = $3
		WHERE id = $1 AND ended_at = 0`, id, ms(at), reason))
	return wrap(err, "end session %q", id)
}

// TouchSession records activity on an active session.
func (s *Store) TouchSession(ctx context.Context, id string, at time.Time) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE sessions SET last_activity = $2
		WHERE id = $1 AND ended_at = 0`, id, ms(at)))
	return wrap(err, "touch session %q", id)
}

// ListSessions returns matching sessions, newest first. Limit 0 means no limit.
func (s *Store) ListSessions(ctx context.Context, q prov.SessionQuery) ([]prov.Session, error) {
	var where []string
	var args []any
	if q.UserID != 0 {
		args = append(args, q.UserID)
		where = append(where, "user_id = $"+strconv.Itoa(len(args)))
	}
	if q.DeviceID != 0 {
		args = append(args, q.DeviceID)
		where = append(where, "device_id = $"+strconv.Itoa(len(args)))
	}
	if q.ActiveOnly {
		where = append(where, "ended_at = 0")
	}
	query := `SELECT ` + sessionCols + ` FROM sessions`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY started_at DESC, id"
	if q.Limit > 0 {
		args = append(args, q.Limit)
		query += " LIMIT $" + strconv.Itoa(len(args))
	}
	out, err := collect(ctx, s.rq(), scanSession, query, args...)
	return out, wrap(err, "list sessions")
}

// loginSessionsSQL reads the active sessions of a user or on a device.
const loginSessionsSQL = `SELECT ` + sessionCols + ` FROM sessions WHERE ended_at = 0 AND (user_id = $1 OR device_id = $2)
	ORDER BY started_at DESC, id`

// LoginState returns what a login decides on, read in one go: the user,
// the active sessions of the user or on the device, and the site (zero if
// there is none).
func (s *Store) LoginState(ctx context.Context, userID, deviceID, siteID int64) (prov.LoginState, error) {
	u, err := s.GetUserByID(ctx, userID)
	if err != nil {
		return prov.LoginState{}, err
	}
	ss, err := collect(ctx, s.rq(), scanSession, loginSessionsSQL, userID, deviceID)
	if err != nil {
		return prov.LoginState{}, wrap(err, "login state")
	}
	site, err := s.GetSite(ctx, siteID)
	if errors.Is(err, prov.ErrNotFound) {
		site, err = prov.Site{}, nil
	}
	return prov.LoginState{User: u, Sessions: ss, Site: site}, err
}

// StartSession creates sess and adds its audit event in one transaction
// (one round trip on PostgreSQL).
func (s *Store) StartSession(ctx context.Context, sess *prov.Session, audit *prov.AuditEvent) error {
	if !s.Clustered() || s.tx != nil {
		return s.inTx(ctx, func(tx *Store) error {
			if err := tx.CreateSession(ctx, sess); err != nil {
				return err
			}
			return tx.AddAudit(ctx, audit)
		})
	}
	if sess.ID == "" {
		return wrap(prov.Invalid("id", "required"), "create session")
	}
	if sess.StartedAt.IsZero() {
		sess.StartedAt = s.stamp()
	}
	if sess.LastActivity.IsZero() {
		sess.LastActivity = sess.StartedAt
	}
	if audit.At.IsZero() {
		audit.At = s.stamp()
	}
	conn, err := s.c.w.Conn(ctx)
	if err != nil {
		return wrap(err, "create session %q", sess.ID)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		// A pipeline without BEGIN runs as one implicit transaction.
		b := &pgx.Batch{}
		b.Queue(createSessionSQL, sess.ID, nullID(sess.UserID), nullID(sess.DeviceID), sess.Door, ms(sess.StartedAt),
			ms(sess.LastActivity), sess.Persistent, ms(sess.EndedAt), sess.EndReason, sess.SIPUser, sess.SIPPassword)
		b.Queue(addAuditSQL, ms(audit.At), audit.Actor, audit.Action, audit.Object, audit.Before, audit.After, audit.Remote)
		br := dc.(*stdlib.Conn).Conn().SendBatch(ctx, b)
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		if err := br.QueryRow().Scan(&audit.ID); err != nil {
			return err
		}
		return br.Close()
	})
	return wrap(err, "create session %q", sess.ID)
}

// MarkDeviceSync sets only the check-sync marks of a device's signals (the
// rest kept, or zero for a new row): one statement, where a read and a
// write would let another node's update of the other fields fall between.
func (s *Store) MarkDeviceSync(ctx context.Context, deviceID int64, syncAt, fetchedAt time.Time) error {
	if deviceID == 0 {
		return wrap(prov.Invalid("device_id", "required"), "mark device sync")
	}
	_, err := s.wq().ExecContext(ctx, `INSERT INTO device_signals (device_id, sync_at, sync_fetched_at, boot_at,
		line_down_session, line_down_at, reach, updated_at) VALUES ($1, $2, $3, 0, '', 0, '', $4)
		ON CONFLICT (device_id) DO UPDATE SET sync_at = excluded.sync_at, sync_fetched_at = excluded.sync_fetched_at,
		updated_at = excluded.updated_at`, deviceID, ms(syncAt), ms(fetchedAt), ms(s.stamp()))
	return wrap(err, "mark device sync %d", deviceID)
}

// DeviceSignals returns the reboot-versus-logout memory of a device.
func (s *Store) DeviceSignals(ctx context.Context, deviceID int64) (prov.DeviceSignals, error) {
	var ds prov.DeviceSignals
	var sync, fetched, boot, down, updated int64
	var reach string
	// A held check-sync rides on this read: the registration that
	// releases it reads the signals anyway.
	err := s.rq().QueryRowContext(ctx, `SELECT device_id, sync_at, sync_fetched_at, boot_at, line_down_session,
		line_down_at, reach, updated_at, EXISTS (SELECT 1 FROM held_syncs h WHERE h.device_id = $1)
		FROM device_signals WHERE device_id = $1`, deviceID).Scan(&ds.DeviceID, &sync,
		&fetched, &boot, &ds.LineDownSession, &down, &reach, &updated, &ds.HeldSync)
	if err != nil {
		return prov.DeviceSignals{}, wrap(err, "device signals %d", deviceID)
	}
	ds.SyncAt, ds.SyncFetchedAt, ds.BootAt = fromMS(sync), fromMS(fetched), fromMS(boot)
	ds.LineDownAt, ds.UpdatedAt = fromMS(down), fromMS(updated)
	var c codec
	if reach != "" {
		var r storedReach
		c.dec(reach, &r)
		r.Binding.AuthUser = r.AuthUser
		ds.Reach = &r.Binding
	}
	return ds, wrap(c.err, "device signals %d", deviceID)
}

// storedReach keeps the binding's digest username, which Binding's own
// JSON leaves out.
type storedReach struct {
	prov.Binding
	AuthUser string `json:"auth_user"`
}

// PutDeviceSignals upserts the reboot-versus-logout memory of a device.
func (s *Store) PutDeviceSignals(ctx context.Context, ds prov.DeviceSignals) error {
	if ds.DeviceID == 0 {
		return wrap(prov.Invalid("device_id", "required"), "put device signals")
	}
	var c codec
	var r *storedReach
	if ds.Reach != nil {
		r = &storedReach{Binding: *ds.Reach, AuthUser: ds.Reach.AuthUser}
	}
	reach := c.enc(r, r == nil)
	if c.err != nil {
		return wrap(c.err, "put device signals %d", ds.DeviceID)
	}
	if ds.UpdatedAt.IsZero() {
		ds.UpdatedAt = s.stamp()
	}
	_, err := s.wq().ExecContext(ctx, `INSERT INTO device_signals (device_id, sync_at, sync_fetched_at, boot_at,
		line_down_session, line_down_at, reach, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (device_id) DO UPDATE SET sync_at = excluded.sync_at, sync_fetched_at = excluded.sync_fetched_at,
		boot_at = excluded.boot_at, line_down_session = excluded.line_down_session,
		line_down_at = excluded.line_down_at, reach = excluded.reach, updated_at = excluded.updated_at`,
		ds.DeviceID, ms(ds.SyncAt), ms(ds.SyncFetchedAt), ms(ds.BootAt), ds.LineDownSession, ms(ds.LineDownAt),
		reach, ms(ds.UpdatedAt))
	return wrap(err, "put device signals %d", ds.DeviceID)
}
