package store

import (
	"context"
	"time"

	"hotdesk/prov"
)

const bindingCols = `aor, contact, instance, reg_id, call_id, cseq, expires, q, path, source, transport, user_agent,
	owner, node, updated_at, auth_user, device_id, holder`

func scanBinding(sc scanner) (prov.Binding, error) {
	var b prov.Binding
	var cseq, expires, updated int64
	var path, owner string
	if err := sc.Scan(&b.AOR, &b.Contact, &b.Instance, &b.RegID, &b.CallID, &cseq, &expires, &b.Q, &path,
		&b.Source, &b.Transport, &b.UserAgent, &owner, &b.Node, &updated, &b.AuthUser, &b.DeviceID, &b.Holder); err != nil {
		return b, err
	}
	b.CSeq = uint32(cseq)
	b.Owner, _ = prov.ParseOwner(owner)
	b.Expires, b.UpdatedAt = fromMS(expires), fromMS(updated)
	var c codec
	c.dec(path, &b.Path)
	return b, c.err
}

// ListBindings returns every stored binding (the registrar reloads them at start).
// A cluster node reloads only its own: see HeldBindings.
func (s *Store) ListBindings(ctx context.Context) ([]prov.Binding, error) {
	out, err := collect(ctx, s.rq(), scanBinding, `SELECT `+bindingCols+` FROM bindings ORDER BY aor, contact`)
	return out, wrap(err, "list bindings")
}

const upsertBinding = `INSERT INTO bindings (` + bindingCols + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
	ON CONFLICT (aor, contact) DO UPDATE SET instance = excluded.instance, reg_id = excluded.reg_id,
	call_id = excluded.call_id, cseq = excluded.cseq, expires = excluded.expires, q = excluded.q,
	path = excluded.path, source = excluded.source, transport = excluded.transport,
	user_agent = excluded.user_agent, owner = excluded.owner, node = excluded.node,
	updated_at = excluded.updated_at, auth_user = excluded.auth_user, device_id = excluded.device_id,
	holder = excluded.holder
	WHERE bindings.updated_at <= excluded.updated_at`

// SaveBindings upserts and then deletes in one transaction, with one
// prepared statement each, so a write-behind batch of thousands of rows is
// one commit. A zero UpdatedAt is stored as now. Deleting a missing binding
// is not an error.
func (s *Store) SaveBindings(ctx context.Context, upserts []prov.Binding, deletes []prov.BindingKey) error {
	if len(upserts) == 0 && len(deletes) == 0 {
		return nil
	}
	now := ms(s.stamp())
	return wrap(s.inTx(ctx, func(tx *Store) error {
		if len(upserts) > 0 {
			st, err := tx.tq.stmt(ctx, upsertBinding)
			if err != nil {
				return err
			}
			var c codec
			for i := range upserts {
				b := &upserts[i]
				updated := ms(b.UpdatedAt)
				if updated == 0 {
					updated = now
				}
				path := c.enc(b.Path, len(b.Path) == 0)
				if c.err != nil {
					return c.err
				}
				if _, err := st.ExecContext(ctx, b.AOR, b.Contact, b.Instance, b.RegID, b.CallID, int64(b.CSeq),
					ms(b.Expires), b.Q, path, b.Source, b.Transport, b.UserAgent, b.Owner.String(), b.Node, updated, b.AuthUser, b.DeviceID, b.Holder); err != nil {
					return err
				}
			}
		}
		if len(deletes) > 0 {
			st, err := tx.tq.stmt(ctx, `DELETE FROM bindings WHERE aor = $1 AND contact = $2 AND ($3 = '' OR holder = $3)`)
			if err != nil {
				return err
			}
			for _, k := range deletes {
				if _, err := st.ExecContext(ctx, k.AOR, k.Contact, k.Holder); err != nil {
					return err
				}
			}
		}
		return nil
	}), "save bindings (%d upserts, %d deletes)", len(upserts), len(deletes))
}

// HeldBindings returns the bindings holder holds (a cluster node reloads
// its own at start; the others belong to the nodes the phones chose).
func (s *Store) HeldBindings(ctx context.Context, holder string) ([]prov.Binding, error) {
	out, err := collect(ctx, s.rq(), scanBinding, `SELECT `+bindingCols+` FROM bindings WHERE holder = $1
		ORDER BY aor, contact`, holder)
	return out, wrap(err, "list bindings of %q", holder)
}

// AORBindings returns the live bindings of aor (expiring after now), whichever node holds them: the
// shared location a node consults for a phone registered elsewhere.
func (s *Store) AORBindings(ctx context.Context, aor string, now time.Time) ([]prov.Binding, error) {
	out, err := collect(ctx, s.rq(), scanBinding, `SELECT `+bindingCols+` FROM bindings WHERE aor = $1 AND expires > $2
		ORDER BY q DESC, contact`, aor, ms(now))
	return out, wrap(err, "bindings of %q", aor)
}

// LiveDeviceBindings returns the live bindings of a device, whichever node holds them.
func (s *Store) LiveDeviceBindings(ctx context.Context, deviceID int64, now time.Time) ([]prov.Binding, error) {
	out, err := collect(ctx, s.rq(), scanBinding, `SELECT `+bindingCols+` FROM bindings WHERE device_id = $1 AND expires > $2
		ORDER BY aor, contact`, deviceID, ms(now))
	return out, wrap(err, "bindings of device %d", deviceID)
}
