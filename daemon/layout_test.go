package daemon

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// readRooms parses the README's Architecture table (between the rooms
// markers): each room and the hotdesk packages it may import in production
// code (tests may use real implementations of other rooms). A room's own
// sub-packages (internal/, bench/cmd) stay inside it.
func readRooms(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "<!-- rooms: the layout test parses this table -->")
	table, _, ok2 := strings.Cut(rest, "<!-- /rooms -->")
	if !ok || !ok2 {
		t.Fatal("README.md: Architecture rooms table markers missing")
	}
	rooms := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		cols := strings.Split(line, "|")
		if len(cols) < 5 || !strings.HasPrefix(strings.TrimSpace(cols[1]), "`hotdesk") {
			continue
		}
		room := strings.Trim(strings.TrimSpace(cols[1]), "`")
		allowed := []string{}
		switch may := strings.TrimSpace(cols[3]); may {
		case "anything":
			allowed = append(allowed, "*")
		case "nothing":
		default:
			for _, imp := range strings.Split(may, ",") {
				allowed = append(allowed, strings.Trim(strings.TrimSpace(imp), "`"))
			}
		}
		rooms[room] = allowed
	}
	if len(rooms) < 10 {
		t.Fatalf("README.md rooms table: only %d rooms parsed", len(rooms))
	}
	return rooms
}

// roomOf maps a package to the row of the table that governs it.
func roomOf(allowedImports map[string][]string, pkg string) string {
	best := ""
	for room := range allowedImports {
		if (pkg == room || strings.HasPrefix(pkg, room+"/")) && len(room) > len(best) {
			best = room
		}
	}
	return best
}

func TestImportLayout(t *testing.T) {
	allowedImports := readRooms(t)
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "hotdesk/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := f[0]
		room := roomOf(allowedImports, pkg)
		if room == "" {
			t.Errorf("package %s is outside every room of README.md's Architecture table", pkg)
			continue
		}
		for _, imp := range f[1:] {
			if !strings.HasPrefix(imp, "hotdesk/") || imp == pkg {
				continue
			}
			if roomOf(allowedImports, imp) == room { // inside the same room (own sub-packages)
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
			if room == "hotdesk/daemon" && roomOf(allowedImports, imp) == "hotdesk/cmd/hotdeskd" {
				ok = false
			}
			if !ok {
				t.Errorf("%s imports %s: not allowed by README.md's Architecture table (room %s may import %v)", pkg, imp, room, allowedImports[room])
			}
		}
	}
}
