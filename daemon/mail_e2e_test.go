package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"html"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/mail/mailpittest"
)

// browser is a cookie-keeping client that does not follow redirects.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var (
	csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	linkRE = regexp.MustCompile(`http://\S+/password\?token=[A-Za-z0-9_%-]+`)
)

// formCSRF opens a public page and returns its form token.
func formCSRF(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	code, body := fetch(t, c, "GET", u, nil)
	m := csrfRE.FindStringSubmatch(body)
	if code != 200 || m == nil {
		t.Fatalf("GET %s = %d, no form token:\n%s", u, code, body)
	}
	return m[1]
}

// signIn signs in on the portal and returns where it sent the browser.
func signIn(t *testing.T, c *http.Client, base, user, pass string) (int, string) {
	t.Helper()
	tok := formCSRF(t, c, base+"/")
	req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(url.Values{"csrf": {tok},
		"username": {user}, "password": {pass}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

func mailLink(t *testing.T, m mailpittest.Message) string {
	t.Helper()
	l := linkRE.FindString(m.Text)
	if l == "" {
		t.Fatalf("no link in %q", m.Text)
	}
	return l
}

// setPassword opens a password link and submits pw.
func setPassword(t *testing.T, c *http.Client, link, pw string) (int, string) {
	t.Helper()
	tok := formCSRF(t, c, link)
	u, _ := url.Parse(link)
	return fetch(t, c, "POST", u.Scheme+"://"+u.Host+prov.PasswordPath, url.Values{"csrf": {tok},
		"token": {u.Query().Get("token")}, "password": {pw}, "confirm": {pw}})
}

// TestMailPasswordLinks: with mail on, a user created with an e-mail
// address gets a welcome message in their language from a real SMTP
// server; its link sets the password once (then sign-in works, reuse is
// refused); "forgot password" answers the same for an unknown address and
// sends nothing to it; an admin's reset link ends the user's portal
// sessions; an expired link says so.
func TestMailPasswordLinks(t *testing.T) {
	mp := mailpittest.Start(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminAddr := l.Addr().String()
	l.Close()
	base := "http://" + adminAddr
	cfg, err := Parse([]byte(`
data_dir: ` + t.TempDir() + `
admin: {listen: "` + adminAddr + `", initial_password: "test-admin-pw", web: {forgot_rate: 3}}
provisioning: {http_listen: "127.0.0.1:0", tftp_listen: ""}
sip: {listen: ["udp://127.0.0.1:0"], domain: test.lan}
mail: {host: 127.0.0.1, port: ` + strconv.Itoa(mp.Port) + `, tls: none, from: "Hotdesk <hotdesk@example.test>",
  base_url: "` + base + `/", retry_backoff: 10ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	var a *app
	_, _ = startDaemon(t, cfg, Options{onBuilt: func(x *app) { a = x }})
	api := &http.Client{Timeout: 30 * time.Second}

	code, body := jsonCall(t, api, "POST", base+"/api/v1/users", `{"username":"zoe","email":"zoe@example.test",
		"first_name":"Zoë","last_name":"Weiß","language":"de","numbers":["2001"],"portal":{"enabled":true}}`,
		"admin", "test-admin-pw")
	if code != 201 {
		t.Fatalf("create user = %d %s", code, body)
	}
	welcome := mp.Wait(t, "zoe@example.test", 1)
	if welcome.Subject != "Willkommen bei Ihrem Telefonkonto" || !strings.Contains(welcome.Text, "Hallo Zoë Weiß") ||
		!strings.Contains(welcome.Text, "Benutzername lautet: zoe") {
		t.Fatalf("welcome: %q\n%s", welcome.Subject, welcome.Text)
	}
	link := mailLink(t, welcome)
	if !strings.HasPrefix(link, base+prov.PasswordPath+"?token=") {
		t.Fatalf("link %q does not open this portal's %s", link, prov.PasswordPath)
	}

	// The password policy applies on the page.
	c := browser(t)
	tok := formCSRF(t, c, link)
	lu, _ := url.Parse(link)
	code, body = fetch(t, c, "POST", base+prov.PasswordPath, url.Values{"csrf": {tok},
		"token": {lu.Query().Get("token")}, "password": {"abc"}, "confirm": {"abc"}})
	if code != 400 || !strings.Contains(body, "at least 6 characters") {
		t.Fatalf("short password = %d\n%s", code, body)
	}
	if code, body = setPassword(t, c, link, "zoe-new-pass"); code != 200 || !strings.Contains(body, "Your password is set") {
		t.Fatalf("set password = %d\n%s", code, body)
	}
	if code, loc := signIn(t, browser(t), base, "zoe", "zoe-new-pass"); code != 303 || !strings.HasPrefix(loc, "/me/") {
		t.Fatalf("sign-in with the new password = %d → %q", code, loc)
	}
	// The link works once.
	code, body = fetch(t, browser(t), "GET", link, nil)
	if code != 410 || !strings.Contains(html.UnescapeString(body), "already been used") {
		t.Fatalf("reused link = %d\n%s", code, body)
	}

	// Forgot password: the same answer for an unknown address and a real
	// one; only the real one gets mail.
	forgot := func(login string) (int, string) {
		c := browser(t)
		tok := formCSRF(t, c, base+"/forgot")
		return fetch(t, c, "POST", base+"/forgot", url.Values{"csrf": {tok}, "login": {login}})
	}
	codeUnknown, bodyUnknown := forgot("nobody@example.test")
	a.svc.links.Wait() // worked in the background; done before the next
	codeKnown, bodyKnown := forgot("ZOE@example.test")
	if codeUnknown != 200 || codeKnown != 200 || bodyUnknown != bodyKnown {
		t.Fatalf("forgot: unknown %d, known %d; bodies equal: %v\n%s", codeUnknown, codeKnown, bodyUnknown == bodyKnown,
			bodyUnknown)
	}
	reset := mp.Wait(t, "zoe@example.test", 2)
	if reset.Subject != "Neues Passwort festlegen" {
		t.Fatalf("reset subject %q", reset.Subject)
	}
	// One worker sends in order: the unknown address's mail, had there been
	// one, would have been queued and arrived first.
	if n := len(mp.To(t, "nobody@example.test")); n != 0 {
		t.Fatalf("%d messages to an address no user has", n)
	}
	// Asked again at once (from anywhere): answered alike, nothing sent
	// (prov.ForgotInterval), so no inbox is flooded.
	if code, body := forgot("zoe"); code != 200 || body != bodyKnown {
		t.Fatalf("third forgot = %d", code)
	}
	if code, _ := forgot("zoe"); code != 429 {
		t.Fatalf("fourth forgot from one source within the hour = %d, want 429", code)
	}

	// An admin's reset link (API); using it ends the user's portal sessions.
	signedIn := browser(t)
	if code, _ := signIn(t, signedIn, base, "zoe", "zoe-new-pass"); code != 303 {
		t.Fatalf("sign-in = %d", code)
	}
	if code, body := jsonCall(t, api, "POST", base+"/api/v1/users/zoe/password-link", "", "admin", "test-admin-pw"); code != 202 ||
		!strings.Contains(body, `"to":"zoe@example.test"`) {
		t.Fatalf("password-link = %d %s", code, body)
	}
	byAdmin := mp.Wait(t, "zoe@example.test", 3)
	if code, _ := setPassword(t, browser(t), mailLink(t, byAdmin), "zoe-third-pass"); code != 200 {
		t.Fatalf("admin's link = %d", code)
	}
	if code, loc := fetchLoc(t, signedIn, base+"/me/"); code != 303 || !strings.HasPrefix(loc, "/?next=") {
		t.Fatalf("old portal session after the reset: %d → %q, want a redirect to sign-in", code, loc)
	}
	// Setting a password spent the other links (the forgot-password one).
	if code, _ := fetch(t, browser(t), "GET", mailLink(t, reset), nil); code != 410 {
		t.Fatalf("an older link after the password was set = %d, want 410", code)
	}

	// A link for someone who is not there: 404.
	if code, body := jsonCall(t, api, "POST", base+"/api/v1/users/nobody/password-link", "", "admin", "test-admin-pw"); code != 404 {
		t.Fatalf("password-link for an unknown user = %d %s", code, body)
	}

	// An expired link says so.
	secret := "expired-link-secret"
	h := sha256.Sum256([]byte(secret))
	u, err := a.store.GetUser(context.Background(), "zoe")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := a.store.CreatePasswordToken(context.Background(), &prov.PasswordToken{UserID: u.ID,
		Hash: hex.EncodeToString(h[:]), Purpose: prov.LinkReset, CreatedAt: now.Add(-2 * time.Hour),
		ExpiresAt: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	code, body = fetch(t, browser(t), "GET", base+prov.PasswordPath+"?token="+secret, nil)
	if code != 410 || !strings.Contains(body, "expired") {
		t.Fatalf("expired link = %d\n%s", code, body)
	}
	if code, _ := fetch(t, browser(t), "GET", base+prov.PasswordPath+"?token=made-up", nil); code != 404 {
		t.Fatalf("made-up link = %d, want 404", code)
	}

	// The admin portal: creating a user with an address sends the welcome
	// (in Spanish here), and "Send password link" sends a reset link.
	adm := browser(t)
	if code, loc := signIn(t, adm, base, "admin", "test-admin-pw"); code != 303 || loc != "/admin/" {
		t.Fatalf("admin sign-in = %d → %q", code, loc)
	}
	tok = formCSRF(t, adm, base+"/admin/users/new")
	code, body = fetch(t, adm, "POST", base+"/admin/users", url.Values{"csrf": {tok}, "username": {"pilar"},
		"first_name": {"Pilar"}, "last_name": {"Núñez"}, "email": {"pilar@example.test"}, "language": {"es"},
		"kind": {"person"}, "directory_scope": {"all"}})
	if code != 303 {
		t.Fatalf("portal create user = %d\n%s", code, body)
	}
	if m := mp.Wait(t, "pilar@example.test", 1); m.Subject != "Bienvenido a su cuenta telefónica" {
		t.Fatalf("portal welcome subject %q", m.Subject)
	}
	code, body = fetch(t, adm, "GET", base+"/admin/users/zoe", nil)
	if code != 200 || !strings.Contains(body, "Send password link") {
		t.Fatalf("user page = %d, no Send password link button", code)
	}
	tok = csrfRE.FindStringSubmatch(body)[1]
	if code, _ := fetch(t, adm, "POST", base+"/admin/users/zoe/password-link", url.Values{"csrf": {tok}}); code != 303 {
		t.Fatalf("portal Send password link = %d", code)
	}
	if m := mp.Wait(t, "zoe@example.test", 4); m.Subject != "Neues Passwort festlegen" {
		t.Fatalf("portal reset subject %q", m.Subject)
	}

	a.svc.links.Wait()
	if n := len(mp.To(t, "zoe@example.test")); n != 4 {
		t.Errorf("zoe got %d messages, want 4 (welcome, forgot, 2 admin)", n)
	}
	if n := metricValue(t, a, "hotdesk_mail_sent_total"); n != 5 {
		t.Errorf("hotdesk_mail_sent_total sums to %v, want 5 (2 welcome, 1 forgot, 2 admin)", n)
	}
}

func fetchLoc(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

// TestMailOff: without mail.host nothing offers or sends links.
func TestMailOff(t *testing.T) {
	addrs, _ := startDaemon(t, testConfig(t, t.TempDir()), Options{})
	base := "http://" + addrs.Admin
	c := browser(t)
	if code, body := fetch(t, c, "GET", base+"/", nil); code != 200 || strings.Contains(body, "/forgot") {
		t.Fatalf("sign-in page = %d, offers forgot password: %v", code, strings.Contains(body, "/forgot"))
	}
	if code, _ := fetch(t, c, "GET", base+"/forgot", nil); code != 404 {
		t.Fatalf("/forgot with mail off = %d, want 404", code)
	}
	if code, body := jsonCall(t, c, "POST", base+"/api/v1/users/anyone/password-link", "", "admin", "test-admin-pw"); code != 503 {
		t.Fatalf("password-link with mail off = %d %s, want 503", code, body)
	}
}
