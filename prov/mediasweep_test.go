package prov_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
)

// TestMediaSweepOnClusterNodes: two nodes share the store, each keeps the
// recordings it wrote on its own disk. The other node's sweep must not
// take a row for one whose file is missing (it is on the first node's
// disk), while a file of its own that no row names is still removed; a
// single appliance's sweep removes the row.
func TestMediaSweepOnClusterNodes(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	dirA, dirB := t.TempDir(), t.TempDir()
	recsA, err := prov.NewRecordings(prov.RecordingsConfig{Dir: dirA}, f.st, nil, log, f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	recsB, err := prov.NewRecordings(prov.RecordingsConfig{Dir: dirB}, f.st, nil, log, f.clk.now)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := f.st.GetUser(ctx, "alice")
	name, path := recsA.NewFile(alice)
	if err := os.WriteFile(path, make([]byte, 100), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := recsA.Finished(ctx, prov.Recording{UserID: alice.ID, CallID: "c1", Peer: "1002", Start: f.clk.now(),
		Bytes: 100, File: name}); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(dirB, "20261101-000000-1-0000.wav")
	if err := os.WriteFile(stray, []byte("RIFF"), 0o640); err != nil {
		t.Fatal(err)
	}
	old := f.clk.now().Add(-2 * time.Hour)
	if err := os.Chtimes(stray, old, old); err != nil {
		t.Fatal(err)
	}
	listed := func() int {
		list, err := f.st.ListRecordings(ctx, alice.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}

	onB := prov.NewMediaSweeper(recsB, nil, 0, true, log, prometheus.NewRegistry())
	if err := onB.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 1 {
		t.Fatalf("node B's sweep left %d of alice's recordings, want 1 (its file is on node A)", n)
	}
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("node B's own file without a row: %v, want removed", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("node A's file: %v", err)
	}

	single := prov.NewMediaSweeper(recsB, nil, 0, false, log, prometheus.NewRegistry())
	if err := single.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if n := listed(); n != 0 {
		t.Fatalf("a single appliance's sweep left %d rows whose file is gone, want 0", n)
	}
}
