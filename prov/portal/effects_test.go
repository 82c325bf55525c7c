package portal

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"hotdesk/prov"
)

func (e *env) login(a auth, mac, user, password string) sessionView {
	e.t.Helper()
	var s sessionView
	e.want(e.do(a, "POST", "/api/v1/sessions", loginBody{Device: mac, User: user, Password: password}), 201).into(e.t, &s)
	return s
}

func (e *env) session(id string) sessionView {
	e.t.Helper()
	var s sessionView
	e.want(e.do(asAdmin, "GET", "/api/v1/sessions/"+id, nil), 200).into(e.t, &s)
	return s
}

func TestDisableEnable(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.user("gina", "5001", "+4940500")
	e.device("0004f2aa0001")
	e.device("0004f2aa0002")
	e.want(e.do(asAdmin, "PATCH", "/api/v1/users/gina", map[string]any{"call_handling": map[string]any{
		"forward_always": "5999"}}), 200)
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2aa0002/assign", assignBody{User: "gina"}), 200)
	s := e.login(asAdmin, "0004f2aa0001", "gina", "")
	if _, ok := e.creds.Lookup("5001"); !ok {
		t.Fatal("no permanent credential before disabling")
	}
	e.reg.reset()

	var v userView
	e.want(e.do(asAdmin, "POST", "/api/v1/users/gina/disable", nil), 200).into(t, &v)
	if v.Status != prov.StatusDisabled || len(v.Numbers) != 0 || v.CallHandling.ForwardAlways != "" {
		t.Fatalf("disabled user %+v", v)
	}
	// The session ended through the logout path: reason, unbind, check-sync.
	got := e.session(s.ID)
	if got.Active || got.EndReason != prov.EndUserDisabled {
		t.Fatalf("session after disable: %+v", got)
	}
	uid := fmt.Sprint(u.ID)
	if !e.reg.unbound("session:"+s.ID) || !e.reg.unbound("user:"+uid) {
		t.Fatalf("unbinds %v", e.reg.unbinds)
	}
	if e.reg.synced("0004f2aa0001") == 0 || e.reg.synced("0004f2aa0002") == 0 {
		t.Fatalf("check-syncs %v", e.reg.syncs)
	}
	if stored, err := e.st.GetSession(t.Context(), s.ID); err != nil || stored.SIPUser == "" {
		t.Fatalf("session credential: %v", err)
	} else if _, ok := e.creds.Lookup(stored.SIPUser); ok {
		t.Fatal("the session's credential still authenticates")
	}
	if _, ok := e.creds.Lookup("5001"); ok {
		t.Fatal("the permanent credential still authenticates")
	}
	var d deviceView
	e.want(e.do(asAdmin, "GET", "/api/v1/devices/0004f2aa0002", nil), 200).into(t, &d)
	if d.AssignedUser != "" || d.AssignedUserID != 0 {
		t.Fatalf("desk phone still assigned: %+v", d)
	}
	// A disabled user cannot log in, and the answer does not say why.
	e.want(e.do(anonymous, "POST", "/api/v1/sessions", loginBody{Device: "0004f2aa0001", User: "gina",
		Password: "password-gina"}), 401)
	// History stays: the ended session is listed.
	var sl sessionList
	e.want(e.do(asAdmin, "GET", "/api/v1/sessions?user=gina&all=1", nil), 200).into(t, &sl)
	if len(sl.Items) != 1 || sl.Items[0].ID != s.ID {
		t.Fatalf("history %+v", sl)
	}
	ev := e.audit("user.disable", "user:gina")
	if len(ev) != 1 || !strings.Contains(ev[0].Before, `"numbers":["+4940500","5001"]`) ||
		!strings.Contains(ev[0].Before, "0004f2aa0002") || !strings.Contains(ev[0].After, "disabled") {
		t.Fatalf("audit %+v", ev)
	}
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/users/gina/numbers", numbersBody{Numbers: []string{"5002"}}), 409, "user")

	// Re-enable restores the account, not the assignments.
	e.want(e.do(asAdmin, "POST", "/api/v1/users/gina/enable", nil), 200).into(t, &v)
	if v.Status != prov.StatusActive || len(v.Numbers) != 0 {
		t.Fatalf("enabled user %+v", v)
	}
	e.login(anonymous, "0004f2aa0001", "gina", "password-gina")
	e.want(e.do(asAdmin, "POST", "/api/v1/users/nobody/disable", nil), 404)
}

func TestAssignManagedAndUnassign(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("hugo", "6001")
	e.user("ines", "6002")
	e.device("0004f2bb0001")
	r := e.want(e.do(asAdmin, "POST", "/api/v1/devices/00:04:F2:BB:00:01/assign", assignBody{User: "hugo"}), 200)
	var av assignView
	r.into(t, &av)
	pin := regexp.MustCompile(`^[0-9]{8}$`)
	if av.Kind != "managed" || !pin.MatchString(av.DeploymentPIN) || !pin.MatchString(av.SecurityPIN) ||
		av.Device.AssignedUser != "hugo" || av.ThirdParty != nil {
		t.Fatalf("assignment %+v", av)
	}
	// The PINs are shown once: never in the device view.
	g := e.want(e.do(asAdmin, "GET", "/api/v1/devices/0004f2bb0001", nil), 200)
	if strings.Contains(string(g.body), av.DeploymentPIN) || strings.Contains(string(g.body), av.SecurityPIN) {
		t.Fatalf("PIN visible later: %s", g.body)
	}
	if len(e.audit("device.assign", "device:0004f2bb0001")) != 1 {
		t.Fatal("assign not audited")
	}
	if strings.Contains(e.audit("device.assign", "device:0004f2bb0001")[0].After, av.DeploymentPIN) {
		t.Fatal("audit keeps the PIN")
	}
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0004f2bb0001/assign", assignBody{User: "ines"}), 409, "mac")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0004f2bb0001/assign", assignBody{User: "nobody"}), 400, "user")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0004f2bb0001/assign", assignBody{User: "hugo", Kind: "x"}), 400, "kind")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/zz/assign", assignBody{User: "hugo"}), 400, "mac")

	s := e.login(asAdmin, "0004f2bb0001", "hugo", "")
	e.reg.reset()
	var d deviceView
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2bb0001/unassign", nil), 200).into(t, &d)
	if d.AssignedUser != "" {
		t.Fatalf("still assigned %+v", d)
	}
	if got := e.session(s.ID); got.Active || got.EndReason != prov.EndUnassigned {
		t.Fatalf("session after unassign %+v", got)
	}
	if !e.reg.unbound("session:"+s.ID) || e.reg.synced("0004f2bb0001") == 0 {
		t.Fatalf("unassign effects: unbinds %v syncs %v", e.reg.unbinds, e.reg.syncs)
	}
	// The user keeps the number for a softphone.
	var nv numbersView
	e.want(e.do(asAdmin, "GET", "/api/v1/users/hugo/numbers", nil), 200).into(t, &nv)
	if len(nv.Numbers) != 1 {
		t.Fatalf("numbers after unassign %v", nv.Numbers)
	}
	// Free again: another user may have it.
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2bb0001/assign", assignBody{User: "ines"}), 200)
}

func TestAssignThirdParty(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("jana", "+4930600")
	e.user("karl")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0015650000aa/assign",
		assignBody{User: "karl", Kind: "third_party"}), 400, "user") // no number
	var av assignView
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0015650000aa/assign",
		assignBody{User: "jana", Kind: "third_party"}), 200).into(t, &av)
	tp := av.ThirdParty
	if tp == nil || tp.UserID != "4930600" || tp.Port != 5060 || tp.Transport != "udp" || tp.Password != "" ||
		tp.Server != "hq.example.test" || av.DeploymentPIN != "" || av.Device.Vendor != "yealink" {
		t.Fatalf("third-party assignment %+v %+v", av, tp)
	}
	var ss sipSettings
	e.want(e.do(asAdmin, "GET", "/api/v1/devices/0015650000aa/sip-account", nil), 200).into(t, &ss)
	if ss.Password != "" || ss.UserID != "4930600" {
		t.Fatalf("settings without reveal %+v", ss)
	}
	if len(e.audit("user.sip_password.reveal", "user:jana")) != 0 {
		t.Fatal("audited a reveal that did not happen")
	}
	e.want(e.do(asAdmin, "GET", "/api/v1/devices/0015650000aa/sip-account?reveal=1", nil), 200).into(t, &ss)
	stored, _ := e.st.GetUser(t.Context(), "jana")
	if ss.Password == "" || ss.Password != stored.SIPPassword {
		t.Fatalf("revealed %q", ss.Password)
	}
	// The revealed account is the one the registrar accepts.
	if c, ok := e.creds.Lookup(ss.UserID); !ok || c.Password != ss.Password {
		t.Fatal("revealed account does not authenticate")
	}
	if ev := e.audit("user.sip_password.reveal", "user:jana"); len(ev) != 1 || ev[0].Actor != "admin:root" ||
		strings.Contains(ev[0].After, ss.Password) {
		t.Fatalf("reveal audit %+v", ev)
	}
	e.wantErr(e.do(asAdmin, "GET", "/api/v1/devices/001565000099/sip-account", nil), 404, "")
}

func TestClaimByDeploymentPIN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("lena", "7001")
	e.user("mo", "7002")
	var av assignView
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2cc0001/assign", assignBody{User: "lena"}), 200).into(t, &av)
	e.device("0004f2cc0002") // the phone actually put on lena's desk
	e.device("0004f2cc0003")
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2cc0003/assign", assignBody{User: "mo"}), 200)

	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2cc0002/claim", claimBody{PIN: "00000000"}), 401)
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2cc0009/claim", claimBody{PIN: av.DeploymentPIN}), 401)
	// A phone that belongs to someone else cannot be claimed.
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2cc0003/claim", claimBody{PIN: av.DeploymentPIN}), 403)
	e.reg.reset()
	var d deviceView
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2cc0002/claim", claimBody{PIN: av.DeploymentPIN}), 200).into(t, &d)
	if d.AssignedUser != "lena" || d.Kind != prov.DeviceManaged {
		t.Fatalf("claimed %+v", d)
	}
	var old deviceView
	e.want(e.do(asAdmin, "GET", "/api/v1/devices/0004f2cc0001", nil), 200).into(t, &old)
	if old.AssignedUser != "" {
		t.Fatalf("the placeholder keeps the assignment: %+v", old)
	}
	if e.reg.synced("0004f2cc0002") == 0 {
		t.Fatal("claimed phone not told to re-provision")
	}
	// The PIN works once.
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2cc0002/claim", claimBody{PIN: av.DeploymentPIN}), 401)
	if ev := e.audit("device.claim", "device:0004f2cc0002"); len(ev) != 1 || ev[0].Actor != "phone" {
		t.Fatalf("claim audit %+v", ev)
	}
	// Guessing locks the phone and the source out (per phone and per
	// source: the three failures above count), even for the right PIN.
	var pav assignView
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2cc0005/assign", assignBody{User: "mo"}), 200).into(t, &pav)
	e.device("0004f2cc0006")
	for i := range 2 {
		e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2cc0006/claim", claimBody{PIN: fmt.Sprintf("1234567%d", i)}), 401)
	}
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2cc0006/claim", claimBody{PIN: pav.DeploymentPIN}), 429)
}

func TestDevicesCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.device("00-04-F2-DD-00-01")
	if d.MAC != "0004f2dd0001" || d.Vendor != "polycom" || d.Status != prov.DeviceNotDeployed || d.SIPUser == "" {
		t.Fatalf("created %+v", d)
	}
	stored, _ := e.st.GetDevice(t.Context(), d.MAC)
	body := string(e.do(asAdmin, "GET", "/api/v1/devices/0004F2DD0001", nil).body)
	if stored.ProvPassword == "" || strings.Contains(body, stored.ProvPassword) || strings.Contains(body, stored.SIPPassword) {
		t.Fatalf("device secrets shown: %s", body)
	}
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices", deviceCreate{MAC: "0004f2dd0001"}), 409, "mac")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices", deviceCreate{MAC: "nope"}), 400, "mac")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices", deviceCreate{MAC: "0004f2dd0002", SiteID: 42}), 400, "site_id")
	e.reg.reset()
	var got deviceView
	e.want(e.do(asAdmin, "PATCH", "/api/v1/devices/0004f2dd0001", map[string]any{"model": "VVX 450",
		"authorized": []prov.AuthorizedNumber{{Description: "Security", Number: "1099"}}}), 200).into(t, &got)
	if got.Model != "VVX 450" || len(got.Authorized) != 1 || e.reg.synced("0004f2dd0001") != 1 {
		t.Fatalf("patched %+v, syncs %v", got, e.reg.syncs)
	}
	six := make([]prov.AuthorizedNumber, 6)
	for i := range six {
		six[i] = prov.AuthorizedNumber{Description: "n", Number: fmt.Sprint(1000 + i)}
	}
	e.wantErr(e.do(asAdmin, "PATCH", "/api/v1/devices/0004f2dd0001", map[string]any{"authorized": six}), 400, "authorized")
	e.wantErr(e.do(asAdmin, "PATCH", "/api/v1/devices/0004f2dd0001", map[string]any{"status": "deployed"}), 400, "status")
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0001/check-sync", map[string]any{"reboot": true}), 202)
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0001/check-sync", nil), 202)
	if e.reg.synced("0004f2dd0001+reboot") != 1 || e.reg.synced("0004f2dd0001") != 2 {
		t.Fatalf("syncs %v", e.reg.syncs)
	}
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0099/check-sync", nil), 404)
	var l deviceList
	e.want(e.do(asAdmin, "GET", "/api/v1/devices?q=vvx", nil), 200).into(t, &l)
	if l.Total != 1 || l.Items[0].MAC != "0004f2dd0001" {
		t.Fatalf("list %+v", l)
	}
}

func TestSIPEndpoint(t *testing.T) {
	t.Parallel()
	ls := []Listener{{Name: "admin", Proto: "http", Addr: "127.0.0.1:8080"},
		{Name: "sip", Proto: "tcp", Addr: "0.0.0.0:5070"}, {Name: "sip", Proto: "udp", Addr: "[::]:5080"},
		{Name: "sip", Proto: "tls", Addr: "0.0.0.0:5071"}}
	for _, tc := range []struct {
		name      string
		tp        ThirdPartyConfig
		ls        []Listener
		transport string
		port      int
	}{
		{"udp first", ThirdPartyConfig{}, ls, "udp", 5080},
		{"configured transport", ThirdPartyConfig{Transport: "tls"}, ls, "tls", 5071},
		{"port forward", ThirdPartyConfig{Port: 15060}, ls, "udp", 15060},
		{"tcp only", ThirdPartyConfig{}, ls[:2], "tcp", 5070},
		{"no listener known", ThirdPartyConfig{}, nil, "udp", 5060},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tr, p := sipEndpoint(tc.tp, tc.ls); tr != tc.transport || p != tc.port {
				t.Fatalf("got %s %d, want %s %d", tr, p, tc.transport, tc.port)
			}
		})
	}
}

// TestAssignWithNumber: a number and a desk phone are assigned in one
// step; a refused step leaves neither the number nor the phone behind.
func TestAssignWithNumber(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("nora")
	e.user("olga", "7301")
	// A third-party phone needs a number: given here, it is enough.
	var av assignView
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/001565000301/assign",
		assignBody{User: "nora", Kind: "third_party", Number: "7300"}), 200).into(t, &av)
	if av.ThirdParty == nil || av.ThirdParty.UserID != "7300" || av.User != "nora" {
		t.Fatalf("assignment with a number %+v", av)
	}
	var nv numbersView
	e.want(e.do(asAdmin, "GET", "/api/v1/users/nora/numbers", nil), 200).into(t, &nv)
	if len(nv.Numbers) != 1 || nv.Numbers[0] != "7300" {
		t.Fatalf("numbers %v", nv.Numbers)
	}
	if c, ok := e.creds.Lookup("7300"); !ok || c.Kind != prov.OwnerUser {
		t.Fatal("the new number does not authenticate")
	}
	// Again with the number it already has: nothing changes, no error.
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/001565000301/assign",
		assignBody{User: "nora", Kind: "third_party", Number: "7300"}), 200)

	// Refused: another user's number (409), a bad number (400), a phone
	// that is someone else's (409). Nothing of it is stored.
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0001/assign",
		assignBody{User: "nora", Number: "7301"}), 409, "number")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0001/assign",
		assignBody{User: "nora", Number: "73 02"}), 400, "number")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0001/assign",
		assignBody{User: "nora", Number: "olga"}), 400, "number")
	e.want(e.do(asAdmin, "GET", "/api/v1/devices/0004f2dd0001", nil), 404)
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0002/assign", assignBody{User: "olga"}), 200)
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/devices/0004f2dd0002/assign",
		assignBody{User: "nora", Number: "7302"}), 409, "mac")
	e.want(e.do(asAdmin, "GET", "/api/v1/users/nora/numbers", nil), 200).into(t, &nv)
	if len(nv.Numbers) != 1 {
		t.Fatalf("a refused assignment left a number behind: %v", nv.Numbers)
	}
	if _, ok := e.creds.Lookup("7302"); ok {
		t.Fatal("a refused assignment left a credential behind")
	}
}

// TestClaimAssignedPhoneNeedsItsSecurityPIN: a deployment PIN typed at a
// phone that is another user's desk phone claims it only with that phone's
// security PIN, which its user knows; a wrong one counts as a failed guess.
func TestClaimAssignedPhoneNeedsItsSecurityPIN(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("pia", "7401")
	e.user("ruth", "7402")
	var pia, ruth assignView
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2ce0001/assign", assignBody{User: "pia"}), 200).into(t, &pia)
	e.want(e.do(asAdmin, "POST", "/api/v1/devices/0004f2ce0002/assign", assignBody{User: "ruth"}), 200).into(t, &ruth)
	wrong := "00000000"
	if wrong == ruth.SecurityPIN {
		wrong = "00000001"
	}
	// Pia's deployment PIN at Ruth's phone: without Ruth's security PIN, no.
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2ce0002/claim", claimBody{PIN: pia.DeploymentPIN}), 403)
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2ce0002/claim",
		claimBody{PIN: pia.DeploymentPIN, SecurityPIN: wrong}), 401)
	// Pia's own security PIN is not Ruth's phone's.
	if pia.SecurityPIN != ruth.SecurityPIN {
		e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2ce0002/claim",
			claimBody{PIN: pia.DeploymentPIN, SecurityPIN: pia.SecurityPIN}), 401)
	}
	var still deviceView
	e.want(e.do(asAdmin, "GET", "/api/v1/devices/0004f2ce0002", nil), 200).into(t, &still)
	if still.AssignedUser != "ruth" {
		t.Fatalf("a refused claim moved the phone: %+v", still)
	}
	var d deviceView
	e.want(e.do(anonymous, "POST", "/api/v1/devices/0004f2ce0002/claim",
		claimBody{PIN: pia.DeploymentPIN, SecurityPIN: ruth.SecurityPIN}), 200).into(t, &d)
	if d.AssignedUser != "pia" {
		t.Fatalf("claimed with the security PIN: %+v", d)
	}
	stored, _ := e.st.GetDevice(t.Context(), "0004f2ce0002")
	if stored.SecurityPIN == "" || stored.SecurityPIN == ruth.SecurityPIN || stored.DeploymentPIN != "" {
		t.Fatalf("the claimed phone keeps the old PINs: %+v", stored)
	}
	if ev := e.audit("device.claim.takeover", "device:0004f2ce0002"); len(ev) != 1 ||
		strings.Contains(ev[0].After, ruth.SecurityPIN) {
		t.Fatalf("takeover audit %+v", ev)
	}
}
