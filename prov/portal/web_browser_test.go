package portal

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"hotdesk/prov"
	"hotdesk/prov/portal/chrometest"
)

// chrome drives Debian's Chromium headless against the portal.
type chrome struct {
	t     *testing.T
	ctx   context.Context
	base  string
	shots string
}

// newChrome starts the browser (chrometest.Start) against the portal at base.
func newChrome(t *testing.T, base string) *chrome {
	t.Helper()
	ctx := chrometest.Start(t)
	shots := os.Getenv("HOTDESK_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	return &chrome{t: t, ctx: ctx, base: base, shots: shots}
}

// step runs actions with its own deadline; a failure names the step.
func (c *chrome) step(name string, actions ...chromedp.Action) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var loc, body string
		lctx, lcancel := context.WithTimeout(c.ctx, 3*time.Second)
		_ = chromedp.Run(lctx, chromedp.Location(&loc), chromedp.Text("main", &body, chromedp.ByQuery))
		lcancel()
		c.t.Fatalf("%s: %v (at %s: %.400s)", name, err, loc, body)
	}
}

// shot saves a full-page PNG of the current page.
func (c *chrome) shot(name string) {
	c.t.Helper()
	var buf []byte
	c.step("screenshot "+name, chromedp.FullScreenshot(&buf, 100))
	if err := os.WriteFile(filepath.Join(c.shots, name+".png"), buf, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func (c *chrome) signIn(name, pass, landing string) {
	c.t.Helper()
	c.step("sign in "+name,
		chromedp.Navigate(c.base+"/"),
		chromedp.WaitVisible(`#f-username`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-username`, name, chromedp.ByQuery),
		// Enter in the password field submits: the form works from the keyboard.
		chromedp.SendKeys(`#f-password`, pass+kb.Enter, chromedp.ByQuery),
		chromedp.WaitVisible(landing, chromedp.ByQuery))
}

func (c *chrome) signOut() {
	c.t.Helper()
	c.step("sign out", clickToPage(`.signout button`, `#f-username`))
}

// submit clicks the primary button of the form posting to action and
// waits for sel on the page that answers it.
func (c *chrome) submit(action, sel string) chromedp.Tasks {
	return clickToPage(`form[action="`+action+`"] button.primary`, sel)
}

// clickToPage is chrometest.ClickToPage, short for the many steps here.
var clickToPage = chrometest.ClickToPage

func TestBrowserPortal(t *testing.T) {
	start := time.Now()
	we := newWebEnv(t)
	ctx := context.Background()
	desk := we.device("0004f2aa0001")
	phone := we.device("0004f2aa0002")
	alice := we.portalUser("alice", "1001")
	alice.Portal.Wizard, alice.Portal.WizardDone = true, false
	if err := we.st.UpdateUser(ctx, &alice); err != nil {
		t.Fatal(err)
	}
	sess, err := we.sess.Login(ctx, prov.LoginRequest{MAC: phone.MAC, Username: "alice", Door: prov.DoorAPI, Verified: true, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	seedLive(t, we, phone, sess)
	c := newChrome(t, we.wsrv.URL)

	c.signIn(adminUser, adminPass, `#n-devices`)
	var alerts, registered string
	c.step("dashboard", chromedp.Text(`.alerts`, &alerts, chromedp.ByQuery),
		chromedp.Text(`#n-registered`, &registered, chromedp.ByQuery))
	if !strings.Contains(alerts, "0004f2aa0003") || !strings.Contains(alerts, "stuck re-provisioning") || registered != "1" {
		t.Fatalf("dashboard: alerts %q, registered %q", alerts, registered)
	}
	c.shot("admin-dashboard")
	c.step("live page", chromedp.Navigate(c.base+"/admin/live"), chromedp.WaitVisible(`#registrations`, chromedp.ByQuery))
	c.shot("admin-live")
	adminCreatesUser(t, we, c)
	adminImportsCSV(t, we, c)
	adminAssignsPhone(t, we, c, desk)
	adminSetsAuthorized(t, we, c)
	c.step("users list", chromedp.Navigate(c.base+"/admin/users?col=username&col=name&col=numbers&col=kind&col=status"),
		chromedp.WaitVisible(`#users`, chromedp.ByQuery))
	c.shot("admin-users")
	c.signOut()

	// The user portal at phone width.
	c.step("phone width", chromedp.EmulateViewport(390, 844))
	c.signIn("alice", "password-alice", `#f-current_password`)
	c.shot("user-welcome")
	c.step("skip the wizard", clickToPage(`button[value=skip]`, `.menu-tiles`))
	c.shot("user-home")
	userSetsForwarding(t, we, c)
	userEditsContact(t, we, c, phone)
	userLogsPhoneOut(t, we, c, sess)
	userMenuAccess(t, we, c)
	t.Logf("browser test took %v; screenshots in %s", time.Since(start).Round(time.Millisecond), c.shots)
}

// seedLive makes the phone registered (device account and the session's
// line) and a third phone fetch its files without registering: stuck.
func seedLive(t *testing.T, we *webEnv, phone deviceView, sess prov.Session) {
	ctx := context.Background()
	stuck := we.device("0004f2aa0003")
	for _, mac := range []string{stuck.MAC, phone.MAC} {
		d, err := we.st.GetDevice(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		d.Model = "VVX 450"
		if err := we.st.UpdateDevice(ctx, &d); err != nil {
			t.Fatal(err)
		}
		if err := we.st.NoteDeviceSeen(ctx, mac, time.Now().Add(-2*time.Minute), "10.0.0.23"); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	we.regs.regs = []Registration{
		{AOR: "sip:1001@hq.example.test", Contact: "sip:1001@10.0.0.22:5060", Source: "10.0.0.22:5060",
			Transport: "udp", UserAgent: "PolycomVVX-VVX_450-UA/6.4.3", Owner: prov.SessionOwner(sess.ID),
			Since: now.Add(-time.Minute), Expires: now.Add(time.Hour)},
		{AOR: "sip:dev" + phone.MAC + "@hq.example.test", Contact: "sip:dev@10.0.0.22:5060", Source: "10.0.0.22:5060",
			Transport: "udp", UserAgent: "PolycomVVX-VVX_450-UA/6.4.3", Owner: prov.DeviceOwner(phone.ID),
			Since: now.Add(-time.Hour), Expires: now.Add(time.Hour)},
	}
}

func adminCreatesUser(t *testing.T, we *webEnv, c *chrome) {
	c.step("create user",
		chromedp.Navigate(c.base+"/admin/users/new"),
		chromedp.WaitVisible(`#f-first_name`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-first_name`, "Dana", chromedp.ByQuery),
		chromedp.SendKeys(`#f-last_name`, "Desk", chromedp.ByQuery),
		chromedp.SendKeys(`#f-email`, "dana@example.test", chromedp.ByQuery),
		chromedp.SendKeys(`#f-password`, "dana-pass-1", chromedp.ByQuery),
		chromedp.SendKeys(`#f-numbers`, "1004", chromedp.ByQuery),
		c.submit("/admin/users", `#username`))
	u, err := we.st.GetUser(context.Background(), "dana@example.test")
	if err != nil || u.FirstName != "Dana" {
		t.Fatalf("created user: %+v %v", u, err)
	}
	var html string
	c.step("user page", chromedp.OuterHTML("main", &html, chromedp.ByQuery))
	if strings.Contains(html, "dana-pass-1") {
		t.Fatal("the password is shown after creation")
	}
}

func adminImportsCSV(t *testing.T, we *webEnv, c *chrome) {
	csv := "username,first_name,last_name,email,numbers\n" +
		"erin,Erin,East,erin@example.test,1101\n" +
		"frank,Frank,West,not-an-email,1102\n" +
		"gina,Gina,North,gina@example.test,1103\n"
	path := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(path, []byte(csv), 0o600); err != nil {
		t.Fatal(err)
	}
	var refused, summary string
	c.step("import CSV",
		chromedp.Navigate(c.base+"/admin/users/import"),
		chromedp.WaitVisible(`#f-file`, chromedp.ByQuery),
		chromedp.SetUploadFiles(`#f-file`, []string{path}, chromedp.ByQuery),
		chromedp.Click(`#import-form button.primary`, chromedp.ByQuery),
		chromedp.WaitVisible(`#refused`, chromedp.ByQuery),
		chromedp.Text(`#refused`, &refused, chromedp.ByQuery),
		chromedp.Text(`#report-summary`, &summary, chromedp.ByQuery))
	if !strings.Contains(refused, "frank") || !strings.Contains(refused, "email") || !strings.Contains(refused, "3") {
		t.Fatalf("refused rows: %q", refused)
	}
	if !strings.Contains(summary, "3 rows: 2 created, 1 refused") {
		t.Fatalf("summary: %q", summary)
	}
	c.shot("admin-import-report")
	for _, n := range []string{"erin", "gina"} {
		if _, err := we.st.GetUser(context.Background(), n); err != nil {
			t.Fatalf("imported %s: %v", n, err)
		}
	}
	if _, err := we.st.GetUser(context.Background(), "frank"); err == nil {
		t.Fatal("the bad row created a user")
	}
}

func adminAssignsPhone(t *testing.T, we *webEnv, c *chrome, desk deviceView) {
	var pin string
	c.step("assign desk phone",
		chromedp.Navigate(c.base+"/admin/devices/"+desk.MAC),
		chromedp.WaitVisible(`#f-user`, chromedp.ByQuery),
		chromedp.SetValue(`#f-user`, "dana@example.test", chromedp.ByQuery),
		chromedp.SetValue(`#f-kind`, "managed", chromedp.ByQuery),
		c.submit("/admin/devices/"+desk.MAC+"/assign", `#deployment-pin`),
		chromedp.Text(`#deployment-pin`, &pin, chromedp.ByQuery))
	d, err := we.st.GetDevice(context.Background(), desk.MAC)
	u, _ := we.st.GetUser(context.Background(), "dana@example.test")
	if err != nil || d.AssignedUserID != u.ID || d.DeploymentPIN == "" || pin != d.DeploymentPIN {
		t.Fatalf("assignment: %+v (pin shown %q)", d, pin)
	}
	c.shot("admin-device-assigned")
	// The PIN is shown once: reloading the page no longer shows it.
	var n int
	c.step("PIN shown once", chromedp.Navigate(c.base+"/admin/devices/"+desk.MAC), chromedp.WaitVisible(`#assigned`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#deployment-pin").length`, &n))
	if n != 0 {
		t.Fatal("the deployment PIN is shown again")
	}
}

func adminSetsAuthorized(t *testing.T, we *webEnv, c *chrome) {
	site := fmt.Sprintf("/admin/sites/%d", we.site.ID)
	var errText string
	c.step("authorized numbers with a bad one",
		chromedp.Navigate(c.base+site),
		chromedp.WaitVisible(`#authorized`, chromedp.ByQuery),
		chromedp.SendKeys(`#a-d-0`, "Reception", chromedp.ByQuery),
		chromedp.SendKeys(`#a-n-0`, "100", chromedp.ByQuery),
		chromedp.SendKeys(`#a-d-1`, "Security", chromedp.ByQuery),
		chromedp.SendKeys(`#a-n-1`, "12ab", chromedp.ByQuery),
		c.submit(site, `#a-n-1[aria-invalid=true]`),
		chromedp.Text(`#a-n-1 + .error`, &errText, chromedp.ByQuery))
	if !strings.Contains(errText, "not an extension") {
		t.Fatalf("error next to the field: %q", errText)
	}
	c.shot("admin-site-error")
	c.step("authorized numbers fixed",
		chromedp.SetValue(`#a-n-1`, "101", chromedp.ByQuery),
		c.submit(site, `.flash`))
	s, err := we.st.GetSite(context.Background(), we.site.ID)
	if err != nil || len(s.Authorized) != 2 || s.Authorized[1] != (prov.AuthorizedNumber{Description: "Security", Number: "101"}) {
		t.Fatalf("site authorized numbers: %+v %v", s.Authorized, err)
	}
}

func userSetsForwarding(t *testing.T, we *webEnv, c *chrome) {
	c.step("set forwarding",
		chromedp.Navigate(c.base+"/me/call-handling"),
		chromedp.WaitVisible(`#f-forward_always`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-forward_always`, "+4930123456", chromedp.ByQuery),
		chromedp.SendKeys(`#f-forward_no_answer`, "1002", chromedp.ByQuery),
		chromedp.Click(`#f-dnd`, chromedp.ByQuery),
		c.submit("/me/call-handling", `.flash`))
	u, _ := we.st.GetUser(context.Background(), "alice")
	ch := u.CallHandling
	if ch.ForwardAlways != "+4930123456" || ch.ForwardNoAnswer != "1002" || ch.NoAnswerSeconds != 20 || !ch.DND {
		t.Fatalf("call handling in the store: %+v", ch)
	}
	c.shot("user-call-handling")
}

func userEditsContact(t *testing.T, we *webEnv, c *chrome, phone deviceView) {
	before := we.reg.synced(phone.MAC)
	c.step("edit contact",
		chromedp.Navigate(c.base+"/me/directory"),
		chromedp.WaitVisible(`#first_name_0`, chromedp.ByQuery),
		chromedp.SetValue(`#first_name_0`, "Robert", chromedp.ByQuery),
		chromedp.SetValue(`#number_0`, "2003", chromedp.ByQuery),
		c.submit("/me/directory", `.flash`))
	u, _ := we.st.GetUser(context.Background(), "alice")
	cs, err := we.st.ListContacts(context.Background(), u.ID)
	if err != nil || len(cs) != 1 || cs[0].FirstName != "Robert" || cs[0].Number != "2003" {
		t.Fatalf("contacts: %+v %v", cs, err)
	}
	// The phone alice is logged in on was told to re-sync.
	if we.reg.synced(phone.MAC) <= before {
		t.Fatal("no check-sync for the user's phone after the directory change")
	}
	c.shot("user-directory")
}

func userLogsPhoneOut(t *testing.T, we *webEnv, c *chrome, sess prov.Session) {
	c.step("log a phone out",
		chromedp.Navigate(c.base+"/me/phones"),
		chromedp.WaitVisible(`#phones`, chromedp.ByQuery))
	c.shot("user-phones")
	c.step("click log out",
		clickToPage(`form[action="/me/phones/`+sess.ID+`/logout"] button`, `.flash`))
	s, err := we.st.GetSession(context.Background(), sess.ID)
	if err != nil || s.Active() || s.EndReason != prov.EndLogout {
		t.Fatalf("session after remote logout: %+v %v", s, err)
	}
	if !we.reg.unbound("session:" + sess.ID) {
		t.Fatal("the registrar was not asked to unbind the session's bindings")
	}
	if ev := we.audit("session.end", "session:"+sess.ID); len(ev) != 1 || ev[0].Actor != "user:alice" {
		t.Fatalf("audit of the remote logout: %+v", ev)
	}
}

func userMenuAccess(t *testing.T, we *webEnv, c *chrome) {
	we.setAccess("alice", menuDirectory, prov.AccessRead)
	var controls int
	c.step("directory read-only",
		chromedp.Navigate(c.base+"/me/directory"),
		chromedp.WaitVisible(`#read-only`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("main button, main input:not([disabled]):not([type=hidden])").length`, &controls))
	if controls != 0 {
		t.Fatalf("read-only directory shows %d controls", controls)
	}
	we.setAccess("alice", menuDirectory, prov.AccessNone)
	var links int
	var h1 string
	c.step("directory hidden",
		chromedp.Navigate(c.base+"/me/"),
		chromedp.WaitVisible(`.menu-tiles`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('a[href="/me/directory"]').length`, &links),
		chromedp.Navigate(c.base+"/me/directory"),
		chromedp.Text(`h1`, &h1, chromedp.ByQuery))
	if links != 0 || h1 != "Forbidden" {
		t.Fatalf("access none: %d links, page %q", links, h1)
	}
}
