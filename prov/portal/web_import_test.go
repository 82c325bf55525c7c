package portal

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestWebImportProgress: the import page's script posts with ?progress=1
// and gets NDJSON over real HTTP: progress lines ending with every row
// stored, then the page it would have got, with the report.
func TestWebImportProgress(t *testing.T) {
	we := newWebEnv(t)
	b := we.browser()
	b.mustSignIn(adminUser, adminPass, "/admin/")
	var csv strings.Builder
	csv.WriteString("username,first_name,last_name,email,password\n")
	for i := range 5 {
		fmt.Fprintf(&csv, "w%d,W,X,w%d@example.test,secret-%d\n", i, i, i)
	}
	tok := b.csrf("/admin/users/import")
	p := b.post("/admin/users/import?progress=1", url.Values{"csrf": {tok}, "csv": {csv.String()}})
	if p.code != 200 || p.hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("%d %s: %s", p.code, p.hdr.Get("Content-Type"), excerpt(p.body))
	}
	lines := strings.Split(strings.TrimSpace(p.body), "\n")
	var last prov.ImportProgress
	for _, l := range lines[:len(lines)-1] {
		var pl struct{ Progress *prov.ImportProgress }
		if err := json.Unmarshal([]byte(l), &pl); err != nil || pl.Progress == nil {
			t.Fatalf("not a progress line: %s", l)
		}
		last = *pl.Progress
	}
	if last != (prov.ImportProgress{Phase: prov.ImportStoring, Done: 5, Total: 5}) {
		t.Fatalf("last progress %+v (%d lines)", last, len(lines))
	}
	var end struct {
		Status int
		HTML   string
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &end); err != nil || end.Status != 200 ||
		!strings.Contains(end.HTML, `id="report-summary">5 rows: 5 created, 0 refused.`) {
		t.Fatalf("last line: %v %d %s", err, end.Status, excerpt(end.HTML))
	}
	if n, _ := we.st.CountUsers(t.Context()); n != 5 {
		t.Fatalf("%d users", n)
	}
}
