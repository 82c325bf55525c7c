package daemon

import (
	"context"
	"database/sql"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// clusterNode is one of several daemons sharing a PostgreSQL store.
type clusterNode struct {
	name  string
	a     *app
	addrs Addrs
	stop  func() error
}

// startCluster starts n demo daemons, one after the other, on one new
// PostgreSQL database.
func startCluster(t *testing.T, n int) []*clusterNode {
	t.Helper()
	dsn := postgresDB(t)
	var nodes []*clusterNode
	for i := range n {
		cfg := testConfig(t, t.TempDir())
		cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
			"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
		cfg.Store = store.Config{Driver: store.DriverPostgres, DSN: dsn}
		cfg.Cluster.Node = "n" + string(rune('1'+i))
		cfg.Cluster.Nodes = []string{"10.0.0.11", "10.0.0.12:5070"}
		nd := &clusterNode{name: cfg.Cluster.Node}
		nd.addrs, nd.stop = startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { nd.a = x }})
		nodes = append(nodes, nd)
	}
	return nodes
}

// api calls a node's admin API as the admin.
func (nd *clusterNode) api(t testing.TB, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+nd.addrs.Admin+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", "test-admin-pw")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// activeOn lists the active sessions of a device, from the shared store.
func activeOn(t *testing.T, nd *clusterNode, mac string) []prov.Session {
	t.Helper()
	d, err := nd.a.store.GetDevice(context.Background(), mac)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := nd.a.store.ListSessions(context.Background(), prov.SessionQuery{DeviceID: d.ID, ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	return ss
}

// waitFor polls ok (cluster messages and write-behind settle on their own
// goroutines) for up to 15 s.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for range 1500 {
		if ok() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestClusterLoginLogoutCallAcrossNodes runs on three nodes: a
// phone registered on n2, alice logged in on it through n1's API and
// logged out through n3's: the phone gets both check-syncs from n2 (the
// node it registered with), registers her line there and is locked again.
// A call placed on n1 reaches a softphone registered on n3, and two
// logins racing for one phone on two nodes leave it one session.
func TestClusterLoginLogoutCallAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three daemons")
	}
	nodes := startCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()

	phone := newDeskPhone(t, n2.addrs, phoneA)
	phone.boot()
	dev, err := n2.a.store.GetDevice(ctx, phoneA)
	if err != nil {
		t.Fatal(err)
	}
	if got := phone.settle([]string{dev.SIPUser}); !slices.Equal(got, []string{dev.SIPUser}) {
		t.Fatalf("phone registers %v, want its device account", got)
	}
	// Its lines name the other nodes after the one it provisioned from.
	for k, want := range map[string]string{"reg.1.server.2.address": "10.0.0.11", "reg.1.server.3.address": "10.0.0.12",
		"reg.1.server.3.port": "5070"} {
		if got := phone.param(k); got != want {
			t.Errorf("phone's %s = %q, want %q", k, got, want)
		}
	}
	waitFor(t, "the phone's binding in the shared store, held by n2", func() bool {
		bs, err := n1.a.cluster.LiveDeviceBindings(ctx, dev.ID, time.Now())
		return err == nil && len(bs) == 1 && bs[0].Holder == "n2"
	})

	// Login on n1: n2 holds the phone, so n2 tells it; n2 learns the
	// session's credentials from the relayed event.
	mark := phone.mark()
	if code, body := n1.api(t, "POST", "/sessions", `{"device":"`+phoneA+`","user":"alice"}`); code != 201 {
		t.Fatalf("login on n1 = %d %v", code, body)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{"1001"}); !slices.Equal(got, []string{"1001"}) {
		t.Fatalf("after the login on n1 the phone registers %v, want 1001", got)
	}
	ss := activeOn(t, n1, phoneA)
	if len(ss) != 1 {
		t.Fatalf("active sessions %+v", ss)
	}
	owner := prov.SessionOwner(ss[0].ID)
	waitFor(t, "the session's line held by n2", func() bool {
		bs := n2.a.svc.registrar.DeviceBindings(ctx, dev.ID)
		return len(bs) == 1 && bs[0].Owner == owner
	})

	// Logout on n3: n2 unbinds and tells the phone, which relocks.
	mark = phone.mark()
	if code, body := n3.api(t, "DELETE", "/sessions/"+ss[0].ID, ""); code/100 != 2 {
		t.Fatalf("logout on n3 = %d %v", code, body)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{dev.SIPUser}); !slices.Equal(got, []string{dev.SIPUser}) {
		t.Fatalf("after the logout on n3 the phone registers %v, want only its device account", got)
	}
	waitFor(t, "only the device account bound on n2", func() bool {
		bs := n2.a.svc.registrar.DeviceBindings(ctx, dev.ID)
		return len(bs) == 1 && bs[0].Owner == prov.DeviceOwner(dev.ID)
	})
	if _, ok := n2.a.svc.credentials.Lookup(ss[0].SIPUser); ok {
		t.Fatal("n2 still accepts the ended session's SIP credentials")
	}

	// A call from a softphone on n1 to one registered on n3.
	bob := newHandset(t, n3.addrs.SIPUDP[0], "test.lan")
	if code := bob.register(t, "1002", "1002", "bob-sip", 300); code != 200 {
		t.Fatalf("bob REGISTER on n3 = %d", code)
	}
	carol := newHandset(t, n1.addrs.SIPUDP[0], "test.lan")
	if code := carol.register(t, "1003", "1003", "carol-sip", 300); code != 200 {
		t.Fatalf("carol REGISTER on n1 = %d", code)
	}
	waitFor(t, "bob's binding in the shared store", func() bool {
		bs, err := n1.a.cluster.AORBindings(ctx, "sip:1002@test.lan", time.Now())
		return err == nil && len(bs) == 1
	})
	if code, reason := carol.call(t, "1002", "1003", "carol-sip"); code != 486 {
		t.Fatalf("call on n1 to bob on n3 = %d %s, want bob's 486", code, reason)
	}
	select {
	case to := <-bob.invites:
		if to != "1002" {
			t.Fatalf("bob's phone was rung for %q", to)
		}
	default:
		t.Fatal("bob's phone was not rung")
	}

	// Logins racing for one phone on two nodes: one session remains.
	for round := range 8 {
		var wg sync.WaitGroup
		for i, nd := range []*clusterNode{n1, n3} {
			user := []string{"alice", "bob"}[i]
			wg.Go(func() {
				if code, body := nd.api(t, "POST", "/sessions", `{"device":"`+phoneB+`","user":"`+user+`"}`); code != 201 {
					t.Errorf("round %d: login %s on %s = %d %v", round, user, nd.name, code, body)
				}
			})
		}
		wg.Wait()
		ss := activeOn(t, n2, phoneB)
		if len(ss) != 1 {
			t.Fatalf("round %d: %d active sessions on one phone after racing logins: %+v", round, len(ss), ss)
		}
		if code, _ := n2.api(t, "DELETE", "/sessions/"+ss[0].ID, ""); code/100 != 2 {
			t.Fatalf("round %d: logout = %d", round, code)
		}
	}
	// Logins on n1 and n3, logouts on n2: each node's gauge of active
	// sessions is the store's count after its sweep, not its own tally.
	if code, body := n1.api(t, "POST", "/sessions", `{"device":"`+phoneB+`","user":"carol"}`); code != 201 {
		t.Fatalf("login = %d %v", code, body)
	}
	for _, nd := range nodes {
		if err := nd.a.svc.sessions.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		mfs, err := nd.a.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "hotdesk_prov_sessions_active" {
				if got := mf.GetMetric()[0].GetGauge().GetValue(); got != 1 {
					t.Errorf("%s: hotdesk_prov_sessions_active = %v, want 1", nd.name, got)
				}
			}
		}
	}
}

// TestCheckStoreReachesPostgres: check-config connects to a PostgreSQL
// store and names an unreachable one.
func TestCheckStoreReachesPostgres(t *testing.T) {
	dsn := postgresDB(t)
	cfg := Default()
	cfg.Store = store.Config{Driver: store.DriverPostgres, DSN: dsn}
	got, err := CheckStore(context.Background(), cfg)
	if err != nil || !strings.Contains(got, "postgres reachable") {
		t.Fatalf("CheckStore = %q, %v", got, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	cfg.Store.DSN = "postgres://postgres@" + addr + "/postgres?connect_timeout=2"
	if _, err := CheckStore(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("CheckStore of a closed port = %v, want cannot connect", err)
	}
}

// TestClusterResyncAndMove: a node that lost its event connection while a
// session ended (here ended with no message at all) unbinds and relocks
// the phone when it reconnects, from the tables; and a phone registering
// with another node moves its binding there, the old node letting go.
func TestClusterResyncAndMove(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	nodes := startCluster(t, 2)
	n1, n2 := nodes[0], nodes[1]
	ctx := context.Background()

	phone := newDeskPhone(t, n2.addrs, phoneA)
	phone.boot()
	dev, err := n2.a.store.GetDevice(ctx, phoneA)
	if err != nil {
		t.Fatal(err)
	}
	phone.settle([]string{dev.SIPUser})
	mark := phone.mark()
	if code, body := n1.api(t, "POST", "/sessions", `{"device":"`+phoneA+`","user":"alice"}`); code != 201 {
		t.Fatalf("login on n1 = %d %v", code, body)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{"1001"}); !slices.Equal(got, []string{"1001"}) {
		t.Fatalf("after the login the phone registers %v", got)
	}
	sess := activeOn(t, n1, phoneA)[0]

	// The session ends behind every node's back; then the nodes' event
	// connections drop. Only the tables tell n2 what it missed.
	resyncs := func(nd *clusterNode) float64 { return testutil.ToFloat64(nd.a.bus.resyncs) }
	before := resyncs(n2)
	if err := n1.a.store.EndSession(ctx, sess.ID, time.Now(), prov.EndAdmin); err != nil {
		t.Fatal(err)
	}
	mark = phone.mark()
	db, err := sql.Open("pgx", n1.a.cfg.Store.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query = 'LISTEN ` + store.EventChannel + `' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "n2 resynchronised", func() bool { return resyncs(n2) > before })
	phone.waitResync(mark)
	if got := phone.settle([]string{dev.SIPUser}); !slices.Equal(got, []string{dev.SIPUser}) {
		t.Fatalf("after the resync the phone registers %v, want only its device account", got)
	}
	if _, ok := n2.a.svc.credentials.Lookup(sess.SIPUser); ok {
		t.Fatal("n2 still accepts the ended session's credentials after resynchronising")
	}

	// bob registers on n2, then (its node "failed") the same contact on n1.
	bob := newHandset(t, n2.addrs.SIPUDP[0], "test.lan")
	if code := bob.register(t, "1002", "1002", "bob-sip", 300); code != 200 {
		t.Fatalf("bob REGISTER on n2 = %d", code)
	}
	localBob := func(nd *clusterNode) int {
		n := 0
		for _, b := range nd.a.svc.sip.Bindings() {
			if b.AOR == "sip:1002@test.lan" {
				n++
			}
		}
		return n
	}
	waitFor(t, "bob held by n2", func() bool {
		bs, err := n1.a.cluster.AORBindings(ctx, "sip:1002@test.lan", time.Now())
		return err == nil && len(bs) == 1 && bs[0].Holder == "n2"
	})
	bob.registrar.Port = portOf(t, n1.addrs.SIPUDP[0])
	if code := bob.register(t, "1002", "1002", "bob-sip", 300); code != 200 {
		t.Fatalf("bob REGISTER on n1 = %d", code)
	}
	waitFor(t, "bob moved to n1 and n2 letting go", func() bool {
		bs, err := n1.a.cluster.AORBindings(ctx, "sip:1002@test.lan", time.Now())
		return err == nil && len(bs) == 1 && bs[0].Holder == "n1" && localBob(n2) == 0 && localBob(n1) == 1
	})
}

func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
