package portal

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

// TestWebAdminOps drives the admin forms with Go's client: common-area
// profile, list columns and search, disable/enable, force logout,
// check-sync, third-party reveal (audited), audit filter.
func TestWebAdminOps(t *testing.T) {
	we := newWebEnv(t)
	ctx := context.Background()
	we.portalUser("alice", "1001")
	phone := we.device("0004f2bb0001")
	sess, err := we.sess.Login(ctx, prov.LoginRequest{MAC: phone.MAC, Username: "alice", Door: prov.DoorAPI, Verified: true, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	b := we.browser()
	b.mustSignIn(adminUser, adminPass, "/admin/")

	p := b.submit("/admin/users/new", "/admin/users", url.Values{"first_name": {"Front"}, "last_name": {"Lobby"},
		"email": {"lobby@example.test"}, "kind": {"common_area"}})
	if p.code != http.StatusBadRequest || !strings.Contains(p.body, `id="e-responsible_email"`) {
		t.Fatalf("common area without responsible email: %d %s", p.code, excerpt(p.body))
	}
	p = b.submit("/admin/users/new", "/admin/users", url.Values{"first_name": {"Front"}, "last_name": {"Lobby"},
		"email": {"lobby@example.test"}, "kind": {"common_area"}, "responsible_email": {"desk@example.test"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("common area: %d %s", p.code, excerpt(p.body))
	}
	// The generated initial password is shown once, then never again.
	first := b.get(p.loc).body
	if !strings.Contains(first, "Initial password (shown only now)") || strings.Contains(b.get(p.loc).body, "Initial password") {
		t.Fatal("generated password not shown exactly once")
	}
	if u, _ := we.st.GetUser(ctx, "lobby@example.test"); u.Kind != prov.KindCommonArea {
		t.Fatalf("kind %q", u.Kind)
	}

	list := b.get("/admin/users?q=lobby&col=username&col=kind").body
	if !strings.Contains(list, `data-col="kind">common area<`) || strings.Contains(list, `data-col="email"`) ||
		strings.Contains(list, ">alice<") {
		t.Fatalf("list columns/search: %s", excerpt(list))
	}

	// Disable ends alice's phone session through Sessions.End; re-enable.
	if p := b.submit("/admin/users/alice", "/admin/users/alice/status", url.Values{"action": {"disable"}}); p.code != http.StatusSeeOther {
		t.Fatalf("disable: %d", p.code)
	}
	if s, _ := we.st.GetSession(ctx, sess.ID); s.Active() || !we.reg.unbound("session:"+sess.ID) {
		t.Fatalf("disable left the session: %+v", s)
	}
	if p := b.submit("/admin/users/alice", "/admin/users/alice/status", url.Values{"action": {"enable"}}); p.code != http.StatusSeeOther {
		t.Fatalf("enable: %d", p.code)
	}
	if u, _ := we.st.GetUser(ctx, "alice"); u.Status != prov.StatusActive {
		t.Fatal("not re-enabled")
	}

	// Force logout and check-sync from the device page.
	we.assignNumber("alice", "1001")
	sess2, err := we.sess.Login(ctx, prov.LoginRequest{MAC: phone.MAC, Username: "alice", Door: prov.DoorAPI, Verified: true, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	dev := "/admin/devices/" + phone.MAC
	if p := b.submit(dev, dev+"/logout", url.Values{}); p.code != http.StatusSeeOther {
		t.Fatalf("force logout: %d", p.code)
	}
	if s, _ := we.st.GetSession(ctx, sess2.ID); s.Active() || s.EndReason != prov.EndAdmin {
		t.Fatalf("force logout: %+v", s)
	}
	n := we.reg.synced(phone.MAC + "+reboot")
	if p := b.submit(dev, dev+"/check-sync", url.Values{"reboot": {"1"}}); p.code != http.StatusSeeOther ||
		we.reg.synced(phone.MAC+"+reboot") != n+1 {
		t.Fatalf("reboot: %d", p.code)
	}

	// Third-party phone: settings without the password until revealed.
	tp := "/admin/devices/0004f2bb0002"
	we.device("0004f2bb0002")
	if p := b.submit(tp, tp+"/assign", url.Values{"user": {"alice"}, "kind": {"third_party"}}); p.code != 200 ||
		!strings.Contains(p.body, `id="sip-password">hidden`) {
		t.Fatalf("third-party assign: %d %s", p.code, excerpt(p.body))
	}
	u, _ := we.st.GetUser(ctx, "alice")
	if p := b.submit(tp, tp+"/reveal", url.Values{}); !strings.Contains(p.body, u.SIPPassword) {
		t.Fatal("reveal did not show the password")
	}
	if len(we.audit("user.sip_password.reveal", "user:alice")) != 1 {
		t.Fatal("reveal not audited")
	}
	audit := b.get("/admin/audit?action=user.sip_password.reveal").body
	if !strings.Contains(audit, "admin:root") || strings.Contains(audit, "user.create") {
		t.Fatalf("audit filter: %s", excerpt(audit))
	}
	if p := b.get("/admin/audit?since=yesterday"); p.code != 200 || !strings.Contains(p.body, `id="e-since"`) {
		t.Fatalf("bad since: %d", p.code)
	}
}

func (we *webEnv) assignNumber(user, number string) {
	we.t.Helper()
	nums, _ := we.st.NumbersOf(context.Background(), mustUser(we, user).ID)
	for _, n := range nums {
		if n == number {
			return
		}
	}
	we.want(we.do(asAdmin, "POST", "/api/v1/users/"+user+"/numbers", map[string]any{"numbers": []string{number}}), 200)
}

func mustUser(we *webEnv, name string) prov.User {
	we.t.Helper()
	u, err := we.st.GetUser(context.Background(), name)
	if err != nil {
		we.t.Fatal(err)
	}
	return u
}

// TestWebUserPages covers the wizard, the password, telephony (only one's
// own phone) and errors next to the field.
func TestWebUserPages(t *testing.T) {
	we := newWebEnv(t)
	ctx := context.Background()
	u := we.portalUser("alice", "1001")
	u.Portal.Wizard, u.Portal.WizardDone = true, false
	if err := we.st.UpdateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	ub := we.portalUser("bob", "1002")
	// The wizard is off unless the admin turned it on (seed 002): bob, who
	// never finished it, goes straight to his portal.
	ub.Portal.WizardDone = false
	if err := we.st.UpdateUser(ctx, &ub); err != nil {
		t.Fatal(err)
	}
	we.browser().mustSignIn("bob", "password-bob", "/me/")
	b := we.browser()
	b.mustSignIn("alice", "password-alice", "/me/welcome")
	p := b.submit("/me/welcome", "/me/welcome", url.Values{"current_password": {"password-alice"},
		"new_password": {"new-secret-1"}, "confirm": {"other"}, "language": {"de"}})
	if p.code != http.StatusBadRequest || !strings.Contains(p.body, `id="e-confirm"`) {
		t.Fatalf("wizard mismatch: %d %s", p.code, excerpt(p.body))
	}
	p = b.submit("/me/welcome", "/me/welcome", url.Values{"current_password": {"password-alice"},
		"new_password": {"new-secret-1"}, "confirm": {"new-secret-1"}, "language": {"de"}})
	if p.code != http.StatusSeeOther {
		t.Fatalf("wizard: %d %s", p.code, excerpt(p.body))
	}
	u = mustUser(we, "alice")
	if !u.Portal.WizardDone || u.Language != "de" || !provauth.VerifyPassword(u.PasswordHash, "new-secret-1") {
		t.Fatalf("wizard result: %+v", u.Portal)
	}
	if len(we.audit("user.password.change", "user:alice")) != 1 {
		t.Fatal("password change not audited")
	}
	if p := b.submit("/me/profile", "/me/password", url.Values{"current_password": {"wrong"},
		"new_password": {"x-secret-2"}, "confirm": {"x-secret-2"}}); !strings.Contains(p.body, `id="e-current_password"`) {
		t.Fatalf("wrong current password: %d", p.code)
	}
	if p := b.submit("/me/call-handling", "/me/call-handling", url.Values{"forward_busy": {"not a number"}}); p.code != 400 ||
		!strings.Contains(p.body, `id="e-forward_busy"`) {
		t.Fatalf("bad forward target: %d", p.code)
	}
	if p := b.submit("/me/directory", "/me/directory", url.Values{"rows": {"2"}, "first_name_0": {"A"}, "number_0": {"1"},
		"first_name_1": {"B"}, "number_1": {"bad number!"}}); p.code != 400 || !strings.Contains(p.body, `id="e-number_1"`) {
		t.Fatalf("bad contact number: %d %s", p.code, excerpt(p.body))
	}

	// Bob's third-party phone is not alice's to reveal.
	we.device("0004f2bb0003")
	we.want(we.do(asAdmin, "POST", "/api/v1/devices/0004f2bb0003/assign", map[string]any{"user": "bob", "kind": "third_party"}), 200)
	if p := b.submit("/me/telephony", "/me/telephony/reveal", url.Values{"mac": {"0004f2bb0003"}}); p.code != http.StatusNotFound {
		t.Fatalf("revealing another user's phone: %d", p.code)
	}
	bob := we.browser()
	bob.mustSignIn("bob", "password-bob", "/me/")
	if p := bob.get("/me/telephony"); !strings.Contains(p.body, "hidden") || strings.Contains(p.body, mustUser(we, "bob").SIPPassword) {
		t.Fatal("telephony shows the password before a reveal")
	}
	if p := bob.submit("/me/telephony", "/me/telephony/reveal", url.Values{"mac": {"0004f2bb0003"}}); !strings.Contains(p.body, mustUser(we, "bob").SIPPassword) {
		t.Fatal("bob cannot reveal his own password")
	}
	// A session id of another user cannot be ended.
	phone := we.device("0004f2bb0004")
	s, err := we.sess.Login(ctx, prov.LoginRequest{MAC: phone.MAC, Username: "bob", Door: prov.DoorAPI, Verified: true, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if p := b.submit("/me/phones", "/me/phones/"+s.ID+"/logout", url.Values{}); p.code != http.StatusNotFound {
		t.Fatalf("ending another user's session: %d", p.code)
	}
	if got, _ := we.st.GetSession(ctx, s.ID); !got.Active() {
		t.Fatal("another user's session ended")
	}
}

func FuzzDirectoryForm(f *testing.F) {
	f.Add("rows=2&first_name_0=A&number_0=1&first_name_1=B&number_1=2&speed_dial_1=3")
	f.Add("rows=99999999999&delete_0=1")
	f.Add("rows=-1&first_name_0=%00")
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/me/directory", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		_ = r.ParseForm()
		cs, index := contactsFromForm(r)
		if len(cs) != len(index) {
			t.Fatalf("%d contacts, %d indexes", len(cs), len(index))
		}
		if err := prov.ValidateContacts(cs); err != nil {
			errs, _ := fieldErrors(err)
			for k := range rowErrors(errs, index) {
				if strings.HasPrefix(k, "contacts[") {
					t.Fatalf("error key not mapped to a row: %s", k)
				}
			}
		}
		_ = formRows(r)
	})
}

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/admin/users", "//evil.example", "/me/", "https://x", "/admin/\\evil", ""} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, next string, admin bool) {
		s := &webSession{Admin: admin}
		got := safeNext(next, s)
		if !strings.HasPrefix(got, home(s)) || strings.HasPrefix(got, "//") || strings.Contains(got, "\\") {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if u, err := url.Parse(got); err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("safeNext(%q) = %q leaves the site", next, got)
		}
	})
}

// TestWebTelephonyManagedPhone: Settings > Telephony shows the user's
// managed desk phone with its deployment status; "Show PINs" (audited)
// shows the deployment PIN while it is unused, with what to dial, and the
// security PIN. Nobody else can reveal them.
func TestWebTelephonyManagedPhone(t *testing.T) {
	we := newWebEnv(t)
	ctx := context.Background()
	we.site.FeatureCodes = prov.FeatureCodes{Login: "*77", Logout: "*78"}
	if err := we.st.UpdateSite(ctx, &we.site); err != nil {
		t.Fatal(err)
	}
	we.portalUser("alice", "1001")
	we.portalUser("bob", "1002")
	var av assignView
	we.want(we.do(asAdmin, "POST", "/api/v1/devices/0004f2bb0010/assign", assignBody{User: "alice"}), 200).into(t, &av)
	a := we.browser()
	a.mustSignIn("alice", "password-alice", "/me/")
	p := a.get("/me/telephony")
	if !strings.Contains(p.body, "0004f2bb0010") || !strings.Contains(p.body, "type the deployment PIN") ||
		strings.Contains(p.body, av.DeploymentPIN) || strings.Contains(p.body, av.SecurityPIN) {
		t.Fatalf("telephony before a reveal: %s", excerpt(p.body))
	}
	bob := we.browser()
	bob.mustSignIn("bob", "password-bob", "/me/")
	if p := bob.submit("/me/telephony", "/me/telephony/reveal", url.Values{"mac": {"0004f2bb0010"}}); p.code != http.StatusNotFound ||
		strings.Contains(p.body, av.SecurityPIN) {
		t.Fatalf("bob revealed alice's PINs: %d", p.code)
	}
	p = a.submit("/me/telephony", "/me/telephony/reveal", url.Values{"mac": {"0004f2bb0010"}})
	if !strings.Contains(p.body, "*77"+av.DeploymentPIN) || !strings.Contains(p.body, av.SecurityPIN) {
		t.Fatalf("revealed: %d %s", p.code, excerpt(p.body))
	}
	if ev := we.audit("device.pins.reveal", "device:0004f2bb0010"); len(ev) != 1 || strings.Contains(ev[0].After, av.SecurityPIN) {
		t.Fatalf("reveal audit %+v", ev)
	}
	// Claimed on the desk: the deployment PIN is spent and no longer shown.
	we.device("0004f2bb0011")
	we.want(we.do(anonymous, "POST", "/api/v1/devices/0004f2bb0011/claim", claimBody{PIN: av.DeploymentPIN}), 200)
	p = a.submit("/me/telephony", "/me/telephony/reveal", url.Values{"mac": {"0004f2bb0011"}})
	d, _ := we.st.GetDevice(ctx, "0004f2bb0011")
	if strings.Contains(p.body, av.DeploymentPIN) || strings.Contains(p.body, "0004f2bb0010") ||
		!strings.Contains(p.body, "0004f2bb0011") || !strings.Contains(p.body, d.SecurityPIN) {
		t.Fatalf("after the claim: %s", excerpt(p.body))
	}
}

// TestWebAssignWithNumber: the device page's assign form gives the user a
// number with the phone; a taken number is an error next to the field and
// assigns nothing.
func TestWebAssignWithNumber(t *testing.T) {
	we := newWebEnv(t)
	ctx := context.Background()
	we.portalUser("alice", "1001")
	we.user("sam")
	b := we.browser()
	b.mustSignIn(adminUser, adminPass, "/admin/")
	dev := "/admin/devices/0004f2bb0020"
	we.device("0004f2bb0020")
	if p := b.submit(dev, dev+"/assign", url.Values{"user": {"sam"}, "kind": {"managed"}, "number": {"1001"}}); p.code != 400 ||
		!strings.Contains(p.body, `id="e-number"`) {
		t.Fatalf("taken number: %d %s", p.code, excerpt(p.body))
	}
	if d, _ := we.st.GetDevice(ctx, "0004f2bb0020"); d.AssignedUserID != 0 {
		t.Fatal("a refused assignment assigned the phone")
	}
	if p := b.submit(dev, dev+"/assign", url.Values{"user": {"sam"}, "kind": {"third_party"}, "number": {"1005"}}); p.code != 200 ||
		!strings.Contains(p.body, "Assigned to sam") {
		t.Fatalf("assign with a number: %d %s", p.code, excerpt(p.body))
	}
	u, _ := we.st.GetUser(ctx, "sam")
	if nums, _ := we.st.NumbersOf(ctx, u.ID); len(nums) != 1 || nums[0] != "1005" {
		t.Fatalf("sam's numbers %v", nums)
	}
}
