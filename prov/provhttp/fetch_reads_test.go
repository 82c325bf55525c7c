package provhttp

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
	"hotdesk/prov/files"
	"hotdesk/prov/render"
	"hotdesk/prov/store"
)

// newDeskEnv is newDeskEnvOn net/http.
func newDeskEnv(t testing.TB) (*env, *countingStore, *prov.Services) {
	t.Helper()
	return newDeskEnvOn(t, frontNetHTTP)
}

// newDeskEnvOn is newEnvOn with prov's desk services wired as the daemon wires
// them (the files cache subscribed by prov.New, the namespace telling them
// of fetches), both reading the store through cs.
func newDeskEnvOn(t testing.TB, front string, opts ...func(*Config)) (*env, *countingStore, *prov.Services) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cs := &countingStore{Store: st}
	cfg := DefaultConfig()
	cfg.HTTPListen = "127.0.0.1:0"
	cfg.FailBurst = 1 << 20 // every digest fetch starts with a 401: none limited, benchmarks included
	for _, o := range opts {
		o(&cfg)
	}
	rend, err := render.New(cfg.RenderConfig(5060), nil)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := prov.NewCredentials(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	cache := files.NewCache(0, time.Now)
	svc, err := prov.New(ctx, prov.Deps{Store: cs, Credentials: creds, FileCache: cache, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Sessions.Close(); svc.Close() })
	e := &env{st: st, events: svc.Events, reg: prometheus.NewRegistry(), logs: &lockedBuffer{}}
	e.files, err = files.New(cfg.FilesConfig(), files.Deps{Store: cs, Events: svc.Events, Renderer: rend, Cache: cache,
		Desk: svc, Registerer: e.reg, Logger: slog.New(slog.NewTextHandler(e.logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.files.Close() })
	e.logins = &fakeLogins{st: st, events: e.events}
	if e.h, err = New(cfg, Deps{Files: e.files, Accounts: cs, Logins: e.logins}); err != nil {
		t.Fatal(err)
	}
	e.srv = startServer(t, front, e.h, nil)
	site := prov.Site{Name: "HQ", Subnets: []string{"127.0.0.0/8"}, Login: prov.LoginPolicy{Enabled: true}}
	if err := st.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	return e, cs, svc
}

// TestFetchReadsSessionsOnce: a fetch reads the device's sessions from the
// store once, shared by the credentials' hand-out, the reboot signals and
// the view (three reads before, 9 % of the daemon's CPU in a boot storm),
// and not at all while no session event came since the last read (the
// files cache keeps it), and each still decides as before: the credentials
// are held back for the user logged in from afar, the boot fetch of a phone
// with a user is kept as a reboot signal in the store, and her line waits
// for the phone.
func TestFetchReadsSessionsOnce(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		e, cs, _ := newDeskEnvOn(t, front)
		ctx := context.Background()
		if code, body := e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA}); code != 200 {
			t.Fatalf("first boot fetch: %d %s", code, body)
		}
		u := prov.User{Username: "alice", FirstName: "Alice", LastName: "A", Status: prov.StatusActive,
			Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s("alice", "pw1234")}
		if err := e.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if err := e.st.AssignNumber(ctx, "1001", u.ID); err != nil {
			t.Fatal(err)
		}
		d, err := e.st.GetDevice(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		// Logged in from the admin API, away from the phone, as Sessions does it.
		s := prov.Session{ID: "s-alice", UserID: u.ID, DeviceID: d.ID, Door: prov.DoorAPI, StartedAt: time.Now(),
			LastActivity: time.Now(), SIPUser: "s-alice", SIPPassword: "sesspw"}
		if err := e.st.CreateSession(ctx, &s); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventSessionStarted, DeviceID: d.ID, UserID: u.ID, SessionID: s.ID})

		before := cs.sessions.Load()
		if code, body := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil); code != 200 {
			t.Fatalf("hand-out fetch: %d %s", code, body)
		}
		if n := cs.sessions.Load() - before; n != 1 {
			t.Errorf("the credentials' hand-out and its view read the sessions %d times, want 1", n)
		}
		if d, err = e.st.GetDevice(ctx, mac); err != nil {
			t.Fatal(err)
		}
		if d.CredsDeliveredAt.IsZero() || d.CredsHeldFor != u.ID {
			t.Fatalf("credentials handed out at %v held for %d, want handed out and held for alice (%d)",
				d.CredsDeliveredAt, d.CredsHeldFor, u.ID)
		}

		// Its files dropped by its registration, not its session: the
		// authenticated boot fetch builds the view and gives the reboot signal
		// from the session the hand-out read.
		e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID, Reason: "registered"})
		before = cs.sessions.Load()
		code, body := e.dev(t, "GET", "/"+mac+".cfg", "")
		if code != 200 {
			t.Fatalf("authenticated boot fetch: %d %s", code, body)
		}
		if n := cs.sessions.Load() - before; n != 0 {
			t.Errorf("a boot fetch with no session event since the last read read the sessions %d times, want 0", n)
		}
		sig, err := e.st.DeviceSignals(ctx, d.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sig.BootAt.IsZero() {
			t.Error("the boot fetch of a phone with a user logged in was not stored as a reboot signal")
		}
		// Held back: her line waits for the phone's verification, as before.
		if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 || strings.Contains(body, "s-alice") {
			t.Errorf("device file of a phone holding the credentials for alice carries her line: %d %s", code, body)
		}
	})
}

// TestFetchSessionReadFollowsEvents: the device's active session the
// files cache keeps is read again after exactly the events that may have
// changed it — a session started or ended on the device, here or relayed
// from another node, and a cluster resync (published as a site change) —
// and a fetch after one sees the store's answer.
func TestFetchSessionReadFollowsEvents(t *testing.T) {
	e, cs, _ := newDeskEnv(t)
	ctx := context.Background()
	e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA})
	e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil) // hands out the credentials
	d, err := e.st.GetDevice(ctx, mac)
	if err != nil {
		t.Fatal(err)
	}
	other := prov.Device{MAC: "0004f2000099", Vendor: d.Vendor, SiteID: d.SiteID}
	if err := e.st.CreateDevice(ctx, &other); err != nil {
		t.Fatal(err)
	}
	u := prov.User{Username: "bob", FirstName: "Bob", LastName: "B", Status: prov.StatusActive, Kind: prov.KindPerson}
	if err := e.st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AssignNumber(ctx, "1002", u.ID); err != nil {
		t.Fatal(err)
	}
	e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", "") // the session (none) read and kept
	n := 0
	for _, tt := range []struct {
		name   string
		change func() // in the store, unannounced
		ev     prov.Event
		reads  int64
		line   bool // bob's session line in the device file after it
	}{
		{name: "registered", ev: prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID}},
		{name: "session elsewhere", ev: prov.Event{Kind: prov.EventSessionStarted, DeviceID: other.ID, UserID: u.ID}},
		{name: "login here", change: func() { n++; e.startSession(t, fmt.Sprintf("s-bob-%d", n), u.ID, d.ID) },
			ev: prov.Event{Kind: prov.EventSessionStarted, DeviceID: d.ID, UserID: u.ID}, reads: 1, line: true},
		{name: "registered, logged in", ev: prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID}, line: true},
		{name: "logout relayed", change: func() { e.endSession(t, fmt.Sprintf("s-bob-%d", n)) },
			ev: prov.Event{Kind: prov.EventSessionEnded, DeviceID: d.ID, UserID: u.ID, Remote: true}, reads: 1},
		{name: "login relayed", change: func() { n++; e.startSession(t, fmt.Sprintf("s-bob-%d", n), u.ID, d.ID) },
			ev: prov.Event{Kind: prov.EventSessionStarted, DeviceID: d.ID, UserID: u.ID, Remote: true}, reads: 1, line: true},
		{name: "resync", change: func() { e.endSession(t, fmt.Sprintf("s-bob-%d", n)) },
			ev: prov.Event{Kind: prov.EventSiteChanged, Remote: true}, reads: 1},
	} {
		if tt.change != nil {
			tt.change()
		}
		e.events.Publish(ctx, tt.ev)
		before := cs.sessions.Load()
		code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", "")
		if code != 200 {
			t.Fatalf("%s: fetch: %d %s", tt.name, code, body)
		}
		if got := cs.sessions.Load() - before; got != tt.reads {
			t.Errorf("%s: the fetch read the sessions %d times, want %d", tt.name, got, tt.reads)
		}
		if got := strings.Contains(body, "s-bob-"); got != tt.line {
			t.Errorf("%s: bob's session line in the device file: %v, want %v\n%s", tt.name, got, tt.line, body)
		}
	}
}

// startSession stores an active session of user on device as another
// node's login would, without its event.
func (e *env) startSession(t *testing.T, id string, user, device int64) {
	t.Helper()
	s := prov.Session{ID: id, UserID: user, DeviceID: device, Door: prov.DoorAPI, StartedAt: time.Now(),
		LastActivity: time.Now(), SIPUser: id, SIPPassword: "sesspw"}
	if err := e.st.CreateSession(context.Background(), &s); err != nil {
		t.Fatal(err)
	}
}

// endSession ends a session in the store as another node's logout would,
// without its event.
func (e *env) endSession(t *testing.T, id string) {
	t.Helper()
	if err := e.st.EndSession(context.Background(), id, time.Now(), prov.EndLogout); err != nil {
		t.Fatal(err)
	}
}

// TestViewRebuildReadsNoUploadsOfOwnersWithout: a phone's view is rebuilt
// at every registration of it; when neither the phone nor its user ever
// uploaded a file, the rebuild does not ask the store for their uploads
// again (a query per view in a boot storm), and a file uploaded later is
// rendered at once.
func TestViewRebuildReadsNoUploadsOfOwnersWithout(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		var cs *uploadCountingStore
		e := newEnvStoreOn(t, front, nil, func(st prov.Store) prov.Store { cs = &uploadCountingStore{Store: st}; return cs })
		ctx := context.Background()
		e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA})
		e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil)
		if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 {
			t.Fatalf("first authenticated fetch: %d %s", code, body)
		}
		d, err := e.st.GetDevice(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		many := cs.many.Load()
		for i := range 3 {
			e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID, Reason: "registered"})
			if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 {
				t.Fatalf("fetch %d after a registration: %d %s", i, code, body)
			}
		}
		if n := cs.many.Load() - many; n != 0 {
			t.Fatalf("3 view rebuilds of a phone without uploads read its uploads %d times, want 0", n)
		}
		if code, body := e.dev(t, "PUT", "/"+mac+"-phone.cfg", `<PHONE_CONFIG><ALL up.backlight.idleIntensity="1"/></PHONE_CONFIG>`); code != 204 {
			t.Fatalf("device upload: %d %s", code, body)
		}
		if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 || !strings.Contains(body, `up.backlight.idleIntensity="1"`) {
			t.Fatalf("device file without the upload made after the phone had none: %d %s", code, body)
		}
	})
}

// BenchmarkBootFetch is a deployed phone's boot (its master file, then
// its device file) after its registration dropped what was cached for it,
// the desk services wired as in the daemon: the store reads, the reboot
// signals and the rendering of a boot storm's fetch, with the sessions
// reads per boot reported (sessions/op).
func BenchmarkBootFetch(b *testing.B) {
	e, cs, _ := newDeskEnv(b)
	ctx := context.Background()
	e.do(b, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA})
	e.do(b, "GET", "/"+mac+"-hotdesk.cfg", "", nil) // hands out the credentials
	if code, _ := e.dev(b, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 {
		b.Fatalf("authenticated fetch: %d", code)
	}
	d, err := e.st.GetDevice(ctx, mac)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	before := cs.sessions.Load()
	for b.Loop() {
		e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID, Reason: "registered"})
		for _, name := range []string{mac + ".cfg", mac + "-hotdesk.cfg"} {
			if code, _ := e.dev(b, "GET", "/"+name, ""); code != 200 {
				b.Fatalf("%s: %d", name, code)
			}
		}
	}
	b.ReportMetric(float64(cs.sessions.Load()-before)/float64(b.N), "sessions/op")
}

// TestNewPhoneReadsWhatItCannotHaveNever: a phone its own first fetch
// enrolls has no session, no uploads and no reboot signals (devices are
// never deleted: the ID is new), so neither its fetches nor its first
// registration read them, and the registration that ends its boot wait
// writes no signals row of zeros (each was one statement of a boot storm's
// new phone). What it must still do holds: the phone is marked deployed,
// and a session started on it afterwards is seen by its next fetch.
func TestNewPhoneReadsWhatItCannotHaveNever(t *testing.T) {
	e, cs, svc := newDeskEnv(t)
	ctx := context.Background()
	counters := []struct {
		what string
		n    *atomic.Int64
		at   int64 // before the phone's first fetch (the services' start reads)
	}{
		{what: "active-session reads", n: &cs.sessions},
		{what: "upload reads", n: &cs.uploads},
		{what: "signal reads", n: &cs.signals},
		{what: "signal writes", n: &cs.sigPuts},
		{what: "device reads by ID", n: &cs.deviceByID},
	}
	for i := range counters {
		counters[i].at = counters[i].n.Load()
	}
	if code, body := e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA}); code != 200 {
		t.Fatalf("first boot fetch: %d %s", code, body)
	}
	if code, body := e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil); code != 200 {
		t.Fatalf("hand-out fetch: %d %s", code, body)
	}
	d, err := e.st.GetDevice(ctx, mac)
	if err != nil {
		t.Fatal(err)
	}
	line := prov.Binding{AOR: "sip:" + d.SIPUser + "@hq.test", Source: "127.0.0.1:5060", Transport: "UDP",
		Owner: prov.DeviceOwner(d.ID), AuthUser: d.SIPUser, DeviceID: d.ID, CallID: "c1"}
	if err := svc.Sessions.BindingChanged(ctx, prov.LineRegistered, line, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, c := range counters {
		if n := c.n.Load() - c.at; n != 0 {
			t.Errorf("a new phone's fetches and first registration made %d %s, want 0", n, c.what)
		}
	}
	if d, err = e.st.GetDevice(ctx, mac); err != nil {
		t.Fatal(err)
	}
	if d.Status != prov.DeviceDeployed {
		t.Errorf("status after its first registration: %s, want deployed", d.Status)
	}

	u := prov.User{Username: "alice", FirstName: "Alice", LastName: "A", Status: prov.StatusActive,
		Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s("alice", "pw1234")}
	if err := e.st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := e.st.AssignNumber(ctx, "1001", u.ID); err != nil {
		t.Fatal(err)
	}
	s := prov.Session{ID: "s-alice", UserID: u.ID, DeviceID: d.ID, Door: prov.DoorAPI, StartedAt: time.Now(),
		LastActivity: time.Now(), SIPUser: "s-alice", SIPPassword: "sesspw"}
	if err := e.st.CreateSession(ctx, &s); err != nil {
		t.Fatal(err)
	}
	e.events.Publish(ctx, prov.Event{Kind: prov.EventSessionStarted, DeviceID: d.ID, UserID: u.ID, SessionID: s.ID})
	code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", "")
	if code != 200 {
		t.Fatalf("fetch after the login: %d %s", code, body)
	}
	if !strings.Contains(body, "s-alice") {
		t.Errorf("the fetch after a session started on the new phone does not carry its line:\n%s", body)
	}
}

// BenchmarkNewPhoneBootParallel is BenchmarkNewPhoneBoot with 50 phones per
// CPU booting at once, as in a boot storm (whose writes then share
// transactions): compare the process's CPU time, not ns/op.
func BenchmarkNewPhoneBootParallel(b *testing.B) {
	e, _, svc := newDeskEnvOn(b, frontFast, func(c *Config) { c.EnrollPerSource = -1 })
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(50)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			newPhoneBoot(b, e, svc, ctx, next.Add(1))
		}
	})
}

// newPhoneBoot boots new phone i: enrolment, hand-out, first registration.
func newPhoneBoot(b *testing.B, e *env, svc *prov.Services, ctx context.Context, i int64) {
	m := fmt.Sprintf("0004f2%06x", i)
	ua := "FileTransport PolycomVVX-VVX_400-UA/5.9.0 (SN:" + m + ") Type/Application"
	if code, body := e.do(b, "GET", "/"+m+".cfg", "", map[string]string{"User-Agent": ua}); code != 200 {
		b.Fatalf("first fetch: %d %s", code, body)
	}
	if code, _ := e.do(b, "GET", "/"+m+"-hotdesk.cfg", "", map[string]string{"User-Agent": ua}); code != 200 {
		b.Fatalf("hand-out: %d", code)
	}
	d, err := e.files.Device(ctx, m)
	if err != nil {
		b.Fatal(err)
	}
	line := prov.Binding{AOR: "sip:" + d.SIPUser + "@hq.test", Source: "127.0.0.1:5060", Transport: "UDP",
		Owner: prov.DeviceOwner(d.ID), AuthUser: d.SIPUser, DeviceID: d.ID, CallID: "c" + m}
	if err := svc.Sessions.BindingChanged(ctx, prov.LineRegistered, line, time.Now()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkNewPhoneBoot is a boot storm's phone, new to the daemon: its
// first fetch enrolls it, the next hands out its credentials, then its
// device line registers (the registrar's event), the desk services wired as
// in the daemon; the store reads of sessions, uploads and signals per phone
// are reported (reads/op).
func BenchmarkNewPhoneBoot(b *testing.B) {
	// Every phone from one address here: no per-source enrolment cap.
	e, cs, svc := newDeskEnvOn(b, frontFast, func(c *Config) { c.EnrollPerSource = -1 })
	ctx := context.Background()
	reads := func() int64 { return cs.sessions.Load() + cs.uploads.Load() + cs.signals.Load() + cs.deviceByID.Load() }
	b.ReportAllocs()
	before, i := reads(), int64(0)
	for b.Loop() {
		i++
		newPhoneBoot(b, e, svc, ctx, i)
	}
	b.ReportMetric(float64(reads()-before)/float64(b.N), "reads/op")
}
