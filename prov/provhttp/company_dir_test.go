package provhttp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestCompanyDirectoryOnThePhone: a logged-in user's directory file lists
// their contacts, then the colleagues their directory scope shows (not
// themselves, nobody without a number, no disabled user); the phone's
// upload of that very file does not turn the company entries into
// personal contacts (the round trip), while an entry the user gave a speed
// dial on the handset becomes theirs. A scope naming one site shows that
// site's colleagues only.
func TestCompanyDirectoryOnThePhone(t *testing.T) {
	t.Parallel()
	e := loggedIn(t)
	ctx := context.Background()
	hq, err := e.st.ListSites(ctx)
	if err != nil || len(hq) != 1 {
		t.Fatalf("sites %v %v", hq, err)
	}
	branch := prov.Site{Name: "Branch"}
	if err := e.st.CreateSite(ctx, &branch); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, first, last, number string
		site                      int64
		status                    prov.UserStatus
	}{
		{"bob", "Bob", "Baker", "1002", hq[0].ID, prov.StatusActive},
		{"carol", "Carol", "Cruz", "1003", branch.ID, prov.StatusActive},
		{"dave", "Dave", "Dunn", "", hq[0].ID, prov.StatusActive},      // no number
		{"erin", "Erin", "Eve", "1005", hq[0].ID, prov.StatusDisabled}, // disabled
	} {
		u := prov.User{Username: c.user, FirstName: c.first, LastName: c.last, Status: c.status,
			Kind: prov.KindPerson, SiteID: c.site}
		if err := e.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if c.number != "" {
			if err := e.st.AssignNumber(ctx, c.number, u.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	alice, err := e.st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	mine := []prov.Contact{{UserID: alice.ID, Position: 1, FirstName: "Zed", LastName: "Friend", Number: "+4930777", SpeedDial: 1}}
	if err := e.st.ReplaceContacts(ctx, alice.ID, mine); err != nil {
		t.Fatal(err)
	}
	e.events.Publish(ctx, prov.Event{Kind: prov.EventUserChanged, UserID: alice.ID, Reason: "test"})

	get := func() string {
		t.Helper()
		code, body := e.alice(t, "GET", "/alice-directory.xml", "")
		if code != 200 {
			t.Fatalf("GET alice-directory.xml = %d %s", code, body)
		}
		return body
	}
	first := get()
	golden(t, "directory_company.golden", first)

	// The phone uploads the file as it got it (after an edit elsewhere in
	// it): the company entries stay company entries.
	if code, body := e.alice(t, "PUT", "/alice-directory.xml", first); code != 204 {
		t.Fatalf("PUT = %d %s", code, body)
	}
	cs, err := e.st.ListContacts(ctx, alice.ID)
	if err != nil || len(cs) != 1 || cs[0].Number != "+4930777" {
		t.Fatalf("contacts after the round trip: %+v %v", cs, err)
	}
	if again := get(); again != first {
		t.Fatalf("directory after the round trip differs:\n%s\nwant\n%s", again, first)
	}

	// On the handset alice gives Bob speed dial 2: that item is hers now,
	// listed once.
	edited := strings.Replace(first, "<ct>1002</ct>", "<ct>1002</ct>\n      <sd>2</sd>", 1)
	if code, body := e.alice(t, "PUT", "/alice-directory.xml", edited); code != 204 {
		t.Fatalf("PUT edited = %d %s", code, body)
	}
	cs, err = e.st.ListContacts(ctx, alice.ID)
	if err != nil || len(cs) != 2 || cs[1].Number != "1002" || cs[1].SpeedDial != 2 {
		t.Fatalf("contacts after a speed dial on a company entry: %+v %v", cs, err)
	}
	if got := get(); strings.Count(got, "<ct>1002</ct>") != 1 || !strings.Contains(got, "<sd>2</sd>") {
		t.Fatalf("Bob not listed once, with his speed dial:\n%s", got)
	}

	// Scope: HQ only — Carol (Branch) goes.
	alice.DirectoryScope = "HQ"
	if err := e.st.UpdateUser(ctx, &alice); err != nil {
		t.Fatal(err)
	}
	e.events.Publish(ctx, prov.Event{Kind: prov.EventUserChanged, UserID: alice.ID, Reason: "test"})
	if got := get(); strings.Contains(got, "1003") || !strings.Contains(got, "1002") {
		t.Fatalf("scope HQ:\n%s", got)
	}
}

// golden compares got with testdata/name (-update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update):\n%s", path, got)
	}
}
