package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"hotdesk/prov"
)

const mediaCols = `kind, name, size, chunks, created_at`

func scanMedia(sc scanner) (prov.MediaObject, error) {
	var m prov.MediaObject
	var created int64
	err := sc.Scan(&m.Kind, &m.Name, &m.Size, &m.Chunks, &created)
	m.Created = fromMS(created)
	return m, err
}

// PutMedia stores r under (kind, name) in one transaction: the old object
// goes, the chunks are written, and the header is set last.
func (s *Store) PutMedia(ctx context.Context, kind, name string, r io.Reader, at time.Time) (prov.MediaObject, error) {
	m := prov.MediaObject{Kind: kind, Name: name, Created: fromMS(ms(at))}
	err := s.inTx(ctx, func(tx *Store) error {
		q := tx.wq()
		if _, err := q.ExecContext(ctx, `DELETE FROM media_objects WHERE kind = $1 AND name = $2`, kind, name); err != nil {
			return err
		}
		if _, err := q.ExecContext(ctx, `INSERT INTO media_objects (kind, name, size, chunks, created_at)
			VALUES ($1, $2, 0, 0, $3)`, kind, name, ms(at)); err != nil {
			return err
		}
		buf := make([]byte, prov.MediaChunkBytes)
		for { // bounded by r's length: each turn consumes a chunk
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				if _, err := q.ExecContext(ctx, `INSERT INTO media_chunks (kind, name, seq, data) VALUES ($1, $2, $3, $4)`,
					kind, name, m.Chunks, buf[:n]); err != nil {
					return err
				}
				m.Chunks++
				m.Size += int64(n)
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("read: %w", err)
			}
		}
		_, err := q.ExecContext(ctx, `UPDATE media_objects SET size = $1, chunks = $2 WHERE kind = $3 AND name = $4`,
			m.Size, m.Chunks, kind, name)
		return err
	})
	return m, wrap(err, "put media %s/%s", kind, name)
}

// GetMedia returns an object's header.
func (s *Store) GetMedia(ctx context.Context, kind, name string) (prov.MediaObject, error) {
	m, err := scanMedia(s.rq().QueryRowContext(ctx, `SELECT `+mediaCols+` FROM media_objects
		WHERE kind = $1 AND name = $2`, kind, name))
	return m, wrap(err, "get media %s/%s", kind, name)
}

// MediaChunk returns part seq of an object.
func (s *Store) MediaChunk(ctx context.Context, kind, name string, seq int) ([]byte, error) {
	var b []byte
	err := s.rq().QueryRowContext(ctx, `SELECT data FROM media_chunks WHERE kind = $1 AND name = $2 AND seq = $3`,
		kind, name, seq).Scan(&b)
	return b, wrap(err, "media %s/%s chunk %d", kind, name, seq)
}

// DeleteMedia removes an object; its chunks go with it (cascade).
func (s *Store) DeleteMedia(ctx context.Context, kind, name string) error {
	_, err := s.wq().ExecContext(ctx, `DELETE FROM media_objects WHERE kind = $1 AND name = $2`, kind, name)
	return wrap(err, "delete media %s/%s", kind, name)
}

// ListMedia returns objects of kind created before t, oldest first.
func (s *Store) ListMedia(ctx context.Context, kind string, before time.Time, limit int) ([]prov.MediaObject, error) {
	out, err := collect(ctx, s.rq(), scanMedia, `SELECT `+mediaCols+` FROM media_objects
		WHERE kind = $1 AND created_at < $2 ORDER BY created_at, name LIMIT $3`, kind, ms(before), limit)
	return out, wrap(err, "list media %s", kind)
}
