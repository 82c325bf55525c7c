package prov

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// ImportOptions control a CSV user import.
type ImportOptions struct {
	// DryRun validates every row and reports what would happen, storing nothing.
	DryRun bool
	Actor  Actor
	// Workers bound the parallel password hashing; 0 = GOMAXPROCS.
	Workers int
	// MaxRows refuses a larger file; 0 = DefaultImportMaxRows.
	MaxRows int
	// Progress, when set, is told after each row is prepared (validated
	// and its password hashed) and after each stored chunk; calls never
	// overlap, and Done only grows within a phase.
	Progress func(ImportProgress)
}

// Import phases, in order.
const (
	ImportPreparing = "preparing" // validating rows, hashing passwords
	ImportStoring   = "storing"
)

// ImportProgress is where a running import stands: Done of Total rows
// through Phase.
type ImportProgress struct {
	Phase string `json:"phase"`
	Done  int    `json:"done"`
	Total int    `json:"total"`
}

// importTracker serializes progress reports from the hashing workers.
type importTracker struct {
	mu    sync.Mutex
	fn    func(ImportProgress)
	phase string
	done  int
	total int
}

func (t *importTracker) start(phase string, total int) {
	if t.fn == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.phase, t.done, t.total = phase, 0, total
	t.fn(ImportProgress{Phase: phase, Total: total})
}

func (t *importTracker) add(n int) {
	if t.fn == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done += n
	t.fn(ImportProgress{Phase: t.phase, Done: t.done, Total: t.total})
}

// DefaultImportMaxRows bounds one import.
const DefaultImportMaxRows = 50000

// importChunk is how many rows one transaction stores: few commits keep
// 10,000 rows fast, and a failing chunk is retried row by row.
const importChunk = 500

// Import row outcomes.
const (
	ImportCreated     = "created"
	ImportWouldCreate = "would_create"
	ImportRefused     = "refused"
)

// ImportRow is the outcome of one data row.
type ImportRow struct {
	// Line is the row's line number in the file (the header is line 1).
	Line     int    `json:"line"`
	Username string `json:"username,omitempty"`
	Status   string `json:"status"`
	Field    string `json:"field,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ImportReport is the per-row report of an import.
type ImportReport struct {
	DryRun  bool `json:"dry_run"`
	Rows    int  `json:"rows"`
	Created int  `json:"created"`
	Refused int  `json:"refused"`
	// Welcome is how many welcome messages were scheduled (opt-in).
	Welcome int         `json:"welcome"`
	Results []ImportRow `json:"results"`
}

// CreatedUsers lists the user names the import created.
func (r ImportReport) CreatedUsers() []string {
	var out []string
	for _, row := range r.Results {
		if row.Status == ImportCreated {
			out = append(out, row.Username)
		}
	}
	return out
}

// ImportColumns are the CSV columns an import understands; first_name,
// last_name and email are required, the others optional. numbers holds
// one or more numbers separated by spaces, ";" or ","; site is a site name;
// params holds profile parameters as name=value pairs separated by ";".
// password_hash takes an argon2id PHC string from another system instead
// of a password (see auth.ParseImportedHash); a row has one or the other.
var ImportColumns = []string{"username", "first_name", "last_name", "email", "language", "directory_scope",
	"custom1", "custom2", "custom3", "kind", "responsible_email", "password", "numbers", "site", "params",
	"password_hash"}

var numberSplitRE = regexp.MustCompile(`[\s;,]+`)

type importItem struct {
	row      ImportRow
	in       UserInput
	siteName string
	// hash is the row's password_hash, stored as it is.
	hash string
	user User
}

// ImportUsersCSV creates users from CSV: a header row naming the columns
// (any order, UTF-8 with or without BOM), then one user per row. A row is
// created all or nothing (user and numbers); a bad row is refused with its
// reason and never stops the others. An error is returned only when the
// file as a whole is unusable (header, size) or the store fails.
func ImportUsersCSV(ctx context.Context, dir *Directory, r io.Reader, opts ImportOptions) (ImportReport, error) {
	if opts.MaxRows <= 0 {
		opts.MaxRows = DefaultImportMaxRows
	}
	rep := ImportReport{DryRun: opts.DryRun}
	items, err := readImport(r, opts.MaxRows)
	if err != nil {
		return rep, err
	}
	if err := dir.checkImport(ctx, items); err != nil {
		return rep, err
	}
	tr := &importTracker{fn: opts.Progress}
	dir.prepareAll(items, opts.Workers, tr)
	if !opts.DryRun {
		if err := dir.storeImport(ctx, items, opts.Actor, tr); err != nil {
			return rep, err
		}
	}
	rep.Rows = len(items)
	for _, it := range items {
		if it.row.Status == "" {
			it.row.Status = ImportWouldCreate
		}
		switch it.row.Status {
		case ImportRefused:
			rep.Refused++
		case ImportCreated:
			rep.Created++
		}
		rep.Results = append(rep.Results, it.row)
	}
	if !opts.DryRun {
		e := NewAuditEvent(dir.now(), opts.Actor, "user.import", Object{Kind: ObjectUsers}, nil,
			struct {
				Rows    int `json:"rows"`
				Created int `json:"created"`
				Refused int `json:"refused"`
			}{rep.Rows, rep.Created, rep.Refused})
		if err := dir.store.AddAudit(ctx, e); err != nil {
			return rep, fmt.Errorf("import: audit: %w", err)
		}
	}
	return rep, nil
}

// readImport parses the header and the rows; malformed rows become
// refused items, a bad header fails the whole file.
func readImport(r io.Reader, maxRows int) ([]*importItem, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(3); err == nil && string(b) == "\xef\xbb\xbf" {
		_, _ = br.Discard(3)
	}
	cr := csv.NewReader(br)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, Invalid("header", "the file is empty: the first row must name the columns")
	} else if err != nil {
		return nil, Invalid("header", err.Error())
	}
	cols, err := importHeader(header)
	if err != nil {
		return nil, err
	}
	var items []*importItem
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if len(items) >= maxRows {
			return nil, Invalid("rows", fmt.Sprintf("at most %d rows per import", maxRows))
		}
		it := &importItem{}
		var pe *csv.ParseError
		switch {
		case errors.As(err, &pe):
			it.row = ImportRow{Line: pe.StartLine, Status: ImportRefused, Field: "row", Error: pe.Err.Error()}
		case err != nil:
			return nil, fmt.Errorf("import: read: %w", err)
		default:
			line, _ := cr.FieldPos(0)
			it.row.Line = line
			if len(rec) != len(cols) {
				it.row.Status, it.row.Field = ImportRefused, "row"
				it.row.Error = fmt.Sprintf("has %d fields, the header has %d", len(rec), len(cols))
				if slices.Contains(cols, "password_hash") && strings.Contains(strings.Join(rec, ","), "$argon2") {
					it.row.Error += ` (quote password_hash values: "$argon2id$v=19$m=…,t=…,p=…$…")`
				}
			} else {
				it.in, it.siteName, it.hash = importInput(cols, rec)
				it.row.Username = orDefault(strings.TrimSpace(it.in.Username), strings.TrimSpace(it.in.Email))
			}
		}
		items = append(items, it)
	}
}

func importHeader(header []string) ([]string, error) {
	cols := make([]string, len(header))
	seen := map[string]bool{}
	for i, h := range header {
		c := strings.ToLower(strings.TrimSpace(h))
		c = strings.NewReplacer(" ", "_", "-", "_").Replace(c)
		if !slices.Contains(ImportColumns, c) {
			return nil, Invalid("header", fmt.Sprintf("unknown column %q (columns: %s)", h, strings.Join(ImportColumns, ", ")))
		}
		if seen[c] {
			return nil, Invalid("header", fmt.Sprintf("column %q appears twice", h))
		}
		seen[c], cols[i] = true, c
	}
	for _, req := range []string{"first_name", "last_name", "email"} {
		if !seen[req] {
			return nil, Invalid("header", fmt.Sprintf("column %q is required", req))
		}
	}
	return cols, nil
}

func importInput(cols, rec []string) (in UserInput, site, hash string) {
	for i, c := range cols {
		v := strings.TrimSpace(rec[i])
		switch c {
		case "username":
			in.Username = v
		case "first_name":
			in.FirstName = v
		case "last_name":
			in.LastName = v
		case "email":
			in.Email = v
		case "language":
			in.Language = v
		case "directory_scope":
			in.DirectoryScope = v
		case "custom1":
			in.Custom1 = v
		case "custom2":
			in.Custom2 = v
		case "custom3":
			in.Custom3 = v
		case "kind":
			in.Kind = UserKind(strings.ReplaceAll(strings.ToLower(v), "-", "_"))
		case "responsible_email":
			in.ResponsibleEmail = v
		case "password":
			in.Password = rec[i] // passwords keep their spaces
		case "numbers":
			for _, n := range numberSplitRE.Split(v, -1) {
				if n != "" {
					in.Numbers = append(in.Numbers, n)
				}
			}
		case "site":
			site = v // resolved to an ID in checkImport
		case "password_hash":
			hash = v
		case "params":
			for _, kv := range strings.Split(v, ";") {
				if kv = strings.TrimSpace(kv); kv == "" {
					continue
				}
				if in.Params == nil {
					in.Params = map[string]string{}
				}
				k, val, _ := strings.Cut(kv, "=") // a pair without "=" is refused by its name
				in.Params[strings.TrimSpace(k)] = strings.TrimSpace(val)
			}
		}
	}
	return in, site, hash
}
