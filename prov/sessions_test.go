package prov_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/prov/store"
)

// recRegistrar records what Sessions asks of the SIP side (prov's own
// interface; the daemon's tests drive the real registrar).
type recRegistrar struct {
	st        prov.Store
	mu        sync.Mutex
	unbound   []string
	synced    []string
	passwords []string
	bindings  map[string]int
	// removed is what the next Unbind returns; none makes DeviceBindings
	// find nothing (the phone holds no other line).
	removed []prov.Binding
	none    bool
}

func (r *recRegistrar) Unbind(_ context.Context, owner prov.Owner) ([]prov.Binding, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unbound = append(r.unbound, owner.String())
	n := r.bindings[owner.String()]
	delete(r.bindings, owner.String())
	if r.removed != nil {
		out := r.removed
		r.removed = nil
		return out, nil
	}
	return make([]prov.Binding, n), nil
}

// DeviceBindings answers as if every device were registered from one
// address, named by its MAC.
func (r *recRegistrar) DeviceBindings(ctx context.Context, id int64) []prov.Binding {
	r.mu.Lock()
	none := r.none
	r.mu.Unlock()
	if none {
		return nil
	}
	d, err := r.st.GetDeviceByID(ctx, id)
	if err != nil {
		return nil
	}
	return []prov.Binding{{DeviceID: id, Source: d.MAC, Transport: "UDP"}}
}

func (r *recRegistrar) CheckSync(_ context.Context, b prov.Binding, password string, _ string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.synced = append(r.synced, b.Source)
	r.passwords = append(r.passwords, password)
	return nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	st    *store.Store
	ss    *prov.Sessions
	creds *prov.Credentials
	reg   *recRegistrar
	clk   *clock
	site  prov.Site
	prom  *prometheus.Registry
	// events is what Sessions subscribed to.
	events *prov.Events
}

// newFixture makes a site with policy, users alice/bob (password <name>-pw,
// numbers 2001/2002) and devices d1, d2.
func newFixture(t *testing.T, policy prov.LoginPolicy) *fixture {
	t.Helper()
	return newFixtureWith(t, policy, nil)
}

// newFixtureWith is newFixture with Sessions on wrap(store) (nil: the store).
func newFixtureWith(t *testing.T, policy prov.LoginPolicy, wrap func(prov.Store) prov.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	clk := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), slog.New(slog.DiscardHandler), clk.now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	site := prov.Site{Name: "hq", Domain: "hq.test", Login: policy}
	if err := st.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	dir := prov.NewDirectory(st, nil, clk.now)
	for i, n := range []string{"alice", "bob"} {
		if _, err := dir.CreateUser(ctx, prov.UserInput{Username: n, FirstName: n, LastName: "X", Email: n + "@hq.test",
			Password: n + "-pw", SiteID: site.ID, Numbers: []string{[]string{"2001", "2002"}[i]}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, mac := range []string{"00000000000d", "00000000000e"} {
		d := prov.Device{MAC: mac, SiteID: site.ID, Kind: prov.DeviceManaged, Status: prov.DeviceNotDeployed,
			SIPUser: "dev" + mac, SIPPassword: "devpw"}
		if err := st.CreateDevice(ctx, &d); err != nil {
			t.Fatal(err)
		}
	}
	creds, err := prov.NewCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	reg := &recRegistrar{st: st, bindings: map[string]int{}}
	prom := prometheus.NewRegistry()
	var sst prov.Store = st
	if wrap != nil {
		sst = wrap(st)
	}
	events := &prov.Events{}
	ss, err := prov.NewSessions(ctx, prov.SessionsDeps{Store: sst, Credentials: creds, Events: events,
		Registrar: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prom,
		Now: clk.now, Wall: clk.now, Lockout: auth.NewLockout(auth.LockoutConfig{Threshold: 3, Base: time.Minute}, clk.now)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ss.Close)
	return &fixture{st: st, ss: ss, creds: creds, reg: reg, clk: clk, site: site, prom: prom, events: events}
}

// restart builds new Sessions over the same store, as a daemon restart does.
func (f *fixture) restart(t *testing.T) {
	t.Helper()
	ss, err := prov.NewSessions(context.Background(), prov.SessionsDeps{Store: f.st, Credentials: f.creds,
		Events: &prov.Events{}, Registrar: f.reg, Logger: slog.New(slog.DiscardHandler),
		Registerer: prometheus.NewRegistry(), Now: f.clk.now, Wall: f.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	f.ss.Close()
	t.Cleanup(ss.Close)
	f.ss = ss
}

func (f *fixture) login(mac, user, pw string) (prov.Session, error) {
	return f.ss.Login(context.Background(), prov.LoginRequest{MAC: mac, Username: user, Secret: pw, Door: prov.DoorAPI, AtDevice: true})
}

var openPolicy = prov.LoginPolicy{Enabled: true, Required: true, OnePerUser: "replace"}

func TestLoginMintsCredentialsAndLogoutRevokes(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	s, err := f.login("00000000000d", "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	cr, ok := f.creds.Lookup(s.SIPUser)
	if !ok || cr.Password != s.SIPPassword || cr.Kind != prov.OwnerSession || len(cr.AORs) != 1 || cr.AORs[0] != "2001" {
		t.Fatalf("session credential = %+v, %v", cr, ok)
	}
	if len(f.reg.synced) != 1 {
		t.Fatalf("login sent %d check-syncs, want 1", len(f.reg.synced))
	}
	f.clk.add(3 * time.Second) // past the coalescing of an unanswered check-sync
	if err := f.ss.End(context.Background(), s.ID, prov.EndLogout, prov.Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.creds.Lookup(s.SIPUser); ok {
		t.Fatal("credential still valid after logout")
	}
	if len(f.reg.unbound) != 1 || f.reg.unbound[0] != "session:"+s.ID || len(f.reg.synced) != 2 {
		t.Fatalf("logout: unbound=%v synced=%v", f.reg.unbound, f.reg.synced)
	}
	got, _ := f.st.GetSession(context.Background(), s.ID)
	if got.Active() || got.EndReason != prov.EndLogout {
		t.Fatalf("stored session = %+v", got)
	}
	// Ending twice is harmless and does not unbind again.
	if err := f.ss.End(context.Background(), s.ID, prov.EndAdmin, prov.Actor{}); err != nil || len(f.reg.unbound) != 1 {
		t.Fatalf("second End: err=%v unbound=%v", err, f.reg.unbound)
	}
}

func TestLoginByNumberAndSameDeviceTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	s1, err := f.login("00000000000d", "2001", "alice-pw")
	if err != nil {
		t.Fatalf("login by number: %v", err)
	}
	s2, err := f.login("00000000000d", "alice", "alice-pw")
	if err != nil || s2.ID != s1.ID {
		t.Fatalf("second login on the same phone made a new session (%v, %s != %s)", err, s2.ID, s1.ID)
	}
}

func TestNoEnumerationAndLockout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	_, errUnknown := f.login("00000000000d", "mallory", "x")
	_, errWrong := f.login("00000000000e", "bob", "nope")
	_, errNoDev := f.login("0000000000ff", "bob", "bob-pw")
	for _, err := range []error{errUnknown, errWrong, errNoDev} {
		if !errors.Is(err, prov.ErrAuth) || err.Error() != prov.ErrAuth.Error() {
			t.Fatalf("failure reveals more than ErrAuth: %v", err)
		}
	}
	// Two more failures for bob (three in all) lock him out, even with the right password.
	for range 2 {
		_, _ = f.login("00000000000e", "bob", "nope")
	}
	if _, err := f.login("00000000000e", "bob", "bob-pw"); !errors.Is(err, prov.ErrLocked) {
		t.Fatalf("after 3 failures: %v, want ErrLocked", err)
	}
	f.clk.add(2 * time.Minute)
	// The device was locked too; another device is free, and bob's lock has passed.
	if _, err := f.login("00000000000d", "bob", "bob-pw"); err != nil {
		t.Fatalf("after the lock expired: %v", err)
	}
}

func TestOneLoginPerUserPolicies(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		policy    string
		wantErr   error
		firstLive bool
	}{
		{"replace", nil, false},
		{"deny", prov.ErrDenied, true},
		{"allow", nil, true},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			p := openPolicy
			p.OnePerUser = tt.policy
			f := newFixture(t, p)
			first, err := f.login("00000000000d", "alice", "alice-pw")
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.login("00000000000e", "alice", "alice-pw")
			if !errors.Is(err, tt.wantErr) && err != tt.wantErr {
				t.Fatalf("second login = %v, want %v", err, tt.wantErr)
			}
			got, _ := f.st.GetSession(context.Background(), first.ID)
			if got.Active() != tt.firstLive {
				t.Fatalf("first session active = %v, want %v (reason %q)", got.Active(), tt.firstLive, got.EndReason)
			}
			if !tt.firstLive && got.EndReason != prov.EndReplaced {
				t.Fatalf("end reason %q", got.EndReason)
			}
		})
	}
}

func TestPolicyDisabledAndDefaultOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t, prov.LoginPolicy{Enabled: false})
	if _, err := f.login("00000000000d", "alice", "alice-pw"); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("login with login disabled = %v", err)
	}
	f = newFixture(t, prov.LoginPolicy{Enabled: true, DefaultOnly: true, DefaultUser: "bob"})
	if _, err := f.login("00000000000d", "alice", "alice-pw"); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("non-default user with defaultOnly = %v", err)
	}
	if _, err := f.login("00000000000d", "bob", "bob-pw"); err != nil {
		t.Fatalf("default user with defaultOnly = %v", err)
	}
}

func TestIdleMaxAndDailyLogout(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		policy prov.LoginPolicy
		touch  bool
		after  time.Duration
		want   prov.EndReason
	}{
		{"idle", prov.LoginPolicy{AutomaticLogout: 10}, false, 11 * time.Minute, prov.EndIdle},
		{"active is kept", prov.LoginPolicy{AutomaticLogout: 10}, true, 11 * time.Minute, ""},
		{"max length", prov.LoginPolicy{MaxSessionMinutes: 60}, true, 61 * time.Minute, prov.EndMaxLength},
		{"daily", prov.LoginPolicy{DailyLogout: "18:00"}, true, 10 * time.Hour, prov.EndDaily},
		{"none", prov.LoginPolicy{}, false, 48 * time.Hour, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.policy.Enabled = true
			f := newFixture(t, tt.policy)
			s, err := f.login("00000000000d", "alice", "alice-pw")
			if err != nil {
				t.Fatal(err)
			}
			f.clk.add(tt.after - time.Minute)
			if tt.touch {
				_ = f.ss.Touch(context.Background(), s.ID)
			}
			f.clk.add(time.Minute)
			if err := f.ss.Sweep(context.Background()); err != nil {
				t.Fatal(err)
			}
			got, _ := f.st.GetSession(context.Background(), s.ID)
			if got.EndReason != tt.want {
				t.Fatalf("after %v: end reason %q, want %q", tt.after, got.EndReason, tt.want)
			}
		})
	}
}

func TestConcurrentLoginsKeepOneSessionPerUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	var wg sync.WaitGroup
	for _, mac := range []string{"00000000000d", "00000000000e", "00000000000d", "00000000000e"} {
		wg.Go(func() { _, _ = f.login(mac, "alice", "alice-pw") })
	}
	wg.Wait()
	act, err := f.st.ListSessions(context.Background(), prov.SessionQuery{UserID: 1, ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(act) != 1 {
		t.Fatalf("%d active sessions for alice under replace policy, want 1", len(act))
	}
}

// TestCrossingLoginsAndLogoutsKeepTheInvariants: alice and bob log in on
// both phones, crossing, while logouts and a disable-style EndAll run
// beside them. Afterwards no user and no phone has two active sessions,
// every session was ended exactly once, and the active gauge agrees with
// the store.
func TestCrossingLoginsAndLogoutsKeepTheInvariants(t *testing.T) {
	t.Parallel()
	f := racingFixture(t)
	ctx := context.Background()
	macs, users := []string{"00000000000d", "00000000000e"}, []string{"alice", "bob"}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 40 {
		wg.Go(func() {
			<-start
			s, err := f.verifiedLogin(macs[(i/2)%2], users[i%2])
			if err == nil && i%3 == 0 {
				_ = f.ss.End(ctx, s.ID, prov.EndLogout, prov.Actor{})
			}
			if i%10 == 9 {
				_ = f.ss.EndAll(ctx, 2, prov.EndAdmin, prov.Actor{})
			}
		})
	}
	close(start)
	wg.Wait()
	all, err := f.st.ListSessions(ctx, prov.SessionQuery{})
	if err != nil {
		t.Fatal(err)
	}
	perUser, perDev, active := map[int64]int{}, map[int64]int{}, 0
	for _, s := range all {
		if s.Active() {
			active++
			perUser[s.UserID]++
			perDev[s.DeviceID]++
		}
	}
	for id, n := range perUser {
		if n > 1 {
			t.Errorf("user %d has %d active sessions", id, n)
		}
	}
	for id, n := range perDev {
		if n > 1 {
			t.Errorf("device %d has %d active sessions", id, n)
		}
	}
	if g := gatherValue(t, f.prom, "hotdesk_prov_sessions_active"); int(g) != active {
		t.Errorf("active gauge %v, store has %d active sessions", g, active)
	}
	if ended := gatherValue(t, f.prom, "hotdesk_prov_logouts_total"); int(ended) != len(all)-active {
		t.Errorf("%v logouts counted for %d ended sessions: some were ended twice", ended, len(all)-active)
	}
}

// TestDisabledUserKeepsNoSession: the user is disabled (status, then
// EndAll, as the Manager does) while twenty logins for them race on two
// phones; afterwards they have no active session.
func TestDisabledUserKeepsNoSession(t *testing.T) {
	t.Parallel()
	f := racingFixture(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	start, first := make(chan struct{}), make(chan struct{})
	var once sync.Once
	for i := range 8 {
		wg.Go(func() {
			<-start
			// Keep logging in until refused: the disable lands mid-stream.
			for range 50 {
				if _, err := f.verifiedLogin([]string{"00000000000d", "00000000000e"}[i%2], "alice"); err != nil {
					if errors.Is(err, prov.ErrAuth) {
						return
					}
					continue
				}
				once.Do(func() { close(first) })
			}
		})
	}
	close(start)
	<-first
	u, err := f.st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	u.Status = prov.StatusDisabled
	if err := f.st.UpdateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := f.ss.EndAll(ctx, u.ID, prov.EndAdmin, prov.Actor{}); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	act, err := f.st.ListSessions(ctx, prov.SessionQuery{UserID: u.ID, ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(act) != 0 {
		t.Errorf("disabled user has %d active sessions", len(act))
	}
}

// racingFixture is newFixture whose Sessions never locks anyone out, so
// that racing logins really run at once.
func racingFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, openPolicy)
	f.prom = prometheus.NewRegistry()
	ss, err := prov.NewSessions(context.Background(), prov.SessionsDeps{Store: f.st, Credentials: f.creds,
		Events: &prov.Events{}, Registrar: f.reg, Logger: slog.New(slog.DiscardHandler), Registerer: f.prom,
		Now: f.clk.now, Lockout: auth.NewLockout(auth.LockoutConfig{Threshold: 100000, Base: time.Minute}, f.clk.now)})
	if err != nil {
		t.Fatal(err)
	}
	f.ss = ss
	return f
}

// verifiedLogin logs user in on mac as a door that checked the secret
// itself does (no argon2id: the logins race in the session code).
func (f *fixture) verifiedLogin(mac, user string) (prov.Session, error) {
	return f.ss.Login(context.Background(), prov.LoginRequest{MAC: mac, Username: user, Door: prov.DoorAPI, Verified: true, Privileged: true})
}

// gatherValue sums a metric's samples in reg.
func gatherValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return sum
}

func TestParallelGuessesCannotOutrunTheLockout(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string]int{}
	for range 12 {
		wg.Go(func() {
			_, err := f.login("00000000000d", "bob", "wrong-guess")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, prov.ErrLocked):
				results["locked"]++
			case errors.Is(err, prov.ErrAuth):
				results["checked"]++
			}
		})
	}
	wg.Wait()
	if results["checked"] > 3 {
		t.Fatalf("%d parallel guesses were checked with a threshold of 3 (%v)", results["checked"], results)
	}
}

// A security review found (medium) five wrong passwords locked a user out of
// every door. They now lock the user at that source (and that phone); the
// user logs in elsewhere (the budget over all sources: TestTryGuessBudget).
func TestGuessesLockTheSourceNotTheUser(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	login := func(mac, remote, pw string) error {
		_, err := f.ss.Login(context.Background(), prov.LoginRequest{MAC: mac, Username: "bob", Secret: pw,
			Door: prov.DoorAPI, AtDevice: true, Remote: remote})
		return err
	}
	if err := login("00000000000d", "10.0.0.20:5060", "bob-pw"); err != nil { // bob's own phone
		t.Fatal(err)
	}
	for range 3 {
		_ = login("00000000000e", "10.0.0.66:5060", "nope")
	}
	if err := login("00000000000e", "10.0.0.66:5060", "bob-pw"); !errors.Is(err, prov.ErrLocked) {
		t.Fatalf("the guessing source: %v, want ErrLocked", err)
	}
	if err := login("00000000000d", "10.0.0.21:5060", "bob-pw"); err != nil {
		t.Fatalf("bob at another phone after one source's guesses: %v", err)
	}
}
