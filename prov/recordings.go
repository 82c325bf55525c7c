package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"hotdesk/prov/auth"
)

// Recording is one recorded call of the media bridge (the browser
// softphone's calls): a WAV file under the recordings directory.
type Recording struct {
	ID         int64     `json:"id"`
	UserID     int64     `json:"user_id"`
	CallID     string    `json:"call_id"`
	Peer       string    `json:"peer"`
	Incoming   bool      `json:"incoming"`
	Start      time.Time `json:"start"`
	DurationMS int64     `json:"duration_ms"`
	Bytes      int64     `json:"bytes"`
	// File is the name under the recordings directory (never a path).
	File string `json:"-"`
}

// RecordingsConfig bounds what recordings keep.
type RecordingsConfig struct {
	// Dir holds the WAV files.
	Dir string
	// Retention deletes recordings older than this (0: kept until the budget needs room).
	Retention time.Duration
	// MaxBytes is the budget of all recordings together; the oldest go
	// first when a new one passes it. It also caps one recording.
	MaxBytes int64
}

// Recordings decides which calls are recorded, keeps their metadata and
// enforces retention and the size budget.
type Recordings struct {
	cfg   RecordingsConfig
	store Store
	mgr   *Manager
	log   *slog.Logger
	now   func() time.Time
	// mu serialises budget enforcement (two calls ending together).
	mu sync.Mutex
}

// NewRecordings builds the service; it creates cfg.Dir.
func NewRecordings(cfg RecordingsConfig, st Store, mgr *Manager, logger *slog.Logger, now func() time.Time) (*Recordings, error) {
	if cfg.Dir == "" {
		return nil, errors.New("recordings: no directory")
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	return &Recordings{cfg: cfg, store: st, mgr: mgr, log: logger, now: now}, nil
}

// Records reports whether calls of a browser credential's owner
// ("browser:<user id>.<tag>") are recorded, and whose they are: the user's
// admin-set Record flag.
func (r *Recordings) Records(ctx context.Context, owner string) (User, bool) {
	o, _ := ParseOwner(owner)
	if o.Kind != OwnerBrowser {
		return User{}, false
	}
	u, err := r.store.GetUserByID(ctx, browserUserID(o.ID))
	if err != nil || !u.Portal.RecordCalls {
		return User{}, false
	}
	return u, true
}

// NewFile names a new recording's file and returns its path.
func (r *Recordings) NewFile(u User) (name, path string) {
	name = r.now().UTC().Format("20060102-150405") + "-" + strconv.FormatInt(u.ID, 10) + "-" + strings.ToLower(auth.RandomSecret(6)) + ".wav"
	return name, filepath.Join(r.cfg.Dir, name)
}

// MaxBytes caps one recording.
func (r *Recordings) MaxBytes() int64 { return r.cfg.MaxBytes }

// Finished stores a recording's metadata, then deletes what retention and
// the budget no longer allow (oldest first).
func (r *Recordings) Finished(ctx context.Context, rec Recording) error {
	if err := r.store.AddRecording(ctx, &rec); err != nil {
		os.Remove(filepath.Join(r.cfg.Dir, rec.File))
		return fmt.Errorf("recordings: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	all, err := r.store.ListRecordings(ctx, 0, 0)
	if err != nil {
		return fmt.Errorf("recordings: %w", err)
	}
	var total int64
	for _, x := range all {
		total += x.Bytes
	}
	now := r.now()
	for i := len(all) - 1; i >= 0; i-- { // oldest first
		x := all[i]
		old := r.cfg.Retention > 0 && now.Sub(x.Start) > r.cfg.Retention
		over := r.cfg.MaxBytes > 0 && total > r.cfg.MaxBytes && x.ID != rec.ID
		if !old && !over {
			continue
		}
		if err := r.store.DeleteRecording(ctx, x.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("recordings: %w", err)
		}
		if err := os.Remove(filepath.Join(r.cfg.Dir, x.File)); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("recording file not removed", "file", x.File, "err", err)
		}
		total -= x.Bytes
	}
	return nil
}

// List returns the recordings u may replay, newest first: their own
// (Read or Write access to the Recordings menu).
func (r *Recordings) List(ctx context.Context, u User) ([]Recording, error) {
	if u.Portal.Recordings != AccessRead && u.Portal.Recordings != AccessWrite {
		return nil, fmt.Errorf("recordings: %w", ErrDenied)
	}
	return r.store.ListRecordings(ctx, u.ID, 200)
}

// Open gives u one of their recordings to replay (Read) or download
// (Write), audited either way; the caller closes the file.
func (r *Recordings) Open(ctx context.Context, u User, id int64, download bool, a Actor) (Recording, *os.File, error) {
	need := u.Portal.Recordings == AccessRead || u.Portal.Recordings == AccessWrite
	if download {
		need = u.Portal.Recordings == AccessWrite
	}
	rec, err := r.store.GetRecording(ctx, id)
	if err == nil && rec.UserID != u.ID {
		err = ErrNotFound // another user's: not even its existence is told
	}
	if err != nil {
		return Recording{}, nil, fmt.Errorf("recordings: %w", err)
	}
	if !need {
		return Recording{}, nil, fmt.Errorf("recordings: %w", ErrDenied)
	}
	f, err := os.Open(filepath.Join(r.cfg.Dir, filepath.Base(rec.File)))
	if err != nil {
		return Recording{}, nil, fmt.Errorf("recordings: %w", err)
	}
	action := "recording.replay"
	if download {
		action = "recording.download"
	}
	if r.mgr != nil {
		r.mgr.Audit(ctx, a, action, UserObject(u.Username), nil, map[string]any{"recording": rec.ID, "call_id": rec.CallID})
	}
	return rec, f, nil
}
