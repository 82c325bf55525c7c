package prov_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestRebootOrLogoutFromSignals plays the sequences of signals phones send
// after a login (API door: the phone is told by check-sync) and checks how
// the session ends. Each step: "fetch" (boot file), "reg dev|line <Call-ID>"
// (a new binding of the device account or the session's line), "refresh
// line <Call-ID>", "unreg line", "unreg dev", "sync" (another check-sync, a
// settings change), "wait <duration>" (then a sweep), "restart" (a new
// Sessions over the same store: the decision must not change).
func TestRebootOrLogoutFromSignals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		persistent bool
		steps      string
		want       prov.EndReason // "" = still active, else the end reason
	}{
		{"Polycom applies the login", false, "fetch; unreg dev; reg line c1; wait 10m", ""},
		{"Yealink reboots to apply the login", false, "unreg dev; fetch; reg line c1; wait 10m", ""},
		{"two boot signals after a check-sync (DHCP, then the file)", false,
			"fetch; reg line c1; sync; unreg line; fetch; fetch; reg line c2; wait 10m", ""},
		{"Yealink reboots on a later check-sync", false,
			"fetch; reg line c1; sync; unreg line; fetch; reg line c2; wait 10m", ""},
		{"logout on the phone right after the login", false, "fetch; reg line c1; unreg line; reg dev d1", prov.EndPhoneUnregister},
		{"logout on the phone survives a restart", false,
			"fetch; reg line c1; unreg line; restart; reg dev d1", prov.EndPhoneUnregister},
		{"line taken down and nothing else", false, "fetch; reg line c1; unreg line; wait 89s", ""},
		{"line taken down and nothing else, then the wait ends", false,
			"fetch; reg line c1; unreg line; wait 89s; wait 2s", prov.EndPhoneUnregister},
		{"line taken down and registered again", false, "fetch; reg line c1; unreg line; reg line c1; wait 10m", ""},
		{"reboot on its own", false, "fetch; reg line c1; wait 1m; fetch; reg line c2", prov.EndReboot},
		{"reboot on its own, the login forgotten", false, "fetch; reg line c1; wait 1m; fetch; reg dev d2", prov.EndReboot},
		{"reload on its own (native logout menu, update config)", false,
			"fetch; reg line c1; wait 1m; fetch; refresh line c1; wait 10m", ""},
		{"native logout: the phone reloads, drops the line, registers the device", false,
			"fetch; reg line c1; wait 1m; fetch; unreg line; reg dev d2", prov.EndPhoneUnregister},
		{"soft reboot that never comes back", false, "fetch; reg line c1; unreg line; fetch; wait 91s", prov.EndReboot},
		{"soft reboot that never comes back, persistent", true, "fetch; reg line c1; unreg line; fetch; wait 91s", ""},
		{"reboot on its own, persistent", true, "fetch; reg line c1; wait 1m; fetch; reg line c2; wait 10m", ""},
		{"soft reboot unregisters first, persistent", true,
			"fetch; reg line c1; unreg line; fetch; reg line c2; wait 10m", ""},
		{"soft reboot unregisters first", false, "fetch; reg line c1; unreg line; fetch; reg line c2", prov.EndReboot},
		{"the phone let the line expire", false, "fetch; reg line c1; expire line; wait 91s", prov.EndPhoneUnregister},
		{"a persistent line expiring (phone switched off) keeps the login", true,
			"fetch; reg line c1; expire line; wait 91s", ""},
		{"refresh keeps it", false, "fetch; reg line c1; refresh line c1; wait 1m; refresh line c1", ""},
		// "late" records a registrar event now and delivers it at "deliver":
		// registrar events reach Sessions after fetches that came later.
		{"reboot right after applying the login, the line reported late", false,
			"fetch; late reg line c1; fetch; deliver; reg line c2", prov.EndReboot},
		{"reboot right after applying the login, persistent", true,
			"fetch; late reg line c1; fetch; deliver; reg line c2; wait 10m", ""},
		{"two boot fetches while applying, the line reported late", false,
			"fetch; fetch; late reg line c1; deliver; refresh line c1; wait 10m", ""},
		{"a reload after applying, the line reported late", false,
			"fetch; late reg line c1; fetch; deliver; refresh line c1; wait 10m", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := openPolicy
			p.Persistent = tc.persistent
			f := newFixture(t, p)
			ctx := context.Background()
			d, _ := f.st.GetDevice(ctx, "00000000000d")
			s, err := f.login(d.MAC, "alice", "alice-pw")
			if err != nil {
				t.Fatal(err)
			}
			line := prov.Binding{AOR: "sip:2001@hq.test", Contact: "sip:2001@10.0.0.5:5060", Source: "10.0.0.5:5060",
				Transport: "UDP", Owner: prov.SessionOwner(s.ID), AuthUser: s.SIPUser, DeviceID: d.ID}
			dev := prov.Binding{AOR: "sip:dev00000000000d@hq.test", Contact: "sip:dev00000000000d@10.0.0.5:5060",
				Source: "10.0.0.5:5060", Transport: "UDP", Owner: prov.DeviceOwner(d.ID), AuthUser: d.SIPUser, DeviceID: d.ID}
			type event struct {
				change prov.BindingChange
				b      prov.Binding
				at     time.Time
			}
			var held []event
			for _, step := range strings.Split(tc.steps, "; ") {
				f.clk.add(time.Millisecond) // signals come one after another
				w := strings.Fields(step)
				late := w[0] == "late"
				if late {
					w = w[1:]
				}
				var err error
				switch w[0] {
				case "deliver":
					for _, ev := range held {
						if err = f.ss.BindingChanged(ctx, ev.change, ev.b, ev.at); err != nil {
							break
						}
					}
					held = nil
				case "fetch":
					err = f.ss.BootFetched(ctx, d, f.clk.now(), "", true)
				case "reg", "refresh", "unreg", "expire":
					b := line
					if w[1] == "dev" {
						b = dev
					}
					if len(w) > 2 {
						b.CallID = w[2]
					}
					change := map[string]prov.BindingChange{"reg": prov.LineRegistered, "refresh": prov.LineRefreshed,
						"unreg": prov.LineUnregistered, "expire": prov.LineExpired}[w[0]]
					if late {
						held = append(held, event{change, b, f.clk.now()})
						break
					}
					err = f.ss.BindingChanged(ctx, change, b, f.clk.now())
				case "sync":
					f.ss.SyncDevice(ctx, d, false)
				case "wait":
					dur, perr := time.ParseDuration(w[1])
					if perr != nil {
						t.Fatal(perr)
					}
					f.clk.add(dur)
					err = f.ss.Sweep(ctx)
				case "restart":
					f.restart(t)
				default:
					t.Fatalf("bad step %q", step)
				}
				if err != nil {
					t.Fatalf("%s: %v", step, err)
				}
			}
			got, _ := f.st.GetSession(ctx, s.ID)
			if tc.want == "" && !got.Active() {
				t.Fatalf("session ended (%s), want it active", got.EndReason)
			}
			if tc.want != "" && (got.Active() || got.EndReason != tc.want) {
				t.Fatalf("session active=%v reason=%q, want ended as %q", got.Active(), got.EndReason, tc.want)
			}
			if dd, _ := f.st.GetDevice(ctx, d.MAC); strings.Contains(tc.steps, "reg ") && dd.Status != prov.DeviceDeployed {
				t.Fatalf("a registered line did not mark the device deployed: %s", dd.Status)
			}
		})
	}
}

// TestLogoutReachesThePhoneThroughItsSessionLine: a phone logged in holds
// only the session's line; the logout tells it through the binding it
// unbinds, with the session's password for the phone's challenge.
func TestLogoutReachesThePhoneThroughItsSessionLine(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	s, err := f.login("00000000000d", "alice", "alice-pw")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.add(3 * time.Second) // past the coalescing of the login's check-sync
	f.reg.mu.Lock()
	f.reg.removed = []prov.Binding{{AOR: "sip:2001@hq.test", Source: "10.0.0.5:5060", Transport: "UDP", AuthUser: s.SIPUser}}
	f.reg.none = true // the device account is no longer registered
	f.reg.synced, f.reg.passwords = nil, nil
	f.reg.mu.Unlock()
	if err := f.ss.End(ctx, s.ID, prov.EndLogout, prov.Actor{}); err != nil {
		t.Fatal(err)
	}
	f.reg.mu.Lock()
	defer f.reg.mu.Unlock()
	if len(f.reg.synced) != 1 || f.reg.synced[0] != "10.0.0.5:5060" || f.reg.passwords[0] != s.SIPPassword {
		t.Fatalf("check-sync after logout went to %v with %v", f.reg.synced, f.reg.passwords)
	}
	if _, ok := f.creds.Lookup(s.SIPUser); ok {
		t.Fatal("the session's credential still authenticates after the logout")
	}
}

// TestCheckSyncsCoalesce: a change right after another, before the phone
// fetched, sends no second NOTIFY (the fetch renders the latest state); a
// reboot request, a fetch or two seconds in between do.
func TestCheckSyncsCoalesce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	d, _ := f.st.GetDevice(ctx, "00000000000d")
	count := func() int { f.reg.mu.Lock(); defer f.reg.mu.Unlock(); return len(f.reg.synced) }
	f.ss.SyncDevice(ctx, d, false)
	f.ss.SyncDevice(ctx, d, false)
	if n := count(); n != 1 {
		t.Fatalf("two check-syncs at once sent %d NOTIFYs, want 1", n)
	}
	f.ss.SyncDevice(ctx, d, true)
	if n := count(); n != 2 {
		t.Fatalf("a reboot request was coalesced (%d)", n)
	}
	// The phone fetched and is applying: the next check-sync waits until
	// it has registered what it fetched, then goes to that line.
	if err := f.ss.BootFetched(ctx, d, f.clk.now(), "", true); err != nil {
		t.Fatal(err)
	}
	f.ss.SyncDevice(ctx, d, false)
	if n := count(); n != 2 {
		t.Fatalf("a check-sync to a phone applying the last one was sent at once (%d)", n)
	}
	line := prov.Binding{AOR: "sip:dev00000000000d@hq.test", Source: "10.0.0.5:5060", Transport: "UDP",
		Owner: prov.DeviceOwner(d.ID), AuthUser: d.SIPUser, DeviceID: d.ID, CallID: "c9"}
	if err := f.ss.BindingChanged(ctx, prov.LineRegistered, line, f.clk.now()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("the held check-sync was not sent once the phone registered (%d)", n)
	}
	f.clk.add(3 * time.Second)
	f.ss.SyncDevice(ctx, d, false)
	if n := count(); n != 4 {
		t.Fatalf("a check-sync 3 s after the last was coalesced (%d)", n)
	}
}

// deviceReads counts the device reads Sessions makes.
type deviceReads struct {
	prov.Store
	n *atomic.Int64
}

func (s deviceReads) GetDeviceByID(ctx context.Context, id int64) (prov.Device, error) {
	s.n.Add(1)
	return s.Store.GetDeviceByID(ctx, id)
}

// Every registration and refresh reaches Sessions on the registrar's one
// event goroutine: once the phone is known deployed they read no device
// (a read each let that queue grow by tens of MB in a boot storm), until
// an event about the device or the last-seen interval says to look again.
func TestRefreshesReadNoDevice(t *testing.T) {
	t.Parallel()
	var reads atomic.Int64
	f := newFixtureWith(t, openPolicy, func(st prov.Store) prov.Store { return deviceReads{st, &reads} })
	ctx := context.Background()
	d, _ := f.st.GetDevice(ctx, "00000000000d")
	dev := prov.Binding{AOR: "sip:dev00000000000d@hq.test", Contact: "sip:dev00000000000d@10.0.0.5:5060",
		Source: "10.0.0.5:5060", Transport: "UDP", Owner: prov.DeviceOwner(d.ID), AuthUser: d.SIPUser, DeviceID: d.ID, CallID: "c1"}
	change := func(c prov.BindingChange) {
		t.Helper()
		f.clk.add(time.Second)
		if err := f.ss.BindingChanged(ctx, c, dev, f.clk.now()); err != nil {
			t.Fatal(err)
		}
	}
	change(prov.LineRegistered)
	if got, _ := f.st.GetDevice(ctx, d.MAC); got.Status != prov.DeviceDeployed {
		t.Fatalf("status %s after the first registration, want deployed", got.Status)
	}
	base := reads.Load()
	for range 100 {
		change(prov.LineRefreshed)
	}
	if n := reads.Load() - base; n != 0 {
		t.Fatalf("100 refreshes of a deployed phone read the device %d times, want 0", n)
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID})
	change(prov.LineRefreshed)
	change(prov.LineRefreshed)
	if n := reads.Load() - base; n != 1 {
		t.Fatalf("after an event about the device: %d reads, want 1", n)
	}
	f.clk.add(6 * time.Minute)
	change(prov.LineRefreshed)
	if n := reads.Load() - base; n != 2 {
		t.Fatalf("after the last-seen interval: %d reads, want 2", n)
	}
	if got, _ := f.st.GetDevice(ctx, d.MAC); !got.LastSeen.Equal(f.clk.now()) {
		t.Fatalf("last seen %v, want %v (written again)", got.LastSeen, f.clk.now())
	}
}

// TestHeldCheckSyncSurvivesRestart: a check-sync held while the phone
// applies the last one is kept in the store; the node restarted before
// sending it sends it when the phone registers what it applied, once.
func TestHeldCheckSyncSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	d, _ := f.st.GetDevice(ctx, "00000000000d")
	count := func() int { f.reg.mu.Lock(); defer f.reg.mu.Unlock(); return len(f.reg.synced) }
	f.ss.SyncDevice(ctx, d, false)
	if err := f.ss.BootFetched(ctx, d, f.clk.now(), "", true); err != nil {
		t.Fatal(err)
	}
	f.ss.SyncDevice(ctx, d, false)
	if n := count(); n != 1 {
		t.Fatalf("a check-sync to a phone applying the last one was sent at once (%d)", n)
	}
	if held, err := f.st.HeldSyncsOf(ctx, ""); err != nil || len(held) != 1 || held[0].DeviceID != d.ID {
		t.Fatalf("held check-syncs in the store: %+v %v", held, err)
	}
	f.restart(t)
	if n := count(); n != 1 {
		t.Fatalf("the restart sent the held check-sync before it was due (%d)", n)
	}
	line := prov.Binding{AOR: "sip:dev00000000000d@hq.test", Source: "10.0.0.5:5060", Transport: "UDP",
		Owner: prov.DeviceOwner(d.ID), AuthUser: d.SIPUser, DeviceID: d.ID, CallID: "c9"}
	if err := f.ss.BindingChanged(ctx, prov.LineRegistered, line, f.clk.now()); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("the held check-sync was not sent after the restart once the phone registered (%d)", n)
	}
	if held, err := f.st.HeldSyncsOf(ctx, ""); err != nil || len(held) != 0 {
		t.Fatalf("held check-syncs left in the store: %+v %v", held, err)
	}
}

// TestNativeLogoutWindowSurvivesRestart: the refusal window after a
// native session ends is in the store: the phone's re-fetch with its
// stored login is refused by the node restarted meanwhile, and once the
// window has passed the login works.
func TestNativeLogoutWindowSurvivesRestart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	native := func() error {
		_, err := f.ss.Login(ctx, prov.LoginRequest{MAC: "00000000000d", Username: "alice", Door: prov.DoorNative,
			Verified: true, AtDevice: true})
		return err
	}
	if err := native(); err != nil {
		t.Fatal(err)
	}
	sess, ok, err := f.ss.ActiveOn(ctx, mustDevice(t, f, "00000000000d").ID)
	if err != nil || !ok {
		t.Fatalf("no session: %v", err)
	}
	if err := f.ss.End(ctx, sess.ID, prov.EndAdmin, prov.Actor{}); err != nil {
		t.Fatal(err)
	}
	f.restart(t)
	f.clk.add(prov.NativeRefuseWindow - time.Second)
	if err := native(); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("re-fetch with the stored login after a restart: %v, want refused", err)
	}
	f.clk.add(time.Second)
	if err := native(); err != nil {
		t.Fatalf("login after the window: %v", err)
	}
}

func mustDevice(t *testing.T, f *fixture, mac string) prov.Device {
	t.Helper()
	d, err := f.st.GetDevice(context.Background(), mac)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFirstRegistrationReportedAfterALogin: the registrar reports a
// phone's first registration (its device account) on its own goroutine, so
// it may reach Sessions after a login on that phone. A login the phone
// cannot know of yet (the API's, while it held no registration) is sent
// once it registers; a native login, which the phone made from the files
// it fetched, is not told again: the NOTIFY would only make it fetch once
// more and leave its next reboot read as applying it.
func TestFirstRegistrationReportedAfterALogin(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		door  prov.Door
		syncs int
	}{
		{prov.DoorAPI, 1},
		{prov.DoorNative, 0},
	} {
		t.Run(string(tc.door), func(t *testing.T) {
			f := newFixture(t, openPolicy)
			ctx := context.Background()
			d, _ := f.st.GetDevice(ctx, "00000000000d")
			if d.Status != prov.DeviceNotDeployed {
				t.Fatalf("fixture device is %s, want not deployed", d.Status)
			}
			registeredAt := f.clk.now() // the device account's REGISTER, reported late
			f.clk.add(time.Millisecond)
			f.reg.mu.Lock()
			f.reg.none = tc.door == prov.DoorAPI // the API's login finds the phone unreachable
			f.reg.mu.Unlock()
			s, err := f.ss.Login(ctx, prov.LoginRequest{MAC: d.MAC, Username: "alice", Secret: "alice-pw", Door: tc.door, AtDevice: true})
			if err != nil {
				t.Fatal(err)
			}
			f.reg.mu.Lock()
			f.reg.none, f.reg.synced = false, nil
			f.reg.mu.Unlock()
			dev := prov.Binding{AOR: "sip:dev00000000000d@hq.test", Source: "10.0.0.5:5060", Transport: "UDP",
				Owner: prov.DeviceOwner(d.ID), AuthUser: d.SIPUser, DeviceID: d.ID, CallID: "d1"}
			if err := f.ss.BindingChanged(ctx, prov.LineRegistered, dev, registeredAt); err != nil {
				t.Fatal(err)
			}
			f.clk.add(time.Millisecond)
			line := prov.Binding{AOR: "sip:2001@hq.test", Source: "10.0.0.5:5060", Transport: "UDP",
				Owner: prov.SessionOwner(s.ID), AuthUser: s.SIPUser, DeviceID: d.ID, CallID: "c1"}
			if err := f.ss.BindingChanged(ctx, prov.LineRegistered, line, f.clk.now()); err != nil {
				t.Fatal(err)
			}
			f.reg.mu.Lock()
			got := len(f.reg.synced)
			f.reg.mu.Unlock()
			if got != tc.syncs {
				t.Fatalf("%d check-syncs sent, want %d", got, tc.syncs)
			}
			if dd, _ := f.st.GetDevice(ctx, d.MAC); dd.Status != prov.DeviceDeployed {
				t.Fatalf("device %s after registering, want deployed", dd.Status)
			}
		})
	}
}
