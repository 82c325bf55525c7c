package daemon

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// elsewhere is a client whose connections come from 127.0.0.2: another
// host on the office LAN, not the phone (which registers from 127.0.0.1).
func elsewhere(next func(http.RoundTripper) http.RoundTripper) *http.Client {
	var tr http.RoundTripper = &http.Transport{DialContext: (&net.Dialer{Timeout: 5 * time.Second,
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}
	if next != nil {
		tr = next(tr)
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// TestLoginOnlyAtThePhone performs the takeover a security review found: bob is logged in
// on a phone, and alice, from her own PC, logs herself in on it through
// the user API, the native door with a spoofed User-Agent, and the phone
// page's link — each would log bob out. A user may log in only at the
// phone; an admin may log anyone in anywhere.
func TestLoginOnlyAtThePhone(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	dev, phone := lockedPhone(t, a, addrs, "0004f2000001")
	waitDeployed(t, a, dev.MAC)
	link := files.PhonePageToken(dev)
	page := "http://" + addrs.HTTP + "/" + files.PhonePagesPath + "?mac=" + dev.MAC + "&t=" + link
	pc := elsewhere(nil)

	// The admin may log a user in from anywhere.
	mark := phone.mark()
	code, _ := jsonCall(t, pc, "POST", "http://"+addrs.Admin+"/api/v1/sessions",
		`{"device":"`+dev.MAC+`","user":"bob"}`, "admin", "test-admin-pw")
	if code != 201 {
		t.Fatalf("admin login from elsewhere = %d, want 201", code)
	}
	phone.waitResync(mark)
	phone.settle([]string{"1002"})
	bob, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID)
	if !ok {
		t.Fatal("bob is not logged in")
	}
	stillBob := func(door prov.Door) {
		t.Helper()
		if s, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID); !ok || s.ID != bob.ID {
			t.Fatalf("%s from elsewhere took the phone over: %+v", door, s)
		}
	}

	// The user API, with alice's own valid password.
	if code, body := jsonCall(t, pc, "POST", "http://"+addrs.Admin+"/api/v1/sessions",
		`{"device":"`+dev.MAC+`","user":"alice","password":"alice-demo"}`, "", ""); code != 403 {
		t.Fatalf("user API login from elsewhere = %d, want 403: %s", code, body)
	}
	stillBob("user API")

	// The native door: alice's digest login with the phone's User-Agent.
	native := elsewhere(func(tr http.RoundTripper) http.RoundTripper {
		return uaTransport{&digest.Transport{Username: "alice", Password: "alice-demo", Transport: tr}}
	})
	if code, _ := fetch(t, native, "GET", "http://"+addrs.HTTP+"/alice.cfg", nil); code == 200 {
		t.Fatal("native login with a spoofed User-Agent from elsewhere = 200")
	}
	stillBob("native login")

	// The phone page: its link shows the page anywhere, but its forms'
	// login and logout work only at the phone.
	code, body := fetch(t, pc, "POST", phoneForm(t, pc, page, files.PhoneFormLogin),
		url.Values{"user": {"alice"}, "password": {"alice-demo"}})
	if code != 200 || !strings.Contains(body, "not allowed here") {
		t.Fatalf("phone-page login from elsewhere = %d\n%s", code, body)
	}
	stillBob("phone-page login")
	if code, _ := fetch(t, pc, "POST", phoneForm(t, pc, page, files.PhoneFormLogout), url.Values{}); code != 403 {
		t.Fatalf("phone-page logout from elsewhere = %d, want 403", code)
	}
	stillBob("phone-page logout")
	if n := metricValue(t, a, "hotdesk_prov_not_at_phone_total"); n < 3 {
		t.Fatalf("refusals counted: %v, want at least 3", n)
	}

	// At the phone itself (its own address), the same logins work.
	mark = phone.mark()
	if code := phone.nativeLogin("alice", "alice-demo"); code != 200 {
		t.Fatalf("native login at the phone = %d", code)
	}
	if s, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID); !ok || s.Door != prov.DoorNative {
		t.Fatalf("native login at the phone: %+v", s)
	}
	_ = mark
}

// TestPhonePageTokens performs the leaked-link attack: the page's link
// (in every config file) used to log out whoever was at the phone, for
// ever, and looking at the page kept an idle session alive. Now the link
// only shows the page; each form has its own token, for that form and
// phone, expiring after files.PhoneFormTTL.
func TestPhonePageTokens(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	dev, phone := lockedPhone(t, a, addrs, "0004f2000001")
	other, err := a.store.GetDevice(ctx, "0004f2000002")
	if err != nil {
		t.Fatal(err)
	}
	waitDeployed(t, a, dev.MAC)
	mark := phone.mark()
	if code := phone.nativeLogin("alice", "alice-demo"); code != 200 {
		t.Fatalf("native login = %d", code)
	}
	_ = mark
	sess, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID)
	if !ok {
		t.Fatal("alice is not logged in")
	}
	c := &http.Client{Timeout: 10 * time.Second} // from the phone's own address
	base := "http://" + addrs.HTTP + "/" + files.PhonePagesPath
	logout := func(t string) string { return base + "/logout?mac=" + dev.MAC + "&t=" + url.QueryEscape(t) }
	now := time.Now()
	for _, tc := range []struct{ name, token string }{
		{"the page link", files.PhonePageToken(dev)},
		{"a login-form token", files.PhoneFormToken(dev, files.PhoneFormLogin, now)},
		{"an expired logout token", files.PhoneFormToken(dev, files.PhoneFormLogout, now.Add(-files.PhoneFormTTL-time.Minute))},
		{"another phone's logout token", files.PhoneFormToken(other, files.PhoneFormLogout, now)},
		{"a forged token", "9999999999.0123456789abcdef01234567"},
	} {
		if code, _ := fetch(t, c, "POST", logout(tc.token), url.Values{}); code != 404 {
			t.Fatalf("logout with %s = %d, want 404", tc.name, code)
		}
		if s, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID); !ok || s.ID != sess.ID {
			t.Fatalf("logout with %s ended the session", tc.name)
		}
	}

	// Looking at the page is not activity: an idle session stays idle.
	idle := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	if err := a.store.TouchSession(ctx, sess.ID, idle); err != nil {
		t.Fatal(err)
	}
	link := base + "?mac=" + dev.MAC + "&t=" + files.PhonePageToken(dev)
	for range 3 {
		if code, _ := fetch(t, c, "GET", link, nil); code != 200 {
			t.Fatalf("page = %d", code)
		}
	}
	if got, _ := a.store.GetSession(ctx, sess.ID); !got.LastActivity.Equal(idle) {
		t.Fatalf("a GET of the page moved the last activity to %v", got.LastActivity)
	}

	// The logout form's own fresh token, from the phone, works.
	mark = phone.mark()
	if code, body := fetch(t, c, "POST", phoneForm(t, c, link, files.PhoneFormLogout), url.Values{}); code != 200 ||
		!strings.Contains(body, "Logged out") {
		t.Fatalf("logout = %d\n%s", code, body)
	}
	phone.waitResync(mark)
}

// jsonCall sends body as JSON, with Basic credentials when user is set.
func jsonCall(t *testing.T, c *http.Client, method, u, body, user, pass string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b := new(strings.Builder)
	_, _ = io.Copy(b, res.Body)
	return res.StatusCode, b.String()
}

// metricValue sums every sample of the counter name in the daemon's registry.
func metricValue(t *testing.T, a *app, name string) float64 {
	t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// TestMetricsProtected: with admin.metrics set, a scrape without the
// token or credentials gets 401 (/metrics was open to the LAN);
// with a listener of its own, /metrics leaves the admin listener.
func TestMetricsProtected(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Admin.Metrics = MetricsConfig{Listen: "127.0.0.1:0", BearerToken: "scrape-token-0123456789",
		Username: "prom", Password: "prom-secret-pw"}
	addrs, _ := startDaemon(t, cfg, Options{})
	if addrs.Metrics == "" {
		t.Fatal("no metrics listener")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	scrape := func(base string, set func(*http.Request)) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+base+"/metrics", nil)
		if set != nil {
			set(req)
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	for _, tc := range []struct {
		name string
		set  func(*http.Request)
		want int
	}{
		{"no credentials", nil, 401},
		{"wrong token", bearer("scrape-token-0123456788"), 401},
		{"wrong password", func(r *http.Request) { r.SetBasicAuth("prom", "nope") }, 401},
		{"token", bearer("scrape-token-0123456789"), 200},
		{"basic", func(r *http.Request) { r.SetBasicAuth("prom", "prom-secret-pw") }, 200},
	} {
		if got := scrape(addrs.Metrics, tc.set); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if got := scrape(addrs.Admin, bearer("scrape-token-0123456789")); got == 200 {
		t.Error("/metrics still served on the admin listener")
	}
}
