package store

import (
	"context"
	"time"

	"hotdesk/prov"
)

// ClaimParkSlot inserts the slot's row, or takes over one that is stale or
// already this node's: one statement, so two nodes claiming at once
// cannot both win (the loser's upsert matches no row).
func (s *Store) ClaimParkSlot(ctx context.Context, p prov.ParkedCall, staleBefore, deadBefore time.Time) error {
	if p.ParkedAt.IsZero() {
		p.ParkedAt = s.stamp()
	}
	res, err := s.wq().ExecContext(ctx, `INSERT INTO park_slots (slot, site_id, node, addr, parked_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (slot) DO UPDATE SET site_id = excluded.site_id, node = excluded.node, addr = excluded.addr,
			parked_at = excluded.parked_at
		WHERE park_slots.node = excluded.node OR park_slots.parked_at < $6
			OR park_slots.node IN (SELECT node FROM cluster_nodes WHERE seen_at < $7)`,
		p.Slot, p.SiteID, p.Node, p.Addr, ms(p.ParkedAt), ms(staleBefore), ms(deadBefore))
	if err != nil {
		return wrap(err, "claim park slot %s", p.Slot)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err, "claim park slot %s", p.Slot)
	} else if n == 0 {
		return wrap(prov.ErrConflict, "claim park slot %s: parked on another node", p.Slot)
	}
	return nil
}

// GetParkSlot returns the slot's row.
func (s *Store) GetParkSlot(ctx context.Context, slot string) (prov.ParkedCall, error) {
	var p prov.ParkedCall
	var at, seen int64
	err := s.rq().QueryRowContext(ctx, `SELECT p.slot, p.site_id, p.node, p.addr, p.parked_at, COALESCE(n.seen_at, 0)
		FROM park_slots p LEFT JOIN cluster_nodes n ON n.node = p.node WHERE p.slot = $1`,
		slot).Scan(&p.Slot, &p.SiteID, &p.Node, &p.Addr, &at, &seen)
	p.ParkedAt, p.NodeSeen = fromMS(at), fromMS(seen)
	return p, wrap(err, "get park slot %s", slot)
}

// TouchNode upserts node's heartbeat; a later write never goes back in time.
func (s *Store) TouchNode(ctx context.Context, node string, at time.Time) error {
	_, err := s.wq().ExecContext(ctx, `INSERT INTO cluster_nodes (node, seen_at) VALUES ($1, $2)
		ON CONFLICT (node) DO UPDATE SET seen_at = excluded.seen_at WHERE cluster_nodes.seen_at < excluded.seen_at`,
		node, ms(at))
	return wrap(err, "touch node %s", node)
}

// ReleaseParkSlot deletes the slot's row if node holds it.
func (s *Store) ReleaseParkSlot(ctx context.Context, slot, node string) error {
	_, err := s.wq().ExecContext(ctx, `DELETE FROM park_slots WHERE slot = $1 AND node = $2`, slot, node)
	return wrap(err, "release park slot %s", slot)
}

// ReleaseNodeParkSlots deletes every row of node.
func (s *Store) ReleaseNodeParkSlots(ctx context.Context, node string) error {
	_, err := s.wq().ExecContext(ctx, `DELETE FROM park_slots WHERE node = $1`, node)
	return wrap(err, "release park slots of %s", node)
}
