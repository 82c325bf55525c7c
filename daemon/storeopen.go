package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// openStore opens the configured store; the returned func closes it.
func openStore(ctx context.Context, cfg Config, logger *slog.Logger) (prov.Store, func() error, error) {
	st, err := store.Open(ctx, cfg.Store, cfg.DataDir, logger, time.Now)
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	return st, st.Close, nil
}

// Backup writes a consistent copy of the store to path while a daemon may be serving.
func Backup(ctx context.Context, cfg Config, path string, logger *slog.Logger) error {
	return store.BackupDataDir(ctx, cfg.Store, cfg.DataDir, path, logger)
}

// Restore replaces the store with a backup; the daemon must be stopped.
func Restore(ctx context.Context, cfg Config, path string) error {
	return store.Restore(ctx, path, cfg.DataDir)
}

// CheckStore connects to the configured store without changing it
// (hotdeskd check-config) and describes it.
func CheckStore(ctx context.Context, cfg Config) (string, error) {
	return store.Check(ctx, cfg.Store)
}
