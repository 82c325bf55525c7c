package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
)

// Historical call reporting (seed 002): enabled per user (None by
// default), it shows a summary of the recent calls of all users by number.
func TestCallReportingPerUser(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	we.portalUser("alice", "1001")
	ctx := context.Background()
	now := we.clock.now()
	for _, c := range []prov.CallRecord{
		{CallID: "a", From: "1002", To: "1003", Result: 200, Start: now.Add(-time.Hour), Answer: now.Add(-time.Hour),
			End: now.Add(-time.Hour + 90*time.Second)},
		{CallID: "b", From: "1002", To: "1001", Result: 486, Start: now.Add(-30 * time.Minute), End: now.Add(-30 * time.Minute)},
		{CallID: "c", From: "1003", To: "911", Result: 200, Start: now.Add(-time.Minute), Answer: now.Add(-time.Minute),
			End: now},
		{CallID: "old", From: "1009", To: "1001", Result: 200, Start: now.Add(-30 * 24 * time.Hour),
			End: now.Add(-30 * 24 * time.Hour)},
	} {
		if err := we.st.AddCallRecord(ctx, &c); err != nil {
			t.Fatal(err)
		}
	}
	b := we.browser()
	b.mustSignIn("alice", "password-alice", "/me/")
	if p := b.get("/me/reporting"); p.code != http.StatusForbidden {
		t.Fatalf("reporting without the right: %d", p.code)
	}
	if p := b.get("/me/"); strings.Contains(p.body, "/me/reporting") {
		t.Fatal("the menu shows reporting without the right")
	}
	we.setAccess("alice", menuReporting, prov.AccessRead)
	p := b.get("/me/reporting")
	if p.code != http.StatusOK {
		t.Fatalf("reporting with Read: %d", p.code)
	}
	for _, want := range []string{"<td>1002</td><td>2</td><td>1</td><td>1</td><td>1m30s</td>",
		"<td>1003</td><td>1</td><td>1</td><td>0</td><td>1m0s</td>"} {
		if !strings.Contains(p.body, want) {
			t.Errorf("summary lacks %s:\n%s", want, p.body)
		}
	}
	if strings.Contains(p.body, "1009") {
		t.Error("a call older than the period is in the summary")
	}
}

// Seed 001's "Save" of the users list's visible columns: the admin's choice
// stays for the next visit and the next sign-in, until saved again.
func TestAdminSavesUserListColumns(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	we.portalUser("alice", "1001")
	b := we.browser()
	b.mustSignIn(adminUser, adminPass, "/admin/")
	heads := func(body string) string {
		i := strings.Index(body, `<table id="users"><thead><tr>`)
		j := strings.Index(body[i:], "</tr>")
		return body[i : i+j]
	}
	def := heads(b.get("/admin/users").body)
	if !strings.Contains(def, ">Status<") {
		t.Fatalf("default columns: %s", def)
	}
	if p := b.submit("/admin/users?col=username&col=email", "/admin/users/columns",
		url.Values{"col": {"username", "email", "nonsense"}}); p.code != http.StatusSeeOther {
		t.Fatalf("save columns: %d", p.code)
	}
	b2 := we.browser() // another visit, another sign-in
	b2.mustSignIn(adminUser, adminPass, "/admin/")
	got := heads(b2.get("/admin/users").body)
	if strings.Contains(got, ">Status<") || strings.Count(got, "<th scope=\"col\">") != 3 {
		t.Fatalf("saved columns not shown on the next visit: %s", got)
	}
	// Asking for other columns in the URL still shows those.
	if h := heads(b2.get("/admin/users?col=status").body); !strings.Contains(h, ">Status<") {
		t.Fatalf("explicit columns: %s", h)
	}
}

// The admin's page for a user's profile parameters (seed 000).
func TestAdminEditsUserProfileParams(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	we.portalUser("alice", "1001")
	b := we.browser()
	b.mustSignIn(adminUser, adminPass, "/admin/")
	p := b.submit("/admin/users/alice", "/admin/users/alice/params",
		url.Values{"params": {"reg.2.address=2002\r\n\r\nreg.2.label = Sales\r\n"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("save parameters: %d %s", p.code, excerpt(p.body))
	}
	u, err := we.st.GetUser(context.Background(), "alice")
	if err != nil || u.Params["reg.2.address"] != "2002" || u.Params["reg.2.label"] != "Sales" {
		t.Fatalf("stored %+v %v", u.Params, err)
	}
	if page := b.get("/admin/users/alice"); !strings.Contains(page.body, "reg.2.label=Sales") {
		t.Fatal("the page does not show the saved parameters")
	}
	p = b.submit("/admin/users/alice", "/admin/users/alice/params", url.Values{"params": {"rge.2.address=1"}})
	if p.code != http.StatusBadRequest || !strings.Contains(p.body, "rge.2.address is not a known phone parameter") {
		t.Fatalf("a typo: %d %s", p.code, excerpt(p.body))
	}
}

// Seed 001: the company directory, limited by each user's
// directory scope — everyone, or the colleagues of one site.
func TestCompanyDirectoryHonoursScope(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	ctx := context.Background()
	we.portalUser("alice", "1001")
	we.user("bob", "1002")
	branch := prov.Site{Name: "Branch"}
	if err := we.st.CreateSite(ctx, &branch); err != nil {
		t.Fatal(err)
	}
	var carol userView
	we.want(we.do(asAdmin, "POST", "/api/v1/users", map[string]any{"username": "carol", "first_name": "Carol",
		"last_name": "Branch", "email": "carol@example.test", "password": "password-carol", "numbers": []string{"2001"},
		"site_id": branch.ID}), 201).into(t, &carol)
	we.user("dave", "1004")
	we.want(we.do(asAdmin, "POST", "/api/v1/users/dave/disable", nil), 200)

	b := we.browser()
	b.mustSignIn("alice", "password-alice", "/me/")
	p := b.get("/me/company")
	if p.code != http.StatusOK || !strings.Contains(p.body, "1002") || !strings.Contains(p.body, "2001") ||
		strings.Contains(p.body, "1004") {
		t.Fatalf("scope all: %d %s", p.code, excerpt(p.body))
	}
	if p := b.get("/me/company?q=carol"); strings.Contains(p.body, "1002") || !strings.Contains(p.body, "2001") {
		t.Fatalf("search: %s", excerpt(p.body))
	}
	we.want(we.do(asAdmin, "PATCH", "/api/v1/users/alice", map[string]any{"directory_scope": "Branch"}), 200)
	p = b.get("/me/company")
	if strings.Contains(p.body, "1002") || !strings.Contains(p.body, "2001") || !strings.Contains(p.body, "Colleagues at Branch") {
		t.Fatalf("scope Branch: %s", excerpt(p.body))
	}
}
