package files_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/files"
	"hotdesk/prov/render"
	"hotdesk/prov/store"
)

type fakeLeases map[netip.Addr]string

func (l fakeLeases) AddrToMAC(ip netip.Addr) (string, bool) { m, ok := l[ip]; return m, ok }

type filesFixture struct {
	st     *store.Store
	files  *files.Files
	events *prov.Events
	static string
	mu     sync.Mutex
	seen   []prov.Event
	// passwords are the login passwords uploads changed ("user=password").
	passwords []string
}

const (
	fMAC      = "0004f2000001"
	fPhoneIP  = "10.1.2.3"
	fServerIP = "10.0.0.1"
)

func newFilesFixture(t *testing.T, cfg files.Config) *filesFixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rend, err := render.New(render.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &filesFixture{st: st, events: &prov.Events{}, static: t.TempDir()}
	f.events.Subscribe(func(_ context.Context, e prov.Event) { f.mu.Lock(); f.seen = append(f.seen, e); f.mu.Unlock() })
	cfg.StaticDir, cfg.HTTPPort = f.static, 80
	f.files, err = files.New(cfg, files.Deps{Store: st, Events: f.events, Renderer: rend,
		Leases: fakeLeases{netip.MustParseAddr(fPhoneIP): "00:04:F2:00:00:01"}, Desk: f})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.files.Close() })
	site := prov.Site{Name: "HQ", Subnets: []string{"10.1.0.0/16"}, TimeZone: "UTC",
		Login: prov.LoginPolicy{Enabled: true, Required: true}, Params: map[string]string{"up.site": "1"}}
	if err := st.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	return f
}

// Fetched implements files.Desk: the fetch bookkeeping is prov's (rules_test).
func (f *filesFixture) Fetched(context.Context, prov.Device, prov.Fetch) {}

// HandsetPassword implements files.Desk: it records the change.
func (f *filesFixture) HandsetPassword(_ context.Context, user, pw string) error {
	f.mu.Lock()
	f.passwords = append(f.passwords, user+"="+pw)
	f.mu.Unlock()
	return nil
}

func fReq(proto files.Proto, path string) files.Request {
	return files.Request{Proto: proto, Path: path, Remote: netip.MustParseAddrPort(fPhoneIP + ":5000"),
		Local: netip.MustParseAddrPort(fServerIP + ":69")}
}

// fAs is an HTTP request that authenticated with mac's provisioning
// digest credentials, as provhttp marks it.
func fAs(mac, path string) files.Request {
	r := fReq(files.ProtoHTTP, path)
	r.DeviceMAC, r.DeviceAuthenticated = mac, true
	return r
}

func (f *filesFixture) read(t *testing.T, r files.Request) (string, error) {
	t.Helper()
	c, err := f.files.Read(context.Background(), r)
	if err != nil {
		return "", err
	}
	defer c.Close()
	b, err := io.ReadAll(c.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), nil
}

func TestTFTPBootByLease(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	body, err := f.read(t, fReq(files.ProtoTFTP, "000000000000.cfg"))
	if err != nil || !strings.Contains(body, fMAC+"-hotdesk.cfg") {
		t.Fatalf("master by lease: %v\n%s", err, body)
	}
	d, err := f.st.GetDevice(context.Background(), fMAC)
	if err != nil || d.SiteID == 0 || d.Vendor != "polycom" {
		t.Fatalf("enrolled: %+v %v", d, err)
	}
	body, err = f.read(t, fReq(files.ProtoTFTP, fMAC+"-hotdesk.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, d.SIPPassword) || strings.Contains(body, d.ProvPassword) {
		t.Errorf("TFTP served a secret:\n%s", body)
	}
	if !strings.Contains(body, `device.prov.serverName="`+fServerIP+`"`) || !strings.Contains(body, `device.prov.serverType="HTTP"`) {
		t.Errorf("TFTP boot file does not move the fPhoneIP to HTTP:\n%s", body)
	}
	body, _ = f.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg"))
	if !strings.Contains(body, d.SIPPassword) {
		t.Errorf("HTTP device file lacks the device account")
	}
	// Generic master for an unknown source.
	r := fReq(files.ProtoTFTP, "000000000000.cfg")
	r.Remote = netip.MustParseAddrPort("10.9.9.9:1")
	if body, err := f.read(t, r); err != nil || !strings.Contains(body, "[PHONE_MAC_ADDRESS]") {
		t.Errorf("generic master: %v %s", err, body)
	}
}

func TestEnrollPolicies(t *testing.T) {
	for _, pol := range []string{files.EnrollApprove, files.EnrollDeny} {
		f := newFilesFixture(t, files.Config{Enroll: pol})
		if _, err := f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg")); !errors.Is(err, prov.ErrNotFound) {
			t.Errorf("%s: err = %v", pol, err)
		}
		d, err := f.st.GetDevice(context.Background(), fMAC)
		if pol == files.EnrollApprove && (err != nil || d.Status != prov.DevicePending) {
			t.Errorf("approve: %+v %v", d, err)
		}
		if pol == files.EnrollDeny && !errors.Is(err, prov.ErrNotFound) {
			t.Errorf("deny created the device")
		}
	}
}

// login creates alice with a session on the device through door.
func (f *filesFixture) login(t *testing.T, door string) (prov.User, prov.Device) {
	t.Helper()
	ctx := context.Background()
	if _, err := f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg")); err != nil {
		t.Fatal(err)
	}
	d, _ := f.st.GetDevice(ctx, fMAC)
	u := prov.User{Username: "alice", Status: prov.StatusActive, Kind: prov.KindPerson, Params: map[string]string{"up.user": "1"}}
	if err := f.st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := f.st.AssignNumber(ctx, "201", u.ID); err != nil {
		t.Fatal(err)
	}
	s := prov.Session{ID: "sess1", UserID: u.ID, DeviceID: d.ID, Door: door, StartedAt: time.Now(),
		LastActivity: time.Now(), SIPUser: "s-alice", SIPPassword: "sesspw"}
	if err := f.st.CreateSession(ctx, &s); err != nil {
		t.Fatal(err)
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventSessionStarted, DeviceID: d.ID, UserID: u.ID})
	return u, d
}

func TestUserFilesAndUploads(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	u, _ := f.login(t, "web")
	body, err := f.read(t, fAs(fMAC, "alice.cfg"))
	if err != nil || !strings.Contains(body, `reg.1.auth.password="sesspw"`) || !strings.Contains(body, `up.user="1"`) {
		t.Fatalf("alice.cfg: %v\n%s", err, body)
	}
	// A web-door session puts the user into the device's own file.
	body, _ = f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg"))
	if !strings.Contains(body, `reg.1.address="201"`) {
		t.Errorf("device file without the user's line:\n%s", body)
	}
	if _, err := f.read(t, fReq(files.ProtoHTTP, "bob.cfg")); !errors.Is(err, prov.ErrAuth) {
		t.Errorf("bob.cfg: %v", err)
	}
	dir := `<directory><item_list><item><fn>Bob</fn><ct>202</ct><sd>1</sd></item></item_list></directory>`
	if err := f.files.Write(ctx, fAs(fMAC, fMAC+"-directory.xml"), strings.NewReader(dir)); err != nil {
		t.Fatal(err)
	}
	cs, err := f.st.ListContacts(ctx, u.ID)
	if err != nil || len(cs) != 1 || cs[0].Number != "202" {
		t.Fatalf("contacts after upload: %+v %v", cs, err)
	}
	body, _ = f.read(t, fAs(fMAC, "alice-directory.xml"))
	if !strings.Contains(body, "<ct>202</ct>") {
		t.Errorf("rendered directory: %s", body)
	}
	up := `<polycomConfig up.volume.handset="3"/>`
	if err := f.files.Write(ctx, fAs(fMAC, "alice-phone.cfg"), strings.NewReader(up)); err != nil {
		t.Fatal(err)
	}
	body, _ = f.read(t, fAs(fMAC, "alice.cfg"))
	if !strings.Contains(body, `up.volume.handset="3"`) {
		t.Errorf("user-fPhoneIP upload not merged:\n%s", body)
	}
	f.mu.Lock()
	var userEvents int
	for _, e := range f.seen {
		if e.Kind == prov.EventUserChanged && e.UserID == u.ID {
			userEvents++
		}
	}
	f.mu.Unlock()
	if userEvents != 2 {
		t.Errorf("user-changed events = %d, want 2", userEvents)
	}
	if err := f.files.Write(ctx, fAs(fMAC, "bob-phone.cfg"), strings.NewReader(up)); !errors.Is(err, prov.ErrNotFound) {
		t.Errorf("upload for a user not logged in here: %v", err)
	}
	eff, err := f.files.EffectiveConfig(ctx, fMAC)
	if err != nil {
		t.Fatal(err)
	}
	layers := map[string]prov.Param{}
	for _, p := range eff {
		layers[p.Name] = p
	}
	if p := layers["up.volume.handset"]; p.Layer != prov.LayerUserPhone {
		t.Errorf("effective up.volume.handset = %+v", p)
	}
	if p := layers["up.site"]; p.Layer != prov.LayerSite {
		t.Errorf("effective up.site = %+v", p)
	}
	if p := layers["reg.1.auth.password"]; p.Value != "********" || p.Layer != prov.LayerUser {
		t.Errorf("effective secret = %+v", p)
	}
}

func TestCacheInvalidation(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg"))
	before, _ := f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg"))
	d, _ := f.st.GetDevice(ctx, fMAC)
	d.Params = map[string]string{"up.admin": "42"}
	if err := f.st.UpdateDevice(ctx, &d); err != nil {
		t.Fatal(err)
	}
	cached, _ := f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg"))
	if cached != before {
		t.Error("rendered file changed without an event (cache not used)")
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceChanged, DeviceID: d.ID})
	after, _ := f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg"))
	if !strings.Contains(after, `up.admin="42"`) {
		t.Errorf("event did not invalidate:\n%s", after)
	}
}

func TestStaticFiles(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	if err := os.MkdirAll(filepath.Join(f.static, "fw"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.static, "fw", "sip.ld"), []byte("firmware"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.static, "link")); err != nil {
		t.Fatal(err)
	}
	if body, err := f.read(t, fReq(files.ProtoTFTP, "fw/sip.ld")); err != nil || body != "firmware" {
		t.Errorf("static: %q %v", body, err)
	}
	for _, p := range []string{"link", "fw", "../secret", "/etc/passwd", "fw/../../secret", "fw\x00/sip.ld"} {
		if _, err := f.read(t, fReq(files.ProtoTFTP, p)); err == nil {
			t.Errorf("%q served", p)
		}
	}
}

func TestUploadLimits(t *testing.T) {
	f := newFilesFixture(t, files.Config{MaxUploadBytes: 100, UploadVersions: 2})
	ctx := context.Background()
	f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg"))
	for i := range 3 {
		body := `<polycomConfig up.x="` + strings.Repeat("a", i) + `"/>`
		if err := f.files.Write(ctx, fAs(fMAC, fMAC+"-web.cfg"), strings.NewReader(body)); err != nil {
			t.Fatal(err)
		}
	}
	err := f.files.Write(ctx, fAs(fMAC, fMAC+"-web.cfg"), strings.NewReader(strings.Repeat("x", 101)))
	if !errors.Is(err, files.ErrTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	ups, _ := f.st.ListUploads(ctx, "device:"+fMAC)
	if len(ups) != 2 {
		t.Errorf("kept %d versions, want 2", len(ups))
	}
	for _, name := range []string{fMAC + "-hotdesk.cfg", fMAC + ".cfg", "0004f2000002-web.cfg", "alice.cfg"} {
		if err := f.files.Write(ctx, fAs(fMAC, name), strings.NewReader("<x/>")); err == nil {
			t.Errorf("write to %s accepted", name)
		}
	}
	if err := f.files.Write(ctx, fAs(fMAC, fMAC+"-app.log"), strings.NewReader("log line\n")); err != nil {
		t.Errorf("log upload: %v", err)
	}
}

// Events about one device drop only that device's cached files; others
// drop everything.
func TestCacheScopedInvalidation(t *testing.T) {
	const other = "0004f2000002"
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	devs := map[string]prov.Device{}
	for _, mac := range []string{fMAC, other} {
		if _, err := f.read(t, fReq(files.ProtoHTTP, mac+".cfg")); err != nil {
			t.Fatal(err)
		}
		f.read(t, fAs(mac, mac+"-hotdesk.cfg"))
		devs[mac], _ = f.st.GetDevice(ctx, mac)
	}
	n := 0
	edit := func() string { // changes both devices in the store, without an event
		n++
		v := strconv.Itoa(n)
		for _, d := range devs {
			d.Params = map[string]string{"up.admin": v}
			if err := f.st.UpdateDevice(ctx, &d); err != nil {
				t.Fatal(err)
			}
		}
		return `up.admin="` + v + `"`
	}
	for _, tt := range []struct {
		name         string
		ev           prov.Event
		fresh, stale []string
	}{
		{"registered", prov.Event{Kind: prov.EventDeviceStatus, DeviceID: devs[fMAC].ID}, []string{fMAC}, []string{other}},
		{"login", prov.Event{Kind: prov.EventSessionStarted, DeviceID: devs[other].ID, UserID: 7}, []string{other}, []string{fMAC}},
		{"logout", prov.Event{Kind: prov.EventSessionEnded, DeviceID: devs[fMAC].ID, UserID: 7}, []string{fMAC}, []string{other}},
		{"enrolled elsewhere", prov.Event{Kind: prov.EventDeviceChanged, DeviceID: 999, Reason: "enrolled"}, nil, []string{fMAC, other}},
		{"user changed", prov.Event{Kind: prov.EventUserChanged, UserID: 7}, []string{fMAC, other}, nil},
		{"device changed", prov.Event{Kind: prov.EventDeviceChanged, DeviceID: devs[fMAC].ID}, []string{fMAC, other}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for mac := range devs { // cache both
				f.read(t, fAs(mac, mac+"-hotdesk.cfg"))
			}
			want := edit()
			f.events.Publish(ctx, tt.ev)
			for _, mac := range tt.fresh {
				if body, _ := f.read(t, fAs(mac, mac+"-hotdesk.cfg")); !strings.Contains(body, want) {
					t.Errorf("%s: not re-rendered after the event", mac)
				}
			}
			for _, mac := range tt.stale {
				if body, _ := f.read(t, fAs(mac, mac+"-hotdesk.cfg")); strings.Contains(body, want) {
					t.Errorf("%s: re-rendered (cache dropped for an event about another device)", mac)
				}
			}
		})
	}
}

// A session started on a device shows in its files once the event is out,
// even though its View was cached without a session.
func TestCacheSessionView(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg"))
	locked, _ := f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg"))
	d, _ := f.st.GetDevice(ctx, fMAC)
	u := prov.User{Username: "alice", Status: prov.StatusActive, Kind: prov.KindPerson}
	if err := f.st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	s := prov.Session{ID: "s1", UserID: u.ID, DeviceID: d.ID, Door: prov.DoorBrowser, StartedAt: time.Now(),
		LastActivity: time.Now(), SIPUser: "s-alice", SIPPassword: "pw"}
	if err := f.st.CreateSession(ctx, &s); err != nil {
		t.Fatal(err)
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventSessionStarted, DeviceID: d.ID, UserID: u.ID, SessionID: s.ID})
	in, _ := f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg"))
	if in == locked || !strings.Contains(in, "s-alice") {
		t.Fatalf("session not rendered after the event:\n%s", in)
	}
	if err := f.st.EndSession(ctx, s.ID, time.Now(), prov.EndLogout); err != nil {
		t.Fatal(err)
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventSessionEnded, DeviceID: d.ID, UserID: u.ID, SessionID: s.ID})
	if out, _ := f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg")); strings.Contains(out, "s-alice") {
		t.Errorf("ended session still rendered:\n%s", out)
	}
}

// Enrollment records last-seen at once; later fetches write it off the
// request path, and Close writes what is pending.
func TestLastSeen(t *testing.T) {
	f := newFilesFixture(t, files.Config{SeenInterval: time.Hour})
	ctx := context.Background()
	f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg"))
	d, err := f.st.GetDevice(ctx, fMAC)
	if err != nil || d.LastSeen.IsZero() || d.LastIP != fPhoneIP {
		t.Fatalf("enrolled without last seen: %+v %v", d, err)
	}
	r := fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg")
	r.Remote = netip.MustParseAddrPort("10.1.9.9:5000") // moved: written although within the interval
	f.read(t, r)
	if err := f.files.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = f.st.GetDevice(ctx, fMAC)
	if err != nil || d.LastIP != "10.1.9.9" {
		t.Fatalf("last ip after Close = %q, %v", d.LastIP, err)
	}
}

// Concurrent first fetches, some of the same phone, enroll every device
// once (they are created in batches) and all get their files.
func TestConcurrentEnrollment(t *testing.T) {
	// Hundreds of phones, all at the fixture's one address: no per-source cap.
	f := newFilesFixture(t, files.Config{EnrollPerSource: -1})
	ctx := context.Background()
	taken := "0004f2100000" // created meanwhile by someone else: its batch falls back to one by one
	if err := f.st.CreateDevice(ctx, &prov.Device{MAC: taken, Kind: prov.DeviceManaged, Status: prov.DeviceNotDeployed}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		mac := fmt.Sprintf("0004f21%05x", i%150) // 50 phones fetch twice
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.read(t, fReq(files.ProtoHTTP, mac+".cfg")); err != nil {
				errs <- fmt.Errorf("%s: %w", mac, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ds, _, err := f.st.ListDevices(ctx, prov.DeviceQuery{})
	if err != nil || len(ds) != 150 {
		t.Fatalf("devices = %d, %v; want 150", len(ds), err)
	}
	for _, d := range ds {
		if d.MAC != taken && (d.SIPUser == "" || d.LastSeen.IsZero()) {
			t.Errorf("%s enrolled incompletely: %+v", d.MAC, d)
		}
	}
}

// TestNewSiteCatchesTheNextEnrolment: the site list that places enrolling
// phones by subnet is cached, and a site created through the Manager
// drops it at once — the next new phone in the site's subnet lands there,
// not in the wider site the cache knew.
func TestNewSiteCatchesTheNextEnrolment(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	if _, err := f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg")); err != nil {
		t.Fatal(err)
	}
	first, err := f.st.GetDevice(ctx, fMAC)
	if err != nil || first.SiteID == 0 {
		t.Fatalf("first phone: %+v %v", first, err)
	}
	mgr := prov.NewManager(prov.ManagerDeps{Store: f.st, Directory: prov.NewDirectory(f.st, f.events, time.Now), Events: f.events})
	lab, err := mgr.CreateSite(ctx, prov.Site{Name: "Lab", Subnets: []string{"10.1.2.0/24"}, TimeZone: "UTC"}, prov.Actor{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	const second = "0004f2000002"
	r := fReq(files.ProtoHTTP, second+".cfg")
	r.Remote = netip.MustParseAddrPort("10.1.2.4:5000")
	if _, err := f.read(t, r); err != nil {
		t.Fatal(err)
	}
	d, err := f.st.GetDevice(ctx, second)
	if err != nil || d.SiteID != lab.ID {
		t.Errorf("second phone in site %d (%v), want the new site %d", d.SiteID, err, lab.ID)
	}
}

// TestTFTPIsReadOnlyAndServesNoUserFiles is the attack of an anonymous
// host on the LAN: TFTP authenticates nothing, so it may neither write a
// phone's settings or a logged-in user's directory nor read a user's files.
func TestTFTPIsReadOnlyAndServesNoUserFiles(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	u, _ := f.login(t, "web")
	for _, name := range []string{fMAC + "-phone.cfg", fMAC + "-directory.xml", "alice-phone.cfg",
		"alice-directory.xml", fMAC + "-calls.xml", fMAC + "-boot.log"} {
		body := `<polycomConfig><feature feature.autoDial="19005551234"/></polycomConfig>`
		if strings.HasSuffix(name, ".xml") {
			body = `<directory><item_list><item><fn>Evil</fn><ct>19005551234</ct><sd>1</sd></item></item_list></directory>`
		}
		if err := f.files.Write(ctx, fReq(files.ProtoTFTP, name), strings.NewReader(body)); !errors.Is(err, prov.ErrAuth) {
			t.Errorf("TFTP write of %s: %v, want refused", name, err)
		}
	}
	for _, owner := range []string{"device:" + fMAC, "user:alice"} {
		if ups, _ := f.st.ListUploads(ctx, owner); len(ups) != 0 {
			t.Errorf("a refused TFTP upload was stored for %s: %+v", owner, ups)
		}
	}
	if cs, _ := f.st.ListContacts(ctx, u.ID); len(cs) != 0 {
		t.Errorf("a TFTP upload changed alice's directory: %+v", cs)
	}
	for _, name := range []string{"alice.cfg", "alice-directory.xml", fMAC + "-directory.xml", fMAC + "-phone.cfg"} {
		if _, err := f.read(t, fReq(files.ProtoTFTP, name)); !errors.Is(err, prov.ErrNotFound) {
			t.Errorf("TFTP read of %s: %v, want not found", name, err)
		}
	}
	// The boot files still go over TFTP (without secrets).
	if _, err := f.read(t, fReq(files.ProtoTFTP, fMAC+"-hotdesk.cfg")); err != nil {
		t.Errorf("TFTP boot file: %v", err)
	}
}

// TestOnlyTheUserChangesTheirPassword: the phone's provisioning
// credentials travel in every config fetch, so an upload made with them
// must not change the logged-in user's login password; the user's own
// digest login (the native door) may.
func TestOnlyTheUserChangesTheirPassword(t *testing.T) {
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	f.login(t, "web")
	up := `<polycomConfig><prov prov.login.localPassword="owned-123"/></polycomConfig>`
	dev := fReq(files.ProtoHTTP, fMAC+"-phone.cfg")
	dev.DeviceMAC, dev.DeviceAuthenticated = fMAC, true
	if err := f.files.Write(ctx, dev, strings.NewReader(up)); err != nil {
		t.Fatal(err)
	}
	user := fReq(files.ProtoHTTP, "alice-phone.cfg")
	user.DeviceMAC, user.LoginUser = fMAC, "alice"
	if err := f.files.Write(ctx, user, strings.NewReader(strings.Replace(up, "owned-123", "mine-456", 1))); err != nil {
		t.Fatal(err)
	}
	// Any XML spelling of the attribute is the same parameter, and is
	// never stored either.
	quoted := `<polycomConfig><prov up.x="1" prov.login.localPassword = 'quoted&amp;789'/></polycomConfig>`
	if err := f.files.Write(ctx, user, strings.NewReader(quoted)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.passwords) != 2 || f.passwords[0] != "alice=mine-456" || f.passwords[1] != "alice=quoted&789" {
		t.Fatalf("password changes applied: %v, want only alice's own", f.passwords)
	}
	for _, owner := range []string{"user:alice", "device:" + fMAC} {
		ups, _ := f.st.ListUploads(ctx, owner)
		for _, u := range ups {
			if strings.Contains(string(u.Data), "owned-123") || strings.Contains(string(u.Data), "mine-456") ||
				strings.Contains(string(u.Data), "quoted") {
				t.Fatalf("a password was stored in clear in %s's upload", owner)
			}
		}
	}
}

// TestEnrolmentPerSourceCap is the flood of one host inventing MACs: past
// the per-source limit its devices wait for an admin instead of getting
// accounts, while a phone at another address still enrolls.
func TestEnrolmentPerSourceCap(t *testing.T) {
	f := newFilesFixture(t, files.Config{EnrollPerSource: 5})
	ctx := context.Background()
	for i := range 8 {
		mac := fmt.Sprintf("0004f2bb%04d", i)
		_, _ = f.read(t, fReq(files.ProtoHTTP, mac+".cfg"))
		d, err := f.st.GetDevice(ctx, mac)
		if err != nil {
			t.Fatalf("%s not recorded: %v", mac, err)
		}
		want := prov.DeviceNotDeployed
		if i >= 5 {
			want = prov.DevicePending
		}
		if d.Status != want {
			t.Fatalf("device %d from one host: %s, want %s", i, d.Status, want)
		}
	}
	other := fReq(files.ProtoHTTP, "0004f2bc0001.cfg")
	other.Remote = netip.MustParseAddrPort("10.1.2.99:5000")
	if _, err := f.read(t, other); err != nil {
		t.Fatalf("a phone at another address: %v", err)
	}
	if d, _ := f.st.GetDevice(ctx, "0004f2bc0001"); d.Status != prov.DeviceNotDeployed {
		t.Fatalf("a phone at another address is %s", d.Status)
	}
}
