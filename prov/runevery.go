package prov

import (
	"context"
	"log/slog"
	"time"
)

// runEvery calls fn every interval until ctx ends, logging its errors
// (those of a shutdown excepted). The background sweepers share it.
func runEvery(ctx context.Context, every time.Duration, logger *slog.Logger, what string, fn func(context.Context) error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := fn(ctx); err != nil && ctx.Err() == nil {
				logger.Error(what+" failed", "err", err)
			}
		}
	}
}
