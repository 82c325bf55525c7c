package daemon

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/icholy/digest"

	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/prov/files"
)

const polycomUA = "FileTransport PolycomVVX-VVX_400-UA/6.4.0.0000 (SN:0004f2000001) Type/Application"

func demoDaemon(t *testing.T) (*app, Addrs) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	var a *app
	addrs, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	return a, addrs
}

// lockedPhone is a realistic demo phone, booted and locked.
func lockedPhone(t *testing.T, a *app, addrs Addrs, mac string) (prov.Device, *deskPhone) {
	t.Helper()
	dev, err := a.store.GetDevice(context.Background(), mac)
	if err != nil {
		t.Fatal(err)
	}
	phone := newDeskPhone(t, addrs, mac)
	phone.boot()
	if got := phone.lineUsers(); len(got) != 1 || got[0] != dev.SIPUser {
		t.Fatalf("booted phone registers %v, want its device account", got)
	}
	return dev, phone
}

// lockedHandset is a bare SIP UA registered with a demo device's account.
func lockedHandset(t *testing.T, a *app, addrs Addrs, mac string) (prov.Device, *handset) {
	t.Helper()
	dev, err := a.store.GetDevice(context.Background(), mac)
	if err != nil {
		t.Fatal(err)
	}
	phone := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := phone.register(t, dev.SIPUser, dev.SIPUser, dev.SIPPassword, 600); code != 200 {
		t.Fatalf("device REGISTER = %d", code)
	}
	return dev, phone
}

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (int, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	req.Header.Set("User-Agent", polycomUA)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestBrowserDoor follows the link the locked profile gives the phone's
// browser: log in, log out, change the password; a forged link is a 404.
func TestBrowserDoor(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	dev, phone := lockedPhone(t, a, addrs, "0004f2000001")
	waitDeployed(t, a, dev.MAC)
	c := &http.Client{}
	// Registered, the phone is deployed: its files need its digest credentials.
	devc := &http.Client{Transport: &digest.Transport{Username: dev.ProvUser, Password: dev.ProvPassword}}
	if code, _ := fetch(t, c, "GET", "http://"+addrs.HTTP+"/0004f2000001-hotdesk.cfg", nil); code != 401 {
		t.Fatalf("deployed device file without credentials = %d, want 401", code)
	}
	code, cfg := fetch(t, devc, "GET", "http://"+addrs.HTTP+"/0004f2000001-hotdesk.cfg", nil)
	if code != 200 {
		t.Fatalf("device file = %d", code)
	}
	m := regexp.MustCompile(`mb\.main\.home="([^"]+)"`).FindStringSubmatch(cfg)
	if m == nil {
		t.Fatalf("locked profile has no browser login link:\n%s", cfg)
	}
	page := html.UnescapeString(m[1])
	if code, body := fetch(t, c, "GET", page, nil); code != 200 || !strings.Contains(body, `name="password"`) {
		t.Fatalf("login page = %d\n%s", code, body)
	}
	forged := strings.Replace(page, "t=", "t=0", 1)
	if code, _ := fetch(t, c, "GET", forged, nil); code != 404 {
		t.Fatalf("forged link = %d, want 404", code)
	}
	code, body := fetch(t, c, "POST", phoneForm(t, c, page, files.PhoneFormLogin), url.Values{"user": {"alice"}, "password": {"wrong-one"}})
	if code != 200 || !strings.Contains(body, "User login failed") {
		t.Fatalf("wrong password page = %d\n%s", code, body)
	}
	mark := phone.mark()
	code, body = fetch(t, c, "POST", phoneForm(t, c, page, files.PhoneFormLogin), url.Values{"user": {"alice"}, "password": {"alice-demo"}})
	if code != 200 || !strings.Contains(body, "Logged in") {
		t.Fatalf("login = %d\n%s", code, body)
	}
	phone.waitResync(mark)
	sess, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID)
	if !ok || sess.Door != prov.DoorBrowser {
		t.Fatalf("no browser session after login: %+v", sess)
	}
	// The device's own files now carry alice's line with the session's credentials.
	_, cfg = fetch(t, devc, "GET", "http://"+addrs.HTTP+"/0004f2000001-hotdesk.cfg", nil)
	if !strings.Contains(cfg, sess.SIPUser) {
		t.Fatalf("device file after browser login lacks the session's line:\n%s", cfg)
	}

	logout := phoneForm(t, c, page, files.PhoneFormLogout)
	mark = phone.mark()
	if code, body := fetch(t, c, "POST", logout, url.Values{}); code != 200 || !strings.Contains(body, "Logged out") {
		t.Fatalf("logout = %d\n%s", code, body)
	}
	phone.waitResync(mark)
	if _, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID); ok {
		t.Fatal("session still active after logout page")
	}

	pw := phoneForm(t, c, page, files.PhoneFormPassword)
	_, body = fetch(t, c, "POST", pw, url.Values{"user": {"bob"}, "old": {"bob-demo"}, "new": {"bob-new-1"}, "confirm": {"bob-new-2"}})
	if !strings.Contains(body, "Not changed") {
		t.Fatalf("mismatched confirm accepted:\n%s", body)
	}
	_, body = fetch(t, c, "POST", pw, url.Values{"user": {"bob"}, "old": {"bob-demo"}, "new": {"bob-new-1"}, "confirm": {"bob-new-1"}})
	if !strings.Contains(body, "Password changed") {
		t.Fatalf("password change:\n%s", body)
	}
	if _, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: dev.MAC, Username: "bob", Secret: "bob-new-1", Door: prov.DoorAPI, Privileged: true}); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
}

// TestNativeDoor is the Polycom native login: the phone fetches <user>.cfg
// with the typed user ID and password as HTTP digest credentials.
func TestNativeDoor(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	// The phone is registered (locked) from this address: a native login
	// counts only from the phone itself.
	lockedPhone(t, a, addrs, "0004f2000001")
	ua := func(tr http.RoundTripper) *http.Client {
		return &http.Client{Transport: uaTransport{tr}}
	}
	bad := ua(&digest.Transport{Username: "alice", Password: "wrong-pw"})
	if code, _ := fetch(t, bad, "GET", "http://"+addrs.HTTP+"/alice.cfg", nil); code != 401 {
		t.Fatalf("wrong password = %d, want 401", code)
	}
	unknown := ua(&digest.Transport{Username: "mallory", Password: "wrong-pw"})
	if code, _ := fetch(t, unknown, "GET", "http://"+addrs.HTTP+"/mallory.cfg", nil); code != 401 {
		t.Fatalf("unknown user = %d, want 401 like a wrong password", code)
	}
	good := ua(&digest.Transport{Username: "alice", Password: "alice-demo"})
	code, body := fetch(t, good, "GET", "http://"+addrs.HTTP+"/alice.cfg", nil)
	if code != 200 {
		t.Fatalf("native login = %d\n%s", code, body)
	}
	dev, _ := a.store.GetDevice(ctx, "0004f2000001")
	sess, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID)
	if !ok || sess.Door != prov.DoorNative || !strings.Contains(body, sess.SIPUser) {
		t.Fatalf("native login: session %+v; <user>.cfg carries its credentials: %v", sess, strings.Contains(body, sess.SIPUser))
	}
	// Fetching again with the same credentials keeps the same session.
	if code, _ := fetch(t, good, "GET", "http://"+addrs.HTTP+"/alice.cfg", nil); code != 200 {
		t.Fatalf("re-fetch = %d", code)
	}
	if again, _, _ := a.svc.sessions.ActiveOn(ctx, dev.ID); again.ID != sess.ID {
		t.Fatalf("re-fetch made a new session %s != %s", again.ID, sess.ID)
	}
	// A logout from the server sticks: the phone's automatic re-fetch with
	// the stored login right after it is refused, not a new login.
	if err := a.svc.sessions.End(ctx, sess.ID, prov.EndAdmin, "test"); err != nil {
		t.Fatal(err)
	}
	if code, _ := fetch(t, good, "GET", "http://"+addrs.HTTP+"/alice.cfg", nil); code != 401 {
		t.Fatalf("re-fetch right after logout = %d, want 401", code)
	}
	if _, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID); ok {
		t.Fatal("the phone's re-fetch logged alice in again")
	}
}

// waitDeployed waits for the registrar's event to mark the device deployed.
func waitDeployed(t *testing.T, a *app, mac string) {
	t.Helper()
	if eventually(func() bool {
		d, _ := a.store.GetDevice(context.Background(), mac)
		return d.Status == prov.DeviceDeployed
	}) {
		return
	}
	t.Fatalf("device %s not deployed after registering", mac)
}

// phoneForm opens the phone page at link as the phone's browser does and
// returns where its form for purpose posts, with that form's own token.
func phoneForm(t *testing.T, c *http.Client, link, purpose string) string {
	t.Helper()
	open := link
	if purpose == files.PhoneFormPassword {
		open = strings.Replace(link, files.PhonePagesPath+"?", files.PhonePagesPath+"/password?", 1)
	}
	code, body := fetch(t, c, "GET", open, nil)
	if code != 200 {
		t.Fatalf("phone page %s = %d\n%s", open, code, body)
	}
	base, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{files.PhoneFormLogin: files.PhonePagesPath + "?", files.PhoneFormLogout: "/logout?",
		files.PhoneFormPassword: "/password?"}[purpose]
	for _, m := range regexp.MustCompile(`<form method="post" action="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if a := html.UnescapeString(m[1]); strings.Contains(a, want) {
			u, err := base.Parse(a)
			if err != nil {
				t.Fatal(err)
			}
			return u.String()
		}
	}
	t.Fatalf("phone page has no %s form:\n%s", purpose, body)
	return ""
}

type uaTransport struct{ next http.RoundTripper }

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r.Header.Set("User-Agent", polycomUA)
	return u.next.RoundTrip(r)
}

// TestAssignAndUnassignDeskPhone: assigning a managed phone logs its user in
// for good; unassigning ends that login, unbinds and re-syncs the phone.
func TestAssignAndUnassignDeskPhone(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	dev, phone := lockedPhone(t, a, addrs, "0004f2000002")
	api := "http://" + addrs.Admin + "/api/v1/devices/0004f2000002/"
	call := func(path, body string) int {
		req, _ := http.NewRequest("POST", api+path, strings.NewReader(body))
		req.SetBasicAuth("admin", "test-admin-pw")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mark := phone.mark()
	if code := call("assign", `{"user":"carol","kind":"managed"}`); code/100 != 2 {
		t.Fatalf("assign = %d", code)
	}
	phone.waitResync(mark)
	sess, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID)
	if !ok || sess.Door != prov.DoorAssigned || !sess.Persistent {
		t.Fatalf("assigned phone: session %+v, %v", sess, ok)
	}
	if got := phone.settle([]string{"1003"}); len(got) != 1 || got[0] != "1003" {
		t.Fatalf("carol's desk phone registers %v", got)
	}
	// A guest hot-desks on carol's phone; when he logs out, carol is back.
	mark = phone.mark()
	guest, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: dev.MAC, Username: "bob", Secret: "bob-demo", Door: prov.DoorAPI, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{"1002"}); len(got) != 1 || got[0] != "1002" {
		t.Fatalf("the guest's phone registers %v", got)
	}
	mark = phone.mark()
	if err := a.svc.sessions.End(ctx, guest.ID, prov.EndLogout, "test"); err != nil {
		t.Fatal(err)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{"1003"}); len(got) != 1 || got[0] != "1003" {
		t.Fatalf("after the guest's logout the phone registers %v, not carol's line", got)
	}
	if sess, ok, _ = a.svc.sessions.ActiveOn(ctx, dev.ID); !ok || sess.Door != prov.DoorAssigned {
		t.Fatalf("after the guest's logout the phone is not carol's again: %+v", sess)
	}
	mark = phone.mark()
	if code := call("unassign", `{}`); code/100 != 2 {
		t.Fatalf("unassign = %d", code)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{dev.SIPUser}); len(got) != 1 || got[0] != dev.SIPUser {
		t.Fatalf("the unassigned phone registers %v, want only its device account", got)
	}
	got, _ := a.store.GetSession(ctx, sess.ID)
	if got.Active() {
		t.Fatal("desk phone session survived unassign")
	}
	for _, b := range a.svc.sip.Lookup(ctx, "sip:1003@test.lan") {
		if b.Owner.ID == sess.ID {
			t.Fatalf("binding of the unassigned phone kept: %+v", b)
		}
	}
}

// TestEffectiveConfigAPI shows for each parameter its value and layer.
func TestEffectiveConfigAPI(t *testing.T) {
	_, addrs := demoDaemon(t)
	req, _ := http.NewRequest("GET", "http://"+addrs.Admin+"/api/v1/devices/0004f2000001/effective-config", nil)
	req.SetBasicAuth("admin", "test-admin-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var params []prov.Param
	if err := json.NewDecoder(resp.Body).Decode(&params); err != nil || resp.StatusCode != 200 {
		t.Fatalf("effective-config = %d, %v", resp.StatusCode, err)
	}
	byName := map[string]prov.Param{}
	for _, p := range params {
		byName[p.Name] = p
	}
	if p := byName["phoneLock.authorized.1.value"]; p.Value != "1000" || p.Layer == "" {
		t.Errorf("authorized number 1 = %+v", p)
	}
	if p := byName["reg.1.auth.password"]; p.Value == "" || strings.Contains(p.Value, "-sip") || len(p.Value) > 12 && !strings.Contains(p.Value, "*") {
		t.Errorf("device password not masked: %+v", p)
	}
}

// TestAnonymousUploadCannotChangePassword: a TFTP (unauthenticated) upload
// of the phone's overrides carrying prov.login.localPassword is refused
// (TFTP is read-only) and changes nothing.
func TestAnonymousUploadCannotChangePassword(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	if _, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: "0004f2000001", Username: "alice", Secret: "alice-demo", Door: prov.DoorAPI, Privileged: true}); err != nil {
		t.Fatal(err)
	}
	body := filepath.Join(t.TempDir(), "0004f2000001-phone.cfg")
	if err := os.WriteFile(body, []byte(`<?xml version="1.0"?><polycomConfig><prov prov.login.localPassword="owned-123"/></polycomConfig>`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("curl", "-s", "--max-time", "10", "-T", body, "tftp://"+addrs.TFTP+"/0004f2000001-phone.cfg").CombinedOutput()
	// curl 68/69: the server answered "not found" or "access violation".
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 68 && ee.ExitCode() != 69 {
		t.Fatalf("anonymous TFTP upload: %v %s, want refused (curl exit 68 or 69)", err, out)
	}
	if _, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: "0004f2000002", Username: "alice", Secret: "owned-123", Door: prov.DoorAPI, Privileged: true}); err == nil {
		t.Fatal("an anonymous TFTP upload changed alice's password")
	}
	u, _ := a.store.GetUser(ctx, "alice")
	if !auth.VerifyPassword(u.PasswordHash, "alice-demo") {
		t.Fatal("alice's password changed")
	}
	for _, owner := range []string{"user:alice", "device:0004f2000001"} {
		if ups, _ := a.store.ListUploads(ctx, owner); len(ups) != 0 {
			t.Fatalf("the refused TFTP upload was stored for %s", owner)
		}
	}
}

// TestNativeDoorLockout: wrong passwords typed at the phone lock the user
// out of the native door too.
func TestNativeDoorLockout(t *testing.T) {
	_, addrs := demoDaemon(t)
	for range 5 {
		bad := &http.Client{Transport: uaTransport{&digest.Transport{Username: "bob", Password: "guess-pw"}}}
		if code, _ := fetch(t, bad, "GET", "http://"+addrs.HTTP+"/bob.cfg", nil); code != 401 {
			t.Fatalf("wrong password = %d", code)
		}
	}
	good := &http.Client{Transport: uaTransport{&digest.Transport{Username: "bob", Password: "bob-demo"}}}
	if code, _ := fetch(t, good, "GET", "http://"+addrs.HTTP+"/bob.cfg", nil); code != 401 {
		t.Fatalf("right password while locked out = %d, want 401", code)
	}
}
