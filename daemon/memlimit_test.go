package daemon

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMemoryLimit: an explicit setting wins; automatic takes 90 % of the
// lower of the cgroup's memory.max and memory.high, and nothing when
// neither is set ("max") or the process is not in a cgroup v2.
func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name      string
		setting   int
		cgroup    string // /proc/self/cgroup content; "" = file missing
		max, high string // "" = file missing
		want      int64
		from      string
	}{
		{"explicit", 128, "0::/system.slice/hotdeskd.service\n", "1073741824", "", 128 * mib, "memory_limit_mb"},
		{"none", MemoryLimitNone, "0::/system.slice/hotdeskd.service\n", "1073741824", "", 0, ""},
		{"auto from MemoryMax", MemoryLimitAuto, "0::/system.slice/hotdeskd.service\n", "1073741824", "max", 1073741824 * 9 / 10, "cgroup"},
		{"auto takes the lower of max and high", MemoryLimitAuto, "0::/system.slice/hotdeskd.service\n", "1073741824", "536870912", 536870912 * 9 / 10, "cgroup"},
		{"auto without limits", MemoryLimitAuto, "0::/user.slice/session.scope\n", "max", "max", 0, ""},
		{"auto outside cgroup v2", MemoryLimitAuto, "12:memory:/foo\n", "1073741824", "", 0, ""},
		{"auto without /proc/self/cgroup", MemoryLimitAuto, "", "", "", 0, ""},
		{"garbage in memory.max", MemoryLimitAuto, "0::/x\n", "lots", "", 0, ""},
		{"auto from the parent slice", MemoryLimitAuto, "0::/system.slice/hotdeskd.service\n", "", "", 268435456 * 9 / 10, "cgroup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			proc := filepath.Join(dir, "cgroup")
			root := filepath.Join(dir, "sys")
			if tc.cgroup != "" {
				must(t, os.WriteFile(proc, []byte(tc.cgroup), 0o644))
			}
			// Whatever path the process is in, its files live under root.
			for _, rel := range []string{"system.slice/hotdeskd.service", "user.slice/session.scope", "foo", "x"} {
				d := filepath.Join(root, rel)
				must(t, os.MkdirAll(d, 0o755))
				if tc.max != "" {
					must(t, os.WriteFile(filepath.Join(d, "memory.max"), []byte(tc.max+"\n"), 0o644))
				}
				if tc.high != "" {
					must(t, os.WriteFile(filepath.Join(d, "memory.high"), []byte(tc.high+"\n"), 0o644))
				}
			}
			if tc.name == "auto from the parent slice" {
				must(t, os.WriteFile(filepath.Join(root, "system.slice", "memory.max"), []byte("268435456\n"), 0o644))
			}
			got, from := memoryLimit(tc.setting, proc, root)
			if got != tc.want || from != tc.from {
				t.Errorf("memoryLimit = %d (%q), want %d (%q)", got, from, tc.want, tc.from)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
