package daemon

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/icholy/digest"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// The few seconds of a phone's life a node used to keep in memory — the
// refusal window after a native logout, a check-sync held while the phone
// applies the previous one — are in the shared store: a node lost or
// started meanwhile changes nothing for the phone.

// phoneFetch GETs name from a node's provisioning server as the Polycom
// with mac does, with digest credentials when user is set.
func phoneFetch(t *testing.T, base, mac, name, user, pass string) int {
	t.Helper()
	var c http.Client
	if user != "" {
		c.Transport = &digest.Transport{Username: user, Password: pass}
	}
	req, _ := http.NewRequest("GET", "http://"+base+"/"+name, nil)
	req.Header.Set("User-Agent", polycomPhone.httpUA(mac))
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode
}

// openShared opens the test's own handle on the cluster's store.
func openShared(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Driver: store.DriverPostgres, DSN: dsn}, "",
		slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// killNode ends a node process with SIGKILL: nothing it held in memory
// survives, nothing is flushed.
func killNode(t *testing.T, n *nodeProc) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n.cmd.Wait()
}

// activeSessions lists the device's active sessions in the shared store.
func activeSessions(t *testing.T, st *store.Store, deviceID int64) []prov.Session {
	t.Helper()
	ss, err := st.ListSessions(context.Background(), prov.SessionQuery{DeviceID: deviceID, ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// TestClusterNativeLogoutRefusedAfterNodeLoss: alice logs in natively
// (the Polycom fetches alice.cfg with her login) on n1 and is logged out
// there; n1 is killed, and n2, started after the logout (it never heard of
// it), gets the phone's re-fetch with the login it stored: refused, within
// the refusal window, as n1 would have. Another user's native login on
// that phone at n2 works: the refusal is the window, not the phone.
func TestClusterNativeLogoutRefusedAfterNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	const mac = "0004f3a00001"
	dsn := postgresDB(t)
	bin := buildBinary(t)
	dev := seedClusterPhone(t, dsn, mac, "rw-native", "rw-native-secret")
	st := openShared(t, dsn)
	n1 := startNodeProc(t, bin, dsn, "n1")
	h := &clusterHandset{handset: newHandset(t, n1.addrs.SIPUDP[0], "test.lan"), mac: mac,
		servers: []string{n1.addrs.SIPUDP[0]}, lines: [][3]string{{"rw-native", "rw-native", "rw-native-secret"}}}
	h.validateNotify(t)
	if err := h.register(60); err != nil {
		t.Fatal(err)
	}
	if code := phoneFetch(t, n1.addrs.HTTP, mac, "alice.cfg", "alice", "alice-demo"); code != 200 {
		t.Fatalf("native login on n1 = %d", code)
	}
	ss := activeSessions(t, st, dev.ID)
	if len(ss) != 1 || ss[0].Door != prov.DoorNative {
		t.Fatalf("sessions after the native login: %+v", ss)
	}
	loggedOut := time.Now()
	if code, body := (&clusterNode{addrs: n1.addrs}).api(t, "DELETE", "/sessions/"+ss[0].ID, ""); code/100 != 2 {
		t.Fatalf("logout on n1 = %d %v", code, body)
	}
	waitCheckSync(t, h.handset, "logout on n1")
	killNode(t, n1)

	n2 := startNodeProc(t, bin, dsn, "n2")
	if since := time.Since(loggedOut); since > prov.NativeRefuseWindow-5*time.Second {
		t.Fatalf("n2 took %v to start: the refusal window has (nearly) passed, nothing left to test", since)
	}
	if code := phoneFetch(t, n2.addrs.HTTP, mac, "alice.cfg", "alice", "alice-demo"); code == 200 {
		t.Fatal("the phone's re-fetch with its stored login logged alice in again on n2")
	}
	if ss := activeSessions(t, st, dev.ID); len(ss) != 0 {
		t.Fatalf("sessions after the refused re-fetch: %+v", ss)
	}
	if code := phoneFetch(t, n2.addrs.HTTP, mac, "bob.cfg", "bob", "bob-demo"); code != 200 {
		t.Fatalf("bob's native login on n2 = %d: the phone is not taken as at the phone", code)
	}
	if ss := activeSessions(t, st, dev.ID); len(ss) != 1 {
		t.Fatalf("sessions after bob's login: %+v", ss)
	}
}

// TestClusterEMSignOutThenSignInElsewhere: a Cisco MPP signs alice in
// through Extension Mobility on n1 and signs out there; n2 has heard of
// the session's end. Signing in again through n2 at once is a new login,
// not the stale re-fetch the refusal window is for: n2 lets her in.
func TestClusterEMSignOutThenSignInElsewhere(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	const mac = "00562b00a0e1"
	dsn := postgresDB(t)
	bin := buildBinary(t)
	seedClusterPhone(t, dsn, "0004f3a00002", "rw-unused", "rw-unused-secret")
	st := openShared(t, dsn)
	demo, err := st.GetDevice(context.Background(), phoneA)
	if err != nil {
		t.Fatal(err)
	}
	cisco := prov.Device{MAC: mac, Vendor: "cisco", Model: "CP-8851", SiteID: demo.SiteID, Kind: prov.DeviceManaged,
		Status: prov.DeviceNotDeployed, SIPUser: "rw-cisco", SIPPassword: "rw-cisco-secret",
		ProvUser: mac, ProvPassword: "rw-cisco-prov-secret"}
	if err := st.CreateDevice(context.Background(), &cisco); err != nil {
		t.Fatal(err)
	}
	n1, n2 := startNodeProc(t, bin, dsn, "n1"), startNodeProc(t, bin, dsn, "n2")
	p := newVendorPhone(t, n1.addrs, mac, ciscoPhone)
	p.boot()
	if p.param("EM_Enable") != "Yes" {
		t.Fatalf("EM_Enable = %q, want Yes", p.param("EM_Enable"))
	}
	if !p.emSignIn("alice", "alice-demo") {
		t.Fatal("sign-in on n1 refused")
	}
	ss := activeSessions(t, st, cisco.ID)
	if len(ss) != 1 || ss[0].Door != prov.DoorNative {
		t.Fatalf("sessions after the sign-in: %+v", ss)
	}
	const ended = `hotdesk_store_events_received_total{kind="session_ended"}`
	before := procCounter(t, n2, ended)
	p.logoutOnPhone()
	if got, _ := st.GetSession(context.Background(), ss[0].ID); got.Active() {
		t.Fatal("signing out on n1 did not end the session")
	}
	waitFor(t, "n2 hearing of the session's end", func() bool { return procCounter(t, n2, ended) > before })

	// The phone's rule and lines now lead to n2 (n1 out of its reach);
	// changed between its provisioning tasks (a NOTIFY's re-sync may be
	// pending).
	p.syncMu.Lock()
	p.mu.Lock()
	p.params["Profile_Rule"] = strings.ReplaceAll(p.params["Profile_Rule"], n1.addrs.HTTP, n2.addrs.HTTP)
	p.provBase, p.server = "http://"+n2.addrs.HTTP, n2.addrs.SIPUDP[0]
	lines := maps.Clone(p.lines)
	p.mu.Unlock()
	p.syncMu.Unlock()
	// Its primary out of reach, the phone registers its lines with the
	// alternate (Alternate_Outbound_Proxy) before anyone signs in there: a
	// login is taken only from a phone's known address, and n2 knows it by
	// this registration (its record in the store is written behind, so
	// n1's may not be there yet).
	for _, l := range lines {
		if code := p.register(l, 600); code != 200 {
			t.Fatalf("REGISTER %s with n2 = %d", l.user, code)
		}
	}
	if !p.emSignIn("alice", "alice-demo") {
		t.Fatal("signing in again on n2 right after signing out on n1 was refused")
	}
	again := activeSessions(t, st, cisco.ID)
	if len(again) != 1 || again[0].ID == ss[0].ID {
		t.Fatalf("sessions after signing in on n2: %+v", again)
	}
}

// TestClusterHeldCheckSyncSurvivesNodeLoss: a phone on n1 is applying a
// login's check-sync (it fetched its boot file and has registered nothing
// since) when a logout's check-sync comes: n1 holds it. n1 is killed
// before it sends it; the phone registers with n2, its next server, and
// gets the held check-sync from n2.
func TestClusterHeldCheckSyncSurvivesNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	const mac = "0004f3a00003"
	dsn := postgresDB(t)
	bin := buildBinary(t)
	dev := seedClusterPhone(t, dsn, mac, "rw-held", "rw-held-secret")
	st := openShared(t, dsn)
	n1, n2 := startNodeProc(t, bin, dsn, "n1"), startNodeProc(t, bin, dsn, "n2")
	h := &clusterHandset{handset: newHandset(t, n1.addrs.SIPUDP[0], "test.lan"), mac: mac,
		servers: []string{n1.addrs.SIPUDP[0], n2.addrs.SIPUDP[0]}, lines: [][3]string{{"rw-held", "rw-held", "rw-held-secret"}}}
	h.validateNotify(t)
	if err := h.register(60); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the phone's binding held by n1", func() bool {
		bs, err := st.LiveDeviceBindings(context.Background(), dev.ID, time.Now())
		return err == nil && len(bs) == 1 && bs[0].Holder == "n1"
	})
	a1 := &clusterNode{addrs: n1.addrs}
	if code, body := a1.api(t, "POST", "/sessions", `{"device":"`+mac+`","user":"alice"}`); code != 201 {
		t.Fatalf("login on n1 = %d %v", code, body)
	}
	waitCheckSync(t, h.handset, "login on n1")
	// The phone re-fetches: its boot file first. It is applying the login.
	if code := phoneFetch(t, n1.addrs.HTTP, mac, mac+".cfg", "", ""); code != 200 {
		t.Fatalf("boot file = %d", code)
	}
	ss := activeSessions(t, st, dev.ID)
	if len(ss) != 1 {
		t.Fatalf("sessions after the login: %+v", ss)
	}
	if code, body := a1.api(t, "DELETE", "/sessions/"+ss[0].ID, ""); code/100 != 2 {
		t.Fatalf("logout on n1 = %d %v", code, body)
	}
	// The logout's check-sync is held (the store has it) for up to 5 s:
	// n1 dies first.
	held, err := st.HeldSyncsOf(context.Background(), "n1")
	if err != nil || len(held) != 1 || held[0].DeviceID != dev.ID {
		t.Fatalf("check-syncs n1 holds: %+v %v", held, err)
	}
	killNode(t, n1)
	select {
	case ev := <-h.notifies:
		t.Fatalf("NOTIFY %q before the phone moved: n1 was not killed in time", ev)
	default:
	}

	if err := h.register(60); err != nil {
		t.Fatal(err)
	}
	if h.servers[h.at] != n2.addrs.SIPUDP[0] {
		t.Fatalf("the phone registers with %s, want n2", h.servers[h.at])
	}
	waitCheckSync(t, h.handset, "held check-sync after n1's loss, phone on n2")
	if held, err := st.HeldSyncsOf(context.Background(), "n1"); err != nil || len(held) != 0 {
		t.Fatalf("check-syncs left held for n1: %+v %v", held, err)
	}
}
