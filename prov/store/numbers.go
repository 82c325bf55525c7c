package store

import (
	"context"
	"fmt"

	"hotdesk/prov"
)

// AssignNumber gives number to userID. Assigning a number the user already
// has is a no-op; one another user has is prov.ErrConflict. ON CONFLICT DO
// NOTHING (not a failed INSERT) keeps a PostgreSQL transaction usable.
func (s *Store) AssignNumber(ctx context.Context, number string, userID int64) error {
	return wrap(s.inTx(ctx, func(tx *Store) error {
		res, err := tx.tq.ExecContext(ctx, `INSERT INTO numbers (number, user_id) VALUES ($1, $2)
			ON CONFLICT (number) DO NOTHING`, number, userID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var owner int64
		if err := tx.tq.QueryRowContext(ctx, `SELECT user_id FROM numbers WHERE number = $1`, number).Scan(&owner); err != nil {
			return err
		}
		if owner != userID {
			return fmt.Errorf("%w: number belongs to user %d", prov.ErrConflict, owner)
		}
		return nil
	}), "assign number %q to user %d", number, userID)
}

// UnassignNumber frees number; prov.ErrNotFound if nobody had it.
func (s *Store) UnassignNumber(ctx context.Context, number string) error {
	err := affected(s.wq().ExecContext(ctx, `DELETE FROM numbers WHERE number = $1`, number))
	return wrap(err, "unassign number %q", number)
}

// NumbersOf returns the user's numbers, sorted.
func (s *Store) NumbersOf(ctx context.Context, userID int64) ([]string, error) {
	out, err := collect(ctx, s.rq(), func(sc scanner) (string, error) {
		var n string
		return n, sc.Scan(&n)
	}, `SELECT number FROM numbers WHERE user_id = $1 ORDER BY number`, userID)
	return out, wrap(err, "numbers of user %d", userID)
}

// UserByNumber returns the user number is assigned to.
func (s *Store) UserByNumber(ctx context.Context, number string) (prov.User, error) {
	u, err := scanUser(s.rq().QueryRowContext(ctx, `SELECT `+userCols+` FROM users
		WHERE id = (SELECT user_id FROM numbers WHERE number = $1)`, number))
	return u, wrap(err, "user by number %q", number)
}

// AllNumbers maps every assigned number to its user ID.
func (s *Store) AllNumbers(ctx context.Context) (map[string]int64, error) {
	rows, err := s.rq().QueryContext(ctx, `SELECT number, user_id FROM numbers`)
	if err != nil {
		return nil, wrap(err, "all numbers")
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var n string
		var id int64
		if err := rows.Scan(&n, &id); err != nil {
			return nil, wrap(err, "all numbers")
		}
		out[n] = id
	}
	return out, wrap(rows.Err(), "all numbers")
}

func scanContact(sc scanner) (prov.Contact, error) {
	var c prov.Contact
	err := sc.Scan(&c.UserID, &c.Position, &c.FirstName, &c.LastName, &c.Number, &c.SpeedDial, &c.Label)
	return c, err
}

// ListContacts returns the user's directory in position order.
func (s *Store) ListContacts(ctx context.Context, userID int64) ([]prov.Contact, error) {
	out, err := collect(ctx, s.rq(), scanContact, `SELECT user_id, position, first_name, last_name, number,
		speed_dial, label FROM contacts WHERE user_id = $1 ORDER BY position`, userID)
	return out, wrap(err, "list contacts of user %d", userID)
}

// ReplaceContacts swaps the user's whole directory. Each contact's UserID
// is set to userID; positions must be unique (prov.ErrConflict otherwise).
func (s *Store) ReplaceContacts(ctx context.Context, userID int64, cs []prov.Contact) error {
	return wrap(s.inTx(ctx, func(tx *Store) error {
		if _, err := tx.tq.ExecContext(ctx, `DELETE FROM contacts WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if len(cs) == 0 {
			return nil
		}
		st, err := tx.tq.stmt(ctx, `INSERT INTO contacts (user_id, position, first_name, last_name,
			number, speed_dial, label) VALUES ($1, $2, $3, $4, $5, $6, $7)`)
		if err != nil {
			return err
		}
		for _, c := range cs {
			if _, err := st.ExecContext(ctx, userID, c.Position, c.FirstName, c.LastName, c.Number,
				c.SpeedDial, c.Label); err != nil {
				return err
			}
		}
		return nil
	}), "replace contacts of user %d", userID)
}
