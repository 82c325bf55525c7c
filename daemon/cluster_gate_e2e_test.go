package daemon

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
)

// TestClusterNodeNotReadyWhileCut: a node whose event connection to
// PostgreSQL is cut (pg_terminate_backend), and cannot come back, may have
// missed a logout or a login on another node. Until it has reconnected and
// resynchronised it answers REGISTER 503 with Retry-After (the phone
// registers with its next node), refuses logins with 503 and Retry-After,
// and /healthz says not ready; then it serves again.
func TestClusterNodeNotReadyWhileCut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	dsn := postgresDB(t)
	bin := buildBinary(t)
	d := seedClusterPhone(t, dsn, "0004f3000001", "hs0001", "pw-0001-secret")
	// n2 connects as its own role, so the test can keep it from coming back.
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	role := fmt.Sprintf("hotdesk_gate_%d", os.Getpid())
	if _, err := db.Exec(`CREATE ROLE ` + role + ` SUPERUSER LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = db.Exec(`DROP ROLE IF EXISTS ` + role) })
	u, _ := url.Parse(dsn)
	u.User = url.User(role)
	n1 := startNodeProc(t, bin, dsn, "n1")
	n2 := startNodeProc(t, bin, u.String(), "n2")

	health := func(n *nodeProc) int {
		res, err := http.Get("http://" + n.addrs.Admin + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	h := &clusterHandset{handset: newHandset(t, n2.addrs.SIPUDP[0], "test.lan"), mac: d.MAC,
		servers: []string{n2.addrs.SIPUDP[0], n1.addrs.SIPUDP[0]}, lines: [][3]string{{"hs0001", "hs0001", "pw-0001-secret"}}}
	h.validateNotify(t)
	if code, err := h.tryRegister(n2.addrs.SIPUDP[0], "hs0001", "hs0001", "pw-0001-secret", 60); err != nil || code != 200 {
		t.Fatalf("REGISTER with n2 before the cut = %d %v", code, err)
	}
	if c := health(n2); c != 200 {
		t.Fatalf("n2 /healthz before the cut = %d", c)
	}

	// Cut n2's event connection and keep it from reconnecting; its pooled
	// connections stay (the store answers), its view of the others is stale.
	if _, err := db.Exec(`ALTER ROLE ` + role + ` NOLOGIN`); err != nil {
		t.Fatal(err)
	}
	var cut int
	if err := db.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE usename = $1 AND query LIKE 'LISTEN%'`, role).Scan(&cut); err != nil || cut != 1 {
		t.Fatalf("terminated %d listener connections: %v", cut, err)
	}
	waitFor(t, "n2 /healthz not ready", func() bool { return health(n2) == http.StatusServiceUnavailable })
	code, res, err := h.registerAt(n2.addrs.SIPUDP[0], "hs0001", "hs0001", "pw-0001-secret", 60)
	if err != nil || code != 503 {
		t.Fatalf("REGISTER with n2 while cut = %d %v, want 503", code, err)
	}
	if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "5" {
		t.Fatalf("503 Retry-After = %v, want 5", ra)
	}
	// The phone registers with its next node.
	if err := h.register(60); err != nil || h.servers[h.at] != n1.addrs.SIPUDP[0] {
		t.Fatalf("phone after the 503: at %s, %v", h.servers[h.at], err)
	}
	// A login through n2 is refused, with when to retry; through n1 it works.
	req, _ := http.NewRequest("POST", "http://"+n2.addrs.Admin+"/api/v1/sessions", strings.NewReader(`{"device":"`+d.MAC+`","user":"alice"}`))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", "test-admin-pw")
	hres, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hres.Body.Close()
	if hres.StatusCode != http.StatusServiceUnavailable || hres.Header.Get("Retry-After") != "5" {
		t.Fatalf("login through n2 while cut = %d (Retry-After %q), want 503 with Retry-After 5", hres.StatusCode, hres.Header.Get("Retry-After"))
	}
	if code, body := n1.api(t, "POST", "/sessions", `{"device":"`+d.MAC+`","user":"alice"}`); code != 201 {
		t.Fatalf("login through n1 = %d %v", code, body)
	}

	// Let n2 back in: it reconnects, resynchronises and serves again.
	if _, err := db.Exec(`ALTER ROLE ` + role + ` LOGIN`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n2 /healthz ready again", func() bool { return health(n2) == 200 })
	if code, err := h.tryRegister(n2.addrs.SIPUDP[0], "hs0001", "hs0001", "pw-0001-secret", 60); err != nil || code != 200 {
		t.Fatalf("REGISTER with n2 after it resynchronised = %d %v", code, err)
	}
}
