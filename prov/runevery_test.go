package prov

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestRunEvery: the sweepers' loop runs fn once per interval (none at the
// start), logs its errors, and returns when ctx ends.
func TestRunEvery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var logged strings.Builder
		logger := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &logged}, nil))
		ctx, cancel := context.WithCancel(context.Background())
		var calls atomic.Int32
		done := make(chan error)
		go func() {
			done <- runEvery(ctx, time.Minute, logger, "test sweep", func(context.Context) error {
				if calls.Add(1) == 2 {
					return errors.New("boom")
				}
				return nil
			})
		}()
		synctest.Wait()
		if n := calls.Load(); n != 0 {
			t.Fatalf("%d calls before the first interval", n)
		}
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		if n := calls.Load(); n != 3 {
			t.Fatalf("%d calls after three intervals", n)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(logged.String(), `msg="test sweep failed" err=boom`) {
			t.Fatalf("log: %s", logged.String())
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
