package portal

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestButtonsCannotWriteTheDirectory performs issue 21's finding: a user
// whose personal-directory rights are No or Read rewrote the directory
// through the Buttons menu (speed dials are directory contacts). Now that
// form changes only the line keys, and one that carries contacts anyway
// is refused.
func TestButtonsCannotWriteTheDirectory(t *testing.T) {
	we := newWebEnv(t)
	u := we.portalUser("alice", "1001") // her directory: Bob Builder 2002
	b := we.browser()
	b.mustSignIn("alice", "password-alice", "/me/")
	ctx := context.Background()
	bobOnly := func() bool {
		cs, _ := we.st.ListContacts(ctx, u.ID)
		return len(cs) == 1 && cs[0].FirstName == "Bob" && cs[0].SpeedDial == 0
	}
	for _, a := range []prov.Access{prov.AccessNone, prov.AccessRead} {
		we.setAccess("alice", menuDirectory, a)
		page := b.get("/me/buttons")
		if page.code != 200 || strings.Contains(page.body, `name="first_name_0"`) {
			t.Fatalf("%s: buttons page %d offers directory fields", a, page.code)
		}
		if got := strings.Contains(page.body, "Builder"); got != (a == prov.AccessRead) {
			t.Fatalf("%s: directory shown on the buttons page = %v", a, got)
		}
		// The attack: post speed dials (a rewritten directory) directly.
		post := b.submit("/me/", "/me/buttons", url.Values{"rows": {"2"}, "first_name_0": {"Mallory"},
			"number_0": {"900"}, "speed_dial_0": {"1"}, "line_keys": {"1"}})
		if post.code != http.StatusForbidden || !bobOnly() {
			t.Fatalf("%s: speed dials posted: %d, directory kept = %v", a, post.code, bobOnly())
		}
		// Line keys alone are still the user's to change.
		if post := b.submit("/me/", "/me/buttons", url.Values{"line_keys": {"2"}}); post.code != http.StatusSeeOther || !bobOnly() {
			t.Fatalf("%s: line keys: %d %s", a, post.code, excerpt(post.body))
		}
		if got, _ := we.st.GetUser(ctx, "alice"); prov.LineKeys(got) != 2 {
			t.Fatalf("%s: line keys not saved: %d", a, prov.LineKeys(got))
		}
	}
}
