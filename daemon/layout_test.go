package daemon

import (
	"os/exec"
	"strings"
	"testing"
)

// allowedImports is DESIGN.md's table for production code (tests may use
// real implementations of other rooms): which hotdesk packages each room may
// import. A room's own sub-packages (internal/, bench/cmd) stay inside it.
var allowedImports = map[string][]string{
	"hotdesk/cmd/hotdeskd":     {"hotdesk/daemon"},
	"hotdesk/cmd/hotdesk-load": {},
	"hotdesk/daemon":           {"*"},
	"hotdesk/prov":             {},
	"hotdesk/prov/store":       {"hotdesk/prov"},
	"hotdesk/prov/render":      {"hotdesk/prov"},
	"hotdesk/prov/portal":      {"hotdesk/prov"},
	"hotdesk/prov/provhttp":    {"hotdesk/prov", "hotdesk/prov/render"},
	"hotdesk/sip":              {},
	"hotdesk/tftp":             {},
	"hotdesk/dhcp":             {},
	"hotdesk/prov/mail":        {},
}

// roomOf maps a package to the row of the table that governs it.
func roomOf(pkg string) string {
	best := ""
	for room := range allowedImports {
		if (pkg == room || strings.HasPrefix(pkg, room+"/")) && len(room) > len(best) {
			best = room
		}
	}
	return best
}

func TestImportLayout(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "hotdesk/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := f[0]
		room := roomOf(pkg)
		if room == "" {
			t.Errorf("package %s is outside every room of DESIGN.md", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, "hotdesk/") || imp == pkg {
				continue
			}
			if roomOf(imp) == room { // inside the same room (own sub-packages)
				continue
			}
			ok := false
			for _, a := range allowedImports[room] {
				ok = ok || a == "*" || a == imp || (strings.HasSuffix(a, "/...") && strings.HasPrefix(imp, strings.TrimSuffix(a, "...")))
			}
			// Benchmark harnesses stand in for the daemon's wiring.
			if strings.Contains(pkg, "/bench/") && !strings.HasPrefix(imp, "hotdesk/daemon") && !strings.HasPrefix(imp, "hotdesk/cmd") {
				ok = true
			}
			if room == "hotdesk/daemon" && roomOf(imp) == "hotdesk/cmd/hotdeskd" {
				ok = false
			}
			if !ok {
				t.Errorf("%s imports %s: not allowed by DESIGN.md (room %s may import %v)", pkg, imp, room, allowedImports[room])
			}
		}
	}
}
