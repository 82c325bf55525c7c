package store

import (
	"context"
	"time"

	"hotdesk/prov"
)

const deviceCols = `id, mac, vendor, model, firmware, COALESCE(site_id, 0), COALESCE(assigned_user_id, 0), kind, status,
	deployment_pin, security_pin, last_seen, last_ip, prov_user, prov_password, sip_user, sip_password, authorized,
	params, created_at, updated_at, creds_delivered_at, creds_addr, creds_held_user, conflict_at, conflict_from, conflict_reason`

func scanDevice(sc scanner) (prov.Device, error) {
	var d prov.Device
	var auth, params string
	var seen, created, updated, delivered, conflict int64
	if err := sc.Scan(&d.ID, &d.MAC, &d.Vendor, &d.Model, &d.Firmware, &d.SiteID, &d.AssignedUserID, &d.Kind,
		&d.Status, &d.DeploymentPIN, &d.SecurityPIN, &seen, &d.LastIP, &d.ProvUser, &d.ProvPassword, &d.SIPUser,
		&d.SIPPassword, &auth, &params, &created, &updated, &delivered, &d.CredsAddr, &d.CredsHeldFor, &conflict,
		&d.Conflict.From, &d.Conflict.Reason); err != nil {
		return d, err
	}
	d.CredsDeliveredAt, d.Conflict.At = fromMS(delivered), fromMS(conflict)
	var c codec
	c.dec(auth, &d.Authorized)
	c.dec(params, &d.Params)
	d.LastSeen, d.CreatedAt, d.UpdatedAt = fromMS(seen), fromMS(created), fromMS(updated)
	return d, c.err
}

// deviceArgs are the columns after id, in deviceCols order.
func deviceArgs(d *prov.Device) ([]any, error) {
	var c codec
	args := []any{d.MAC, d.Vendor, d.Model, d.Firmware, nullID(d.SiteID), nullID(d.AssignedUserID),
		string(d.Kind), string(d.Status), d.DeploymentPIN, d.SecurityPIN, ms(d.LastSeen), d.LastIP, d.ProvUser,
		d.ProvPassword, d.SIPUser, d.SIPPassword, c.enc(d.Authorized, len(d.Authorized) == 0),
		c.enc(d.Params, len(d.Params) == 0), ms(d.CreatedAt), ms(d.UpdatedAt)}
	return args, c.err
}

// CreateDevice inserts d and sets its ID; CreatedAt/UpdatedAt default to now.
func (s *Store) CreateDevice(ctx context.Context, d *prov.Device) error {
	if d.CreatedAt.IsZero() {
		d.CreatedAt = s.stamp()
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	args, err := deviceArgs(d)
	if err != nil {
		return wrap(err, "create device %q", d.MAC)
	}
	err = s.wq().QueryRowContext(ctx, `INSERT INTO devices (mac, vendor, model, firmware, site_id,
		assigned_user_id, kind, status, deployment_pin, security_pin, last_seen, last_ip, prov_user,
		prov_password, sip_user, sip_password, authorized, params, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)
		RETURNING id`, args...).Scan(&d.ID)
	return wrap(err, "create device %q", d.MAC)
}

// UpdateDevice replaces every field of the device with d.ID except
// CreatedAt, and stamps UpdatedAt.
func (s *Store) UpdateDevice(ctx context.Context, d *prov.Device) error {
	d.UpdatedAt = s.stamp()
	args, err := deviceArgs(d)
	if err != nil {
		return wrap(err, "update device %q", d.MAC)
	}
	// Callers write back a row they read, maybe on another node, while the
	// phone registers and its credentials change: the columns those own
	// (last seen and address, the passwords, deployed or not) are written
	// only by their own statements, never from a copy.
	args = append(args[:10:10], args[12], args[14], args[16], args[17], ms(d.UpdatedAt), d.ID,
		string(prov.DeviceDeployed), string(prov.DeviceNotDeployed))
	err = affected(s.wq().ExecContext(ctx, `UPDATE devices SET mac = $1, vendor = $2, model = $3, firmware = $4,
		site_id = $5, assigned_user_id = $6, kind = $7,
		status = CASE WHEN status IN ($17, $18) AND CAST($8 AS TEXT) IN ($17, $18) THEN status ELSE CAST($8 AS TEXT) END,
		deployment_pin = $9, security_pin = $10, prov_user = $11, sip_user = $12,
		authorized = $13, params = $14, updated_at = $15 WHERE id = $16`, args...))
	return wrap(err, "update device %q", d.MAC)
}

// NoteDeviceSeen records when and from where the device with mac was last
// seen, unless a later sighting is recorded already.
func (s *Store) NoteDeviceSeen(ctx context.Context, mac string, at time.Time, ip string) error {
	_, err := s.wq().ExecContext(ctx, `UPDATE devices SET last_seen = $2, last_ip = $3
		WHERE mac = $1 AND (last_seen < $2 OR (last_seen = $2 AND last_ip <> $3))`, mac, ms(at), ip)
	return wrap(err, "note device %q seen", mac)
}

// GetDevice returns the device with mac (as stored; callers normalise).
func (s *Store) GetDevice(ctx context.Context, mac string) (prov.Device, error) {
	d, err := scanDevice(s.rq().QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE mac = $1`, mac))
	return d, wrap(err, "get device %q", mac)
}

// GetDeviceByID returns the device with id.
func (s *Store) GetDeviceByID(ctx context.Context, id int64) (prov.Device, error) {
	d, err := scanDevice(s.rq().QueryRowContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE id = $1`, id))
	return d, wrap(err, "get device %d", id)
}

// ListDevices returns one page of devices by MAC and the number that match.
// Limit 0 means no limit. Search is a substring of MAC, vendor, model or
// last IP (case-insensitive for ASCII).
func (s *Store) ListDevices(ctx context.Context, q prov.DeviceQuery) ([]prov.Device, int, error) {
	filter := ""
	var args []any
	if q.Search != "" {
		args = append(args, likePattern(q.Search))
		filter = ` WHERE (lower(mac) LIKE $1 ESCAPE '\' OR lower(vendor) LIKE $1 ESCAPE '\'
			OR lower(model) LIKE $1 ESCAPE '\' OR lower(last_ip) LIKE $1 ESCAPE '\')`
	}
	ds, total, err := page(ctx, s.rq(), scanDevice, "SELECT "+deviceCols+" FROM devices"+filter+" ORDER BY mac",
		"SELECT count(*) FROM devices"+filter, q.Offset, q.Limit, args)
	return ds, total, wrap(err, "list devices")
}

// CountDevices returns the number of devices.
func (s *Store) CountDevices(ctx context.Context) (int, error) {
	var n int
	err := s.rq().QueryRowContext(ctx, `SELECT count(*) FROM devices`).Scan(&n)
	return n, wrap(err, "count devices")
}

// MarkDeployed sets a device deployed and its last-seen time and address
// in one conditional update, leaving every other column alone (an
// assignment made meanwhile stays). A device pending approval or denied is
// not changed; it reports whether the row changed.
func (s *Store) MarkDeployed(ctx context.Context, id int64, at time.Time, ip string) (bool, error) {
	res, err := s.wq().ExecContext(ctx, `UPDATE devices SET status = $2, last_seen = $3,
		last_ip = CASE WHEN CAST($4 AS TEXT) = '' THEN last_ip ELSE CAST($4 AS TEXT) END, updated_at = $3
		WHERE id = $1 AND status IN ($5, $2)`,
		id, string(prov.DeviceDeployed), ms(at), ip, string(prov.DeviceNotDeployed))
	if err != nil {
		return false, wrap(err, "mark device %d deployed", id)
	}
	n, err := res.RowsAffected()
	return n > 0, wrap(err, "mark device %d deployed", id)
}

// MarkCredsDelivered records that the device's provisioning credentials
// went out (unauthenticated) to addr. Only the first call changes the row:
// of two fetches racing for them, on this node or another, one wins.
func (s *Store) MarkCredsDelivered(ctx context.Context, id int64, at time.Time, addr string, heldFor int64) (bool, error) {
	res, err := s.wq().ExecContext(ctx, `UPDATE devices SET creds_delivered_at = $2, creds_addr = $3,
		creds_held_user = $4 WHERE id = $1 AND creds_delivered_at = 0`, id, ms(at), addr, heldFor)
	if err != nil {
		return false, wrap(err, "mark device %d credentials delivered", id)
	}
	n, err := res.RowsAffected()
	return n > 0, wrap(err, "mark device %d credentials delivered", id)
}

// SetCredsAddr records the address the device last authenticated from.
func (s *Store) SetCredsAddr(ctx context.Context, id int64, addr string) error {
	_, err := s.wq().ExecContext(ctx, `UPDATE devices SET creds_addr = $2 WHERE id = $1`, id, addr)
	return wrap(err, "set device %d credentials address", id)
}

// RecordConflict keeps c as the device's last identity conflict unless one
// was kept after since; it reports whether it did.
func (s *Store) RecordConflict(ctx context.Context, id int64, c prov.IdentityConflict, since time.Time) (bool, error) {
	res, err := s.wq().ExecContext(ctx, `UPDATE devices SET conflict_at = $2, conflict_from = $3, conflict_reason = $4
		WHERE id = $1 AND conflict_at <= $5`, id, ms(c.At), c.From, c.Reason, ms(since))
	if err != nil {
		return false, wrap(err, "record device %d conflict", id)
	}
	n, err := res.RowsAffected()
	return n > 0, wrap(err, "record device %d conflict", id)
}

// VerifyDevice records that the phone holding the device's credentials is
// the real one: the lines held for a user go out, the conflict is cleared.
func (s *Store) VerifyDevice(ctx context.Context, id int64) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE devices SET creds_held_user = 0, conflict_at = 0,
		conflict_from = '', conflict_reason = '' WHERE id = $1`, id))
	return wrap(err, "verify device %d", id)
}

// ResetDeviceCredentials gives the device new provisioning credentials
// and device-account password to hand out once more, and forgets where the old ones went and any conflict;
// a deployed device is not deployed until it registers again.
func (s *Store) ResetDeviceCredentials(ctx context.Context, id int64, provPassword, sipPassword string, at time.Time) error {
	err := affected(s.wq().ExecContext(ctx, `UPDATE devices SET prov_password = $2, sip_password = $6, creds_delivered_at = 0,
		creds_addr = '', creds_held_user = 0, conflict_at = 0, conflict_from = '', conflict_reason = '', updated_at = $3,
		status = CASE WHEN status = $4 THEN $5 ELSE status END WHERE id = $1`,
		id, provPassword, ms(at), string(prov.DeviceDeployed), string(prov.DeviceNotDeployed), sipPassword))
	return wrap(err, "reset device %d credentials", id)
}
