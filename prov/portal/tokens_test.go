package portal

import (
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a settable clock for the API's expiry decisions.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestTokensExpireAndRevoke performs the attack a security review found: a leaked API
// token used to work forever. Now it expires, an admin can list tokens
// (without the secret) and revoke one, and an expired or revoked token
// gets 401 on its very next request.
func TestTokensExpireAndRevoke(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	clk := &fakeClock{t: time.Now()}
	e.api.now, e.api.auth.now = clk.now, clk.now

	var short, long tokenView
	e.want(e.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{Name: "ci", ExpiresInDays: 1}), 201).into(t, &short)
	e.want(e.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{Name: "backup"}), 201).into(t, &long)
	if got := long.ExpiresAt.Sub(long.CreatedAt); got != e.api.cfg.TokenTTL {
		t.Fatalf("default lifetime %v, want %v", got, e.api.cfg.TokenTTL)
	}
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{Name: "forever", ExpiresInDays: 100000}), 400, "expires_in_days")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{Name: "past", ExpiresInDays: -1}), 400, "expires_in_days")

	e.want(e.do(bearer(short.Token), "GET", "/api/v1/users", nil), 200)
	// The listing shows name, prefix and dates, never the secret or its hash.
	r := e.want(e.do(asAdmin, "GET", "/api/v1/tokens", nil), 200)
	var list tokenList
	r.into(t, &list)
	if len(list.Items) != 2 || list.Items[0].Name != "ci" || list.Items[0].Prefix != short.Token[:tokenPrefixLen] ||
		list.Items[0].LastUsedAt.IsZero() || !list.Items[1].LastUsedAt.IsZero() {
		t.Fatalf("listing %s", r.body)
	}
	for _, secret := range []string{short.Token, long.Token, short.Hash, long.Hash} {
		if containsBytes(r.body, secret) {
			t.Fatalf("listing shows a secret: %s", r.body)
		}
	}

	// A day later the short token is refused at once; the other is not.
	clk.add(24*time.Hour + time.Second)
	e.want(e.do(bearer(short.Token), "GET", "/api/v1/users", nil), 401)
	e.want(e.do(bearer(long.Token), "GET", "/api/v1/users", nil), 200)

	// Revoked: refused on the next request, audited.
	e.want(e.do(asAdmin, "POST", "/api/v1/tokens/"+strconv.FormatInt(long.ID, 10)+"/revoke", nil), 200)
	e.want(e.do(bearer(long.Token), "GET", "/api/v1/users", nil), 401)
	if ev := e.audit("token.revoke", "token:backup"); len(ev) != 1 || ev[0].Actor != "admin:"+adminUser {
		t.Fatalf("revocation audit %+v", ev)
	}
	e.want(e.do(asAdmin, "POST", "/api/v1/tokens/999/revoke", nil), 404)
	e.want(e.do(asAdmin, "POST", "/api/v1/tokens/x/revoke", nil), 400)
}

func containsBytes(b []byte, s string) bool { return s != "" && strings.Contains(string(b), s) }

// TestAdminPortalRevokesToken: the admin portal lists tokens without their
// secrets and revokes one; the API refuses it on the next request.
func TestAdminPortalRevokesToken(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	var tv tokenView
	we.want(we.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{Name: "deploy-bot"}), 201).into(t, &tv)
	we.want(we.do(bearer(tv.Token), "GET", "/api/v1/users", nil), 200)

	b := we.browser()
	b.mustSignIn(adminUser, adminPass, "/admin/")
	p := b.get("/admin/tokens")
	if p.code != 200 || !strings.Contains(p.body, "deploy-bot") || !strings.Contains(p.body, tv.Token[:tokenPrefixLen]) ||
		strings.Contains(p.body, tv.Token) || !strings.Contains(p.body, "active") {
		t.Fatalf("token page %d: %s", p.code, excerpt(p.body))
	}
	r := b.submit("/admin/tokens", "/admin/tokens/"+strconv.FormatInt(tv.ID, 10)+"/revoke", url.Values{})
	if r.code != 303 {
		t.Fatalf("revoke: %d %s", r.code, excerpt(r.body))
	}
	we.want(we.do(bearer(tv.Token), "GET", "/api/v1/users", nil), 401)
	if p := b.get("/admin/tokens"); !strings.Contains(p.body, "revoked") {
		t.Fatalf("revoked token not shown as revoked: %s", excerpt(p.body))
	}
	if ev := we.audit("token.revoke", "token:deploy-bot"); len(ev) != 1 || ev[0].Actor != "admin:"+adminUser {
		t.Fatalf("audit %+v", ev)
	}
}
