package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestCallControlRights: the admin's "Allowed call operations" gates the
// Calls page and /api/v1/me/calls like a menu (403 without it, the menu
// entry hidden); with it, a dial without a running SIP proxy is refused
// cleanly (503), a write without the CSRF header is 403, and an admin
// session is not a user's.
func TestCallControlRights(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	we.portalUser("alice", "1001")
	u := we.browser()
	u.mustSignIn("alice", "password-alice", "/me/")
	if p := u.get("/me/call-control"); p.code != http.StatusForbidden {
		t.Fatalf("Calls page without the right = %d", p.code)
	}
	if p := u.get("/api/v1/me/calls"); p.code != http.StatusForbidden {
		t.Fatalf("GET /api/v1/me/calls without the right = %d", p.code)
	}
	if p := u.get("/me/"); strings.Contains(p.body, `href="/me/call-control"`) {
		t.Error("the Calls menu entry shows without the right")
	}

	a := we.browser()
	a.mustSignIn(adminUser, adminPass, "/admin/")
	form := url.Values{"portal_enabled": {"on"}, "profile": {"write"}, "call_handling": {"write"}, "directory": {"write"},
		"buttons": {"write"}, "reporting": {"none"}, "call_operations": {"video"}}
	if p := a.submit("/admin/users/alice", "/admin/users/alice/access", form); p.code == http.StatusSeeOther {
		t.Fatal("an unknown call operations mode was accepted")
	}
	form.Set("call_operations", prov.CallOpsControl)
	if p := a.submit("/admin/users/alice", "/admin/users/alice/access", form); p.code != http.StatusSeeOther {
		t.Fatalf("setting Call Control = %d: %s", p.code, excerpt(p.body))
	}
	got, _ := we.st.GetUser(context.Background(), "alice")
	if got.Portal.CallOperations != prov.CallOpsControl {
		t.Fatalf("call_operations = %q", got.Portal.CallOperations)
	}
	if p := a.get("/api/v1/me/calls"); p.code != http.StatusForbidden {
		t.Errorf("an admin session on /api/v1/me/calls = %d, want 403", p.code)
	}

	p := u.get("/me/call-control")
	if p.code != http.StatusOK || !strings.Contains(p.body, `id="f-target"`) || !strings.Contains(p.body, `href="/me/call-control"`) {
		t.Fatalf("Calls page = %d: %s", p.code, excerpt(p.body))
	}
	if p := u.get("/api/v1/me/calls"); p.code != http.StatusOK || !strings.Contains(p.body, `"calls":[]`) {
		t.Fatalf("GET /api/v1/me/calls = %d %s", p.code, p.body)
	}
	req, _ := http.NewRequest("POST", u.base+"/api/v1/me/calls", strings.NewReader(`{"target":"1002"}`))
	res, err := u.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if r := u.read(res); r.code != http.StatusForbidden {
		t.Errorf("POST without X-CSRF-Token = %d", r.code)
	}
	if p := u.submit("/me/call-control", "/me/call-control", url.Values{"target": {"1002"}}); p.code != http.StatusServiceUnavailable {
		t.Errorf("dial without a SIP proxy = %d: %s", p.code, excerpt(p.body))
	}
}
