package portal

import (
	"net/http"
	"testing"
)

// TestSignInWorkRevealsNoName performs the timing attack a security review found by
// counting the argon2id work each failed sign-in costs (wall time would
// flake): an admin's name cost two verifications, a user imported without
// a password none, an unknown name one. Every failed attempt now costs
// exactly one.
func TestSignInWorkRevealsNoName(t *testing.T) {
	we := newWebEnv(t, func(c *WebConfig) { c.LockoutThreshold, c.LoginRate = 1000, 1000 })
	we.portalUser("pat", "2001")
	if r, _ := importCSV(we.env, "first_name,last_name,email,username\nNo,Pw,nopw@example.test,nopw\n", false); r.code != 201 {
		t.Fatalf("import = %d %s", r.code, r.body)
	}
	b := we.browser()
	for _, tc := range []struct{ who, name string }{
		{"unknown name", "ghost"},
		{"admin name, wrong password", adminUser},
		{"user, wrong password", "pat"},
		{"user without a password", "nopw"},
	} {
		for range 2 { // the first check of an unknown name also makes the dummy hash
			before := we.web.hasher.Work()
			if p := b.signIn(tc.name, "not-the-password"); p.code != http.StatusUnauthorized {
				t.Fatalf("%s: sign-in = %d", tc.who, p.code)
			}
			if got := we.web.hasher.Work() - before; got != 1 {
				t.Fatalf("%s: %d argon2id verifications, want 1 like every other failed sign-in", tc.who, got)
			}
		}
	}
	b.mustSignIn(adminUser, adminPass, "/admin/")
}
