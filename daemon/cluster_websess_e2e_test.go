package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestClusterPortalSessionOnEveryNode: a browser signed in to the portal
// on n1 is served by n2 with the same cookie (a page, a CSRF-checked form,
// whose flash n1 then shows); the softphone credential minted on n1
// registers through n2 (digest, sipgo), and a re-mint on n1 unbinds it
// there; signing out on n2 refuses it on
// both nodes and unbinds it, as taking the softphone away does; the database holds neither the cookie nor
// the softphone's password; and a session signed in on n1 outlives n1.
func TestClusterPortalSessionOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	nodes := startClusterWith(t, 2, func(c *Config) {
		c.SIP.Listen = append(c.SIP.Listen, "ws://127.0.0.1:0")
		c.SIP.WebRTC.RTPAddress, c.SIP.WebRTC.Loopback = "127.0.0.1", true
	})
	n1, n2 := nodes[0], nodes[1]
	ctx := context.Background()
	u, err := n1.a.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	pa := u.Portal
	pa.CallOperations = prov.CallOpsSoftphone
	if _, err := n1.a.svc.manager.UpdateUser(ctx, "alice", prov.UserPatch{Portal: &pa}, prov.Actor{Name: "admin:test"}); err != nil {
		t.Fatal(err)
	}
	base1, base2 := "http://"+n1.addrs.Admin, "http://"+n2.addrs.Admin

	// Signed in on n1; the jar sends the cookie to n2 (same host).
	c := browser(t)
	if code, to := signIn(t, c, base1, "alice", "alice-demo"); code != http.StatusSeeOther || to != "/me/" {
		t.Fatalf("sign-in on n1 = %d → %q", code, to)
	}
	code, body := fetch(t, c, "GET", base2+"/me/", nil)
	m := csrfRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil || !strings.Contains(body, "Alice") {
		t.Fatalf("n2 /me/ with n1's cookie = %d:\n%s", code, body)
	}
	csrf := m[1]
	if code, _ := fetch(t, c, "POST", base2+"/me/call-mode", url.Values{"csrf": {csrf}, "call_mode": {prov.CallOpsSoftphone}}); code != http.StatusSeeOther {
		t.Fatalf("CSRF-checked form on n2 = %d", code)
	}
	if code, body := fetch(t, c, "GET", base1+"/me/", nil); code != http.StatusOK || !strings.Contains(body, "Call mode saved.") {
		t.Fatalf("n1 after n2's form = %d, no flash:\n%s", code, body)
	}
	if code, _ := fetch(t, c, "POST", base2+"/me/call-mode", url.Values{"csrf": {"wrong"}, "call_mode": {prov.CallOpsSoftphone}}); code != http.StatusForbidden {
		t.Fatalf("a wrong CSRF token on n2 = %d, want 403", code)
	}

	// The softphone credential minted on n1 registers through n2.
	line := mintSoftphone(t, c, base1, csrf)
	waitFor(t, "n2 to know the softphone credential", func() bool {
		_, ok := n2.a.svc.credentials.Lookup(line.Username)
		return ok
	})
	h := newHandset(t, n2.addrs.SIPUDP[0], "test.lan")
	if got := h.register(t, line.Number, line.Username, line.Password, 300); got != http.StatusOK {
		t.Fatalf("REGISTER through n2 with n1's softphone credential = %d", got)
	}
	boundAs := func(nd *clusterNode, user string) bool {
		for _, b := range nd.a.svc.sip.Lookup(ctx, line.Number) {
			if b.AuthUser == user {
				return true
			}
		}
		return false
	}
	if !boundAs(n2, line.Username) {
		t.Fatal("the softphone is not bound on n2")
	}

	// The page reloaded on n1 re-mints: the old credential and its
	// registration on n2 go, the new one registers there.
	old := line
	line = mintSoftphone(t, c, base1, csrf)
	waitFor(t, "n2 to drop the re-minted credential and its binding", func() bool {
		_, ok := n2.a.svc.credentials.Lookup(old.Username)
		return !ok && !boundAs(n2, old.Username)
	})
	waitFor(t, "n2 to know the new credential", func() bool {
		_, ok := n2.a.svc.credentials.Lookup(line.Username)
		return ok
	})
	if got := h.register(t, line.Number, line.Username, line.Password, 300); got != http.StatusOK {
		t.Fatalf("REGISTER through n2 with the re-minted credential = %d", got)
	}
	bound := func(nd *clusterNode) bool { return boundAs(nd, line.Username) }

	// Neither the cookie nor the softphone's password is in the database.
	cookie := ""
	for _, ck := range c.Jar.Cookies(&url.URL{Scheme: "http", Host: n1.addrs.Admin}) {
		if ck.Name == "hotdesk_session" {
			cookie = ck.Value
		}
	}
	db, err := sql.Open("pgx", n1.a.cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows string
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(string_agg(w::text, ' '), '') FROM web_sessions w`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if cookie == "" || !strings.Contains(rows, line.Username) || strings.Contains(rows, cookie) || strings.Contains(rows, line.Password) {
		t.Fatalf("web_sessions holds the cookie or the password (cookie %q):\n%s", cookie, rows)
	}

	// Signing out on n2 ends it everywhere.
	if code, _ := fetch(t, c, "POST", base2+"/logout", url.Values{"csrf": {csrf}}); code != http.StatusSeeOther {
		t.Fatalf("sign-out on n2 = %d", code)
	}
	waitFor(t, "n1 to drop the softphone credential", func() bool {
		_, ok := n1.a.svc.credentials.Lookup(line.Username)
		return !ok
	})
	if _, ok := n2.a.svc.credentials.Lookup(line.Username); ok {
		t.Fatal("n2 still knows the signed-out softphone's credential")
	}
	waitFor(t, "the softphone's binding to go", func() bool { return !bound(n1) && !bound(n2) })
	bs, err := n1.a.store.ListBindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.AuthUser == line.Username {
			t.Fatalf("the signed-out softphone's binding is still stored: %+v", b)
		}
	}
	for _, nd := range nodes {
		h := newHandset(t, nd.addrs.SIPUDP[0], "test.lan")
		if got := h.register(t, line.Number, line.Username, line.Password, 300); got != http.StatusUnauthorized {
			t.Fatalf("REGISTER through %s after sign-out = %d, want 401", nd.name, got)
		}
	}
	if code, _ := fetch(t, c, "GET", base1+"/me/", nil); code != http.StatusSeeOther {
		t.Fatalf("n1 with the signed-out cookie = %d, want a redirect to sign-in", code)
	}

	// n1 goes; a session signed in there goes on through n2.
	c2 := browser(t)
	if code, _ := signIn(t, c2, base1, "alice", "alice-demo"); code != http.StatusSeeOther {
		t.Fatalf("second sign-in on n1 = %d", code)
	}
	// Its softphone, registered through n2, is unbound there when n1's
	// admin takes the softphone away.
	code, body = fetch(t, c2, "GET", base1+"/me/", nil)
	if m = csrfRE.FindStringSubmatch(body); code != http.StatusOK || m == nil {
		t.Fatalf("n1 /me/ = %d", code)
	}
	line = mintSoftphone(t, c2, base1, m[1])
	waitFor(t, "n2 to know the third credential", func() bool {
		_, ok := n2.a.svc.credentials.Lookup(line.Username)
		return ok
	})
	h2 := newHandset(t, n2.addrs.SIPUDP[0], "test.lan")
	if got := h2.register(t, line.Number, line.Username, line.Password, 300); got != http.StatusOK {
		t.Fatalf("REGISTER through n2 = %d", got)
	}
	pa.CallOperations = prov.CallOpsNone
	if _, err := n1.a.svc.manager.UpdateUser(ctx, "alice", prov.UserPatch{Portal: &pa}, prov.Actor{Name: "admin:test"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n2 to drop and unbind the softphone taken away", func() bool {
		_, ok := n2.a.svc.credentials.Lookup(line.Username)
		return !ok && !bound(n2)
	})
	if live, err := n1.a.store.ListWebSoftphones(ctx, time.Now()); err != nil || len(live) != 0 {
		t.Fatalf("softphones left in the store: %+v %v", live, err)
	}
	if err := n1.stop(); err != nil {
		t.Fatal(err)
	}
	if code, body := fetch(t, c2, "GET", base2+"/me/", nil); code != http.StatusOK || !strings.Contains(body, "Alice") {
		t.Fatalf("n2 with a session of the stopped n1 = %d:\n%s", code, body)
	}
}

// TestClusterPortalSessionOutlivesKilledNode: real processes; a browser
// signed in on n1 goes on through n2 (a page and a CSRF-checked form) after
// n1 is killed (SIGKILL).
func TestClusterPortalSessionOutlivesKilledNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two hotdeskd processes")
	}
	dsn := postgresDB(t)
	bin := buildBinary(t)
	seedClusterPhone(t, dsn, "0004f3fe0001", "websess-phone", "websess-phone-pw")
	n1, n2 := startNodeProc(t, bin, dsn, "n1"), startNodeProc(t, bin, dsn, "n2")
	c := browser(t)
	if code, to := signIn(t, c, "http://"+n1.addrs.Admin, "alice", "alice-demo"); code != http.StatusSeeOther || to != "/me/" {
		t.Fatalf("sign-in on n1 = %d → %q", code, to)
	}
	if err := n1.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = n1.cmd.Wait()
	base2 := "http://" + n2.addrs.Admin
	code, body := fetch(t, c, "GET", base2+"/me/", nil)
	m := csrfRE.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil || !strings.Contains(body, "Alice") {
		t.Fatalf("n2 /me/ after n1's death = %d:\n%s", code, body)
	}
	if code, _ := fetch(t, c, "POST", base2+"/logout", url.Values{"csrf": {m[1]}}); code != http.StatusSeeOther {
		t.Fatalf("sign-out on n2 = %d", code)
	}
	if code, _ := fetch(t, c, "GET", base2+"/me/", nil); code != http.StatusSeeOther {
		t.Fatalf("n2 after sign-out = %d, want a redirect to sign-in", code)
	}
}

// mintSoftphone asks the portal for the session's softphone credential.
func mintSoftphone(t *testing.T, c *http.Client, base, csrf string) prov.SoftphoneLine {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/me/softphone", nil)
	req.Header.Set("X-CSRF-Token", csrf)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var line prov.SoftphoneLine
	if err := json.NewDecoder(res.Body).Decode(&line); err != nil || res.StatusCode != http.StatusOK || line.Password == "" {
		t.Fatalf("mint = %d %+v %v", res.StatusCode, line, err)
	}
	return line
}
