package daemon

import (
	"bufio"
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// procCounter reads one sample of a counter from a node process's /metrics
// (series is the name with its labels, as exposed); 0 when absent.
func procCounter(t *testing.T, n *nodeProc, series string) float64 {
	t.Helper()
	res, err := http.Get("http://" + n.addrs.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q: %v", series, v, err)
			}
			return f
		}
	}
	return 0
}

// TestClusterLockoutSharedAcrossNodes: a password guesser spreading its
// attempts over two hotdeskd processes is locked out after as many
// failures in all as on one node, at both nodes, for SIP digest (device
// credentials) and for the admin API's Basic credentials; once locked, the
// right password is refused too.
func TestClusterLockoutSharedAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	dsn := postgresDB(t)
	bin := buildBinary(t)
	seedClusterPhone(t, dsn, "0004f3000001", "guessed", "the-right-secret")
	n1, n2 := startNodeProc(t, bin, dsn, "n1"), startNodeProc(t, bin, dsn, "n2")
	const received = `hotdesk_store_events_received_total{kind="auth_result"}`
	// relayed waits until node to has received n authentication results.
	relayed := func(to *nodeProc, n float64) {
		t.Helper()
		waitFor(t, to.name+" hearing of the other node's failures", func() bool { return procCounter(t, to, received) >= n })
	}

	// SIP: the default threshold is 10 failures per source and per
	// (username, source); 9 on n1 and the 10th on n2.
	h := newHandset(t, n1.addrs.SIPUDP[0], "test.lan")
	guess := func(n *nodeProc, pass string) int {
		t.Helper()
		code, err := h.tryRegister(n.addrs.SIPUDP[0], "guessed", "guessed", pass, 60)
		if err != nil {
			t.Fatal(err)
		}
		return code
	}
	for i := range 9 {
		if code := guess(n1, "wrong-"+strconv.Itoa(i)); code != 401 {
			t.Fatalf("guess %d on n1 = %d, want 401", i, code)
		}
	}
	relayed(n2, 9)
	if code := guess(n2, "wrong-9"); code != 401 {
		t.Fatalf("10th guess on n2 = %d, want 401", code)
	}
	relayed(n1, 1)
	for _, n := range []*nodeProc{n1, n2} {
		if code := guess(n, "the-right-secret"); code != 403 {
			t.Errorf("right password on %s after 10 failures over two nodes = %d, want 403 (locked)", n.name, code)
		}
	}

	// Admin API: 5 failures per (name, source); each failure relays three
	// results (source, pair, account).
	apiAs := func(n *nodeProc, pass string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+n.addrs.Admin+"/api/v1/users", nil)
		req.SetBasicAuth("admin", pass)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 4 {
		if code := apiAs(n1, "wrong-"+strconv.Itoa(i)); code != 401 {
			t.Fatalf("API guess %d on n1 = %d, want 401", i, code)
		}
	}
	relayed(n2, 9+4*3)
	if code := apiAs(n2, "wrong-4"); code != 401 {
		t.Fatalf("5th API guess on n2 = %d, want 401", code)
	}
	relayed(n1, 1+3)
	for _, n := range []*nodeProc{n1, n2} {
		if code := apiAs(n, "test-admin-pw"); code != http.StatusTooManyRequests {
			t.Errorf("right admin password on %s after 5 failures over two nodes = %d, want 429 (locked)", n.name, code)
		}
	}
}

// seedClusterPhone seeds the shared PostgreSQL store as the cluster tests
// need it: the demo site, and one deployed Polycom handset with the given
// MAC and SIP account (the test's phone).
func seedClusterPhone(t *testing.T, dsn, mac, sipUser, sipPassword string) prov.Device {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Config{Driver: store.DriverPostgres, DSN: dsn}, "", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := Default()
	cfg.SIP.Domain = "test.lan"
	if err := seedDemo(ctx, st, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	demo, err := st.GetDevice(ctx, phoneA)
	if err != nil {
		t.Fatal(err)
	}
	d := prov.Device{MAC: mac, Vendor: "polycom", Model: "VVX400", SiteID: demo.SiteID, Kind: prov.DeviceManaged,
		Status: prov.DeviceDeployed, SIPUser: sipUser, SIPPassword: sipPassword}
	if err := st.CreateDevice(ctx, &d); err != nil {
		t.Fatal(err)
	}
	return d
}
