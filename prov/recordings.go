package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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

// RecordingScope selects recordings for a reader: those matching any of
// the set fields (none set: none).
type RecordingScope struct {
	All bool
	// UserID: the user's own.
	UserID int64
	// SiteID: those of the site's users.
	SiteID int64
	// Numbers: those whose user has one of the numbers or whose other
	// party is one.
	Numbers []string
	// Offset and Limit page the result (Limit 0: no limit).
	Offset, Limit int
}

// ScopedRecording is a recording with its user as the rights see them.
type ScopedRecording struct {
	Recording
	// Owner is the user's name ("" when the user is gone), OwnerName their
	// full name, OwnerSite their site.
	Owner     string
	OwnerName string
	OwnerSite int64
	// ByNumber: the recording matches RecordingScope.Numbers.
	ByNumber bool
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
	// Numbers are recorded whatever their user's flag: a bridged call is
	// when the softphone user has one of them or the other party is one.
	Numbers []string
	// Shared keeps the audio in the store too (nil: one node).
	Shared *SharedAudio
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

// Records reports whether a bridged call of a browser credential's owner
// ("browser:<user id>.<tag>") with peer is recorded, and whose it is: the
// user's admin-set Record flag, or a recorded number (theirs or peer).
func (r *Recordings) Records(ctx context.Context, owner, peer string) (User, bool) {
	o, _ := ParseOwner(owner)
	if o.Kind != OwnerBrowser {
		return User{}, false
	}
	u, err := r.store.GetUserByID(ctx, browserUserID(o.ID))
	if err != nil {
		return User{}, false
	}
	if u.Portal.RecordCalls || (peer != "" && slices.Contains(r.cfg.Numbers, peer)) {
		return u, true
	}
	if len(r.cfg.Numbers) == 0 {
		return User{}, false
	}
	own, err := r.store.NumbersOf(ctx, u.ID)
	if err != nil {
		r.log.Warn("recorded numbers not checked", "user", u.Username, "err", err)
		return User{}, false
	}
	for _, n := range own {
		if slices.Contains(r.cfg.Numbers, n) {
			return u, true
		}
	}
	return User{}, false
}

// RecordsCall reports whether a call between desk phones (or a phone and
// the trunk) is recorded, and whose recording it is: the caller's user (a
// user's own account, or the user logged in on the phone) when recorded —
// their Record flag or one of their numbers listed; else the dialled
// number's user when recorded (incoming); else, a listed number that is no
// user's (the trunk's), the caller's.
func (r *Recordings) RecordsCall(ctx context.Context, caller, dialled string) (u User, incoming, ok bool) {
	c, found := r.callerUser(ctx, caller)
	if found && r.recorded(ctx, c) {
		return c, false, true
	}
	if dialled == "" {
		return User{}, false, false
	}
	d, err := r.store.UserByNumber(ctx, dialled)
	if err == nil && r.recorded(ctx, d) {
		return d, true, true
	}
	if err != nil && found && slices.Contains(r.cfg.Numbers, dialled) {
		return c, false, true
	}
	return User{}, false, false
}

// callerUser is the user behind a caller's credential owner ("kind:id").
func (r *Recordings) callerUser(ctx context.Context, caller string) (User, bool) {
	o, _ := ParseOwner(caller)
	var id int64
	switch o.Kind {
	case OwnerUser:
		id, _ = strconv.ParseInt(o.ID, 10, 64)
	case OwnerSession:
		s, err := r.store.GetSession(ctx, o.ID)
		if err != nil {
			return User{}, false
		}
		id = s.UserID
	default:
		return User{}, false
	}
	u, err := r.store.GetUserByID(ctx, id)
	return u, err == nil
}

// recorded tells a user whose calls are recorded: the Record flag or one
// of their numbers listed.
func (r *Recordings) recorded(ctx context.Context, u User) bool {
	if u.Portal.RecordCalls {
		return true
	}
	if len(r.cfg.Numbers) == 0 {
		return false
	}
	own, err := r.store.NumbersOf(ctx, u.ID)
	if err != nil {
		r.log.Warn("recorded numbers not checked", "user", u.Username, "err", err)
		return false
	}
	for _, n := range own {
		if slices.Contains(r.cfg.Numbers, n) {
			return true
		}
	}
	return false
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
	path := filepath.Join(r.cfg.Dir, filepath.Base(rec.File))
	if r.cfg.Shared != nil {
		// Stored before the row: a row every node lists has its audio.
		if _, err := r.cfg.Shared.put(ctx, MediaRecording, rec.File, path, rec.Start); err != nil {
			os.Remove(path)
			return fmt.Errorf("recordings: %w", err)
		}
	}
	if err := r.store.AddRecording(ctx, &rec); err != nil {
		os.Remove(path)
		if r.cfg.Shared != nil {
			r.cfg.Shared.remove(ctx, MediaRecording, rec.File)
		}
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
		if r.cfg.Shared != nil {
			r.cfg.Shared.remove(ctx, MediaRecording, x.File)
		}
		total -= x.Bytes
	}
	return nil
}

// MaxRecordingNumbers bounds a user's list of numbers whose recordings
// they may hear: every listing and replay checks each recording against it.
const MaxRecordingNumbers = 200

// RecordingNumbers is p.RecordingsNumbers split, blanks dropped.
func RecordingNumbers(p PortalAccess) []string {
	var out []string
	for n := range strings.SplitSeq(p.RecordingsNumbers, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// RecordingsAccess is the widest of u's four recording rights: whether the
// Recordings menu shows at all and whether it offers downloads.
func RecordingsAccess(u User) Access {
	best := AccessNone
	for _, a := range []Access{u.Portal.Recordings, u.Portal.RecordingsGroup, u.Portal.RecordingsOthers, u.Portal.RecordingsAll} {
		if a == AccessWrite {
			return AccessWrite
		}
		if a == AccessRead {
			best = AccessRead
		}
	}
	return best
}

// recOwner is what the rights look at of a recording's user.
type recOwner struct {
	site    int64
	numbers []string
}

// rights works out u's access to recordings, caching their owners.
type rights struct {
	r       *Recordings
	u       User
	numbers []string
	owners  map[int64]recOwner
}

func (r *Recordings) rightsOf(u User) *rights {
	return &rights{r: r, u: u, numbers: RecordingNumbers(u.Portal), owners: map[int64]recOwner{}}
}

// of is u's access to rec: the widest of the rights whose scope holds it
// (own, the same site, a listed number, all).
func (x *rights) of(ctx context.Context, rec Recording) (Access, error) {
	p := x.u.Portal
	acc := []Access{p.RecordingsAll}
	if rec.UserID == x.u.ID {
		acc = append(acc, p.Recordings)
	}
	if (p.RecordingsGroup != AccessNone && p.RecordingsGroup != "") || (p.RecordingsOthers != AccessNone && p.RecordingsOthers != "") {
		o, ok := x.owners[rec.UserID]
		if !ok {
			ou, err := x.r.store.GetUserByID(ctx, rec.UserID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return AccessNone, err
			}
			o.site = ou.SiteID
			if err == nil {
				if o.numbers, err = x.r.store.NumbersOf(ctx, rec.UserID); err != nil {
					return AccessNone, err
				}
			}
			x.owners[rec.UserID] = o
		}
		if o.site != 0 && o.site == x.u.SiteID {
			acc = append(acc, p.RecordingsGroup)
		}
		for _, n := range x.numbers {
			if n == rec.Peer || slices.Contains(o.numbers, n) {
				acc = append(acc, p.RecordingsOthers)
				break
			}
		}
	}
	if best := slices.MaxFunc(acc, accessCmp); best != "" {
		return best, nil
	}
	return AccessNone, nil
}

func accessCmp(a, b Access) int { return accessRank(a) - accessRank(b) }

func accessRank(a Access) int {
	switch a {
	case AccessWrite:
		return 2
	case AccessRead:
		return 1
	}
	return 0
}

// ListedRecording is one recording List shows, whose it is, and whether u
// may download it (Write) besides replaying it.
type ListedRecording struct {
	Recording
	// Owner is its user's name, OwnerName their full name ("" when the
	// user is gone).
	Owner     string `json:"owner"`
	OwnerName string `json:"owner_name"`
	Download  bool   `json:"download"`
}

// MaxRecordingsPage bounds one page of List.
const MaxRecordingsPage = 200

// List returns one page of the recordings u may replay, newest first:
// their own, their site's, their listed numbers' or all, per their rights,
// from offset, at most limit (1 to MaxRecordingsPage), and whether more
// follow. One store query, whoever's the recordings are.
func (r *Recordings) List(ctx context.Context, u User, offset, limit int) ([]ListedRecording, bool, error) {
	if RecordingsAccess(u) == AccessNone {
		return nil, false, fmt.Errorf("recordings: %w", ErrDenied)
	}
	limit = min(max(limit, 1), MaxRecordingsPage)
	p := u.Portal
	sc := RecordingScope{All: accessRank(p.RecordingsAll) > 0, Offset: max(offset, 0), Limit: limit + 1}
	if accessRank(p.Recordings) > 0 {
		sc.UserID = u.ID
	}
	if accessRank(p.RecordingsGroup) > 0 && u.SiteID != 0 {
		sc.SiteID = u.SiteID
	}
	if accessRank(p.RecordingsOthers) > 0 {
		sc.Numbers = RecordingNumbers(p)
	}
	rows, err := r.store.ListRecordingsIn(ctx, sc)
	if err != nil {
		return nil, false, fmt.Errorf("recordings: %w", err)
	}
	more := len(rows) > limit
	out := make([]ListedRecording, 0, min(len(rows), limit))
	for _, x := range rows[:min(len(rows), limit)] {
		a := scopedAccess(u, x)
		out = append(out, ListedRecording{Recording: x.Recording, Owner: x.Owner, OwnerName: x.OwnerName,
			Download: a == AccessWrite})
	}
	return out, more, nil
}

// scopedAccess is u's access to x: the widest of the rights whose scope
// holds it, as rights.of works it out.
func scopedAccess(u User, x ScopedRecording) Access {
	p := u.Portal
	acc := []Access{p.RecordingsAll}
	if x.UserID == u.ID {
		acc = append(acc, p.Recordings)
	}
	if x.OwnerSite != 0 && x.OwnerSite == u.SiteID {
		acc = append(acc, p.RecordingsGroup)
	}
	if x.ByNumber {
		acc = append(acc, p.RecordingsOthers)
	}
	return slices.MaxFunc(acc, accessCmp)
}

// Open gives u a recording to replay (Read) or download (Write) under
// their rights, audited either way; the caller closes the file. A
// recording outside every scope u has is ErrNotFound: not even its
// existence is told.
func (r *Recordings) Open(ctx context.Context, u User, id int64, download bool, a Actor) (Recording, *os.File, error) {
	rec, err := r.store.GetRecording(ctx, id)
	if err != nil {
		return Recording{}, nil, fmt.Errorf("recordings: %w", err)
	}
	acc, err := r.rightsOf(u).of(ctx, rec)
	if err != nil {
		return Recording{}, nil, fmt.Errorf("recordings: %w", err)
	}
	if acc == AccessNone && rec.UserID != u.ID {
		return Recording{}, nil, fmt.Errorf("recordings: %w", ErrNotFound)
	}
	if acc == AccessNone || (download && acc != AccessWrite) {
		return Recording{}, nil, fmt.Errorf("recordings: %w", ErrDenied)
	}
	path := filepath.Join(r.cfg.Dir, filepath.Base(rec.File))
	if r.cfg.Shared != nil {
		// Recorded on another node: copied here from the store first.
		if err := r.cfg.Shared.ensure(ctx, MediaRecording, rec.File, path); err != nil {
			r.log.Warn("recording not available", "id", rec.ID, "err", err)
			return Recording{}, nil, fmt.Errorf("recordings: %w", err)
		}
	}
	f, err := os.Open(path)
	if err != nil {
		return Recording{}, nil, fmt.Errorf("recordings: %w", err)
	}
	action := "recording.replay"
	if download {
		action = "recording.download"
	}
	if r.mgr != nil {
		// The object is the recording's user; the reader is the actor.
		obj := UserObject(u.Username)
		if rec.UserID != u.ID {
			if ou, err := r.store.GetUserByID(ctx, rec.UserID); err == nil {
				obj = UserObject(ou.Username)
			}
		}
		r.mgr.Audit(ctx, a, action, obj, nil, map[string]any{"recording": rec.ID, "call_id": rec.CallID, "by": u.Username})
	}
	return rec, f, nil
}
