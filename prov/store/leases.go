package store

import (
	"context"

	"hotdesk/prov"
)

// ListLeases returns every stored lease by MAC.
func (s *Store) ListLeases(ctx context.Context) ([]prov.Lease, error) {
	out, err := collect(ctx, s.rq(), func(sc scanner) (prov.Lease, error) {
		var l prov.Lease
		var expires int64
		err := sc.Scan(&l.MAC, &l.IP, &l.Hostname, &l.VendorClass, &expires, &l.State)
		l.Expires = fromMS(expires)
		return l, err
	}, `SELECT mac, ip, hostname, vendor_class, expires, state FROM leases ORDER BY mac`)
	return out, wrap(err, "list leases")
}

// PutLease inserts or replaces the lease for l.MAC. A bound lease whose
// address another MAC holds unexpired fails with prov.ErrConflict (the
// unique index of migration 0011 decides, also between two DHCP nodes
// racing for one address); an expired holder gives the address up.
func (s *Store) PutLease(ctx context.Context, l prov.Lease) error {
	err := s.inTx(ctx, func(tx *Store) error {
		if l.State == "bound" && l.IP != "" {
			if _, err := tx.wq().ExecContext(ctx, `DELETE FROM leases WHERE ip = $1 AND mac <> $2 AND state = 'bound'
				AND expires <= $3`, l.IP, l.MAC, ms(s.stamp())); err != nil {
				return err
			}
		}
		_, err := tx.wq().ExecContext(ctx, `INSERT INTO leases (mac, ip, hostname, vendor_class, expires, state)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (mac) DO UPDATE SET ip = excluded.ip, hostname = excluded.hostname,
		vendor_class = excluded.vendor_class, expires = excluded.expires, state = excluded.state`,
			l.MAC, l.IP, l.Hostname, l.VendorClass, ms(l.Expires), l.State)
		return err
	})
	return wrap(err, "put lease %q", l.MAC)
}

// DeleteLease removes the lease for mac; prov.ErrNotFound if there is none.
func (s *Store) DeleteLease(ctx context.Context, mac string) error {
	err := affected(s.wq().ExecContext(ctx, `DELETE FROM leases WHERE mac = $1`, mac))
	return wrap(err, "delete lease %q", mac)
}
