package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ErrMediaDamaged is stored audio whose chunks do not add up to its header
// (a chunk missing or of the wrong size).
var ErrMediaDamaged = errors.New("stored audio damaged")

// Kinds of audio kept in the store.
const (
	MediaVoicemail = "voicemail"
	MediaGreeting  = "greeting"
	MediaRecording = "recording"
)

// SharedAudio keeps voicemail messages, greetings and recordings in the
// store as well as in the recording node's files, for nodes that share a
// store: the store is what every node reaches, so a message recorded on
// one plays through any other, and while its node is down. A node reads
// its own file when it has one and otherwise copies the audio from the
// store into its data dir (a chunk at a time) and serves that copy;
// messages and recordings never change, so a copy never goes stale.
// Greetings do change: their copy is checked against the stored header.
// One node on SQLite has none (nil): its files are all there is.
type SharedAudio struct {
	store   Store
	logger  *slog.Logger
	now     func() time.Time
	writes  *prometheus.CounterVec
	fetches *prometheus.CounterVec
}

// NewSharedAudio returns the store-backed audio.
func NewSharedAudio(st Store, logger *slog.Logger, reg prometheus.Registerer, now func() time.Time) *SharedAudio {
	f := promauto.With(reg)
	return &SharedAudio{store: st, logger: logger.With("component", "shared-audio"), now: now,
		writes: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_media_shared_writes_total",
			Help: "Voicemail messages, greetings and recordings written to the shared store, by kind and result (ok, failed)."},
			[]string{"kind", "result"}),
		fetches: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_media_shared_fetches_total",
			Help: "Audio this node had no file for, copied from the shared store, by kind and result (ok, missing, damaged, failed)."},
			[]string{"kind", "result"}),
	}
}

// put stores the file at path under (kind, name), stamped at.
func (a *SharedAudio) put(ctx context.Context, kind, name, path string, at time.Time) (MediaObject, error) {
	f, err := os.Open(path)
	if err != nil {
		a.writes.WithLabelValues(kind, "failed").Inc()
		return MediaObject{}, fmt.Errorf("shared audio %s %s: %w", kind, name, err)
	}
	defer f.Close()
	m, err := a.store.PutMedia(ctx, kind, name, f, at)
	if err != nil {
		a.writes.WithLabelValues(kind, "failed").Inc()
		return MediaObject{}, fmt.Errorf("shared audio %s %s: %w", kind, name, err)
	}
	a.writes.WithLabelValues(kind, "ok").Inc()
	return m, nil
}

// fetch copies stored audio to path through a temporary file beside it,
// so a reader sees the whole file or none; ErrNotFound when the store has
// none, ErrMediaDamaged when its chunks are wrong. Its mtime is the
// object's creation (greetings compare it).
func (a *SharedAudio) fetch(ctx context.Context, kind, name, path string) (err error) {
	defer func() {
		result := "ok"
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound):
			result = "missing"
		case errors.Is(err, ErrMediaDamaged):
			result = "damaged"
			a.logger.Error("stored audio damaged", "kind", kind, "name", name, "err", err)
		default:
			result = "failed"
		}
		a.fetches.WithLabelValues(kind, result).Inc()
	}()
	m, err := a.store.GetMedia(ctx, kind, name)
	if err != nil {
		return fmt.Errorf("shared audio %s %s: %w", kind, name, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("shared audio: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "fetch-*.tmp")
	if err != nil {
		return fmt.Errorf("shared audio: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var size int64
	for seq := range m.Chunks { // bounded by the header
		b, err := a.store.MediaChunk(ctx, kind, name, seq)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("shared audio %s %s: chunk %d of %d missing: %w", kind, name, seq, m.Chunks, ErrMediaDamaged)
		}
		if err != nil {
			return fmt.Errorf("shared audio %s %s: %w", kind, name, err)
		}
		if len(b) > MediaChunkBytes || (seq < m.Chunks-1 && len(b) != MediaChunkBytes) {
			return fmt.Errorf("shared audio %s %s: chunk %d has %d bytes: %w", kind, name, seq, len(b), ErrMediaDamaged)
		}
		if _, err := tmp.Write(b); err != nil {
			return fmt.Errorf("shared audio: %w", err)
		}
		size += int64(len(b))
	}
	if size != m.Size {
		return fmt.Errorf("shared audio %s %s: %d bytes, header says %d: %w", kind, name, size, m.Size, ErrMediaDamaged)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("shared audio: %w", err)
	}
	if err := os.Chtimes(tmp.Name(), m.Created, m.Created); err != nil {
		return fmt.Errorf("shared audio: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("shared audio: %w", err)
	}
	return nil
}

// ensure makes sure path holds the audio: the file when present, else a
// copy from the store.
func (a *SharedAudio) ensure(ctx context.Context, kind, name, path string) error {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return a.fetch(ctx, kind, name, path)
}

// remove deletes stored audio; a failure is logged (the media sweep
// removes what no row names).
func (a *SharedAudio) remove(ctx context.Context, kind, name string) {
	if err := a.store.DeleteMedia(ctx, kind, name); err != nil {
		a.logger.Warn("stored audio not removed", "kind", kind, "name", name, "err", err)
	}
}

// orphans removes stored audio of kind created before the grace period
// that keep rejects.
func (a *SharedAudio) orphans(ctx context.Context, kind string, grace time.Duration, keep func(MediaObject) bool) (int, error) {
	objs, err := a.store.ListMedia(ctx, kind, a.now().Add(-grace), sweepScan)
	if err != nil {
		return 0, fmt.Errorf("shared audio sweep: %w", err)
	}
	n := 0
	for _, o := range objs {
		if keep(o) {
			continue
		}
		if err := a.store.DeleteMedia(ctx, kind, o.Name); err != nil {
			return n, fmt.Errorf("shared audio sweep: %w", err)
		}
		n++
	}
	return n, nil
}
