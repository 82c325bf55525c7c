package daemon

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// offsetClock is the sessions' clock in these tests: real time plus an
// offset the test moves, so idle, maximum and daily logouts and the wait
// after a line goes down happen without waiting.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time      { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) add(d time.Duration) { c.off.Add(int64(d)) }

// relockEnv is a demo daemon with a realistic phone booted on it.
type relockEnv struct {
	t     *testing.T
	a     *app
	addrs Addrs
	clk   *offsetClock
	phone *deskPhone
	mac   string // the phone's
	dev   prov.Device
	pin   string // a deployment PIN the claim case types
}

const (
	phoneA = "0004f2000001"
	phoneB = "0004f2000002"
)

func newRelockEnv(t *testing.T) *relockEnv { return newRelockEnvWith(t, nil) }

// newRelockEnvWith is newRelockEnv with mod applied to the configuration.
func newRelockEnvWith(t *testing.T, mod func(*Config)) *relockEnv {
	t.Helper()
	return newPhoneEnv(t, polycomPhone, phoneA, mod)
}

// newPhoneEnv is a demo daemon with a phone of vendor v booted on it.
func newPhoneEnv(t *testing.T, v *phoneVendor, mac string, mod func(*Config)) *relockEnv {
	t.Helper()
	return newPhoneEnvPrep(t, v, mac, mod, nil)
}

// newPhoneEnvPrep is newPhoneEnv with prep run on the phone before it
// boots (its DHCP step).
func newPhoneEnvPrep(t *testing.T, v *phoneVendor, mac string, mod func(*Config), prep func(*relockEnv)) *relockEnv {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	if mod != nil {
		mod(&cfg)
	}
	e := &relockEnv{t: t, clk: &offsetClock{}, mac: mac}
	e.addrs, _ = startDaemon(t, cfg, Options{Demo: true, sessionClock: e.clk.now, onBuilt: func(x *app) { e.a = x }})
	// A policy without timers: the cases that need one set it.
	e.setPolicy(func(p *prov.LoginPolicy) { p.AutomaticLogout, p.Persistent = 0, false })
	e.phone = newVendorPhone(t, e.addrs, mac, v)
	if prep != nil {
		prep(e)
	}
	e.phone.boot()
	var err error
	if e.dev, err = e.a.store.GetDevice(context.Background(), mac); err != nil {
		t.Fatal(err)
	}
	e.assertLocked(e.phone, mac)
	return e
}

func (e *relockEnv) setPolicy(fn func(*prov.LoginPolicy)) {
	e.t.Helper()
	e.updateSite(func(s *prov.Site) { fn(&s.Login) })
}

// updateSite changes the demo's one site, every phone's.
func (e *relockEnv) updateSite(fn func(*prov.Site)) {
	e.t.Helper()
	ctx := context.Background()
	sites, err := e.a.store.ListSites(ctx)
	if err != nil || len(sites) != 1 {
		e.t.Fatalf("sites: %v %v", sites, err)
	}
	site := sites[0]
	fn(&site)
	if err := e.a.store.UpdateSite(ctx, &site); err != nil {
		e.t.Fatal(err)
	}
}

// assertLocked checks that the phone registers only its device account,
// on its side and in the registrar.
func (e *relockEnv) assertLocked(p *deskPhone, mac string) {
	e.t.Helper()
	d, err := e.a.store.GetDevice(context.Background(), mac)
	if err != nil {
		e.t.Fatal(err)
	}
	if got := p.settle([]string{d.SIPUser}); !slices.Equal(got, []string{d.SIPUser}) {
		e.t.Fatalf("phone %s registers %v, want only its device account %s", mac, got, d.SIPUser)
	}
	e.waitBindings(d, func(bs []prov.Binding) bool {
		return len(bs) == 1 && bs[0].Owner == prov.DeviceOwner(d.ID)
	}, "only the device account")
}

// assertLoggedIn checks the phone registers the user's line and nothing else.
func (e *relockEnv) assertLoggedIn(p *deskPhone, mac, number string) prov.Session {
	e.t.Helper()
	d, _ := e.a.store.GetDevice(context.Background(), mac)
	if got := p.settle([]string{number}); !slices.Equal(got, []string{number}) {
		e.t.Fatalf("phone %s registers %v after the login, want %s", mac, got, number)
	}
	sess, ok, _ := e.a.svc.sessions.ActiveOn(context.Background(), d.ID)
	if !ok {
		e.t.Fatalf("no session on %s", mac)
	}
	e.waitBindings(d, func(bs []prov.Binding) bool {
		return len(bs) == 1 && bs[0].Owner == prov.SessionOwner(sess.ID)
	}, "only the session's line")
	return sess
}

// waitBindings polls the registrar (its events settle on their own
// goroutine) until ok holds for the phone's bindings.
func (e *relockEnv) waitBindings(d prov.Device, ok func([]prov.Binding) bool, what string) {
	e.t.Helper()
	var bs []prov.Binding
	if eventually(func() bool { // the registrar's events lag on a loaded machine
		bs = e.a.svc.registrar.DeviceBindings(context.Background(), d.ID)
		return ok(bs)
	}) {
		return
	}
	e.t.Fatalf("registrar holds %+v for %s, want %s", bs, d.MAC, what)
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// api calls the admin API as the admin.
func (e *relockEnv) api(method, path, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.addrs.Admin+"/api/v1"+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("admin", "test-admin-pw")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	return res.StatusCode, out
}

// phonePage is the login page the locked profile gives the phone's browser.
func (e *relockEnv) phonePage(p *deskPhone) string {
	e.t.Helper()
	page := html.UnescapeString(p.param("mb.main.home"))
	if page == "" {
		e.t.Fatal("the locked profile has no mb.main.home")
	}
	return page
}

// login logs alice in on phone A through door and waits until the phone
// has applied it.
func (e *relockEnv) login(door prov.Door) {
	e.t.Helper()
	p := e.phone
	mark := p.mark()
	switch door {
	case prov.DoorNative:
		if code := p.nativeLogin("alice", "alice-demo"); code != 200 {
			e.t.Fatalf("native login = %d", code)
		}
		return // the phone loads the profile itself: no NOTIFY
	case prov.DoorBrowser:
		form := phoneForm(e.t, &http.Client{}, e.phonePage(p), files.PhoneFormLogin)
		code, body := fetch(e.t, &http.Client{}, "POST", form, url.Values{"user": {"alice"}, "password": {"alice-demo"}})
		if code != 200 || !strings.Contains(body, "Logged in") {
			e.t.Fatalf("phone page login = %d\n%s", code, body)
		}
	case prov.DoorFeatureCode:
		if code, reason := p.dial("*771001*alice-demo"); code != 480 || !strings.Contains(reason, "Logged in") {
			e.t.Fatalf("*77 login = %d %s", code, reason)
		}
	case prov.DoorAPI:
		if code, body := e.api("POST", "/sessions", `{"device":"`+e.mac+`","user":"alice"}`); code != 201 {
			e.t.Fatalf("API login = %d %v", code, body)
		}
	}
	p.waitResync(mark)
}

// TestEveryDoorEveryLogoutRelocksThePhone is the relock matrix: alice logs
// in on a realistic phone through each door and is logged out for each
// reason; every time the phone must get the NOTIFY (answering its
// challenge), re-fetch, and register only its device account again.
func TestEveryDoorEveryLogoutRelocksThePhone(t *testing.T) {
	doors := []prov.Door{prov.DoorNative, prov.DoorBrowser, prov.DoorFeatureCode, prov.DoorAPI}
	reasons := []struct {
		name string
		want prov.EndReason // the session's end reason
		// before runs ahead of the login (a policy, an assignment).
		before func(e *relockEnv)
		// logout ends the session; the phone is then expected to resync.
		logout func(e *relockEnv, door prov.Door, sess prov.Session)
	}{
		{"page", prov.EndLogout, nil, func(e *relockEnv, _ prov.Door, _ prov.Session) {
			logout := phoneForm(e.t, &http.Client{}, e.phonePage(e.phone), files.PhoneFormLogout)
			if code, body := fetch(e.t, &http.Client{}, "POST", logout, url.Values{}); code != 200 || !strings.Contains(body, "Logged out") {
				e.t.Fatalf("logout page = %d\n%s", code, body)
			}
		}},
		{"*78", prov.EndLogout, nil, func(e *relockEnv, _ prov.Door, _ prov.Session) {
			if code, reason := e.phone.dial("*78"); code != 480 || reason != "Logged out" {
				e.t.Fatalf("*78 = %d %s", code, reason)
			}
		}},
		{"phone-side", prov.EndPhoneUnregister, nil, func(e *relockEnv, door prov.Door, _ prov.Session) {
			e.phone.logoutOnPhone()
			if door != prov.DoorNative {
				// Only the line went down: once the daemon has noted it,
				// the wait decides it.
				e.waitSignals(func(s prov.DeviceSignals) bool { return s.LineDownSession != "" })
				e.clk.add(prov.LineDownWait + time.Second)
				if err := e.a.svc.sessions.Sweep(context.Background()); err != nil {
					e.t.Fatal(err)
				}
			}
		}},
		{"idle", prov.EndIdle, func(e *relockEnv) { e.setPolicy(func(p *prov.LoginPolicy) { p.AutomaticLogout = 30 }) },
			func(e *relockEnv, _ prov.Door, _ prov.Session) { e.sweepAfter(31 * time.Minute) }},
		{"max", prov.EndMaxLength, func(e *relockEnv) { e.setPolicy(func(p *prov.LoginPolicy) { p.MaxSessionMinutes = 60 }) },
			func(e *relockEnv, _ prov.Door, _ prov.Session) { e.sweepAfter(61 * time.Minute) }},
		{"daily", prov.EndDaily, func(e *relockEnv) {
			loc, _ := time.LoadLocation("Europe/Berlin")
			at := e.clk.now().In(loc).Add(2 * time.Minute).Format("15:04")
			e.setPolicy(func(p *prov.LoginPolicy) { p.DailyLogout = at })
		}, func(e *relockEnv, _ prov.Door, _ prov.Session) { e.sweepAfter(3 * time.Minute) }},
		{"admin", prov.EndAdmin, nil, func(e *relockEnv, _ prov.Door, sess prov.Session) {
			if code, _ := e.api("DELETE", "/sessions/"+sess.ID, ""); code/100 != 2 {
				e.t.Fatalf("DELETE session = %d", code)
			}
		}},
		{"replace", prov.EndReplaced, nil, func(e *relockEnv, _ prov.Door, _ prov.Session) {
			if code, body := e.api("POST", "/sessions", `{"device":"`+phoneB+`","user":"alice"}`); code != 201 {
				e.t.Fatalf("login elsewhere = %d %v", code, body)
			}
		}},
		{"disable", prov.EndUserDisabled, nil, func(e *relockEnv, _ prov.Door, _ prov.Session) {
			if code, body := e.api("POST", "/users/alice/disable", ""); code/100 != 2 {
				e.t.Fatalf("disable = %d %v", code, body)
			}
		}},
		{"unassign", prov.EndUnassigned, func(e *relockEnv) {
			// The phone is bob's desk phone; alice logs in on it as a guest.
			mark := e.phone.mark()
			if code, body := e.api("POST", "/devices/"+phoneA+"/assign", `{"user":"bob"}`); code/100 != 2 {
				e.t.Fatalf("assign = %d %v", code, body)
			}
			e.phone.waitResync(mark)
			e.assertLoggedIn(e.phone, phoneA, "1002")
		}, func(e *relockEnv, _ prov.Door, _ prov.Session) {
			if code, body := e.api("POST", "/devices/"+phoneA+"/unassign", ""); code/100 != 2 {
				e.t.Fatalf("unassign = %d %v", code, body)
			}
		}},
		{"claim", prov.EndClaimed, func(e *relockEnv) {
			// Phone A is alice's desk phone; she logs out there, then in again
			// through the door; then she claims phone B with her PIN.
			mark := e.phone.mark()
			code, body := e.api("POST", "/devices/"+phoneA+"/assign", `{"user":"alice"}`)
			if code/100 != 2 {
				e.t.Fatalf("assign = %d %v", code, body)
			}
			e.pin, _ = body["deployment_pin"].(string)
			e.phone.waitResync(mark)
			e.assertLoggedIn(e.phone, phoneA, "1001")
			mark = e.phone.mark()
			if code, reason := e.phone.dial("*78"); code != 480 || reason != "Logged out" {
				e.t.Fatalf("*78 = %d %s", code, reason)
			}
			e.phone.waitResync(mark)
			e.assertLocked(e.phone, phoneA)
		}, func(e *relockEnv, _ prov.Door, _ prov.Session) {
			b := newDeskPhone(e.t, e.addrs, phoneB)
			b.boot()
			e.assertLocked(b, phoneB)
			mark := b.mark()
			if code, reason := b.dial("*77" + e.pin); code != 480 || reason != "Phone claimed" {
				e.t.Fatalf("claim = %d %s", code, reason)
			}
			b.waitResync(mark)
			e.assertLoggedIn(b, phoneB, "1001")
		}},
	}
	for _, door := range doors {
		for _, r := range reasons {
			t.Run(string(door)+"/"+r.name, func(t *testing.T) {
				e := newRelockEnv(t)
				if r.before != nil {
					r.before(e)
				}
				e.login(door)
				sess := e.assertLoggedIn(e.phone, phoneA, "1001")
				mark := e.phone.mark()
				r.logout(e, door, sess)
				e.phone.waitResync(mark)
				e.assertLocked(e.phone, phoneA)
				// A phone that logs out natively reloads its locked
				// profile at once; the daemon ends the session when the
				// phone's un-REGISTER of the user's line reaches it, on
				// its own goroutine: wait for that, then check why.
				var got prov.Session
				var err error
				eventually(func() bool {
					got, err = e.a.store.GetSession(context.Background(), sess.ID)
					return err != nil || !got.Active()
				})
				if err != nil || got.Active() || got.EndReason != r.want {
					t.Fatalf("session after %s: active=%v reason=%q, want %q (%v)", r.name, got.Active(), got.EndReason, r.want, err)
				}
				// The ended session's credentials authenticate nothing any more.
				if code := e.phone.register(phoneLine{user: "1001", authUser: sess.SIPUser, password: sess.SIPPassword,
					callID: newToken()}, 600); code == 200 {
					t.Fatal("REGISTER with the ended session's credentials accepted")
				}
			})
		}
	}
}

// waitSignals polls the stored reboot-versus-logout signals of phone A
// (the registrar reports on its own goroutine) until ok holds.
func (e *relockEnv) waitSignals(ok func(prov.DeviceSignals) bool) {
	e.t.Helper()
	if eventually(func() bool {
		s, err := e.a.store.DeviceSignals(context.Background(), e.dev.ID)
		return err == nil && ok(s)
	}) {
		return
	}
	e.t.Fatal("the daemon did not note the phone's signal")
}

// sweepAfter moves the sessions' clock and runs the sweep.
func (e *relockEnv) sweepAfter(d time.Duration) {
	e.t.Helper()
	e.clk.add(d)
	if err := e.a.svc.sessions.Sweep(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}
