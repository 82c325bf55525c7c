package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
	"hotdesk/prov/store"
)

const (
	adminUser = "root"
	adminPass = "root-secret-1"
)

// fakeRegistrar records what prov asks of the SIP side.
type fakeRegistrar struct {
	st      prov.Store
	mu      sync.Mutex
	unbinds []string
	syncs   []string
	// phoneAddr is where every phone is registered from ("": the test's
	// own loopback address).
	phoneAddr string
}

func (f *fakeRegistrar) Unbind(_ context.Context, owner string) ([]prov.Binding, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unbinds = append(f.unbinds, owner)
	return nil, nil
}

// DeviceBindings answers as if every device were registered from the
// test's own address (so a user's login through the API comes from the
// phone), with a Contact named by its MAC.
func (f *fakeRegistrar) DeviceBindings(ctx context.Context, id int64) []prov.Binding {
	d, err := f.st.GetDeviceByID(ctx, id)
	if err != nil {
		return nil
	}
	f.mu.Lock()
	src := f.phoneAddr
	f.mu.Unlock()
	if src == "" {
		src = "127.0.0.1:5060"
	}
	return []prov.Binding{{DeviceID: id, Source: src, Contact: "sip:" + d.MAC, Transport: "UDP"}}
}

func (f *fakeRegistrar) CheckSync(_ context.Context, b prov.Binding, _ string, event string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := strings.TrimPrefix(b.Contact, "sip:")
	if strings.Contains(event, "reboot=true") {
		s += "+reboot"
	}
	f.syncs = append(f.syncs, s)
	return nil
}

func (f *fakeRegistrar) unbound(owner string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.unbinds {
		if o == owner {
			return true
		}
	}
	return false
}

func (f *fakeRegistrar) synced(mac string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.syncs {
		if s == mac {
			n++
		}
	}
	return n
}

func (f *fakeRegistrar) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unbinds, f.syncs = nil, nil
}

// fakeRegistrations is a fixed registrar view.
type fakeRegistrations struct {
	mu   sync.Mutex
	regs []Registration
}

func (f *fakeRegistrations) List(context.Context) []Registration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Registration(nil), f.regs...)
}

// env is the API over the real SQLite store on a real listener, wired the
// way daemon wires prov: events refresh the credential index, and a device
// change becomes a check-sync through the registrar.
type env struct {
	t     testing.TB
	st    *store.Store
	ev    *prov.Events
	creds *prov.Credentials
	sess  *prov.Sessions
	reg   *fakeRegistrar
	regs  *fakeRegistrations
	api   *api
	prom  *prometheus.Registry
	srv   *httptest.Server
	site  prov.Site
}

func newEnv(t testing.TB) *env {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{t: t, st: st, ev: &prov.Events{}, reg: &fakeRegistrar{st: st}, regs: &fakeRegistrations{},
		prom: prometheus.NewRegistry()}
	if e.creds, err = prov.NewCredentials(ctx, st); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	e.sess, err = prov.NewSessions(ctx, prov.SessionsDeps{Store: st, Credentials: e.creds, Events: e.ev,
		Registrar: e.reg, Logger: logger, Registerer: e.prom, Now: time.Now,
		// The fake phones never fetch: every change counts its own check-sync.
		CoalesceSync: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.sess.Close)
	e.ev.Subscribe(func(ctx context.Context, ev prov.Event) {
		switch ev.Kind {
		case prov.EventUserChanged, prov.EventCredentialsChanged:
			if ev.UserID != 0 {
				_ = e.creds.RefreshUser(ctx, ev.UserID)
			}
		case prov.EventDeviceChanged:
			_ = e.creds.RefreshDevice(ctx, ev.DeviceID)
			if d, err := st.GetDeviceByID(ctx, ev.DeviceID); err == nil {
				e.sess.SyncDevice(ctx, d, ev.Reboot)
			}
		}
	})
	hash, err := provauth.HashPassword(adminPass, provauth.DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAdmin(ctx, &prov.Admin{Username: adminUser, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	e.site = prov.Site{Name: "hq", Domain: "hq.example.test", Login: prov.LoginPolicy{Enabled: true, OnePerUser: "replace"}}
	if err := st.CreateSite(ctx, &e.site); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.CustomFields = []string{"Department", "Cost center"}
	e.api, err = newAPI(cfg, Deps{Store: st, Directory: prov.NewDirectory(st, e.ev, time.Now), Sessions: e.sess,
		Events: e.ev, Registrar: e.reg, Registrations: e.regs, Logger: logger, Registerer: e.prom,
		Listeners: func() []Listener { return []Listener{{Name: "admin", Proto: "http", Addr: "127.0.0.1:8081"}} },
		Version:   "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	return e
}

// resp is a decoded answer.
type resp struct {
	code int
	hdr  http.Header
	body []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (r resp) into(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.body)
	}
}

// auth sets how a request authenticates.
type auth func(*http.Request)

func basic(user, pass string) auth { return func(r *http.Request) { r.SetBasicAuth(user, pass) } }
func bearer(tok string) auth {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}
func anonymous(*http.Request) {}

var asAdmin = basic(adminUser, adminPass)

// do sends a request with Go's client; body may be nil, a string (sent as
// is, with ctype) or a value (sent as JSON).
func (e *env) do(a auth, method, path string, body any, ctype ...string) resp {
	e.t.Helper()
	var rd io.Reader
	ct := "application/json"
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	if len(ctype) > 0 {
		ct = ctype[0]
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", ct)
	}
	a(req)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp{code: res.StatusCode, hdr: res.Header, body: b}
}

// want fails unless the answer has the status code.
func (e *env) want(r resp, code int) resp {
	e.t.Helper()
	if r.code != code {
		e.t.Fatalf("status %d, want %d: %s", r.code, code, r.body)
	}
	return r
}

// wantErr fails unless the answer is code with a JSON error naming field.
func (e *env) wantErr(r resp, code int, field string) {
	e.t.Helper()
	e.want(r, code)
	var ae apiError
	r.into(e.t, &ae)
	if ae.Error == "" || ae.Field != field {
		e.t.Fatalf("error %+v, want field %q", ae, field)
	}
}

// user creates a user through the API.
func (e *env) user(name string, numbers ...string) userView {
	e.t.Helper()
	var u userView
	e.want(e.do(asAdmin, "POST", "/api/v1/users", map[string]any{"username": name, "first_name": "F" + name,
		"last_name": "L" + name, "email": name + "@example.test", "password": "password-" + name, "numbers": numbers,
		"site_id": e.site.ID}), 201).into(e.t, &u)
	return u
}

// device creates a device at the test site through the API.
func (e *env) device(mac string) deviceView {
	e.t.Helper()
	var d deviceView
	e.want(e.do(asAdmin, "POST", "/api/v1/devices", map[string]any{"mac": mac, "site_id": e.site.ID}), 201).into(e.t, &d)
	return d
}

// audit returns the newest audit events of action on object.
func (e *env) audit(action, object string) []prov.AuditEvent {
	e.t.Helper()
	var l auditList
	e.want(e.do(asAdmin, "GET", "/api/v1/audit?action="+action+"&object="+object, nil), 200).into(e.t, &l)
	return l.Items
}
