package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestCallModePick: the user picks a call mode on Home among those the
// admin allows; a mode beyond them is refused and nothing changes; the
// Softphone page and its credential API follow the pick (403 once she
// picked Call Control only).
func TestCallModePick(t *testing.T) {
	we := newWebEnv(t)
	u := we.portalUser("alice", "1001")
	u.Portal.CallOperations = prov.CallOpsSoftphone
	if err := we.st.UpdateUser(context.Background(), &u); err != nil {
		t.Fatal(err)
	}
	b := we.browser()
	b.mustSignIn("alice", "password-alice", "/me/")
	home := b.get("/me/")
	if !strings.Contains(home.body, `id="f-call_mode"`) || strings.Contains(home.body, `value="call_control"`) {
		t.Fatalf("the picker should offer None and Softphone only: %s", excerpt(home.body))
	}
	if p := b.get("/me/softphone"); p.code != http.StatusOK || !strings.Contains(p.body, `id="softphone"`) ||
		!strings.Contains(p.hdr.Get("Content-Security-Policy"), "connect-src 'self' ws: wss:") {
		t.Fatalf("Softphone page = %d, CSP %q", p.code, p.hdr.Get("Content-Security-Policy"))
	}
	if p := b.submit("/me/", "/me/call-mode", url.Values{"call_mode": {prov.CallOpsControl}}); p.code != http.StatusSeeOther {
		t.Fatalf("pick beyond the admin's = %d", p.code)
	}
	if got, _ := we.st.GetUser(context.Background(), "alice"); got.Portal.CallMode != "" {
		t.Fatalf("a refused pick was saved: %q", got.Portal.CallMode)
	}
	if p := b.submit("/me/", "/me/call-mode", url.Values{"call_mode": {prov.CallOpsNone}}); p.code != http.StatusSeeOther {
		t.Fatalf("pick None = %d", p.code)
	}
	if got, _ := we.st.GetUser(context.Background(), "alice"); got.Portal.CallMode != prov.CallOpsNone {
		t.Fatalf("call_mode = %q, want none", got.Portal.CallMode)
	}
	if p := b.get("/me/softphone"); p.code != http.StatusForbidden {
		t.Fatalf("Softphone page after picking None = %d, want 403", p.code)
	}
}
