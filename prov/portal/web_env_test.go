package portal

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
)

// webEnv is the portal over the API test env's real SQLite store, with a
// clock the test may move.
type webEnv struct {
	*env
	web   *web
	wsrv  *httptest.Server
	clock *testClock
}

type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func newWebEnv(t testing.TB, mod ...func(*WebConfig)) *webEnv {
	t.Helper()
	e := newEnv(t)
	we := &webEnv{env: e, clock: &testClock{}}
	cfg := DefaultWebConfig()
	for _, m := range mod {
		m(&cfg)
	}
	shared := DefaultConfig()
	shared.CustomFields = []string{"Department"}
	var err error
	we.web, err = newWeb(cfg, shared, Deps{Store: e.st, Directory: prov.NewDirectory(e.st, e.ev, time.Now),
		Sessions: e.sess, Events: e.ev, Registrar: e.reg, Registrations: e.regs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: e.prom, Now: we.clock.now})
	if err != nil {
		t.Fatal(err)
	}
	we.wsrv = httptest.NewServer(we.web)
	t.Cleanup(we.wsrv.Close)
	return we
}

// portalUser creates a user with the portal on and the given access to
// every menu, a number and one contact.
func (we *webEnv) portalUser(name, number string) prov.User {
	we.t.Helper()
	we.user(name, number)
	u, err := we.st.GetUser(context.Background(), name)
	if err != nil {
		we.t.Fatal(err)
	}
	u.Portal = prov.PortalAccess{Enabled: true, Profile: prov.AccessWrite, CallHandling: prov.AccessWrite,
		Directory: prov.AccessWrite, Buttons: prov.AccessWrite, WizardDone: true}
	if err := we.st.UpdateUser(context.Background(), &u); err != nil {
		we.t.Fatal(err)
	}
	if err := we.st.ReplaceContacts(context.Background(), u.ID, []prov.Contact{{UserID: u.ID, Position: 1,
		FirstName: "Bob", LastName: "Builder", Number: "2002"}}); err != nil {
		we.t.Fatal(err)
	}
	return u
}

// setAccess sets one menu's access level directly in the store.
func (we *webEnv) setAccess(name string, m menu, a prov.Access) {
	we.t.Helper()
	u, err := we.st.GetUser(context.Background(), name)
	if err != nil {
		we.t.Fatal(err)
	}
	switch m {
	case menuProfile:
		u.Portal.Profile = a
	case menuCallHandling:
		u.Portal.CallHandling = a
	case menuDirectory:
		u.Portal.Directory = a
	case menuButtons:
		u.Portal.Buttons = a
	case menuReporting:
		u.Portal.Reporting = a
	}
	if err := we.st.UpdateUser(context.Background(), &u); err != nil {
		we.t.Fatal(err)
	}
}

// browser is Go's HTTP client with a cookie jar, not following redirects,
// so a test sees every status.
type browser struct {
	t    testing.TB
	base string
	c    *http.Client
}

func (we *webEnv) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		we.t.Fatal(err)
	}
	return &browser{t: we.t, base: we.wsrv.URL, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// browserFrom is a browser on another host: its connections leave from ip
// (any 127.0.0.0/8 address reaches the test server on loopback).
func (we *webEnv) browserFrom(ip string) *browser {
	b := we.browser()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	b.c.Transport = &http.Transport{DialContext: d.DialContext}
	return b
}

type page2 struct {
	code int
	loc  string
	body string
	hdr  http.Header
}

func (b *browser) get(path string) page2 {
	b.t.Helper()
	res, err := b.c.Get(b.base + path)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(res)
}

func (b *browser) post(path string, form url.Values) page2 {
	b.t.Helper()
	res, err := b.c.PostForm(b.base+path, form)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(res)
}

func (b *browser) read(res *http.Response) page2 {
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return page2{code: res.StatusCode, loc: res.Header.Get("Location"), body: string(body), hdr: res.Header}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the token of the forms on the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	p := b.get(path)
	m := csrfRE.FindStringSubmatch(p.body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s (%d)", path, p.code)
	}
	return m[1]
}

// signIn signs in through the form and returns the answer to the POST.
func (b *browser) signIn(name, pass string) page2 {
	b.t.Helper()
	tok := b.csrf("/")
	return b.post("/login", url.Values{"csrf": {tok}, "username": {name}, "password": {pass}})
}

func (b *browser) mustSignIn(name, pass, wantLoc string) {
	b.t.Helper()
	p := b.signIn(name, pass)
	if p.code != http.StatusSeeOther || p.loc != wantLoc {
		b.t.Fatalf("sign-in %s: %d to %q, want 303 to %q: %s", name, p.code, p.loc, wantLoc, excerpt(p.body))
	}
}

// submit posts form to path with the CSRF token of the page at from.
func (b *browser) submit(from, path string, form url.Values) page2 {
	b.t.Helper()
	form.Set("csrf", b.csrf(from))
	return b.post(path, form)
}

func excerpt(s string) string {
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if len(s) > 600 {
		s = s[:600]
	}
	return s
}
