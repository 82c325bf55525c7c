package portal

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestButtonsCannotWriteTheDirectory performs what a security review found: a user
// whose personal-directory rights are No or Read rewrote the directory
// through the Buttons menu (speed dials are directory contacts). Now that
// form changes only the line keys, and one that carries contacts anyway
// is refused.
func TestButtonsCannotWriteTheDirectory(t *testing.T) {
	t.Parallel()
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

// TestButtonsFeatureKeys: on the Buttons page a user with Write rights
// programs feature keys (a colleague's BLF, DND, call forward); a BLF on
// a number no user has is refused on its row and saves nothing; with Read
// rights the keys are shown, not offered, and a post is refused; with No
// rights the page is gone.
func TestButtonsFeatureKeys(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	we.portalUser("alice", "1001")
	we.user("bob", "1002")
	b := we.browser()
	b.mustSignIn("alice", "password-alice", "/me/")
	ctx := context.Background()
	keysOf := func() []prov.FeatureKey {
		u, err := we.st.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return u.Keys
	}
	page := b.get("/me/buttons")
	if page.code != 200 || !strings.Contains(page.body, `id="feature-keys"`) || !strings.Contains(page.body, `name="key_kind_0"`) {
		t.Fatalf("buttons page %d without the feature key form:\n%s", page.code, excerpt(page.body))
	}
	form := url.Values{"line_keys": {"1"}, "key_rows": {"4"},
		"key_kind_0": {"blf"}, "key_target_0": {"1002"}, "key_label_0": {"Bob"},
		"key_kind_1": {"dnd"},
		"key_kind_2": {""}, // an empty row
		"key_kind_3": {"blf"}, "key_target_3": {"9999"}}
	post := b.submit("/me/", "/me/buttons", form)
	if post.code != http.StatusBadRequest || !strings.Contains(post.body, `id="key_target_3"`) ||
		!strings.Contains(post.body, "no user&#39;s number") || len(keysOf()) != 0 {
		t.Fatalf("BLF on an unknown number: %d, keys %v\n%s", post.code, keysOf(), excerpt(post.body))
	}
	form.Set("key_kind_3", "forward")
	form.Set("key_target_3", "+4930123")
	if post := b.submit("/me/", "/me/buttons", form); post.code != http.StatusSeeOther {
		t.Fatalf("save keys: %d %s", post.code, excerpt(post.body))
	}
	want := []prov.FeatureKey{{Kind: prov.KeyBLF, Target: "1002", Label: "Bob"}, {Kind: prov.KeyDND},
		{Kind: prov.KeyForward, Target: "+4930123"}}
	if got := keysOf(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("keys %v, want %v", got, want)
	}

	we.setAccess("alice", menuButtons, prov.AccessRead)
	page = b.get("/me/buttons")
	if page.code != 200 || strings.Contains(page.body, `name="key_kind_0"`) || !strings.Contains(page.body, "Busy lamp (BLF)") {
		t.Fatalf("read-only buttons page %d:\n%s", page.code, excerpt(page.body))
	}
	if post := b.submit("/me/", "/me/buttons", url.Values{"line_keys": {"1"}, "key_rows": {"0"}}); post.code != http.StatusForbidden ||
		len(keysOf()) != 3 {
		t.Fatalf("post with Read rights: %d, keys %v", post.code, keysOf())
	}
	we.setAccess("alice", menuButtons, prov.AccessNone)
	if page := b.get("/me/buttons"); page.code == 200 {
		t.Fatalf("buttons page with No rights: %d", page.code)
	}
}
