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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Recordings and voicemail keep audio in files and their metadata in
// rows; the two can part: a crash between the file's write and its row
// (or a delete between the row and the file) leaves a file nothing lists,
// and a file removed by hand leaves a row nothing plays. The media
// sweeper puts them back in step at start-up and then periodically.

// DefaultOrphanGrace is how old a file without a row must be before the
// sweep removes it: a recording being written has none yet (its tap
// writes about every second, so its mtime stays fresh), and a message
// gets one just after its file is written.
const DefaultOrphanGrace = 15 * time.Minute

// sweepScan bounds the rows and directory entries one sweep looks at; the
// size budgets keep both far below it.
const sweepScan = 100_000

// MediaSweeper removes files without rows and rows without files, for
// recordings and voicemail (either may be nil).
type MediaSweeper struct {
	rec   *Recordings
	vms   *Voicemails
	grace time.Duration
	// filesPerNode: the store is shared by nodes that each keep the files
	// they wrote on their own disk, so a row whose file is not here may be
	// another node's: rows are never removed for a missing file (a local
	// file without a row is still an orphan: the rows are everyone's).
	filesPerNode bool
	logger       *slog.Logger
	files        *prometheus.CounterVec
	rows         *prometheus.CounterVec
	stored       *prometheus.CounterVec
}

// NewMediaSweeper returns the sweeper; grace 0 is DefaultOrphanGrace.
// filesPerNode is set on a cluster node (see MediaSweeper).
func NewMediaSweeper(rec *Recordings, vms *Voicemails, grace time.Duration, filesPerNode bool, logger *slog.Logger,
	reg prometheus.Registerer) *MediaSweeper {
	if grace <= 0 {
		grace = DefaultOrphanGrace
	}
	f := promauto.With(reg)
	return &MediaSweeper{rec: rec, vms: vms, grace: grace, filesPerNode: filesPerNode, logger: logger.With("component", "media-sweep"),
		files: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_media_orphan_files_removed_total",
			Help: "Recording and voicemail files removed because no row listed them (or their user is gone), by kind."},
			[]string{"kind"}),
		rows: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_media_orphan_rows_removed_total",
			Help: "Recording and voicemail rows removed because their file was missing, by kind."}, []string{"kind"}),
		stored: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_media_orphan_stored_removed_total",
			Help: "Audio removed from the shared store because no row (or no user, for a greeting) names it, by kind."},
			[]string{"kind"}),
	}
}

// Sweep runs once over both kinds.
func (m *MediaSweeper) Sweep(ctx context.Context) error {
	var errs []error
	if m.rec != nil {
		files, rows, err := m.rec.sweepOrphans(ctx, m.grace, !m.filesPerNode)
		m.count("recording", files, rows)
		errs = append(errs, err)
		if m.rec.cfg.Shared != nil {
			n, err := m.rec.sweepStored(ctx, m.grace)
			m.countStored(MediaRecording, n)
			errs = append(errs, err)
		}
	}
	if m.vms != nil {
		files, rows, err := m.vms.sweepOrphans(ctx, m.grace, !m.filesPerNode)
		m.count("voicemail", files, rows)
		errs = append(errs, err)
		if m.vms.cfg.Shared != nil {
			msgs, greetings, err := m.vms.sweepStored(ctx, m.grace)
			m.countStored(MediaVoicemail, msgs)
			m.countStored(MediaGreeting, greetings)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *MediaSweeper) countStored(kind string, n int) {
	m.stored.WithLabelValues(kind).Add(float64(n))
	if n > 0 {
		m.logger.Warn("stored audio without a row removed", "kind", kind, "removed", n)
	}
}

// sweepStored removes stored recordings no row names (a crash between
// the audio and its row, or a delete between the row and the audio).
func (r *Recordings) sweepStored(ctx context.Context, grace time.Duration) (int, error) {
	all, err := r.store.ListRecordings(ctx, 0, sweepScan)
	if err != nil {
		return 0, fmt.Errorf("recordings sweep: %w", err)
	}
	if len(all) == sweepScan {
		return 0, nil // not every row seen
	}
	known := make(map[string]bool, len(all))
	for _, x := range all {
		known[x.File] = true
	}
	return r.cfg.Shared.orphans(ctx, MediaRecording, grace, func(o MediaObject) bool { return known[o.Name] })
}

// sweepStored removes stored messages no row names, and greetings whose
// user is gone or has no number (disabled) any more.
func (v *Voicemails) sweepStored(ctx context.Context, grace time.Duration) (msgs, greetings int, err error) {
	all, err := v.store.VoicemailsBefore(ctx, v.now().Add(24*time.Hour), sweepScan)
	if err != nil {
		return 0, 0, fmt.Errorf("voicemail sweep: %w", err)
	}
	if len(all) < sweepScan {
		known := make(map[string]bool, len(all))
		for _, m := range all {
			_, name := v.local(m)
			known[name] = true
		}
		msgs, err = v.cfg.Shared.orphans(ctx, MediaVoicemail, grace, func(o MediaObject) bool { return known[o.Name] })
		if err != nil {
			return msgs, 0, err
		}
	}
	greetings, err = v.cfg.Shared.orphans(ctx, MediaGreeting, grace, func(o MediaObject) bool {
		id, err := strconv.ParseInt(o.Name, 10, 64)
		if err != nil {
			return false
		}
		nums, err := v.store.NumbersOf(ctx, id)
		return err != nil && !errors.Is(err, ErrNotFound) || len(nums) > 0 // a failed read keeps it
	})
	return msgs, greetings, err
}

func (m *MediaSweeper) count(kind string, files, rows int) {
	m.files.WithLabelValues(kind).Add(float64(files))
	m.rows.WithLabelValues(kind).Add(float64(rows))
	if files > 0 || rows > 0 {
		m.logger.Warn("media files and rows out of step, repaired", "kind", kind, "files_removed", files,
			"rows_removed", rows)
	}
}

// Run sweeps every interval until ctx ends (the start-up sweep is the
// caller's, so it finishes before anything is served).
func (m *MediaSweeper) Run(ctx context.Context, every time.Duration) error {
	return runEvery(ctx, every, m.logger, "media sweep", m.Sweep)
}

// oldEnough reports whether a file is past the grace period.
func oldEnough(e os.DirEntry, now time.Time, grace time.Duration) bool {
	info, err := e.Info()
	return err == nil && now.Sub(info.ModTime()) > grace
}

// sweepOrphans removes recording rows whose file is gone (with dropRows)
// and WAV files no row names (past the grace period).
func (r *Recordings) sweepOrphans(ctx context.Context, grace time.Duration, dropRows bool) (files, rows int, err error) {
	all, err := r.store.ListRecordings(ctx, 0, sweepScan)
	if err != nil {
		return 0, 0, fmt.Errorf("recordings sweep: %w", err)
	}
	known := make(map[string]bool, len(all))
	for _, x := range all {
		known[x.File] = true
		if !dropRows {
			continue
		}
		if _, err := os.Stat(filepath.Join(r.cfg.Dir, filepath.Base(x.File))); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := r.store.DeleteRecording(ctx, x.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return files, rows, fmt.Errorf("recordings sweep: %w", err)
		}
		rows++
	}
	if len(all) == sweepScan {
		return files, rows, nil // not every row seen: no file is known to be an orphan
	}
	ents, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return files, rows, fmt.Errorf("recordings sweep: %w", err)
	}
	now := r.now()
	for _, e := range ents[:min(len(ents), sweepScan)] {
		fetching := strings.HasPrefix(e.Name(), "fetch-") && strings.HasSuffix(e.Name(), ".tmp") // a copy cut off
		if e.IsDir() || known[e.Name()] || !(strings.HasSuffix(e.Name(), ".wav") || fetching) || !oldEnough(e, now, grace) {
			continue
		}
		if err := os.Remove(filepath.Join(r.cfg.Dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			return files, rows, fmt.Errorf("recordings sweep: %w", err)
		}
		files++
	}
	return files, rows, nil
}

// sweepOrphans removes message rows whose file is gone, message files no
// row names (past the grace period, a greeting's unfinished upload too),
// and greetings whose number no user has any more. Rows are removed only
// with dropRows.
func (v *Voicemails) sweepOrphans(ctx context.Context, grace time.Duration, dropRows bool) (files, rows int, err error) {
	now := v.now()
	all, err := v.store.VoicemailsBefore(ctx, now.Add(24*time.Hour), sweepScan)
	if err != nil {
		return 0, 0, fmt.Errorf("voicemail sweep: %w", err)
	}
	known := make(map[string]bool, len(all))
	changed := map[int64]bool{}
	for _, m := range all {
		p, _ := v.local(m)
		known[filepath.Clean(p)] = true
		if !dropRows {
			continue
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := v.store.DeleteVoicemail(ctx, m.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return files, rows, fmt.Errorf("voicemail sweep: %w", err)
		}
		rows++
		changed[m.UserID] = true
	}
	for id := range changed {
		v.notify(ctx, id) // the lamp follows the rows
	}
	complete := len(all) < sweepScan
	boxes, err := os.ReadDir(v.cfg.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return files, rows, nil
	}
	if err != nil {
		return files, rows, fmt.Errorf("voicemail sweep: %w", err)
	}
	for _, box := range boxes[:min(len(boxes), sweepScan)] {
		if !box.IsDir() {
			continue
		}
		dir := filepath.Join(v.cfg.Dir, box.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return files, rows, fmt.Errorf("voicemail sweep: %w", err)
		}
		for _, e := range ents[:min(len(ents), sweepScan)] {
			p := filepath.Join(dir, e.Name())
			var orphan bool
			switch {
			case e.IsDir():
			case e.Name() == "greeting.wav":
				orphan = v.greetingOrphan(ctx, box.Name())
			case (strings.HasPrefix(e.Name(), "greeting-") || strings.HasPrefix(e.Name(), "fetch-")) &&
				strings.HasSuffix(e.Name(), ".tmp"):
				orphan = oldEnough(e, now, grace)
			case strings.HasSuffix(e.Name(), ".wav"):
				orphan = complete && !known[p] && oldEnough(e, now, grace)
			}
			if !orphan {
				continue
			}
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return files, rows, fmt.Errorf("voicemail sweep: %w", err)
			}
			files++
		}
		_ = os.Remove(dir) // only when empty: a mailbox nobody uses any more
	}
	return files, rows, nil
}

// greetingOrphan: no user has the mailbox's number any more (disabled,
// or the number taken away), so nobody may keep the greeting; the next
// holder of the number must not inherit it.
func (v *Voicemails) greetingOrphan(ctx context.Context, mailbox string) bool {
	_, err := v.store.UserByNumber(ctx, mailbox)
	return errors.Is(err, ErrNotFound)
}

// Follow empties the mailbox of a user who is disabled: their messages'
// rows, then the files, and greetings left without a user. Disabling
// already takes the numbers, so nobody could reach these any more.
func (v *Voicemails) Follow(ev *Events) {
	ev.Subscribe(func(ctx context.Context, e Event) {
		if e.Kind != EventUserChanged || e.Reason != string(EndUserDisabled) {
			return
		}
		if err := v.purge(ctx, e.UserID); err != nil {
			v.logger.Error("disabled user's voicemail not removed", "user", e.UserID, "err", err)
		}
	})
}

func (v *Voicemails) purge(ctx context.Context, userID int64) error {
	ms, err := v.store.ListVoicemails(ctx, userID)
	if err != nil {
		return fmt.Errorf("voicemail purge: %w", err)
	}
	boxes := map[string]bool{}
	for _, m := range ms {
		// Row first, its file after the commit: a crash between leaves
		// a file the sweep removes, never a row without its file.
		if err := v.store.DeleteVoicemail(ctx, m.ID); err != nil && !errors.Is(err, ErrNotFound) {
			return fmt.Errorf("voicemail purge: %w", err)
		}
		v.removeAudio(ctx, m)
		p, _ := v.local(m)
		boxes[filepath.Dir(p)] = true
	}
	if v.cfg.Shared != nil {
		v.cfg.Shared.remove(ctx, MediaGreeting, strconv.FormatInt(userID, 10))
	}
	// The greeting sits under the number the user no longer has.
	n := 0
	if des, err := os.ReadDir(v.cfg.Dir); err == nil {
		for _, d := range des[:min(len(des), sweepScan)] {
			p := filepath.Join(v.cfg.Dir, d.Name(), "greeting.wav")
			if _, err := os.Stat(p); err != nil || !v.greetingOrphan(ctx, d.Name()) {
				continue
			}
			if err := os.Remove(p); err == nil {
				n++
			}
			boxes[filepath.Join(v.cfg.Dir, d.Name())] = true
		}
	}
	for b := range boxes {
		_ = os.Remove(b) // only when empty
	}
	v.auditUser(ctx, Actor{Name: "system"}, "voicemail.purge", userID,
		strconv.Itoa(len(ms))+" messages, "+strconv.Itoa(n)+" greetings")
	return nil
}
