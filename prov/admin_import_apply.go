package prov

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"hotdesk/prov/auth"
)

// importIndex is what the store already holds, plus the rows accepted so
// far: user names and numbers map to their line (0 = in the store).
type importIndex struct {
	sites   map[string]int64
	names   map[string]int
	numbers map[string]int
}

// checkImport refuses rows whose user name or numbers are taken, in the
// store or by an earlier row of the file, and resolves sites and scopes.
// It reads everything once instead of querying per row.
func (d *Directory) checkImport(ctx context.Context, items []*importItem) error {
	users, _, err := d.store.ListUsers(ctx, UserQuery{})
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	nums, err := d.store.AllNumbers(ctx)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	sites, err := d.store.ListSites(ctx)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	ix := importIndex{sites: map[string]int64{}, names: map[string]int{}, numbers: map[string]int{}}
	for _, s := range sites {
		ix.sites[strings.ToLower(s.Name)] = s.ID
	}
	for _, u := range users {
		ix.names[strings.ToLower(u.Username)] = 0
	}
	for n := range nums {
		ix.numbers[n] = 0
	}
	for _, it := range items {
		if it.row.Status == ImportRefused {
			continue
		}
		if field, msg := ix.check(it); field != "" {
			it.row.Status, it.row.Field, it.row.Error = ImportRefused, field, msg
		}
	}
	return nil
}

// check resolves the row's site and scope and claims its user name and
// numbers; it returns the field and reason of a refusal.
func (ix *importIndex) check(it *importItem) (field, msg string) {
	where := func(line int) string {
		if line == 0 {
			return "already exists"
		}
		return fmt.Sprintf("is also on line %d", line)
	}
	if it.siteName != "" {
		id, ok := ix.sites[strings.ToLower(it.siteName)]
		if !ok {
			return "site", fmt.Sprintf("no site named %q", it.siteName)
		}
		it.in.SiteID = id
	}
	scope := strings.TrimSpace(it.in.DirectoryScope)
	if scope == "" || strings.EqualFold(scope, "all") {
		it.in.DirectoryScope = "all"
	} else if _, ok := ix.sites[strings.ToLower(scope)]; !ok {
		return "directory_scope", "is \"all\" or the name of a site"
	}
	key := strings.ToLower(it.row.Username)
	if line, ok := ix.names[key]; ok && key != "" {
		return "username", fmt.Sprintf("%q %s", it.row.Username, where(line))
	}
	for _, n := range it.in.Numbers {
		if line, ok := ix.numbers[n]; ok {
			return "numbers", fmt.Sprintf("%s %s", n, where(line))
		}
	}
	// One namespace (CheckNamespace): a user name that is a number, or a
	// number that is a user name, of another row or user.
	if ValidNumber(it.row.Username) {
		for _, f := range plusForms(it.row.Username) {
			if line, ok := ix.numbers[f]; ok {
				return "username", fmt.Sprintf("%q is another user's number (%s)", it.row.Username, where(line))
			}
		}
	}
	for _, n := range it.in.Numbers {
		for _, f := range plusForms(n) {
			if line, ok := ix.names[strings.ToLower(f)]; ok && strings.ToLower(f) != key {
				return "numbers", fmt.Sprintf("%s is another user's user name (%s)", n, where(line))
			}
		}
	}
	ix.names[key] = it.row.Line
	for _, n := range it.in.Numbers {
		ix.numbers[n] = it.row.Line
	}
	return "", ""
}

// prepareAll validates and hashes the rows on a bounded worker pool:
// argon2id costs tens of milliseconds per password, the rest is cheap.
func (d *Directory) prepareAll(items []*importItem, workers int) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	work := make(chan *importItem)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				u, err := d.prepareImport(it.in)
				if err != nil {
					it.row.Status, it.row.Error = ImportRefused, err.Error()
					var fe *FieldError
					if errors.As(err, &fe) {
						it.row.Field, it.row.Error = fe.Field, fe.Msg
					}
					continue
				}
				it.user = u
			}
		}()
	}
	for _, it := range items {
		if it.row.Status != ImportRefused {
			work <- it
		}
	}
	close(work)
	wg.Wait()
}

// prepareImport is Prepare for a row. A row without a password gets no
// login password at all (the admin or the user sets one later): hashing a
// random password nobody will ever know would cost 35 ms for nothing. The
// row is still validated by Prepare itself, with a token hash cost, and the
// hash is then dropped: an empty hash never verifies.
func (d *Directory) prepareImport(in UserInput) (User, error) {
	if in.Password != "" {
		return d.Prepare(in)
	}
	cheap := &Directory{store: d.store, events: d.events, now: d.now, hasher: auth.NewHasher(auth.Argon2Params{Memory: 8, Time: 1, Threads: 1}, 1)}
	u, err := cheap.Prepare(in)
	u.PasswordHash, u.LoginHA1 = "", nil
	return u, err
}

// storeImport writes the prepared rows, importChunk per transaction; a
// chunk that fails (a user created concurrently) is retried row by row so
// that only the guilty row is refused. Each row is user + numbers + audit
// in one transaction, so no row is ever half stored.
func (d *Directory) storeImport(ctx context.Context, items []*importItem, a Actor) error {
	var good []*importItem
	for _, it := range items {
		if it.row.Status != ImportRefused {
			good = append(good, it)
		}
	}
	for start := 0; start < len(good); start += importChunk {
		chunk := good[start:min(start+importChunk, len(good))]
		err := d.store.WithTx(ctx, func(tx Store) error {
			for _, it := range chunk {
				if err := storeImportRow(ctx, tx, it, a, d.now); err != nil {
					return err
				}
			}
			return nil
		})
		if err == nil {
			for _, it := range chunk {
				it.row.Status = ImportCreated
			}
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		for _, it := range chunk {
			it.user.ID = 0
			err := d.store.WithTx(ctx, func(tx Store) error { return storeImportRow(ctx, tx, it, a, d.now) })
			switch {
			case err == nil:
				it.row.Status = ImportCreated
			case errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalid):
				ce := conflictField(err)
				it.row.Status, it.row.Error = ImportRefused, ce.Error()
				var c *ConflictError
				if errors.As(ce, &c) {
					it.row.Field, it.row.Error = c.Field, c.Msg
				}
			default:
				return fmt.Errorf("import line %d: %w", it.row.Line, err)
			}
		}
	}
	for _, it := range good {
		if it.row.Status == ImportCreated {
			d.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: it.user.ID})
		}
	}
	return nil
}

func storeImportRow(ctx context.Context, tx Store, it *importItem, a Actor, now func() time.Time) error {
	u := &it.user
	if err := CheckNamespace(ctx, tx, 0, u.Username, it.in.Numbers); err != nil {
		return err
	}
	if err := tx.CreateUser(ctx, u); err != nil {
		return fmt.Errorf("username %q: %w", u.Username, err)
	}
	for _, n := range it.in.Numbers {
		if err := tx.AssignNumber(ctx, n, u.ID); err != nil {
			return fmt.Errorf("number %q: %w", n, err)
		}
	}
	e := &AuditEvent{At: now(), Actor: orDefault(a.Name, "system"), Action: "user.create", Object: "user:" + u.Username,
		Remote: a.Remote, After: AuditJSON(userRecord{*u, it.in.Numbers})}
	return tx.AddAudit(ctx, e)
}
