package store

import (
	"context"
	"time"

	"hotdesk/prov"
)

// What a node used to keep in memory about a phone for a few seconds (the
// refusal window after a native logout, a check-sync held while the phone
// applies the previous one), kept here so every node, and the node
// restarted, knows it.

// PutNativeLogout records the end of user's native session on a device.
func (s *Store) PutNativeLogout(ctx context.Context, deviceID, userID int64, at time.Time) error {
	if deviceID == 0 || userID == 0 || at.IsZero() {
		return wrap(prov.Invalid("native_logout", "device, user and time required"), "put native logout")
	}
	_, err := s.wq().ExecContext(ctx, `INSERT INTO native_logouts (device_id, user_id, at) VALUES ($1, $2, $3)
		ON CONFLICT (device_id, user_id) DO UPDATE SET at = excluded.at`, deviceID, userID, ms(at))
	return wrap(err, "put native logout %d/%d", deviceID, userID)
}

// NativeLogoutAt returns when user's native session on the device ended.
func (s *Store) NativeLogoutAt(ctx context.Context, deviceID, userID int64) (time.Time, error) {
	var at int64
	err := s.rq().QueryRowContext(ctx, `SELECT at FROM native_logouts WHERE device_id = $1 AND user_id = $2`,
		deviceID, userID).Scan(&at)
	return fromMS(at), wrap(err, "native logout %d/%d", deviceID, userID)
}

// ClearNativeLogouts forgets the device's native logouts; the writer is
// taken only when there is one (a signed-out Cisco's every boot fetch asks).
func (s *Store) ClearNativeLogouts(ctx context.Context, deviceID int64) error {
	var n int
	err := s.rq().QueryRowContext(ctx, `SELECT COUNT(*) FROM native_logouts WHERE device_id = $1`, deviceID).Scan(&n)
	if err != nil || n == 0 {
		return wrap(err, "native logouts %d", deviceID)
	}
	_, err = s.wq().ExecContext(ctx, `DELETE FROM native_logouts WHERE device_id = $1`, deviceID)
	return wrap(err, "clear native logouts %d", deviceID)
}

// PruneNativeLogouts forgets the native logouts before t.
func (s *Store) PruneNativeLogouts(ctx context.Context, t time.Time) error {
	_, err := s.wq().ExecContext(ctx, `DELETE FROM native_logouts WHERE at < $1`, ms(t))
	return wrap(err, "prune native logouts")
}

// storedHeld is a held check-sync's targets column.
type storedHeld struct {
	Targets []storedTarget    `json:"targets,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
}

type storedTarget struct {
	Binding  storedReach `json:"binding"`
	Password string      `json:"password,omitempty"`
}

// HoldSync keeps h, replacing what its node held for its device.
func (s *Store) HoldSync(ctx context.Context, h prov.HeldSync) error {
	if h.DeviceID == 0 || h.Due.IsZero() {
		return wrap(prov.Invalid("held_sync", "device and due time required"), "hold check-sync")
	}
	v := storedHeld{Secrets: h.Secrets}
	for _, t := range h.Targets {
		v.Targets = append(v.Targets, storedTarget{Binding: storedReach{Binding: t.Binding, AuthUser: t.Binding.AuthUser},
			Password: t.Password})
	}
	var c codec
	targets := c.enc(v, len(v.Targets) == 0 && len(v.Secrets) == 0)
	if c.err != nil {
		return wrap(c.err, "hold check-sync %d", h.DeviceID)
	}
	_, err := s.wq().ExecContext(ctx, `INSERT INTO held_syncs (device_id, node, due_at, targets) VALUES ($1, $2, $3, $4)
		ON CONFLICT (device_id, node) DO UPDATE SET due_at = excluded.due_at, targets = excluded.targets`,
		h.DeviceID, h.Node, ms(h.Due), targets)
	return wrap(err, "hold check-sync %d", h.DeviceID)
}

func scanHeld(sc scanner) (prov.HeldSync, error) {
	var h prov.HeldSync
	var due int64
	var targets string
	if err := sc.Scan(&h.DeviceID, &h.Node, &due, &targets); err != nil {
		return h, err
	}
	h.Due = fromMS(due)
	var v storedHeld
	var c codec
	c.dec(targets, &v)
	h.Secrets = v.Secrets
	for _, t := range v.Targets {
		b := t.Binding.Binding
		b.AuthUser = t.Binding.AuthUser
		h.Targets = append(h.Targets, prov.HeldTarget{Binding: b, Password: t.Password})
	}
	return h, c.err
}

const heldCols = `device_id, node, due_at, targets`

// TakeHeldSyncs removes and returns the device's held check-syncs (node's,
// or every node's when node is ""), in one statement: two nodes taking
// them at once each get a row at most once.
func (s *Store) TakeHeldSyncs(ctx context.Context, deviceID int64, node string) ([]prov.HeldSync, error) {
	if deviceID == 0 {
		return nil, wrap(prov.Invalid("device_id", "required"), "take held check-syncs")
	}
	var out []prov.HeldSync
	var err error
	if node == "" {
		out, err = collect(ctx, s.wq(), scanHeld, `DELETE FROM held_syncs WHERE device_id = $1 RETURNING `+heldCols, deviceID)
	} else {
		out, err = collect(ctx, s.wq(), scanHeld, `DELETE FROM held_syncs WHERE device_id = $1 AND node = $2 RETURNING `+heldCols,
			deviceID, node)
	}
	return out, wrap(err, "take held check-syncs %d", deviceID)
}

// HeldSyncsOf lists the check-syncs node holds.
func (s *Store) HeldSyncsOf(ctx context.Context, node string) ([]prov.HeldSync, error) {
	out, err := collect(ctx, s.rq(), scanHeld, `SELECT `+heldCols+` FROM held_syncs WHERE node = $1 ORDER BY due_at, device_id`, node)
	return out, wrap(err, "held check-syncs of %q", node)
}

// PruneHeldSyncs forgets the held check-syncs due before t.
func (s *Store) PruneHeldSyncs(ctx context.Context, t time.Time) error {
	_, err := s.wq().ExecContext(ctx, `DELETE FROM held_syncs WHERE due_at < $1`, ms(t))
	return wrap(err, "prune held check-syncs")
}
