package daemon

import (
	"log/slog"
	"runtime"
)

// maxMaxProcs bounds max_procs: a typo, not a machine.
const maxMaxProcs = 1024

// ApplyMaxProcs sets GOMAXPROCS to cfg.MaxProcs when it is set. On a small
// appliance at moderate load one P avoids the runtime waking a second
// thread to look for work each time a packet readies a goroutine: the
// README's Performance section has the measured cost and what it trades
// (peak throughput on the other cores). Process-wide, so the binary calls
// it, not Run.
func ApplyMaxProcs(cfg Config, logger *slog.Logger) {
	if cfg.MaxProcs <= 0 {
		return
	}
	prev := runtime.GOMAXPROCS(cfg.MaxProcs)
	logger.Info("max procs", "procs", cfg.MaxProcs, "was", prev)
}
