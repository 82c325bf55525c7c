package daemon

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
)

// MemoryLimitAuto and MemoryLimitNone are the special values of
// memory_limit_mb; any other value is the limit in MiB.
const (
	MemoryLimitAuto = 0
	MemoryLimitNone = -1
)

// cgroupShare is the part of the service's cgroup memory limit given to
// the Go runtime: the rest is SQLite's page caches, thread stacks and
// slack before the kernel's OOM killer.
const cgroupShare = 0.9

// ApplyMemoryLimit sets the runtime's soft memory limit unless GOMEMLIMIT
// set one already: cfg.MemoryLimitMB MiB, or for MemoryLimitAuto 90 % of
// the cgroup's memory.max/memory.high (systemd's MemoryMax=/MemoryHigh=),
// none when the service has no such limit. Near the limit the runtime
// collects sooner and returns freed memory at once instead of growing
// into the OOM killer; it never fails an allocation. It is process-wide,
// so the binary calls it, not Run (tests run several daemons in one
// process).
func ApplyMemoryLimit(cfg Config, logger *slog.Logger) {
	if env := os.Getenv("GOMEMLIMIT"); env != "" {
		logger.Info("memory limit from GOMEMLIMIT", "GOMEMLIMIT", env)
		return
	}
	limit, from := memoryLimit(cfg.MemoryLimitMB, "/proc/self/cgroup", "/sys/fs/cgroup")
	if limit <= 0 {
		return
	}
	debug.SetMemoryLimit(limit)
	logger.Info("memory limit", "mib", limit>>20, "from", from)
}

// memoryLimit is the limit in bytes for setting (0: none) and where it
// came from.
func memoryLimit(setting int, procCgroup, cgroupRoot string) (int64, string) {
	switch {
	case setting > 0:
		return int64(setting) << 20, "memory_limit_mb"
	case setting == MemoryLimitAuto:
		if n, ok := cgroupMemoryLimit(procCgroup, cgroupRoot); ok {
			return int64(float64(n) * cgroupShare), "cgroup"
		}
	}
	return 0, ""
}

// cgroupMemoryLimit reads the cgroup v2 memory.max and memory.high of
// this process's cgroup and of every parent up to the root (a limit on a
// slice binds the services in it) and returns the lowest one set.
func cgroupMemoryLimit(procCgroup, cgroupRoot string) (int64, bool) {
	b, err := os.ReadFile(procCgroup)
	if err != nil {
		return 0, false
	}
	var rel string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		// cgroup v2 is the single "0::/path" line.
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			rel = p
		}
	}
	if rel == "" {
		return 0, false
	}
	best, found := int64(0), false
	for p := filepath.Clean("/" + rel); ; p = filepath.Dir(p) {
		for _, name := range []string{"memory.max", "memory.high"} {
			n, err := readCgroupBytes(filepath.Join(cgroupRoot, p, name))
			if err != nil || n <= 0 {
				continue
			}
			if !found || n < best {
				best, found = n, true
			}
		}
		if p == "/" {
			return best, found
		}
	}
}

// readCgroupBytes parses a cgroup memory file: a byte count, or "max"
// (no limit, returned as 0).
func readCgroupBytes(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	return n, nil
}
