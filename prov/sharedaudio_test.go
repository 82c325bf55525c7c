package prov_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
)

// damagedStore loses chunk 1 of the object named bad.
type damagedStore struct {
	prov.Store
	bad string
}

func (d damagedStore) MediaChunk(ctx context.Context, kind, name string, seq int) ([]byte, error) {
	if name == d.bad && seq == 1 {
		return nil, fmt.Errorf("store: chunk: %w", prov.ErrNotFound)
	}
	return d.Store.MediaChunk(ctx, kind, name, seq)
}

func readAll(t *testing.T, f *os.File) []byte {
	t.Helper()
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSharedAudioAcrossNodes: two nodes (their own directories) share a
// store with shared audio on. A message deposited on A opens on B; one
// whose stored chunks are damaged fails on B with ErrMediaDamaged,
// counted, and leaves the other message playable. A greeting replaced on
// A is refreshed on B, deleted on B is gone on A. A recording finished
// on A opens on B; one pushed out by the budget leaves the store. The
// sweep removes stored audio that no row (or no user) names.
func TestSharedAudioAcrossNodes(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	dirA, dirB := t.TempDir(), t.TempDir()
	alice, _ := f.st.GetUser(ctx, "alice")
	big := filepath.Join(dirA, "2001", "big.wav")
	promB := prometheus.NewRegistry()
	stB := damagedStore{Store: f.st, bad: "2001/big.wav"}
	sharedA := prov.NewSharedAudio(f.st, log, prometheus.NewRegistry(), f.clk.now)
	sharedB := prov.NewSharedAudio(stB, log, promB, f.clk.now)
	vA := prov.NewVoicemails(f.st, f.creds, prov.VoicemailConfig{Dir: dirA, Shared: sharedA}, nil, log,
		prometheus.NewRegistry(), f.clk.now)
	vB := prov.NewVoicemails(stB, f.creds, prov.VoicemailConfig{Dir: dirB, Shared: sharedB}, nil, log,
		prometheus.NewRegistry(), f.clk.now)

	deposit := func(path string, size int) []byte {
		t.Helper()
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(i * 13)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := vA.Deposit(ctx, "2001", "2002", path, time.Second, int64(size)); err != nil {
			t.Fatal(err)
		}
		return b
	}
	small := deposit(filepath.Join(dirA, "2001", "small.wav"), 1000)
	deposit(big, 2*prov.MediaChunkBytes+10)
	msgs, err := vA.List(ctx, alice.ID)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("alice's messages: %v, %v", msgs, err)
	}
	bigID, smallID := msgs[0].ID, msgs[1].ID // newest first

	fl, _, err := vB.Open(ctx, alice.ID, smallID, prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatalf("node B opening a message recorded on A: %v", err)
	}
	if got := readAll(t, fl); !bytes.Equal(got, small) {
		t.Fatal("node B served other bytes than A recorded")
	}
	if _, _, err := vB.Open(ctx, alice.ID, bigID, prov.Actor{Name: "user:alice"}); !errors.Is(err, prov.ErrMediaDamaged) {
		t.Fatalf("opening a message whose stored chunk is missing = %v, want ErrMediaDamaged", err)
	}
	if n := sharedFetches(t, promB, "voicemail", "damaged"); n != 1 {
		t.Fatalf("damaged fetches counted %v, want 1", n)
	}
	ents, _ := os.ReadDir(filepath.Join(dirB, "2001"))
	if len(ents) != 1 || ents[0].Name() != "small.wav" {
		t.Fatalf("node B's mailbox directory after a damaged copy: %v, want small.wav alone", ents)
	}
	// The phone's list still has both; the damaged one has no file (the
	// player skips it), the other plays.
	pl, err := vB.Messages(ctx, "2001")
	if err != nil || len(pl) != 2 {
		t.Fatalf("node B's playback list: %v, %v", pl, err)
	}
	for _, m := range pl {
		_, err := os.Stat(m.Path)
		if ok := err == nil; ok != (m.ID == smallID) || !filepath.IsAbs(m.Path) || filepath.Dir(filepath.Dir(m.Path)) != dirB {
			t.Fatalf("message %d plays from %s (%v)", m.ID, m.Path, err)
		}
	}

	// A greeting replaced on A (same size, same clock) is refreshed on B.
	greet := func(v *prov.Voicemails, fill byte) {
		t.Helper()
		b := bytes.Repeat([]byte{fill}, 200)
		if err := v.SetGreeting(ctx, alice.ID, b, prov.Actor{Name: "user:alice"}); err != nil {
			t.Fatal(err)
		}
	}
	heard := func(v *prov.Voicemails) []byte {
		t.Helper()
		p, err := v.Greeting(ctx, "2001")
		if err != nil {
			t.Fatal(err)
		}
		if p == "" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	greet(vA, 1)
	if b := heard(vB); len(b) != 200 || b[0] != 1 {
		t.Fatalf("node B's greeting: %d bytes, want A's", len(b))
	}
	greet(vA, 2)
	if b := heard(vB); len(b) != 200 || b[0] != 2 {
		t.Fatal("node B kept the greeting A replaced")
	}
	if b := heard(vA); len(b) != 200 || b[0] != 2 {
		t.Fatal("node A's own greeting changed")
	}
	if err := vB.DeleteGreeting(ctx, alice.ID, prov.Actor{Name: "user:alice"}); err != nil {
		t.Fatal(err)
	}
	if b := heard(vA); b != nil {
		t.Fatal("node A still plays the greeting deleted on B")
	}
	if _, err := os.Stat(filepath.Join(dirA, "2001", "greeting.wav")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node A's stale greeting file: %v", err)
	}
	if err := vA.DeleteGreeting(ctx, alice.ID, prov.Actor{Name: "user:alice"}); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("deleting a greeting deleted elsewhere = %v, want ErrNotFound", err)
	}

	// Deleting a message on B removes its stored audio.
	if err := vB.DeleteFor(ctx, alice.ID, smallID, prov.Actor{Name: "user:alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetMedia(ctx, prov.MediaVoicemail, "2001/small.wav"); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("stored audio of a deleted message: %v", err)
	}

	// Recordings: finished on A, replayed on B; the budget's victim leaves
	// the store.
	rA, err := prov.NewRecordings(prov.RecordingsConfig{Dir: t.TempDir(), MaxBytes: 1500, Shared: sharedA}, f.st, nil, log, f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	rB, err := prov.NewRecordings(prov.RecordingsConfig{Dir: t.TempDir(), Shared: sharedB}, stB, nil, log, f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	record := func(call string) (prov.Recording, []byte) {
		t.Helper()
		name, path := rA.NewFile(alice)
		b := bytes.Repeat([]byte(call), 200)
		if err := os.WriteFile(path, b, 0o640); err != nil {
			t.Fatal(err)
		}
		rec := prov.Recording{UserID: alice.ID, CallID: call, Start: f.clk.now(), Bytes: int64(len(b)), File: name}
		if err := rA.Finished(ctx, rec); err != nil {
			t.Fatal(err)
		}
		f.clk.add(time.Second)
		return rec, b
	}
	first, firstAudio := record("c1-a")
	list, err := f.st.ListRecordings(ctx, alice.ID, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("recordings: %v, %v", list, err)
	}
	reader := alice
	reader.Portal.Recordings = prov.AccessRead
	_, rf, err := rB.Open(ctx, reader, list[0].ID, false, prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatalf("node B replaying a recording made on A: %v", err)
	}
	if got := readAll(t, rf); !bytes.Equal(got, firstAudio) {
		t.Fatal("node B replayed other bytes than A recorded")
	}
	record("c2-b") // 800 bytes more: over the 1500-byte budget, the first goes
	if _, err := f.st.GetMedia(ctx, prov.MediaRecording, first.File); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("stored audio of a recording the budget removed: %v", err)
	}

	// The sweep: stored audio without a row (or a user) past the grace
	// period goes; the rest stays.
	old := f.clk.now().Add(-time.Hour)
	for _, o := range []struct{ kind, name string }{{prov.MediaRecording, "lost.wav"}, {prov.MediaVoicemail, "2001/lost.wav"},
		{prov.MediaGreeting, "999999"}, {prov.MediaGreeting, fmt.Sprint(alice.ID)}} {
		if _, err := f.st.PutMedia(ctx, o.kind, o.name, bytes.NewReader([]byte("RIFF")), old); err != nil {
			t.Fatal(err)
		}
	}
	promS := prometheus.NewRegistry()
	if err := prov.NewMediaSweeper(rB, vB, 0, true, log, promS).Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		kind, name string
		kept       bool
	}{{prov.MediaRecording, "lost.wav", false}, {prov.MediaVoicemail, "2001/lost.wav", false},
		{prov.MediaGreeting, "999999", false}, {prov.MediaGreeting, fmt.Sprint(alice.ID), true},
		{prov.MediaVoicemail, "2001/big.wav", true}} {
		_, err := f.st.GetMedia(ctx, o.kind, o.name)
		if (err == nil) != o.kept {
			t.Errorf("%s %s after the sweep: %v, kept %v", o.kind, o.name, err, o.kept)
		}
	}
	if list, err := f.st.ListMedia(ctx, prov.MediaRecording, f.clk.now().Add(time.Hour), 10); err != nil || len(list) != 1 {
		t.Errorf("stored recordings after the sweep: %v, %v; want the one with a row", list, err)
	}
}

// sharedFetches is hotdesk_media_shared_fetches_total{kind, result}.
func sharedFetches(t *testing.T, reg *prometheus.Registry, kind, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hotdesk_media_shared_fetches_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["kind"] == kind && l["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
