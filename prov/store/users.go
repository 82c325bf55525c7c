package store

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"hotdesk/prov"
)

const userCols = `id, username, first_name, last_name, email, language, directory_scope, custom1, custom2, custom3,
	kind, responsible_email, status, COALESCE(site_id, 0), password_hash, login_ha1, sip_password, portal,
	call_handling, params, created_at, updated_at, feature_keys`

func scanUser(sc scanner) (prov.User, error) {
	var u prov.User
	var ha1, portal, handling, params, keys string
	var created, updated int64
	if err := sc.Scan(&u.ID, &u.Username, &u.FirstName, &u.LastName, &u.Email, &u.Language, &u.DirectoryScope,
		&u.Custom1, &u.Custom2, &u.Custom3, &u.Kind, &u.ResponsibleEmail, &u.Status, &u.SiteID, &u.PasswordHash,
		&ha1, &u.SIPPassword, &portal, &handling, &params, &created, &updated, &keys); err != nil {
		return u, err
	}
	var c codec
	u.LoginHA1 = decodeHA1(ha1)
	c.dec(portal, &u.Portal)
	c.dec(handling, &u.CallHandling)
	c.dec(params, &u.Params)
	c.dec(keys, &u.Keys)
	u.CreatedAt, u.UpdatedAt = fromMS(created), fromMS(updated)
	return u, c.err
}

// userArgs are the columns after id, in userCols order.
func userArgs(u *prov.User) ([]any, error) {
	var c codec
	args := []any{u.Username, u.FirstName, u.LastName, u.Email, u.Language, u.DirectoryScope,
		u.Custom1, u.Custom2, u.Custom3, string(u.Kind), u.ResponsibleEmail, string(u.Status), nullID(u.SiteID),
		u.PasswordHash, encodeHA1(u.LoginHA1), u.SIPPassword,
		c.enc(u.Portal, u.Portal == prov.PortalAccess{}), c.enc(u.CallHandling, u.CallHandling == prov.CallHandling{}),
		c.enc(u.Params, len(u.Params) == 0), ms(u.CreatedAt), ms(u.UpdatedAt), c.enc(u.Keys, len(u.Keys) == 0)}
	return args, c.err
}

// CreateUser inserts u and sets its ID; CreatedAt/UpdatedAt default to now.
func (s *Store) CreateUser(ctx context.Context, u *prov.User) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.stamp()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	args, err := userArgs(u)
	if err != nil {
		return wrap(err, "create user %q", u.Username)
	}
	err = s.wq().QueryRowContext(ctx, `INSERT INTO users (username, first_name, last_name, email, language,
		directory_scope, custom1, custom2, custom3, kind, responsible_email, status, site_id, password_hash,
		login_ha1, sip_password, portal, call_handling, params, created_at, updated_at, feature_keys)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)
		RETURNING id`, args...).Scan(&u.ID)
	return wrap(err, "create user %q", u.Username)
}

// UpdateUser replaces every field of the user with u.ID except CreatedAt,
// and stamps UpdatedAt.
func (s *Store) UpdateUser(ctx context.Context, u *prov.User) error {
	u.UpdatedAt = s.stamp()
	args, err := userArgs(u)
	if err != nil {
		return wrap(err, "update user %q", u.Username)
	}
	keys := args[21]
	args = append(args[:19], ms(u.UpdatedAt), keys, u.ID)
	err = affected(s.wq().ExecContext(ctx, `UPDATE users SET username = $1, first_name = $2, last_name = $3,
		email = $4, language = $5, directory_scope = $6, custom1 = $7, custom2 = $8, custom3 = $9, kind = $10,
		responsible_email = $11, status = $12, site_id = $13, password_hash = $14, login_ha1 = $15,
		sip_password = $16, portal = $17, call_handling = $18, params = $19, updated_at = $20, feature_keys = $21
		WHERE id = $22`, args...))
	return wrap(err, "update user %q", u.Username)
}

// GetUser returns the user called username.
func (s *Store) GetUser(ctx context.Context, username string) (prov.User, error) {
	u, err := scanUser(s.rq().QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = $1`, username))
	return u, wrap(err, "get user %q", username)
}

// GetUserByID returns the user with id.
func (s *Store) GetUserByID(ctx context.Context, id int64) (prov.User, error) {
	u, err := scanUser(s.rq().QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	return u, wrap(err, "get user %d", id)
}

// ListUsers returns one page of users by user name and the number that
// match. Limit 0 means no limit. Search is a substring of the user name,
// first or last name or email (case-insensitive for ASCII).
func (s *Store) ListUsers(ctx context.Context, q prov.UserQuery) ([]prov.User, int, error) {
	var where []string
	var args []any
	if q.Search != "" {
		args = append(args, likePattern(q.Search))
		n := "$" + strconv.Itoa(len(args))
		where = append(where, "(lower(username) LIKE "+n+` ESCAPE '\' OR lower(first_name) LIKE `+n+
			` ESCAPE '\' OR lower(last_name) LIKE `+n+` ESCAPE '\' OR lower(email) LIKE `+n+` ESCAPE '\')`)
	}
	if q.Status != "" {
		args = append(args, string(q.Status))
		where = append(where, "status = $"+strconv.Itoa(len(args)))
	}
	filter := ""
	if len(where) > 0 {
		filter = " WHERE " + strings.Join(where, " AND ")
	}
	users, total, err := page(ctx, s.rq(), scanUser, "SELECT "+userCols+" FROM users"+filter+" ORDER BY username",
		"SELECT count(*) FROM users"+filter, q.Offset, q.Limit, args)
	return users, total, wrap(err, "list users")
}

// page runs a list query with LIMIT/OFFSET and, unless the page is
// obviously everything, a count query with the same filter.
func page[T any](ctx context.Context, q reader, scan func(scanner) (T, error), query, count string,
	offset, limit int, args []any) ([]T, int, error) {
	if offset < 0 || limit < 0 {
		return nil, 0, prov.Invalid("limit", "offset and limit must not be negative")
	}
	pq, pargs := query, args
	if limit > 0 {
		pargs = append(append([]any(nil), args...), limit, offset)
		pq += " LIMIT $" + strconv.Itoa(len(pargs)-1) + " OFFSET $" + strconv.Itoa(len(pargs))
	} else if offset > 0 {
		// LIMIT ALL is PostgreSQL only; a huge LIMIT works on both.
		pargs = append(append([]any(nil), args...), int64(1)<<62, offset)
		pq += " LIMIT $" + strconv.Itoa(len(pargs)-1) + " OFFSET $" + strconv.Itoa(len(pargs))
	}
	items, err := collect(ctx, q, scan, pq, pargs...)
	if err != nil {
		return nil, 0, err
	}
	if offset == 0 && (limit == 0 || len(items) < limit) {
		return items, len(items), nil
	}
	var total int
	if err := q.QueryRowContext(ctx, count, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	return items, total, nil
}

// CountUsers returns the number of users, disabled ones included.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.rq().QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, wrap(err, "count users")
}

// encodeHA1 stores HA1s as "ALG=hex;ALG=hex", sorted: algorithm names and
// hex digests never contain '=' or ';', and parsing this is several times
// cheaper than a JSON map when 10,000 users load at start-up.
func encodeHA1(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}

func decodeHA1(s string) map[string]string {
	if s == "" {
		return nil
	}
	m := make(map[string]string, 2)
	for s != "" {
		var kv string
		kv, s, _ = strings.Cut(s, ";")
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
