package provhttp

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/prov/files"
	"hotdesk/prov/render"
	"hotdesk/prov/store"
	"hotdesk/sip/digestserver"
)

type fakeLogins struct {
	st     prov.Store
	events *prov.Events
	calls  int
	mu     sync.Mutex
}

// ExtensionMobility logs in as NativeLogin does; stale logins are
// Sessions' business, tested in daemon (TestCiscoExtensionMobility).
func (l *fakeLogins) ExtensionMobility(ctx context.Context, mac, username, _, remote string) (prov.EMResult, error) {
	if _, err := l.NativeLogin(ctx, mac, username, remote); err != nil {
		return 0, err
	}
	return prov.EMLoggedIn, nil
}

// NativeGuard never locks: lockout is Sessions' business, tested there and in daemon.
func (l *fakeLogins) NativeGuard(string, string) (func(bool), bool) { return func(bool) {}, true }

func (l *fakeLogins) NativeLogin(ctx context.Context, mac, username, remote string) (prov.Session, error) {
	l.mu.Lock()
	l.calls++
	l.mu.Unlock()
	d, err := l.st.GetDevice(ctx, mac)
	if err != nil {
		return prov.Session{}, err
	}
	u, err := l.st.GetUser(ctx, username)
	if err != nil {
		return prov.Session{}, err
	}
	ss, _ := l.st.ListSessions(ctx, prov.SessionQuery{DeviceID: d.ID, UserID: u.ID, ActiveOnly: true})
	if len(ss) > 0 {
		return ss[0], nil
	}
	s := prov.Session{ID: auth.RandomSecret(8), UserID: u.ID, DeviceID: d.ID, Door: "native",
		StartedAt: time.Now(), LastActivity: time.Now(), SIPUser: "s-" + username, SIPPassword: "sesspw"}
	if err := l.st.CreateSession(ctx, &s); err != nil {
		return prov.Session{}, err
	}
	// As Sessions does: the files of the device change.
	l.events.Publish(ctx, prov.Event{Kind: prov.EventSessionStarted, DeviceID: d.ID, UserID: u.ID, SessionID: s.ID})
	return s, nil
}

type env struct {
	st     *store.Store
	files  *files.Files
	events *prov.Events
	srv    *testServer
	h      *Handler
	reg    *prometheus.Registry
	logins *fakeLogins
	// logs is what Files logged.
	logs *lockedBuffer
	// skew moves the handler's clock on from the real time, without waiting.
	skew atomic.Int64
}

// lockedBuffer is a log sink the server's goroutines share with the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newEnv(t testing.TB, mut func(*Config)) *env { t.Helper(); return newEnvOn(t, frontNetHTTP, mut) }

// newEnvOn is newEnv served by the front end named front.
func newEnvOn(t testing.TB, front string, mut func(*Config)) *env {
	t.Helper()
	return newEnvStoreOn(t, front, mut, nil)
}

// newEnvStoreOn is newEnvOn with the Files reading the store through wrap.
func newEnvStoreOn(t testing.TB, front string, mut func(*Config), wrap func(prov.Store) prov.Store) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := DefaultConfig()
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.MaxUploadBytes = 4096
	cfg.FailBurst = 1000
	if mut != nil {
		mut(&cfg)
	}
	rend, err := render.New(cfg.RenderConfig(5060), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{st: st, events: &prov.Events{}, reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	var fst prov.Store = st
	if wrap != nil {
		fst = wrap(st)
	}
	e.files, err = files.New(cfg.FilesConfig(), files.Deps{Store: fst, Events: e.events, Renderer: rend,
		Registerer: e.reg, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e.logins = &fakeLogins{st: st, events: e.events}
	h, err := New(cfg, Deps{Files: e.files, Accounts: fst, Logins: e.logins,
		Now: func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }})
	if err != nil {
		t.Fatal(err)
	}
	e.h = h
	e.srv = startServer(t, front, h, nil)
	site := prov.Site{Name: "HQ", Subnets: []string{"127.0.0.0/8"}, Login: prov.LoginPolicy{Enabled: true}}
	if err := st.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) do(t testing.TB, method, path, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const mac = "0004f2000001"

// The front ends a Handler is served by: net/http (ServeHTTP) and
// fasthttp (NewFastServer).
const (
	frontNetHTTP = "nethttp"
	frontFast    = "fasthttp"
)

// forEachFront runs test once on each front end.
func forEachFront(t *testing.T, test func(t *testing.T, front string)) {
	for _, front := range []string{frontNetHTTP, frontFast} {
		t.Run(front, func(t *testing.T) { test(t, front) })
	}
}

// testServer is h served on a loopback port by one front end.
type testServer struct {
	URL    string
	client *http.Client
}

func (s *testServer) Client() *http.Client { return s.client }

// startServer serves h on front (over TLS with tc when not nil) until the
// test ends.
func startServer(t testing.TB, front string, h *Handler, tc *tls.Config) *testServer {
	t.Helper()
	if front == frontNetHTTP {
		srv := httptest.NewUnstartedServer(h)
		if tc != nil {
			srv.TLS = tc
			srv.StartTLS()
		} else {
			srv.Start()
		}
		t.Cleanup(srv.Close)
		return &testServer{URL: srv.URL, client: srv.Client()}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{URL: "http://" + ln.Addr().String(), client: &http.Client{}}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
		s.URL = "https://" + ln.Addr().String()
		s.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // the test's own certificate
	}
	srv := NewFastServer(h, nil)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.ShutdownWithContext(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		s.client.CloseIdleConnections()
	})
	return s
}

// dev does a request as the phone mac does once its files gave it its
// provisioning credentials: it answers the digest challenge with them.
func (e *env) dev(t testing.TB, method, path, body string) (int, string) {
	t.Helper()
	d, err := e.st.GetDevice(context.Background(), mac)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	c := &http.Client{Transport: &digest.Transport{Username: d.ProvUser, Password: d.ProvPassword}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestEnrollAndServe(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		code, body := e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": "FileTransport PolycomVVX-VVX_400-UA/5.9.0 Type/Application"})
		if code != 200 || !strings.Contains(body, mac+"-hotdesk.cfg") {
			t.Fatalf("master: %d %s", code, body)
		}
		d, err := e.st.GetDevice(context.Background(), mac)
		if err != nil || d.Status != prov.DeviceNotDeployed || d.Vendor != "polycom" || d.SiteID == 0 || d.ProvPassword == "" {
			t.Fatalf("enrolled device = %+v, %v", d, err)
		}
		code, body = e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil)
		if code != 200 || !strings.Contains(body, `reg.1.auth.password="`+d.SIPPassword+`"`) || !strings.Contains(body, `prov.login.enabled="1"`) {
			t.Fatalf("device file: %d %s", code, body)
		}
		// Handed out once: from now on the file needs the credentials it held.
		if code, again := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil); code != 401 || strings.Contains(again, d.SIPPassword) {
			t.Fatalf("device file fetched again without credentials: %d", code)
		}
		// curl on the same listener, as the phone.
		if _, err := exec.LookPath("curl"); err == nil {
			out, err := exec.Command("curl", "-sf", "--digest", "-u", d.ProvUser+":"+d.ProvPassword,
				e.srv.URL+"/"+mac+"-hotdesk.cfg").Output()
			if err != nil || string(out) != body {
				t.Errorf("curl GET: %v", err)
			}
		} else {
			t.Log("curl not installed (apt-get install curl); curl checks skipped")
		}
	})
}

func TestHostileNames(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		e.do(t, "GET", "/"+mac+".cfg", "", nil)
		for _, p := range []string{"/../../etc/passwd", "/%2e%2e/etc/passwd", "/a%00.cfg", "/a%5cb.cfg", "/%C3%A9.cfg", "//etc/passwd", "/.hidden"} {
			code, _ := e.do(t, "GET", p, "", nil)
			if code != 400 && code != 404 {
				t.Errorf("GET %s = %d", p, code)
			}
		}
		// Same answer for a wrong MAC (enroll deny), an unknown file and a missing upload.
		e2 := newEnvOn(t, front, func(c *Config) { c.Enroll = files.EnrollDeny })
		_, a := e2.do(t, "GET", "/0004f2999999.cfg", "", nil)
		c1, b := e2.do(t, "GET", "/nosuchfile.bin", "", nil)
		c2, c := e2.do(t, "GET", "/0004f2999999-directory.xml", "", nil)
		if a != b || b != c || c1 != 404 || c2 != 404 {
			t.Errorf("not-found answers differ: %q %q %q", a, b, c)
		}
	})
}

func TestDeviceDigest(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		ctx := context.Background()
		e.do(t, "GET", "/"+mac+".cfg", "", nil)
		d, _ := e.st.GetDevice(ctx, mac)
		if _, err := e.st.MarkDeployed(ctx, d.ID, time.Now(), ""); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceChanged, DeviceID: d.ID})
		if code, _ := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil); code != 401 {
			t.Fatalf("deployed device without credentials: %d", code)
		}
		for _, alg := range []string{"MD5", "SHA-256"} {
			if code := e.digestGet(t, "/"+mac+"-hotdesk.cfg", alg, d.ProvUser, d.ProvPassword); code != 200 {
				t.Errorf("%s with device credentials: %d", alg, code)
			}
			if code := e.digestGet(t, "/"+mac+"-hotdesk.cfg", alg, d.ProvUser, "wrong"); code != 401 {
				t.Errorf("%s with a wrong password: %d", alg, code)
			}
		}
		c := &http.Client{Transport: &digest.Transport{Username: d.ProvUser, Password: "wrong"}}
		resp, err := c.Get(e.srv.URL + "/" + mac + "-hotdesk.cfg")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("wrong device password: %d", resp.StatusCode)
		}
		// Another device's file with valid credentials is a plain 404.
		c = &http.Client{Transport: &digest.Transport{Username: d.ProvUser, Password: d.ProvPassword}}
		resp, _ = c.Get(e.srv.URL + "/0004f2000002-hotdesk.cfg")
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("other device's file: %d", resp.StatusCode)
		}
		if _, err := exec.LookPath("curl"); err == nil {
			out, err := exec.Command("curl", "-sf", "--digest", "-u", d.ProvUser+":"+d.ProvPassword, e.srv.URL+"/"+mac+"-hotdesk.cfg").Output()
			if err != nil || !strings.Contains(string(out), "polycomConfig") {
				t.Errorf("curl --digest: %v", err)
			}
		}
	})
}

func TestNativeLogin(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		ctx := context.Background()
		ua := "FileTransport PolycomVVX-VVX_400-UA/5.9.0 (SN:" + mac + ") Type/Application"
		e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": ua})
		u := prov.User{Username: "alice", Status: prov.StatusActive, Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s("alice", "pw1234")}
		if err := e.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		get := func(user, pw string) int {
			tr := &digest.Transport{Username: user, Password: pw}
			req, _ := http.NewRequest("GET", e.srv.URL+"/alice.cfg", nil)
			req.Header.Set("User-Agent", ua)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && !strings.Contains(string(b), `reg.1.auth.userId="s-alice"`) {
				t.Errorf("user.cfg without the session's credentials:\n%s", b)
			}
			return resp.StatusCode
		}
		if c := get("alice", "wrong"); c != 401 {
			t.Errorf("wrong password: %d", c)
		}
		if c := get("nobody", "pw1234"); c != 401 {
			t.Errorf("unknown user: %d", c)
		}
		if c := get("alice", "pw1234"); c != 200 {
			t.Errorf("right password: %d", c)
		}
		if e.logins.calls != 1 {
			t.Errorf("NativeLogin calls = %d", e.logins.calls)
		}
		// The phone writes the user's changes back with the same credentials,
		// also once the device is deployed and its own files need its credentials.
		d, _ := e.st.GetDevice(ctx, mac)
		if _, err := e.st.MarkDeployed(ctx, d.ID, time.Now(), ""); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceChanged, DeviceID: d.ID})
		if c, _ := e.do(t, "PUT", "/alice-phone.cfg", `<polycomConfig/>`, map[string]string{"User-Agent": ua}); c != 401 {
			t.Errorf("anonymous PUT on a deployed device: %d", c)
		}
		put := func(user, pw, path string) int {
			req, _ := http.NewRequest("PUT", e.srv.URL+path, strings.NewReader(`<polycomConfig up.volume.handset="4"/>`))
			req.Header.Set("User-Agent", ua)
			resp, err := (&http.Client{Transport: &digest.Transport{Username: user, Password: pw}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := put("alice", "pw1234", "/alice-phone.cfg"); c != 204 {
			t.Errorf("PUT alice-phone.cfg as alice: %d", c)
		}
		if up, err := e.st.LatestUpload(ctx, "user:alice", "phone.cfg"); err != nil || up.Version != 1 {
			t.Errorf("user upload not stored for the user: %+v %v", up, err)
		}
		// alice's login is no credential for bob's files at all.
		if c := put("alice", "pw1234", "/bob-phone.cfg"); c != 401 {
			t.Errorf("PUT bob-phone.cfg as alice: %d", c)
		}
	})
}

func TestUploads(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		ctx := context.Background()
		e.do(t, "GET", "/"+mac+".cfg", "", nil)
		if code, _ := e.do(t, "PUT", "/"+mac+"-phone.cfg", "<polycomConfig/>", nil); code != 401 {
			t.Fatalf("PUT from a device that never authenticated: %d", code)
		}
		e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil) // hands out the credentials
		good := `<polycomConfig><up up.volume.handset="5"/></polycomConfig>`
		if code, _ := e.dev(t, "PUT", "/"+mac+"-phone.cfg", good); code != 204 {
			t.Fatalf("PUT good: %d", code)
		}
		bad := map[string]string{
			"malformed": `<polycomConfig><up`,
			"oversized": `<polycomConfig><up up.x="` + strings.Repeat("a", 5000) + `"/></polycomConfig>`,
		}
		for name, b := range bad {
			code, _ := e.dev(t, "PUT", "/"+mac+"-phone.cfg", b)
			if code != 400 && code != 413 {
				t.Errorf("%s: %d", name, code)
			}
		}
		u, err := e.st.LatestUpload(ctx, "device:"+mac, "phone.cfg")
		if err != nil || string(u.Data) != good || u.Version != 1 {
			t.Fatalf("after refused uploads: %q v%d %v", u.Data, u.Version, err)
		}
		if code, body := e.dev(t, "GET", "/"+mac+"-phone.cfg", ""); code != 200 || body != good {
			t.Errorf("GET upload: %d %q", code, body)
		}
		if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); !strings.Contains(body, `up.volume.handset="5"`) {
			t.Errorf("upload not merged into the device file: %d", code)
		}
		// Concurrent uploads of the same file: every version whole.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				b := fmt.Sprintf(`<polycomConfig><up up.volume.handset="%d" up.x="%s"/></polycomConfig>`, i, strings.Repeat("z", 100*i))
				e.dev(t, "PUT", "/"+mac+"-phone.cfg", b)
			})
		}
		wg.Wait()
		u, err = e.st.LatestUpload(ctx, "device:"+mac, "phone.cfg")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := files.ParseConfigParams(u.Data); err != nil || u.Version != 9 {
			t.Errorf("latest after concurrent uploads: v%d %v", u.Version, err)
		}
		if _, err := exec.LookPath("curl"); err == nil {
			d, _ := e.st.GetDevice(ctx, mac)
			cmd := exec.Command("curl", "-sf", "--digest", "-u", d.ProvUser+":"+d.ProvPassword, "-T", "-", e.srv.URL+"/"+mac+"-web.cfg")
			cmd.Stdin = strings.NewReader(good)
			if err := cmd.Run(); err != nil {
				t.Errorf("curl PUT: %v", err)
			}
			if u, err := e.st.LatestUpload(ctx, "device:"+mac, "web.cfg"); err != nil || string(u.Data) != good {
				t.Errorf("curl PUT stored %q %v", u.Data, err)
			}
		}
	})
}

func TestRateLimit(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, func(c *Config) { c.FailBurst, c.FailInterval = 5, time.Hour; c.Enroll = files.EnrollDeny })
		codes := map[int]int{}
		for i := range 10 {
			code, _ := e.do(t, "GET", fmt.Sprintf("/0004f200%04x.cfg", i), "", nil)
			codes[code]++
		}
		if codes[404] != 5 || codes[429] != 5 {
			t.Errorf("codes = %v", codes)
		}
		if problems, err := testutil.GatherAndLint(e.reg); err != nil || len(problems) > 0 {
			t.Errorf("metrics lint: %v %v", problems, err)
		}
		if n := testutil.ToFloat64(e.filesMetric(t)); n == 0 {
			t.Error("no requests counted")
		}
	})
}

func (e *env) filesMetric(t *testing.T) prometheus.Collector {
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "hotdesk_prov_requests_total" {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return float64(len(mf.Metric)) })
		}
	}
	t.Fatal("hotdesk_prov_requests_total missing")
	return nil
}

// digestGet answers the server's challenge by hand with algorithm alg.
func (e *env) digestGet(t *testing.T, path, alg, user, pw string) int {
	t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var nonce string
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if strings.Contains(h, "algorithm="+alg+",") {
			_, rest, _ := strings.Cut(h, `nonce="`)
			nonce, _, _ = strings.Cut(rest, `"`)
		}
	}
	if nonce == "" {
		t.Fatalf("no %s challenge: %v", alg, resp.Header)
	}
	h := func(s string) string {
		if alg == "MD5" {
			b := md5.Sum([]byte(s))
			return hex.EncodeToString(b[:])
		}
		b := sha256.Sum256([]byte(s))
		return hex.EncodeToString(b[:])
	}
	ha1 := h(user + ":" + prov.LoginRealm + ":" + pw)
	r := h(ha1 + ":" + nonce + ":00000001:cn:auth:" + h("GET:"+path))
	req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
	req.Header.Set("Authorization", fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="cn", response="%s"`,
		user, prov.LoginRealm, nonce, path, alg, r))
	resp, err = e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPathPrefix(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, func(c *Config) { c.PathPrefix = "/prov" })
		if code, body := e.do(t, "GET", "/prov/"+mac+".cfg", "", nil); code != 200 || !strings.Contains(body, "APPLICATION") {
			t.Errorf("prefixed: %d", code)
		}
		if code, body := e.do(t, "GET", "/prov/"+mac+"-hotdesk.cfg", "", nil); code != 200 || !strings.Contains(body, `/prov"`) {
			t.Errorf("serverName without the prefix: %d\n%s", code, body)
		}
		if code, _ := e.do(t, "GET", "/"+mac+".cfg", "", nil); code != 404 {
			t.Errorf("outside the prefix: %d", code)
		}
	})
}

func TestHTTPSAndRange(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		dir := t.TempDir()
		cfg := DefaultConfig()
		tc, err := TLSConfig(cfg, dir, []string{"prov.example"}, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		tc2, err := TLSConfig(cfg, dir, nil, time.Now)
		if err != nil || string(tc2.Certificates[0].Certificate[0]) != string(tc.Certificates[0].Certificate[0]) {
			t.Fatalf("self-signed certificate not reused: %v", err)
		}
		e := newEnvOn(t, front, func(c *Config) { c.StaticDir = dir })
		srv := startServer(t, front, e.h, tc)
		req, _ := http.NewRequest("GET", srv.URL+"/"+SelfSignedCert, nil)
		req.Header.Set("Range", "bytes=0-9")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || string(b) != "-----BEGIN" {
			t.Errorf("range over HTTPS: %d %q", resp.StatusCode, b)
		}
		resp, err = srv.Client().Get(srv.URL + "/" + mac + ".cfg")
		if err != nil {
			t.Fatal(err)
		}
		b, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "APPLICATION") {
			t.Errorf("https master: %d", resp.StatusCode)
		}
	})
}

// TestNonceExpiry: an answer with a nonce older than nonce_ttl is refused
// with stale=true, so the phone answers the fresh nonce without asking its
// user; the fresh one works.
func TestNonceExpiry(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		e.do(t, "GET", "/"+mac+".cfg", "", nil)
		e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil) // hands out the credentials
		d, _ := e.st.GetDevice(context.Background(), mac)
		path := "/" + mac + "-hotdesk.cfg"
		answer := func(chal *digest.Challenge) *http.Response {
			t.Helper()
			cred, err := digest.Digest(chal, digest.Options{Method: "GET", URI: path, Username: d.ProvUser,
				Password: d.ProvPassword, Count: 1, Cnonce: "0a4f113b"})
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
			req.Header.Set("Authorization", cred.String())
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp
		}
		resp, err := e.srv.Client().Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		chal, err := digest.ParseChallenge(resp.Header.Values("WWW-Authenticate")[0])
		if err != nil || chal.Stale {
			t.Fatalf("first challenge %+v: %v", chal, err)
		}
		e.skew.Add(int64(DefaultConfig().NonceTTL + time.Second))
		resp = answer(chal)
		if resp.StatusCode != 401 {
			t.Fatalf("answer with an expired nonce = %d", resp.StatusCode)
		}
		fresh, err := digest.ParseChallenge(resp.Header.Values("WWW-Authenticate")[0])
		if err != nil || !fresh.Stale || fresh.Nonce == chal.Nonce {
			t.Fatalf("challenge after an expired nonce %+v: %v, want a fresh stale one", fresh, err)
		}
		// A forged nonce is not stale: the phone must not retry it silently.
		forged := *fresh
		forged.Nonce = fresh.Nonce[:len(fresh.Nonce)-2] + "AA"
		if resp := answer(&forged); resp.StatusCode != 401 || strings.Contains(resp.Header.Get("WWW-Authenticate"), "stale") {
			t.Fatalf("forged nonce = %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if resp := answer(fresh); resp.StatusCode != 200 {
			t.Fatalf("answer with the fresh nonce = %d", resp.StatusCode)
		}
	})
}

func FuzzParseDigest(f *testing.F) {
	f.Add(`Digest username="a", realm="hotdesk", nonce="n", uri="/x", response="r", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username="a`)
	f.Fuzz(func(t *testing.T, h string) {
		var c digestserver.Answer
		if parseDigest(h, &c) {
			if c.URI == "" || !strings.EqualFold(c.Algorithm, "MD5") && !strings.EqualFold(c.Algorithm, "SHA-256") {
				t.Fatalf("%q accepted as %+v", h, c)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	cases := map[string]func(*Config){
		"enroll:":           func(c *Config) { c.Enroll = "maybe" },
		"path_prefix:":      func(c *Config) { c.PathPrefix = "p/" },
		"http_listen:":      func(c *Config) { c.HTTPListen = "nope" },
		"tls_cert:":         func(c *Config) { c.TLSCert = "x" },
		"base_url:":         func(c *Config) { c.BaseURL = "ftp://x" },
		"max_upload_bytes:": func(c *Config) { c.MaxUploadBytes = 0 },
	}
	for want, mut := range cases {
		c := DefaultConfig()
		mut(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
}

// A security review found unsalted MD5/SHA-256 HA1s of login passwords
// sat beside the argon2id hash (a leaked database gave every password for
// a table lookup). Each password now has its own random realm: two users
// with one password share no HA1, none is H(user:hotdesk:password), and
// the native door challenges in the user's realm — an unknown user's
// looks the same — and still logs the user in.
func TestLoginHA1sAreSaltedPerPassword(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		a, b := prov.LoginHA1s("alice", "same-pw"), prov.LoginHA1s("bob", "same-pw")
		a2 := prov.LoginHA1s("alice", "same-pw")
		for _, alg := range []string{"MD5", "SHA-256"} {
			if a[alg] == auth.DigestHA1(alg, "alice", prov.LoginRealm, "same-pw") || a[alg] == a2[alg] || a[alg] == b[alg] {
				t.Fatalf("%s HA1 not salted: %v %v", alg, a, a2)
			}
			if a[alg] != auth.DigestHA1(alg, "alice", a["realm"], "same-pw") {
				t.Fatalf("%s HA1 does not verify in its realm", alg)
			}
		}
		e := newEnvOn(t, front, nil)
		ctx := context.Background()
		u := prov.User{Username: "alice", Status: prov.StatusActive, Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s("alice", "pw1234")}
		if err := e.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		realmOf := func(path string) string {
			resp, err := e.srv.Client().Get(e.srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			h := resp.Header.Get("WWW-Authenticate")
			_, r, _ := strings.Cut(h, `realm="`)
			r, _, _ = strings.Cut(r, `"`)
			return r
		}
		if got := realmOf("/alice.cfg"); got != u.LoginHA1["realm"] {
			t.Fatalf("alice.cfg challenged in %q, want her realm %q", got, u.LoginHA1["realm"])
		}
		ghost := realmOf("/ghost.cfg")
		if ghost == prov.LoginRealm || len(ghost) != len(u.LoginHA1["realm"]) || ghost != realmOf("/ghost.cfg") {
			t.Fatalf("unknown user's realm %q tells them apart from %q", ghost, u.LoginHA1["realm"])
		}
		ua := "FileTransport PolycomVVX-VVX_400-UA/5.9.0 (SN:" + mac + ") Type/Application"
		e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": ua})
		req, _ := http.NewRequest("GET", e.srv.URL+"/alice.cfg", nil)
		req.Header.Set("User-Agent", ua)
		resp, err := (&http.Client{Transport: &digest.Transport{Username: "alice", Password: "pw1234"}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("native login with the salted HA1s = %d", resp.StatusCode)
		}
	})
}

// A security review found (low) provisioning digest nonces were not
// replay-tracked, so a request captured on the LAN (plain HTTP) could be
// sent again within the nonce's lifetime. An answer is now good once.
func TestDigestAnswerReplayIsRefused(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		e.do(t, "GET", "/"+mac+".cfg", "", nil)
		e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil) // hands out the credentials
		d, _ := e.st.GetDevice(context.Background(), mac)
		// The phone's request, as captured: a challenge, then the answer.
		resp, err := e.srv.Client().Get(e.srv.URL + "/" + mac + "-hotdesk.cfg")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		chal, err := digest.ParseChallenge(resp.Header.Values("WWW-Authenticate")[1]) // MD5
		if err != nil {
			t.Fatal(err)
		}
		cred, err := digest.Digest(chal, digest.Options{Method: "GET", URI: "/" + mac + "-hotdesk.cfg",
			Username: d.ProvUser, Password: d.ProvPassword, Count: 1, Cnonce: "0a4f113b"})
		if err != nil {
			t.Fatal(err)
		}
		hdr := map[string]string{"Authorization": cred.String()}
		if code, body := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", hdr); code != 200 || !strings.Contains(body, d.SIPPassword) {
			t.Fatalf("the phone's answer = %d", code)
		}
		if code, body := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", hdr); code != 401 || strings.Contains(body, d.SIPPassword) {
			t.Fatalf("the same answer again = %d", code)
		}
		// The phone's next request with the same nonce counts on: accepted.
		cred2, _ := digest.Digest(chal, digest.Options{Method: "GET", URI: "/" + mac + "-hotdesk.cfg",
			Username: d.ProvUser, Password: d.ProvPassword, Count: 2, Cnonce: "0a4f113b"})
		if code, _ := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", map[string]string{"Authorization": cred2.String()}); code != 200 {
			t.Fatalf("next nc = %d", code)
		}
	})
}

// The site's default user (a common-area profile on
// shared phones) is logged in by the phone itself. Its configuration
// carries prov.login.defaultPassword — derived for it, never the user's own
// password — and the native door accepts that for the default user only.
func TestDefaultUserLogsInWithTheRenderedPassword(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		ctx := context.Background()
		hash, err := auth.HashPassword("lobby-own-pw", auth.Argon2Params{Memory: 64, Time: 1, Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		lobby := prov.User{Username: "lobby", Status: prov.StatusActive, Kind: prov.KindCommonArea, PasswordHash: hash,
			LoginHA1: prov.LoginHA1s("lobby", "lobby-own-pw"), ResponsibleEmail: "it@example.org"}
		other := prov.User{Username: "dana", Status: prov.StatusActive, Kind: prov.KindPerson, PasswordHash: hash,
			LoginHA1: prov.LoginHA1s("dana", "lobby-own-pw")}
		for _, u := range []*prov.User{&lobby, &other} {
			if err := e.st.CreateUser(ctx, u); err != nil {
				t.Fatal(err)
			}
		}
		sites, err := e.st.ListSites(ctx)
		if err != nil || len(sites) != 1 {
			t.Fatalf("sites: %v %v", sites, err)
		}
		site := sites[0]
		site.Login.DefaultUser = "lobby"
		if err := e.st.UpdateSite(ctx, &site); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventSiteChanged})
		e.do(t, "GET", "/"+mac+".cfg", "", nil)
		_, body := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil)
		m := regexp.MustCompile(`prov.login.defaultPassword="([^"]*)"`).FindStringSubmatch(body)
		if m == nil || m[1] == "" || m[1] == "lobby-own-pw" {
			t.Fatalf("default password rendered as %q", m)
		}
		get := func(user, pw string) int {
			req, _ := http.NewRequest("GET", e.srv.URL+"/"+user+".cfg", nil)
			req.Header.Set("User-Agent", "FileTransport PolycomVVX-VVX_400-UA/5.9.0 (SN:"+mac+") Type/Application")
			resp, err := (&http.Client{Transport: &digest.Transport{Username: user, Password: pw}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := get("lobby", m[1]); code != 200 {
			t.Fatalf("the phone's default login = %d", code)
		}
		d, _ := e.st.GetDevice(ctx, mac)
		if ss, _ := e.st.ListSessions(ctx, prov.SessionQuery{DeviceID: d.ID, ActiveOnly: true}); len(ss) != 1 {
			t.Fatalf("default login made %d sessions", len(ss))
		}
		if code := get("dana", m[1]); code != 401 {
			t.Fatalf("the default password for another user = %d, want 401", code)
		}
		if code := get("lobby", "wrong"); code != 401 {
			t.Fatalf("a wrong default password = %d, want 401", code)
		}
	})
}

// Review finding: with a user-profile directory the phone logs in by
// fetching <dir>/<user>.cfg; the native door must take it there too.
func TestNativeLoginInTheProfileDirectory(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := newEnvOn(t, front, nil)
		ctx := context.Background()
		u := prov.User{Username: "alice", Status: prov.StatusActive, Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s("alice", "pw1234")}
		if err := e.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		sites, _ := e.st.ListSites(ctx)
		site := sites[0]
		site.ProfileDirs.UserProfiles = "profiles"
		if err := e.st.UpdateSite(ctx, &site); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventSiteChanged})
		ua := "FileTransport PolycomVVX-VVX_400-UA/5.9.0 (SN:" + mac + ") Type/Application"
		e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": ua})
		req, _ := http.NewRequest("GET", e.srv.URL+"/profiles/alice.cfg", nil)
		req.Header.Set("User-Agent", ua)
		resp, err := (&http.Client{Transport: &digest.Transport{Username: "alice", Password: "pw1234"}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "sesspw") {
			t.Fatalf("native login in profiles/ = %d\n%s", resp.StatusCode, body)
		}
	})
}
