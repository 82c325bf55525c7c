package daemon

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/insomniacslk/dhcp/dhcpv4"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// clusterHandsets is TestClusterNodeKilled's storm: 2,000 handsets spread
// over three nodes (fewer with -cluster.handsets N while iterating).
var clusterHandsets = flag.Int("cluster.handsets", 2000, "handsets in TestClusterNodeKilled")

// nodeProc is a hotdeskd process of a cluster test.
type nodeProc struct {
	clusterNode
	cmd *exec.Cmd

	// problems are the node's WARN and ERROR lines (the first 200), shown
	// when the test fails: a flake under load is then read from them.
	mu       sync.Mutex
	problems []string
}

var readyRE = regexp.MustCompile(`msg=ready admin=(\S+) http=(\S+) .*sip_udp="?\[([^\]\s]+)\]`)

// startNodeProc runs the real binary as cluster node name on dsn.
func startNodeProc(t testing.TB, bin, dsn, name string) *nodeProc {
	t.Helper()
	return startProc(t, bin, t.TempDir(), `store: {driver: postgres, dsn: "`+dsn+`"}`, name)
}

// startProc runs the real binary on dir with the given store section.
func startProc(t testing.TB, bin, dir, storeYAML, name string) *nodeProc {
	t.Helper()
	conf := filepath.Join(dir, "hotdesk.yaml")
	if err := os.WriteFile(conf, []byte(`
data_dir: `+filepath.Join(dir, "data")+`
log: {level: info}
memory_limit_mb: -1
admin: {listen: "127.0.0.1:0", initial_password: "test-admin-pw"}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: "127.0.0.1:0"}
sip: {listen: ["udp://127.0.0.1:0"], domain: test.lan}
`+storeYAML+`
cluster: {node: `+name+`}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "-c", conf)
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMEMLIMIT=") })
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	n := &nodeProc{clusterNode: clusterNode{name: name}, cmd: cmd}
	sc := bufio.NewScanner(stderr)
	deadline := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	var log strings.Builder
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if m := readyRE.FindStringSubmatch(sc.Text()); m != nil {
			n.addrs.Admin, n.addrs.HTTP, n.addrs.SIPUDP = m[1], strings.Trim(m[2], `"`), []string{m[3]}
			break
		}
	}
	deadline.Stop()
	if n.addrs.Admin == "" {
		t.Fatalf("%s never logged ready:\n%s", name, log.String())
	}
	go func() { // keep the pipe drained, the problems kept
		for sc.Scan() {
			if line := sc.Text(); strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				n.mu.Lock()
				if len(n.problems) < 200 {
					n.problems = append(n.problems, line)
				}
				n.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			n.mu.Lock()
			defer n.mu.Unlock()
			t.Logf("%s's warnings and errors (%d):\n%s", name, len(n.problems), strings.Join(n.problems, "\n"))
		}
	})
	return n
}

// tryRegister is handset.register that reports a registrar that does not
// answer instead of failing the test: a phone then tries its next server.
func (h *handset) tryRegister(registrar, aor, user, pass string, expires int) (int, error) {
	code, _, err := h.registerAt(registrar, aor, user, pass, expires)
	return code, err
}

// registerAt is tryRegister with the final response.
func (h *handset) registerAt(registrar, aor, user, pass string, expires int) (int, *sip.Response, error) {
	if h.callIDs[aor] == "" {
		h.callIDs[aor] = fmt.Sprintf("%s-%d@handset", aor, time.Now().UnixNano())
	}
	h.noteCreds(aor, user, pass)
	h.cseq++
	var ru sip.Uri
	if err := sip.ParseUri("sip:"+registrar, &ru); err != nil {
		return 0, nil, err
	}
	req := sip.NewRequest(sip.REGISTER, ru)
	to := sip.Uri{Scheme: "sip", User: aor, Host: h.domain}
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", fmt.Sprint(h.cseq))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	cid := sip.CallIDHeader(h.callIDs[aor])
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: h.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s>", aor, h.addr)))
	req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := h.cli.Do(ctx, req)
	if err != nil {
		return 0, nil, err
	}
	if res.StatusCode == 401 {
		h.cseq++
		req.CSeq().SeqNo = h.cseq
		if res, err = h.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass}); err != nil {
			return 0, nil, err
		}
	}
	return res.StatusCode, res, nil
}

// clusterHandset is a handset with its servers in order of preference
// (as a phone's reg.1.server.1/2/3) and the lines it registers.
type clusterHandset struct {
	*handset
	mac     string
	servers []string
	at      int // index of the server it registers with
	lines   [][3]string
}

// register registers every line with its current server, moving to the
// next server when one does not answer or answers 503, as a phone does.
func (c *clusterHandset) register(expires int) error {
	for range len(c.servers) {
		ok := true
		for _, l := range c.lines {
			code, err := c.tryRegister(c.servers[c.at], l[0], l[1], l[2], expires)
			if err != nil || code == 503 {
				// No answer, or a node not ready to serve: the next one.
				ok = false
				break
			}
			if code != 200 {
				return fmt.Errorf("%s: REGISTER %s at %s = %d", c.mac, l[0], c.servers[c.at], code)
			}
		}
		if ok {
			return nil
		}
		c.at = (c.at + 1) % len(c.servers)
	}
	return fmt.Errorf("%s: no server answers", c.mac)
}

// parallel runs fn for every handset, width at a time, and returns the
// errors.
func parallel(hs []*clusterHandset, width int, fn func(*clusterHandset) error) []error {
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for _, h := range hs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := fn(h); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// waitCheckSync waits for a check-sync NOTIFY on h and returns when it came.
func waitCheckSync(t *testing.T, h *handset, what string) time.Time {
	t.Helper()
	select {
	case ev := <-h.notifies:
		if !strings.HasPrefix(ev, "check-sync") {
			t.Fatalf("%s: NOTIFY Event %q", what, ev)
		}
		return time.Now()
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no check-sync within 10 s", what)
	}
	return time.Time{}
}

// TestClusterNodeKilled is the cluster test with processes: three hotdeskd
// on one PostgreSQL, a few hundred handsets spread over them. A login on
// one node reaches a phone registered on another, a call crosses nodes;
// then one node is killed with SIGKILL: its handsets register with their
// next server within their Expires, the session survives, and a logout on
// a third node relocks the phone from its new node. It also measures the
// logout → NOTIFY delay across nodes.
func TestClusterNodeKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and three daemons")
	}
	const expires, figureUsers = 60, 20
	handsets := *clusterHandsets
	started := time.Now()
	dsn := postgresDB(t)
	bin := buildBinary(t)
	ctx := context.Background()

	// The phones exist before the nodes start (each node's credential
	// index loads them).
	st, err := store.Open(ctx, store.Config{Driver: store.DriverPostgres, DSN: dsn}, "", slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.SIP.Domain = "test.lan"
	if err := seedDemo(ctx, st, cfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	demo, err := st.GetDevice(ctx, phoneA)
	if err != nil {
		t.Fatal(err)
	}
	macs := make([]string, handsets)
	for i := range handsets {
		macs[i] = fmt.Sprintf("0004f3%06d", i)
		d := prov.Device{MAC: macs[i], Vendor: "polycom", Model: "VVX400", SiteID: demo.SiteID, Kind: prov.DeviceManaged,
			Status: prov.DeviceDeployed, SIPUser: fmt.Sprintf("hs%04d", i), SIPPassword: fmt.Sprintf("pw-%04d-secret", i),
			ProvUser: macs[i], ProvPassword: fmt.Sprintf("prov-%04d-secret", i)}
		if err := st.CreateDevice(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	// Users for the figures' logins, one phone each.
	dir := prov.NewDirectory(st, nil, time.Now)
	for i := range figureUsers {
		if _, err := dir.CreateUser(ctx, prov.UserInput{Username: fmt.Sprintf("fig%02d", i), FirstName: "F", LastName: "U", Email: fmt.Sprintf("fig%02d@test.lan", i),
			Language: "en", SiteID: demo.SiteID, Password: "figure-user-pw", Numbers: []string{fmt.Sprintf("2%03d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	// Each node also serves DHCP for one segment behind a relay (the
	// test's dhcpRelay at 127.0.1.100), from the shared lease table.
	nodes := make([]*nodeProc, 3)
	for i := range nodes {
		nodes[i] = startProc(t, bin, t.TempDir(), `store: {driver: postgres, dsn: "`+dsn+`"}
dhcp: {mode: server, listen: "127.0.1.`+fmt.Sprint(i+1)+`:67", subnet: 127.0.1.0/24, range: [127.0.1.10, 127.0.1.60], router: 127.0.1.100, lease_time: 1h}`,
			fmt.Sprintf("n%d", i+1))
	}
	dhcpAt := func(n int) string { return fmt.Sprintf("127.0.1.%d:67", n) }
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	// A second store handle for the test's own reads.
	if st, err = store.Open(ctx, store.Config{Driver: store.DriverPostgres, DSN: dsn}, "", slog.New(slog.DiscardHandler), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	hs := make([]*clusterHandset, handsets)
	for i := range hs {
		servers := []string{n1.addrs.SIPUDP[0], n2.addrs.SIPUDP[0], n3.addrs.SIPUDP[0]}
		hs[i] = &clusterHandset{handset: newHandset(t, servers[i%3], "test.lan"), mac: macs[i], servers: servers, at: i % 3,
			lines: [][3]string{{fmt.Sprintf("hs%04d", i), fmt.Sprintf("hs%04d", i), fmt.Sprintf("pw-%04d-secret", i)}}}
		// Each checks who tells it to re-sync: whichever node holds it
		// must sign with the addressed line's credentials.
		hs[i].validateNotify(t)
	}
	if errs := parallel(hs, 32, func(h *clusterHandset) error { return h.register(expires) }); len(errs) > 0 {
		t.Fatalf("%d handsets failed to register: %v", len(errs), errs[0])
	}
	holderOf := func(mac string) string {
		d, err := st.GetDevice(ctx, mac)
		if err != nil {
			return ""
		}
		bs, err := st.LiveDeviceBindings(ctx, d.ID, time.Now())
		if err != nil || len(bs) == 0 {
			return ""
		}
		return bs[0].Holder
	}
	// Handset 2 is on n3; alice logs in on it through n1: n3 tells it.
	phone := hs[2]
	waitFor(t, "handset 2 held by n3", func() bool { return holderOf(phone.mac) == "n3" })
	if code, body := n1.api(t, "POST", "/sessions", `{"device":"`+phone.mac+`","user":"alice"}`); code != 201 {
		t.Fatalf("login on n1 = %d %v", code, body)
	}
	waitCheckSync(t, phone.handset, "login on n1, phone on n3")
	pd, _ := st.GetDevice(ctx, phone.mac)
	ss, err := st.ListSessions(ctx, prov.SessionQuery{DeviceID: pd.ID, ActiveOnly: true})
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions %+v %v", ss, err)
	}
	sess := ss[0]
	// The phone registers alice's line (n3 learnt its credentials from n1).
	phone.lines = append(phone.lines, [3]string{"1001", sess.SIPUser, sess.SIPPassword})
	if err := phone.register(expires); err != nil {
		t.Fatal(err)
	}

	// A call on n1 to alice, registered on n3.
	carol := newHandset(t, n1.addrs.SIPUDP[0], "test.lan")
	if code := carol.register(t, "1003", "1003", "carol-sip", 300); code != 200 {
		t.Fatalf("carol REGISTER on n1 = %d", code)
	}
	waitFor(t, "alice's line in the shared store", func() bool {
		bs, err := st.AORBindings(ctx, "sip:1001@test.lan", time.Now())
		return err == nil && len(bs) == 1
	})
	if code, reason := carol.call(t, "1001", "1003", "carol-sip"); code != 486 {
		t.Fatalf("call on n1 to alice on n3 = %d %s, want the phone's 486", code, reason)
	}

	// A handset on n3 leases its address from n3 and uploads its
	// directory there: neither may be lost with n3.
	up := hs[5]
	if up.at != 2 {
		t.Fatalf("handset 5 registers with n%d, want n3", up.at+1)
	}
	upHW, _ := net.ParseMAC(up.mac[0:2] + ":" + up.mac[2:4] + ":" + up.mac[4:6] + ":" + up.mac[6:8] + ":" + up.mac[8:10] + ":" + up.mac[10:12])
	relay := newDHCPRelay(t, "127.0.1.100")
	leased, err := relay.lease(dhcpAt(3), upHW)
	if err != nil {
		t.Fatalf("lease from n3: %v", err)
	}
	const upDir = `<directory><item_list><item><fn>Bob</fn><ct>2002</ct></item></item_list></directory>`
	provFile := func(nd *nodeProc, method, name string, body io.Reader) (int, string) {
		c := http.Client{Transport: &digest.Transport{Username: up.mac, Password: "prov-0005-secret"}, Timeout: 10 * time.Second}
		req, _ := http.NewRequest(method, "http://"+nd.addrs.HTTP+"/"+name, body)
		req.Header.Set("User-Agent", "PolycomVVX-VVX_400-UA/6.4.3.5018")
		res, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s on %s: %v", method, up.mac, nd.name, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	provDo := func(nd *nodeProc, method string, body io.Reader) (int, string) {
		return provFile(nd, method, up.mac+"-directory.xml", body)
	}
	// n1 has read (and cached) the phone's files without the upload.
	if code, body := provDo(n1, "GET", nil); strings.Contains(body, "<ct>2002</ct>") {
		t.Fatalf("directory on n1 before the upload = %d %s", code, body)
	}
	if code, body := provDo(n3, "PUT", strings.NewReader(upDir)); code/100 != 2 {
		t.Fatalf("directory upload on n3 = %d %s", code, body)
	}
	waitFor(t, "the upload to n3 served by n1", func() bool {
		_, body := provDo(n1, "GET", nil)
		return strings.Contains(body, "<ct>2002</ct>")
	})
	// A setting the phone saved on n3 (its -phone.cfg) is in what n1
	// renders for it, though n1 had rendered the phone's files before.
	if code, body := provFile(n1, "GET", up.mac+"-hotdesk.cfg", nil); code != 200 || strings.Contains(body, `up.volume.handset="7"`) {
		t.Fatalf("%s-hotdesk.cfg on n1 = %d %s", up.mac, code, body)
	}
	if code, body := provFile(n3, "PUT", up.mac+"-phone.cfg", strings.NewReader(`<PHONE_CONFIG><OVERRIDES up.volume.handset="7"/></PHONE_CONFIG>`)); code/100 != 2 {
		t.Fatalf("phone.cfg upload on n3 = %d %s", code, body)
	}
	waitFor(t, "the phone's saved setting rendered by n1", func() bool {
		_, body := provFile(n1, "GET", up.mac+"-hotdesk.cfg", nil)
		return strings.Contains(body, `up.volume.handset="7"`)
	})

	// SIGKILL n3: its handsets' next refresh finds it silent and moves on.
	onN3 := 0
	for _, h := range hs {
		if h.at == 2 {
			onN3++
		}
	}
	if err := n3.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = n3.cmd.Wait()
	killed := time.Now()
	// Every handset refreshes at once, as phones whose timers all fall
	// within the outage do; each waits out 2 s on the dead node.
	if errs := parallel(hs, 256, func(h *clusterHandset) error { return h.register(expires) }); len(errs) > 0 {
		t.Fatalf("%d handsets did not register after the kill: %v", len(errs), errs[0])
	}
	moved := time.Since(killed)
	if moved > expires*time.Second {
		t.Fatalf("handsets took %v to move, longer than their Expires", moved)
	}
	for _, h := range hs {
		if h.at == 2 {
			t.Fatalf("%s still registers with the killed node", h.mac)
		}
	}
	waitFor(t, "every handset held by a live node", func() bool {
		for _, h := range hs {
			if hd := holderOf(h.mac); hd != "n1" && hd != "n2" {
				return false
			}
		}
		return true
	})
	if cur, err := st.GetSession(ctx, sess.ID); err != nil || !cur.Active() {
		t.Fatalf("alice's session after the kill: %+v %v", cur, err)
	}
	// The lease n3 granted renews through n1 with the same address, and
	// the directory uploaded to n3 is served by n1.
	if typ, ip, err := relay.renew(dhcpAt(1), upHW, leased); err != nil || typ != dhcpv4.MessageTypeAck || !ip.Equal(leased) {
		t.Fatalf("renewal of %s through n1 after the kill: %s %s %v", leased, typ, ip, err)
	}
	if code, body := provDo(n1, "GET", nil); code != 200 || !strings.Contains(body, "<ct>2002</ct>") {
		t.Fatalf("directory uploaded to n3, read on n1 after the kill = %d %s", code, body)
	}

	// Logout on n2: the phone's node now (n1) unbinds it and tells it.
	newHolder := holderOf(phone.mac)
	t0 := time.Now()
	if code, body := n2.api(t, "DELETE", "/sessions/"+sess.ID, ""); code/100 != 2 {
		t.Fatalf("logout on n2 = %d %v", code, body)
	}
	waitCheckSync(t, phone.handset, "logout on n2 after the kill, phone on "+newHolder)
	t.Logf("logout on n2 → NOTIFY from %s: %v", newHolder, time.Since(t0))
	waitFor(t, "alice's line unbound", func() bool {
		bs, err := st.AORBindings(ctx, "sip:1001@test.lan", time.Now())
		return err == nil && len(bs) == 0
	})

	// Figures: logins through n1 on phones held by n2 (told at once),
	// then logouts through n1 timed to the NOTIFY from n2.
	var sample []*clusterHandset
	for _, h := range hs[3:] {
		if holderOf(h.mac) == "n2" && len(sample) < figureUsers {
			sample = append(sample, h)
		}
	}
	var ids []string
	for i, h := range sample {
		if code, body := n1.api(t, "POST", "/sessions", `{"device":"`+h.mac+`","user":"`+fmt.Sprintf("fig%02d", i)+`"}`); code != 201 {
			t.Fatalf("login = %d %v", code, body)
		}
		waitCheckSync(t, h.handset, "login for the figures")
		d, _ := st.GetDevice(ctx, h.mac)
		ss, _ := st.ListSessions(ctx, prov.SessionQuery{DeviceID: d.ID, ActiveOnly: true})
		ids = append(ids, ss[0].ID)
	}
	// No wait for the check-sync coalescing window: a logout's check-sync
	// is never coalesced, whichever node marked the login's.
	var delays []time.Duration
	for i, id := range ids {
		t0 := time.Now()
		if code, _ := n1.api(t, "DELETE", "/sessions/"+id, ""); code/100 != 2 {
			t.Fatalf("logout = %d", code)
		}
		delays = append(delays, waitCheckSync(t, sample[i].handset, "logout for the figures").Sub(t0))
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	t.Logf("%d handsets (%d on the killed node) moved in %v; logout on n1 → NOTIFY from n2 over %d logouts: median %v, p99 (max) %v; whole test %v",
		handsets, onN3, moved.Round(time.Millisecond), len(delays), delays[len(delays)/2].Round(100*time.Microsecond),
		delays[len(delays)-1].Round(100*time.Microsecond), time.Since(started).Round(time.Second))
}
