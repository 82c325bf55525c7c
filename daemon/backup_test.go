package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestBackupWhileServingRestoresAcknowledged takes a backup from outside
// the daemon while it writes, restores it elsewhere and finds every write
// acknowledged before the backup began.
func TestBackupWhileServingRestoresAcknowledged(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	var a *app
	startDaemon(t, cfg, Options{onBuilt: func(x *app) { a = x }})
	ctx := context.Background()
	site := prov.Site{Name: "b", Domain: "b.test"}
	if err := a.store.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	var acked atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e := &prov.AuditEvent{At: time.Now(), Actor: "load", Action: "write", Object: fmt.Sprint(i)}
			if err := a.store.AddAudit(ctx, e); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			acked.Store(int64(i + 1))
		}
	})
	// The backup runs while writes are being made, some already acknowledged.
	if !eventually(func() bool { return acked.Load() >= 20 }) {
		t.Fatal("no writes acknowledged")
	}
	before := acked.Load()
	backup := filepath.Join(t.TempDir(), "hotdesk.backup")
	if err := Backup(ctx, cfg, backup, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("backup while serving: %v", err)
	}
	close(stop)
	wg.Wait()
	if before == 0 {
		t.Fatal("no writes acknowledged before the backup")
	}

	restored := testConfig(t, t.TempDir())
	if err := Restore(ctx, restored, backup); err != nil {
		t.Fatalf("restore: %v", err)
	}
	st, closeStore, err := openStore(ctx, restored, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	evs, err := st.ListAudit(ctx, prov.AuditQuery{Actor: "load"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Object] = true
	}
	for i := range before {
		if !seen[fmt.Sprint(i)] {
			t.Fatalf("write %d acknowledged before the backup is missing after restore (%d restored)", i, len(evs))
		}
	}
	// Restoring over a running daemon's data directory is refused.
	if err := Restore(ctx, cfg, backup); err == nil {
		t.Fatal("restore into the live data directory was allowed")
	}
}
