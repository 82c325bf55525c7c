package store

import (
	"context"

	"hotdesk/prov"
)

const siteCols = `id, name, domain, time_zone, language, subnets, login, authorized, emergency,
	feature_codes, trunk, params, updated_at, profile_dirs`

func scanSite(sc scanner) (prov.Site, error) {
	var s prov.Site
	var subnets, login, auth, emerg, codes, trunk, params, dirs string
	var updated int64
	if err := sc.Scan(&s.ID, &s.Name, &s.Domain, &s.TimeZone, &s.Language, &subnets, &login, &auth, &emerg,
		&codes, &trunk, &params, &updated, &dirs); err != nil {
		return s, err
	}
	var c codec
	c.dec(subnets, &s.Subnets)
	c.dec(login, &s.Login)
	c.dec(auth, &s.Authorized)
	c.dec(emerg, &s.Emergency)
	c.dec(codes, &s.FeatureCodes)
	c.dec(trunk, &s.Trunk)
	c.dec(params, &s.Params)
	c.dec(dirs, &s.ProfileDirs)
	s.UpdatedAt = fromMS(updated)
	return s, c.err
}

// siteArgs are the columns after id, in siteCols order.
func siteArgs(s *prov.Site) ([]any, error) {
	var c codec
	args := []any{s.Name, s.Domain, s.TimeZone, s.Language,
		c.enc(s.Subnets, len(s.Subnets) == 0), c.enc(s.Login, false), c.enc(s.Authorized, len(s.Authorized) == 0),
		c.enc(s.Emergency, len(s.Emergency) == 0), c.enc(s.FeatureCodes, false), c.enc(s.Trunk, false),
		c.enc(s.Params, len(s.Params) == 0), ms(s.UpdatedAt), c.enc(s.ProfileDirs, s.ProfileDirs == prov.ProfileDirs{})}
	return args, c.err
}

// CreateSite inserts s and sets its ID (and UpdatedAt when zero).
func (s *Store) CreateSite(ctx context.Context, site *prov.Site) error {
	if site.UpdatedAt.IsZero() {
		site.UpdatedAt = s.stamp()
	}
	args, err := siteArgs(site)
	if err != nil {
		return wrap(err, "create site %q", site.Name)
	}
	err = s.wq().QueryRowContext(ctx, `INSERT INTO sites (name, domain, time_zone, language, subnets, login,
		authorized, emergency, feature_codes, trunk, params, updated_at, profile_dirs)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id`, args...).Scan(&site.ID)
	return wrap(err, "create site %q", site.Name)
}

// UpdateSite replaces every field of the site with site.ID and stamps UpdatedAt.
func (s *Store) UpdateSite(ctx context.Context, site *prov.Site) error {
	site.UpdatedAt = s.stamp()
	args, err := siteArgs(site)
	if err != nil {
		return wrap(err, "update site %d", site.ID)
	}
	args = append(args, site.ID)
	err = affected(s.wq().ExecContext(ctx, `UPDATE sites SET name = $1, domain = $2, time_zone = $3, language = $4,
		subnets = $5, login = $6, authorized = $7, emergency = $8, feature_codes = $9, trunk = $10, params = $11,
		updated_at = $12, profile_dirs = $13 WHERE id = $14`, args...))
	return wrap(err, "update site %d", site.ID)
}

// GetSite returns the site with id.
func (s *Store) GetSite(ctx context.Context, id int64) (prov.Site, error) {
	site, err := scanSite(s.rq().QueryRowContext(ctx, `SELECT `+siteCols+` FROM sites WHERE id = $1`, id))
	return site, wrap(err, "get site %d", id)
}

// SiteByName returns the site called name.
func (s *Store) SiteByName(ctx context.Context, name string) (prov.Site, error) {
	site, err := scanSite(s.rq().QueryRowContext(ctx, `SELECT `+siteCols+` FROM sites WHERE name = $1`, name))
	return site, wrap(err, "get site %q", name)
}

// ListSites returns every site by name.
func (s *Store) ListSites(ctx context.Context) ([]prov.Site, error) {
	out, err := collect(ctx, s.rq(), scanSite, `SELECT `+siteCols+` FROM sites ORDER BY name`)
	return out, wrap(err, "list sites")
}
