package portal

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

func TestSites(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	six := make([]map[string]string, 6)
	for i := range six {
		six[i] = map[string]string{"description": "d", "number": fmt.Sprint(1000 + i)}
	}
	ok := func(mod func(m map[string]any)) map[string]any {
		m := map[string]any{"name": "branch", "domain": "branch.example.test", "time_zone": "Europe/Berlin",
			"language": "de", "subnets": []string{"10.2.0.0/16"},
			"login":         map[string]any{"enabled": true, "required": true, "automatic_logout": 30, "one_per_user": "deny"},
			"authorized":    []map[string]string{{"description": "Front desk", "number": "1000"}},
			"emergency":     []string{"112", "+4930110"},
			"feature_codes": map[string]string{"login": "*77", "logout": "*78"},
			"trunk":         map[string]any{"address": "sip.provider.test", "username": "acct", "password": "trunk-pw"}}
		mod(m)
		return m
	}
	for _, tc := range []struct {
		name  string
		mod   func(m map[string]any)
		code  int
		field string
	}{
		{"six authorized", func(m map[string]any) { m["authorized"] = six }, 400, "authorized"},
		{"authorized number", func(m map[string]any) {
			m["authorized"] = []map[string]string{{"description": "x", "number": "abc"}}
		}, 400, "authorized[0].number"},
		{"policy", func(m map[string]any) { m["login"] = map[string]any{"one_per_user": "sometimes"} }, 400, "login.one_per_user"},
		{"login unknown key", func(m map[string]any) { m["login"] = map[string]any{"enabeld": true} }, 400, "enabeld"},
		{"default only", func(m map[string]any) { m["login"] = map[string]any{"default_only": true} }, 400, "login.default_user"},
		{"default user exists", func(m map[string]any) { m["login"] = map[string]any{"default_user": "ghost"} }, 400, "login.default_user"},
		{"time zone", func(m map[string]any) { m["time_zone"] = "Mars/Olympus" }, 400, "time_zone"},
		{"subnet", func(m map[string]any) { m["subnets"] = []string{"10.2.0.0/33"} }, 400, "subnets[0]"},
		{"emergency", func(m map[string]any) { m["emergency"] = []string{"police"} }, 400, "emergency[0]"},
		{"feature code", func(m map[string]any) { m["feature_codes"] = map[string]string{"login": "77"} }, 400, "feature_codes.login"},
		{"name", func(m map[string]any) { m["name"] = "" }, 400, "name"},
		{"duplicate name", func(m map[string]any) { m["name"] = "hq" }, 409, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.wantErr(e.do(asAdmin, "POST", "/api/v1/sites", ok(tc.mod)), tc.code, tc.field)
		})
	}
	e.t = t
	r := e.want(e.do(asAdmin, "POST", "/api/v1/sites", ok(func(map[string]any) {})), 201)
	if strings.Contains(string(r.body), "trunk-pw") || !strings.Contains(string(r.body), `"password_set":true`) {
		t.Fatalf("trunk password shown: %s", r.body)
	}
	var s siteView
	r.into(t, &s)
	d := e.device("0004f2ee0001")
	e.want(e.do(asAdmin, "PATCH", "/api/v1/devices/0004f2ee0001", map[string]any{"site_id": s.ID}), 200)
	e.reg.reset()
	// PATCH merges: only automatic_logout changes, the rest of login stays.
	e.want(e.do(asAdmin, "PATCH", fmt.Sprintf("/api/v1/sites/%d", s.ID),
		map[string]any{"login": map[string]any{"automatic_logout": 5}}), 200).into(t, &s)
	if !s.Login.Enabled || s.Login.OnePerUser != "deny" || s.Login.AutomaticLogout != 5 || len(s.Authorized) != 1 {
		t.Fatalf("merged site %+v", s)
	}
	stored, _ := e.st.GetSite(t.Context(), s.ID)
	if stored.Trunk.Password != "trunk-pw" {
		t.Fatal("PATCH lost the trunk password")
	}
	if e.reg.synced(d.MAC) != 1 {
		t.Fatalf("devices of the site not re-provisioned: %v", e.reg.syncs)
	}
	e.wantErr(e.do(asAdmin, "PATCH", fmt.Sprintf("/api/v1/sites/%d", s.ID), map[string]any{"authorized": six}), 400, "authorized")
	e.want(e.do(asAdmin, "GET", "/api/v1/sites/999", nil), 404)
	e.want(e.do(asAdmin, "GET", "/api/v1/sites/x", nil), 404)
	var l siteList
	e.want(e.do(asAdmin, "GET", "/api/v1/sites", nil), 200).into(t, &l)
	if len(l.Items) != 2 {
		t.Fatalf("sites %+v", l)
	}
	ev := e.audit("site.update", fmt.Sprintf("site:%d", s.ID))
	if len(ev) != 1 || !strings.Contains(ev[0].Before, `"automatic_logout":30`) || strings.Contains(ev[0].Before, "trunk-pw") {
		t.Fatalf("site audit %+v", ev)
	}
}

func TestSessionsAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("nina", "8001")
	e.device("0004f2ff0001")
	e.device("0004f2ff0002")
	e.wantErr(e.do(anonymous, "POST", "/api/v1/sessions", loginBody{Device: "0004f2ff0001", User: "nina"}), 400, "password")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/sessions", loginBody{User: "nina"}), 400, "device")
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/sessions", loginBody{Device: "x", User: "nina"}), 400, "device")
	wrong := e.want(e.do(anonymous, "POST", "/api/v1/sessions", loginBody{Device: "0004f2ff0001", User: "nina", Password: "wrong-pw"}), 401)
	unknown := e.want(e.do(anonymous, "POST", "/api/v1/sessions", loginBody{Device: "0004f2ff0001", User: "nobody", Password: "wrong-pw"}), 401)
	if string(wrong.body) != string(unknown.body) {
		t.Fatalf("unknown user distinguishable: %s vs %s", wrong.body, unknown.body)
	}
	s := e.login(anonymous, "0004f2ff0001", "nina", "password-nina")
	if s.User != "nina" || s.Device != "0004f2ff0001" || !s.Active || s.Door != prov.DoorAPI {
		t.Fatalf("session %+v", s)
	}
	stored, err := e.st.GetSession(t.Context(), s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := e.creds.Lookup(stored.SIPUser); !ok || strings.Contains(string(e.do(asAdmin, "GET",
		"/api/v1/sessions/"+s.ID, nil).body), stored.SIPPassword) {
		t.Fatal("the session minted no credential, or the API shows its password")
	}
	// An admin logs her in elsewhere without a password: replace policy.
	s2 := e.login(asAdmin, "0004f2ff0002", "nina", "")
	if got := e.session(s.ID); got.Active || got.EndReason != prov.EndReplaced {
		t.Fatalf("first session %+v", got)
	}
	var l sessionList
	e.want(e.do(asAdmin, "GET", "/api/v1/sessions?device=0004f2ff0002", nil), 200).into(t, &l)
	if len(l.Items) != 1 || l.Items[0].ID != s2.ID {
		t.Fatalf("by device %+v", l)
	}
	l = sessionList{}
	e.want(e.do(asAdmin, "GET", "/api/v1/sessions?user=nina&all=1", nil), 200).into(t, &l)
	if len(l.Items) != 2 {
		t.Fatalf("history %+v", l)
	}
	e.want(e.do(anonymous, "GET", "/api/v1/sessions", nil), 401)
	e.want(e.do(anonymous, "DELETE", "/api/v1/sessions/"+s2.ID, nil), 401)
	e.reg.reset()
	var ended sessionView
	e.want(e.do(asAdmin, "DELETE", "/api/v1/sessions/"+s2.ID, nil), 200).into(t, &ended)
	if ended.Active || ended.EndReason != prov.EndAdmin || !e.reg.unbound("session:"+s2.ID) || e.reg.synced("0004f2ff0002") != 1 {
		t.Fatalf("logout %+v unbinds %v syncs %v", ended, e.reg.unbinds, e.reg.syncs)
	}
	if stored, _ = e.st.GetSession(t.Context(), s2.ID); stored.SIPUser == "" {
		t.Fatal("no session credential")
	}
	if _, ok := e.creds.Lookup(stored.SIPUser); ok {
		t.Fatal("logged-out credential still authenticates")
	}
	e.want(e.do(asAdmin, "DELETE", "/api/v1/sessions/nosuch", nil), 404)
	// Guessing passwords from one source is slowed down: 429.
	var last int
	for i := range 6 {
		last = e.do(anonymous, "POST", "/api/v1/sessions", loginBody{Device: "0004f2ff0001", User: fmt.Sprintf("guess%d", i),
			Password: "wrong-pw"}).code
	}
	if last != 429 {
		t.Fatalf("no lockout after repeated failures: %d", last)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.want(e.do(anonymous, "GET", "/api/v1/users", nil), 401)
	if !strings.HasPrefix(r.hdr.Get("WWW-Authenticate"), "Basic") {
		t.Fatalf("no challenge: %v", r.hdr)
	}
	e.want(e.do(func(r2 *http.Request) { r2.Header.Set("Authorization", "Digest x") }, "GET", "/api/v1/users", nil), 401)
	wrong := e.want(e.do(basic(adminUser, "nope"), "GET", "/api/v1/users", nil), 401)
	unknown := e.want(e.do(basic("ghost", "nope"), "GET", "/api/v1/users", nil), 401)
	if string(wrong.body) != string(unknown.body) {
		t.Fatal("unknown admin distinguishable from a wrong password")
	}
	e.want(e.do(bearer("hdt_forged"), "GET", "/api/v1/users", nil), 401)

	// Tokens: made with Basic, shown once, stored as SHA-256.
	var tv tokenView
	e.want(e.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{Name: "ci"}), 201).into(t, &tv)
	sum := sha256.Sum256([]byte(tv.Token))
	stored, err := e.st.TokenByHash(t.Context(), hex.EncodeToString(sum[:]))
	if err != nil || stored.Name != "ci" || strings.Contains(stored.Hash, tv.Token) {
		t.Fatalf("stored token %+v %v", stored, err)
	}
	e.want(e.do(bearer(tv.Token), "GET", "/api/v1/users", nil), 200)
	e.user("olga")
	e.want(e.do(bearer(tv.Token), "POST", "/api/v1/users/olga/disable", nil), 200)
	if ev := e.audit("user.disable", "user:olga"); len(ev) != 1 || ev[0].Actor != "token:ci" {
		t.Fatalf("token actor %+v", ev)
	}
	e.want(e.do(bearer(tv.Token), "POST", "/api/v1/tokens", tokenBody{Name: "again"}), 403)
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/tokens", tokenBody{}), 400, "name")

	// Lockout: a success resets the source's count; five failures lock
	// it, and a locked source is refused even with the right password.
	for range e.api.cfg.LockoutThreshold {
		e.do(basic(adminUser, "nope"), "GET", "/api/v1/users", nil)
	}
	r = e.want(e.do(asAdmin, "GET", "/api/v1/users", nil), 429)
	if r.hdr.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	// The public document needs no credentials.
	e.want(e.do(anonymous, "GET", "/api/v1/openapi.json", nil), 200)
	if probs, err := testutil.GatherAndLint(e.prom); err != nil || len(probs) > 0 {
		t.Fatalf("metric lint: %v %+v", err, probs)
	}
	if n := testutil.ToFloat64(e.api.m.authFail.WithLabelValues("locked")); n < 1 {
		t.Fatalf("locked refusals counted: %v", n)
	}
}

// A security review found (medium) one burst of wrong passwords locked the
// real admin out of the API for an hour. Failures now lock the (name,
// source) pair; from many sources they spend the name's budget, after
// which fresh sources are refused but the ones the admin works from are not.
func TestLockoutPerName(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	call := func(src, pass string) int {
		req := httptest.NewRequest("GET", "/api/v1/status", nil)
		req.RemoteAddr = src + ":40000"
		req.SetBasicAuth(adminUser, pass)
		rec := httptest.NewRecorder()
		e.api.ServeHTTP(rec, req)
		return rec.Code
	}
	const desk = "192.0.2.200" // where the admin works from
	if code := call(desk, adminPass); code != 200 {
		t.Fatalf("admin: %d", code)
	}
	n := e.api.cfg.LockoutThreshold
	for i := range n {
		if code := call("192.0.2.1", "nope"); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code := call("192.0.2.1", adminPass); code != 429 {
		t.Fatalf("the guessing source itself: %d, want 429", code)
	}
	if code := call("192.0.2.2", adminPass); code != 200 {
		t.Fatalf("one host's burst locked the name for another: %d", code)
	}
	// Spread over many hosts, the guesses spend the name's budget.
	for i := range n * provauth.AccountBudget {
		call(fmt.Sprintf("198.51.100.%d", i+1), "nope")
	}
	if code := call("192.0.2.99", adminPass); code != 429 {
		t.Fatalf("budget spent, a fresh source: %d, want 429", code)
	}
	if code := call(desk, adminPass); code != 200 {
		t.Fatalf("budget spent, the admin's own desk: %d, want 200", code)
	}
	// Another admin name from a fresh source is not affected.
	req := httptest.NewRequest("GET", "/api/v1/status", nil)
	req.RemoteAddr = "192.0.2.99:40000"
	req.SetBasicAuth("other", "nope")
	rec := httptest.NewRecorder()
	e.api.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("other name: %d", rec.Code)
	}
}

func TestStatusAndRegistrations(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.user("paul", "9001")
	e.device("0004f2110001")
	s := e.login(asAdmin, "0004f2110001", "paul", "")
	d, _ := e.st.GetDevice(t.Context(), "0004f2110001")
	now := time.Now().UTC().Truncate(time.Second)
	e.regs.regs = []Registration{
		{AOR: "9001", Contact: "sip:9001@10.0.0.5:5060", Source: "10.0.0.5:5060", Transport: "udp",
			UserAgent: "PolycomVVX-VVX_450-UA/6.4.0", Owner: prov.SessionOwner(s.ID), Since: now, Expires: now.Add(time.Hour)},
		{AOR: "dev0004f2110001", Contact: "sip:dev@10.0.0.5:5060", Owner: prov.DeviceOwner(d.ID)},
	}
	var l registrationList
	e.want(e.do(asAdmin, "GET", "/api/v1/registrations", nil), 200).into(t, &l)
	if len(l.Items) != 2 || l.Items[0].User != "paul" || l.Items[0].Device != "0004f2110001" ||
		l.Items[0].UserAgent == "" || !l.Items[0].Since.Equal(now) || l.Items[1].Device != "0004f2110001" {
		t.Fatalf("registrations %+v", l)
	}
	var st statusView
	e.want(e.do(asAdmin, "GET", "/api/v1/status", nil), 200).into(t, &st)
	if st.Users != 1 || st.Devices != 1 || st.ActiveSessions != 1 || st.Registrations != 2 ||
		len(st.Listeners) != 1 || st.Version != "test" {
		t.Fatalf("status %+v", st)
	}
}

func TestUnknownRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.wantErr(e.do(asAdmin, "GET", "/api/v1/nothing", nil), 404, "")
	r := e.do(asAdmin, "PUT", "/api/v1/users", nil)
	e.wantErr(r, 405, "")
	if !strings.Contains(r.hdr.Get("Allow"), "GET") {
		t.Fatalf("Allow %q", r.hdr.Get("Allow"))
	}
	e.wantErr(e.do(asAdmin, "POST", "/api/v1/users", `{"first_name":"a"} {}`), 400, "")
	big := `{"first_name":"` + strings.Repeat("a", 2<<20) + `"}`
	e.want(e.do(asAdmin, "POST", "/api/v1/users", big), 413)
}

// TestAPIConcurrentBasicAuthSharesOneCheck: a script that fires many
// requests at once with the same admin credentials costs one argon2id
// check, not one each (they would queue behind each other for seconds);
// the same burst with a wrong password is refused every time.
func TestAPIConcurrentBasicAuthSharesOneCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	burst := func(pass string) []int {
		var wg sync.WaitGroup
		codes := make([]int, 20)
		for i := range codes {
			wg.Go(func() {
				req, err := http.NewRequest("GET", e.srv.URL+"/api/v1/users", nil)
				if err != nil {
					return
				}
				req.SetBasicAuth(adminUser, pass)
				res, err := e.srv.Client().Do(req)
				if err != nil {
					return
				}
				res.Body.Close()
				codes[i] = res.StatusCode
			})
		}
		wg.Wait()
		return codes
	}
	h := e.api.auth.hasher
	before := h.Runs()
	for i, c := range burst(adminPass) {
		if c != 200 {
			t.Errorf("request %d: %d, want 200", i, c)
		}
	}
	if n := h.Runs() - before; n != 1 {
		t.Errorf("%d argon2id checks for one burst of good credentials, want 1", n)
	}
	for i, c := range burst("not-the-password") {
		if c != 401 && c != 429 {
			t.Errorf("wrong password, request %d: %d, want 401 or 429", i, c)
		}
	}
}
