package prov_test

import (
	"context"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/files"
	"hotdesk/prov/render"
	"hotdesk/prov/store"
)

// syncReader is a registrar whose phone answers each check-sync by
// fetching its device file at once, as a fast phone does, and by looking
// its SIP account up in the credentials index.
type syncReader struct {
	svc   *prov.Services
	files *files.Files
	mac   string

	mu     sync.Mutex
	bodies []string
	known  []bool
}

func (r *syncReader) Unbind(context.Context, prov.Owner) ([]prov.Binding, error) { return nil, nil }

func (r *syncReader) DeviceBindings(_ context.Context, id int64) []prov.Binding {
	return []prov.Binding{{DeviceID: id, Source: rPhoneIP + ":5060", Transport: "UDP"}}
}

func (r *syncReader) CheckSync(ctx context.Context, _ prov.Binding, _ string, _ string) error {
	c, err := r.files.Read(ctx, deviceRead(r.mac, r.mac+"-hotdesk.cfg"))
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := io.ReadAll(c.Body)
	if err != nil {
		return err
	}
	d, err := r.svc.Manager.Device(ctx, r.mac)
	if err != nil {
		return err
	}
	_, known := r.svc.Credentials.Lookup(d.SIPUser)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.known = append(r.known, known)
	r.mu.Unlock()
	return nil
}

func (r *syncReader) last() (string, bool, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) == 0 {
		return "", false, 0
	}
	return r.bodies[len(r.bodies)-1], r.known[len(r.known)-1], len(r.bodies)
}

const (
	rMAC     = "0004f2000001"
	rPhoneIP = "10.1.2.3"
)

// deviceRead is the device's digest-authenticated HTTP read of path.
func deviceRead(mac, path string) files.Request {
	return files.Request{Proto: files.ProtoHTTP, Path: path, Remote: netip.MustParseAddrPort(rPhoneIP + ":5000"),
		Local: netip.MustParseAddrPort("10.0.0.1:80"), DeviceMAC: mac, DeviceAuthenticated: true}
}

type leases map[netip.Addr]string

func (l leases) AddrToMAC(ip netip.Addr) (string, bool) { m, ok := l[ip]; return m, ok }

// TestNewRules checks the rules prov.New subscribes, in their order: a
// device change drops the rendered files and refreshes the credentials
// index before the check-sync goes out through Sessions (a fast phone
// fetched the old file), and an assigned desk phone logs its user in.
func TestNewRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	site := prov.Site{Name: "HQ", Subnets: []string{"10.1.0.0/16"}, TimeZone: "UTC",
		Login: prov.LoginPolicy{Enabled: true, Required: true}}
	if err := st.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	rend, err := render.New(render.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := prov.NewCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	reg := &syncReader{mac: rMAC}
	clk := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	// Built as daemon builds them: the files cache first, subscribed by
	// prov.New among its rules, then the namespace over it.
	cache := files.NewCache(0, clk.now)
	svc, err := prov.New(ctx, prov.Deps{Store: st, Credentials: creds, Registrar: reg, FileCache: cache, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Sessions.Close(); svc.Close() })
	fs, err := files.New(files.Config{HTTPPort: 80}, files.Deps{Store: st, Events: svc.Events, Renderer: rend,
		Leases: leases{netip.MustParseAddr(rPhoneIP): rMAC}, Cache: cache, Desk: svc, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	reg.svc, reg.files = svc, fs

	dev := prov.Device{MAC: rMAC, SiteID: site.ID, Kind: prov.DeviceManaged, Status: prov.DeviceNotDeployed,
		Vendor: "polycom", SIPUser: "dev" + rMAC, SIPPassword: "devpw"}
	if err := st.CreateDevice(ctx, &dev); err != nil {
		t.Fatal(err)
	}
	// The phone fetched its device file (the first fetch deploys it, a
	// change that drops the file): the second is cached.
	for range 2 {
		c, err := fs.Read(ctx, deviceRead(rMAC, rMAC+"-hotdesk.cfg"))
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	_, _, before := reg.last()

	params := map[string]string{"up.admin": "42"}
	if _, err := svc.Manager.UpdateDevice(ctx, rMAC, prov.DevicePatch{Params: &params},
		prov.Actor{Kind: prov.ActorAdmin, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	body, known, n := reg.last()
	if n != before+1 {
		t.Fatalf("check-syncs after the change: %d, want 1", n-before)
	}
	if !strings.Contains(body, `up.admin="42"`) {
		t.Errorf("the phone told of the change fetched the old file:\n%s", body)
	}
	if !known {
		t.Error("the device's SIP account was not in the credentials index at check-sync")
	}

	if _, err := svc.Directory.CreateUser(ctx, prov.UserInput{Username: "alice", FirstName: "A", LastName: "X",
		Email: "alice@hq.test", Password: "alice-pw", SiteID: site.ID, Numbers: []string{"2001"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Manager.AssignDevice(ctx, prov.AssignInput{MAC: rMAC, Username: "alice"},
		prov.Actor{Kind: prov.ActorAdmin, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	d, err := st.GetDevice(ctx, rMAC)
	if err != nil {
		t.Fatal(err)
	}
	act, err := st.ListSessions(ctx, prov.SessionQuery{DeviceID: d.ID, ActiveOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(act) != 1 || act[0].Door != prov.DoorAssigned {
		t.Errorf("assigned phone sessions: %+v, want its user logged in by the assigned door", act)
	}
}

// TestEnrollSendsNoCheckSync: a phone's first fetch enrolls it; the phone is
// fetching its files already, so no check-sync goes out (in a boot storm
// each cost a signals read on the fetch's path, for a phone with nothing
// registered); a later change of the device is told as before.
func TestEnrollSendsNoCheckSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	site := prov.Site{Name: "HQ", Subnets: []string{"10.1.0.0/16"}, TimeZone: "UTC"}
	if err := st.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	rend, err := render.New(render.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := prov.NewCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	reg := &syncReader{mac: rMAC}
	clk := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	cache := files.NewCache(0, clk.now)
	svc, err := prov.New(ctx, prov.Deps{Store: st, Credentials: creds, Registrar: reg, FileCache: cache, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Sessions.Close(); svc.Close() })
	fs, err := files.New(files.Config{HTTPPort: 80, Enroll: files.EnrollAuto}, files.Deps{Store: st, Events: svc.Events,
		Renderer: rend, Leases: leases{netip.MustParseAddr(rPhoneIP): rMAC}, Cache: cache, Desk: svc, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	reg.svc, reg.files = svc, fs

	c, err := fs.Read(ctx, files.Request{Proto: files.ProtoHTTP, Path: rMAC + ".cfg",
		Remote: netip.MustParseAddrPort(rPhoneIP + ":5000"), Local: netip.MustParseAddrPort("10.0.0.1:80"),
		UserAgent: "FileTransport PolycomVVX-VVX_411-UA/6.4.0.8001"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := st.GetDevice(ctx, rMAC); err != nil {
		t.Fatalf("the first fetch did not enroll the phone: %v", err)
	}
	if _, _, n := reg.last(); n != 0 {
		t.Fatalf("enrolling sent %d check-syncs, want 0", n)
	}
	params := map[string]string{"up.admin": "42"}
	if _, err := svc.Manager.UpdateDevice(ctx, rMAC, prov.DevicePatch{Params: &params},
		prov.Actor{Kind: prov.ActorAdmin, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, _, n := reg.last(); n != 1 {
		t.Fatalf("a change after enrolling sent %d check-syncs, want 1", n)
	}
}
