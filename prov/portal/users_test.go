package portal

import (
	"strconv"
	"strings"
	"testing"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

func TestCreateUserValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("taken", "1001")
	base := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.test"}
		mod(m)
		return m
	}
	for _, tc := range []struct {
		name  string
		body  any
		code  int
		field string
	}{
		{"first name required", base(func(m map[string]any) { delete(m, "first_name") }), 400, "first_name"},
		{"last name required", base(func(m map[string]any) { m["last_name"] = "  " }), 400, "last_name"},
		{"email required", base(func(m map[string]any) { delete(m, "email") }), 400, "email"},
		{"email valid", base(func(m map[string]any) { m["email"] = "ada at example" }), 400, "email"},
		{"username charset", base(func(m map[string]any) { m["username"] = "a b" }), 400, "username"},
		{"kind", base(func(m map[string]any) { m["kind"] = "robot" }), 400, "kind"},
		{"common area needs responsible", base(func(m map[string]any) { m["kind"] = "common_area" }), 400, "responsible_email"},
		{"number format", base(func(m map[string]any) { m["numbers"] = []string{"12ab"} }), 400, "numbers"},
		{"password policy", base(func(m map[string]any) { m["password"] = "abc" }), 400, "password"},
		{"unknown field", base(func(m map[string]any) { m["nickname"] = "x" }), 400, "nickname"},
		{"wrong type", base(func(m map[string]any) { m["site_id"] = "one" }), 400, "site_id"},
		{"no such site", base(func(m map[string]any) { m["site_id"] = 999 }), 400, "site_id"},
		{"scope is a site", base(func(m map[string]any) { m["directory_scope"] = "mars" }), 400, "directory_scope"},
		{"duplicate user name", base(func(m map[string]any) { m["username"] = "taken" }), 409, "username"},
		{"duplicate number", base(func(m map[string]any) { m["numbers"] = []string{"1001"} }), 409, "numbers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(e.do(asAdmin, "POST", "/api/v1/users", tc.body), tc.code, tc.field)
		})
	}
	e.t = t
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/users", "{", "application/json"), 400, "")
	e.want(e.do(asAdmin, "POST", "/api/v1/users", "x", "text/plain"), 415)
	if _, err := e.st.GetUser(t.Context(), "ada@example.test"); err == nil {
		t.Fatal("a refused request created the user")
	}

	// The user name defaults to the email; the scope to all.
	r := e.want(e.do(asAdmin, "POST", "/api/v1/users", base(func(m map[string]any) {
		m["kind"], m["responsible_email"], m["custom1"] = "common_area", "desk@example.test", "Lobby"
	})), 201)
	var u userView
	r.into(t, &u)
	if u.Username != "ada@example.test" || u.DirectoryScope != "all" || u.Kind != prov.KindCommonArea ||
		u.Status != prov.StatusActive || u.Custom1 != "Lobby" {
		t.Fatalf("created %+v", u)
	}
	if r.hdr.Get("Location") != "/api/v1/users/ada@example.test" {
		t.Fatalf("Location %q", r.hdr.Get("Location"))
	}
	for _, secret := range []string{"password_hash", "sip_password", "login_ha1", "argon2id"} {
		if strings.Contains(string(r.body), secret) {
			t.Fatalf("answer leaks %s: %s", secret, r.body)
		}
	}
	if ev := e.audit("user.create", "user:ada@example.test"); len(ev) != 1 || ev[0].Actor != "admin:root" ||
		ev[0].Remote != "127.0.0.1" || !strings.Contains(ev[0].After, `"first_name":"Ada"`) {
		t.Fatalf("audit %+v", ev)
	}
}

func TestListUsers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("anna", "2001")
	e.user("bert")
	e.user("carl", "2003", "+4930123")
	var l userList
	e.want(e.do(asAdmin, "GET", "/api/v1/users?limit=2", nil), 200).into(t, &l)
	if l.Total != 3 || len(l.Items) != 2 || l.Items[0]["username"] != "anna" || l.CustomFields[0] != "Department" {
		t.Fatalf("page 1: %+v", l)
	}
	l = userList{}
	e.want(e.do(asAdmin, "GET", "/api/v1/users?limit=2&offset=2", nil), 200).into(t, &l)
	if l.Total != 3 || len(l.Items) != 1 || l.Items[0]["username"] != "carl" {
		t.Fatalf("page 2: %+v", l)
	}
	if nums := l.Items[0]["numbers"].([]any); len(nums) != 2 {
		t.Fatalf("numbers %v", nums)
	}
	l = userList{}
	e.want(e.do(asAdmin, "GET", "/api/v1/users?q=BER&fields=username,email", nil), 200).into(t, &l)
	if l.Total != 1 || len(l.Items[0]) != 2 || l.Items[0]["email"] != "bert@example.test" {
		t.Fatalf("search with fields: %+v", l)
	}
	e.wantErr(e.do(asAdmin, "GET", "/api/v1/users?fields=username,password_hash", nil), 400, "fields")
	e.wantErr(e.do(asAdmin, "GET", "/api/v1/users?limit=0", nil), 400, "limit")
	e.wantErr(e.do(asAdmin, "GET", "/api/v1/users?offset=-1", nil), 400, "offset")
	e.wantErr(e.do(asAdmin, "GET", "/api/v1/users?status=gone", nil), 400, "status")
}

func TestPatchUserAndNoDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("dora")
	var u userView
	e.want(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"first_name": "Dorothea",
		"call_handling": map[string]any{"dnd": true}, "portal": map[string]any{"enabled": true, "profile": "read"}}), 200).into(t, &u)
	if u.FirstName != "Dorothea" || u.LastName != "Ldora" || !u.CallHandling.DND || u.Portal.Profile != prov.AccessRead ||
		!u.Portal.Enabled || u.Portal.Buttons != prov.AccessWrite {
		t.Fatalf("patched %+v", u)
	}
	// Nested objects merge: only forward_busy changes.
	e.want(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"call_handling": map[string]any{
		"forward_busy": "1234"}}), 200).into(t, &u)
	if !u.CallHandling.DND || u.CallHandling.ForwardBusy != "1234" {
		t.Fatalf("merged call handling %+v", u.CallHandling)
	}
	e.wantErr(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"email": ""}), 400, "email")
	e.wantErr(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"username": "dot"}), 400, "username")
	e.wantErr(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"portal": map[string]any{"profile": "all"}}), 400, "portal")
	e.want(e.do(asAdmin, "PATCH", "/api/v1/users/nobody", map[string]any{"first_name": "X"}), 404)

	// A password change keeps working logins: the new one verifies.
	e.want(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"password": "new-secret"}), 200)
	stored, err := e.st.GetUser(t.Context(), "dora")
	if err != nil || !provauth.VerifyPassword(stored.PasswordHash, "new-secret") ||
		stored.LoginHA1["MD5"] != provauth.DigestHA1("MD5", "dora", prov.LoginRealmOf(stored), "new-secret") || prov.LoginRealmOf(stored) == prov.LoginRealm {
		t.Fatalf("password not changed: %v", err)
	}

	r := e.want(e.do(asAdmin, "DELETE", "/api/v1/users/dora", nil), 405)
	if !strings.Contains(r.json(t)["error"].(string), "disable") || r.hdr.Get("Allow") == "" {
		t.Fatalf("405 without explanation: %s", r.body)
	}
	ev := e.audit("user.update", "user:dora")
	if len(ev) != 3 || !strings.Contains(ev[2].Before, `"first_name":"Fdora"`) ||
		!strings.Contains(ev[2].After, `"first_name":"Dorothea"`) || !strings.Contains(ev[0].After, `"password_changed":true`) {
		t.Fatalf("audit %+v", ev)
	}
	if strings.Contains(ev[0].After, "new-secret") || strings.Contains(ev[0].After, "argon2id") {
		t.Fatal("audit keeps the password")
	}
}

func TestNumbers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("eve", "3001")
	e.user("fred")
	var nv numbersView
	e.want(e.do(asAdmin, "POST", "/api/v1/users/fred/numbers", numbersBody{Numbers: []string{"3002", "+4930300"}}), 200).into(t, &nv)
	if strings.Join(nv.Numbers, ",") != "+4930300,3002" {
		t.Fatalf("numbers %v", nv.Numbers)
	}
	// All or none: 3003 is free but 3001 is eve's.
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/users/fred/numbers", numbersBody{Numbers: []string{"3003", "3001"}}), 409, "numbers")
	e.want(e.do(asAdmin, "GET", "/api/v1/users/fred/numbers", nil), 200).into(t, &nv)
	if len(nv.Numbers) != 2 {
		t.Fatalf("a refused assignment left %v", nv.Numbers)
	}
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/users/fred/numbers", numbersBody{Numbers: []string{"x"}}), 400, "numbers")
	e.want(e.do(asAdmin, "DELETE", "/api/v1/users/fred/numbers/3001", nil), 404) // eve's, not fred's
	e.want(e.do(asAdmin, "DELETE", "/api/v1/users/fred/numbers/3002", nil), 200).into(t, &nv)
	if strings.Join(nv.Numbers, ",") != "+4930300" {
		t.Fatalf("after unassign %v", nv.Numbers)
	}
	// The credential index follows: fred's permanent account is his number without "+".
	if c, ok := e.creds.Lookup("4930300"); !ok || c.Kind != prov.OwnerUser {
		t.Fatalf("credential for fred's number: %+v %v", c, ok)
	}
	if _, ok := e.creds.Lookup("3002"); ok {
		t.Fatal("an unassigned number still authenticates")
	}
	if len(e.audit("user.numbers.assign", "user:fred")) != 1 || len(e.audit("user.numbers.unassign", "user:fred")) != 1 {
		t.Fatal("number changes not audited")
	}
}

// TestCallHandlingTargets: the API checks forwarding and twinning targets
// as the portal does: a number or a known user, never the user's own line,
// bounded; the 400 names the field and nothing is stored.
func TestCallHandlingTargets(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("fwd", "4101", "+4930410")
	e.user("other", "4102")
	patch := func(field, v string) resp {
		return e.do(asAdmin, "PATCH", "/api/v1/users/fwd", map[string]any{"call_handling": map[string]any{field: v}})
	}
	for _, tc := range []struct{ field, v string }{
		{"forward_always", "4101"},        // own extension: a loop
		{"forward_busy", "4930410"},       // own number without "+"
		{"forward_no_answer", "+4930410"}, // own number
		{"twinning", "fwd"},               // own user name
		{"forward_always", "nobody-here"}, // no such user
		{"forward_busy", "sip:x@evil.example"},
		{"forward_no_answer", "12 34"},
		{"twinning", strings.Repeat("a", 65)},
		{"forward_always", "1"}, // too short for a number, and no user
	} {
		e.wantErr(patch(tc.field, tc.v), 400, tc.field)
	}
	stored, _ := e.st.GetUser(t.Context(), "fwd")
	if stored.CallHandling != (prov.CallHandling{}) {
		t.Fatalf("a refused target was stored: %+v", stored.CallHandling)
	}
	var u userView
	e.want(e.do(asAdmin, "PATCH", "/api/v1/users/fwd", map[string]any{"call_handling": map[string]any{
		"forward_always": " 4102 ", "forward_busy": "other", "forward_no_answer": "+4940999", "twinning": "0170123456"}}),
		200).into(t, &u)
	if ch := u.CallHandling; ch.ForwardAlways != "4102" || ch.ForwardBusy != "other" || ch.ForwardNoAnswer != "+4940999" ||
		ch.NoAnswerSeconds != 20 || ch.Twinning != "0170123456" {
		t.Fatalf("valid targets %+v", ch)
	}
}

// The admin writes any parameter into a user's
// profile (<user>.cfg), e.g. a second line appearance; names are checked
// against the phones' parameter groups and a refusal names the parameter.
func TestAdminWritesUserProfileParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("dora")
	var u userView
	e.want(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"params": map[string]string{
		"reg.2.address": "2002", "reg.2.label": "Sales"}}), 200).into(t, &u)
	stored, err := e.st.GetUser(t.Context(), "dora")
	if err != nil || stored.Params["reg.2.address"] != "2002" || stored.Params["reg.2.label"] != "Sales" {
		t.Fatalf("profile parameters not stored: %+v %v", stored.Params, err)
	}
	for name, field := range map[string]string{
		"rge.2.address":          "params.rge.2.address",
		"device.prov.serverName": "params.device.prov.serverName",
		"nodot":                  "params.nodot",
	} {
		e.wantErr(e.do(asAdmin, "PATCH", "/api/v1/users/dora", map[string]any{"params": map[string]string{name: "x"}}),
			400, field)
	}
	if again, _ := e.st.GetUser(t.Context(), "dora"); again.Params["reg.2.label"] != "Sales" || len(again.Params) != 2 {
		t.Fatalf("a refused patch changed the stored parameters: %+v", again.Params)
	}
	// Devices are checked alike.
	e.want(e.do(asAdmin, "POST", "/api/v1/devices", map[string]any{"mac": "0004f2aa0001"}), 201)
	e.wantErr(e.do(asAdmin, "PATCH", "/api/v1/devices/0004f2aa0001", map[string]any{"params": map[string]string{"x.y": "1"}}),
		400, "params.x.y")
	e.want(e.do(asAdmin, "PATCH", "/api/v1/devices/0004f2aa0001", map[string]any{"params": map[string]string{"up.x": "1"}}), 200)
}

// A site's profile directories through the API: one directory name each.
func TestSiteProfileDirs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var s prov.Site
	e.want(e.do(asAdmin, "POST", "/api/v1/sites", map[string]any{"name": "Branch"}), 201).into(t, &s)
	path := "/api/v1/sites/" + strconv.FormatInt(s.ID, 10)
	e.want(e.do(asAdmin, "PATCH", path, map[string]any{"profile_dirs": map[string]string{
		"user_profiles": "profiles", "contacts": "contacts"}}), 200).into(t, &s)
	if s.ProfileDirs.UserProfiles != "profiles" || s.ProfileDirs.Contacts != "contacts" || s.ProfileDirs.CallLists != "" {
		t.Fatalf("profile dirs %+v", s.ProfileDirs)
	}
	e.wantErr(e.do(asAdmin, "PATCH", path, map[string]any{"profile_dirs": map[string]string{"call_lists": "../x"}}),
		400, "profile_dirs.call_lists")
}
