package daemon

import (
	"log/slog"
	"os"
	"runtime/debug"
)

// DefaultMemoryLimitMB is the soft memory limit of the default config:
// ten thousand handsets with their users and sessions live in ~40 MB of
// heap, so 128 MiB leaves room for a storm's garbage and keeps the RSS
// under 150 MB.
const DefaultMemoryLimitMB = 128

// ApplyMemoryLimit sets the runtime's soft memory limit from cfg unless
// GOMEMLIMIT set one already. It is process-wide, so the binary calls it,
// not Run (tests run several daemons in one process). A soft limit never
// fails an allocation: above it the runtime only collects harder, using
// at most about half the CPU for it.
func ApplyMemoryLimit(cfg Config, logger *slog.Logger) {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		logger.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", env)
		return
	}
	if cfg.MemoryLimitMB <= 0 {
		return
	}
	debug.SetMemoryLimit(int64(cfg.MemoryLimitMB) << 20)
	logger.Debug("memory limit", "mb", cfg.MemoryLimitMB)
}
