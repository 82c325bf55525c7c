package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"hotdesk/prov"
)

const uploadCols = `owner, name, version, data, sha256, size, created_at`

func scanUpload(sc scanner) (prov.Upload, error) {
	var u prov.Upload
	var created int64
	err := sc.Scan(&u.Owner, &u.Name, &u.Version, &u.Data, &u.SHA256, &u.Size, &created)
	u.CreatedAt = fromMS(created)
	return u, err
}

// PutUpload stores u as the next version of (Owner, Name), deletes all but
// the newest keep versions (keep <= 0 keeps all) and returns the version.
// Size and SHA256 are computed from Data; CreatedAt defaults to now.
// Concurrent calls get consecutive versions: on SQLite the single writer
// serialises them, on PostgreSQL a lost race (unique violation) is retried.
func (s *Store) PutUpload(ctx context.Context, u prov.Upload, keep int) (int, error) {
	sum := sha256.Sum256(u.Data)
	u.SHA256, u.Size = hex.EncodeToString(sum[:]), len(u.Data)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.stamp()
	}
	if u.Data == nil {
		u.Data = []byte{} // NOT NULL column
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		err = s.inTx(ctx, func(tx *Store) error {
			if err := tx.tq.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM uploads
				WHERE owner = $1 AND name = $2`, u.Owner, u.Name).Scan(&u.Version); err != nil {
				return err
			}
			if _, err := tx.tq.ExecContext(ctx, `INSERT INTO uploads (`+uploadCols+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7)`, u.Owner, u.Name, u.Version, u.Data, u.SHA256, u.Size,
				ms(u.CreatedAt)); err != nil {
				return classify(err)
			}
			if keep > 0 && u.Version > keep {
				_, err := tx.tq.ExecContext(ctx, `DELETE FROM uploads WHERE owner = $1 AND name = $2 AND version <= $3`,
					u.Owner, u.Name, u.Version-keep)
				return err
			}
			return nil
		})
		if s.tx != nil || !errors.Is(err, prov.ErrConflict) {
			break
		}
	}
	if err != nil {
		return 0, wrap(err, "put upload %s/%s", u.Owner, u.Name)
	}
	return u.Version, nil
}

// LatestUpload returns the newest version of (owner, name).
func (s *Store) LatestUpload(ctx context.Context, owner, name string) (prov.Upload, error) {
	u, err := scanUpload(s.rq().QueryRowContext(ctx, `SELECT `+uploadCols+` FROM uploads
		WHERE owner = $1 AND name = $2 ORDER BY version DESC LIMIT 1`, owner, name))
	return u, wrap(err, "latest upload %s/%s", owner, name)
}

// LatestUploads returns the newest version of each of owner's files named
// in names, by name. The query always takes prov.MaxLatestUploads names
// (padded with ""), so its text, and its prepared statement, is one.
func (s *Store) LatestUploads(ctx context.Context, owner string, names ...string) ([]prov.Upload, error) {
	if len(names) == 0 || len(names) > prov.MaxLatestUploads {
		return nil, prov.Invalid("names", fmt.Sprintf("1 to %d names", prov.MaxLatestUploads))
	}
	args := []any{owner, "", "", "", ""}
	for i, n := range names {
		args[1+i] = n
	}
	out, err := collect(ctx, s.rq(), scanUpload, `SELECT `+uploadCols+` FROM uploads u
		WHERE owner = $1 AND name IN ($2, $3, $4, $5)
		AND version = (SELECT MAX(version) FROM uploads v WHERE v.owner = u.owner AND v.name = u.name)
		ORDER BY name`, args...)
	return out, wrap(err, "latest uploads of %s", owner)
}

// ListUploads returns every kept version of every file owner wrote, data
// included, by name and then newest version first.
func (s *Store) ListUploads(ctx context.Context, owner string) ([]prov.Upload, error) {
	out, err := collect(ctx, s.rq(), scanUpload, `SELECT `+uploadCols+` FROM uploads WHERE owner = $1
		ORDER BY name, version DESC`, owner)
	return out, wrap(err, "list uploads of %s", owner)
}

// UploadBytes returns the bytes every kept version of owner's files takes,
// and those of all owners together.
func (s *Store) UploadBytes(ctx context.Context, owner string) (ownerBytes, total int64, err error) {
	err = s.rq().QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM uploads WHERE owner = $1`, owner).
		Scan(&ownerBytes)
	if err == nil {
		err = s.rq().QueryRowContext(ctx, `SELECT COALESCE(SUM(size), 0) FROM uploads`).Scan(&total)
	}
	return ownerBytes, total, wrap(err, "upload bytes of %s", owner)
}
