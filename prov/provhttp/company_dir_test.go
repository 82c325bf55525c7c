package provhttp

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestCompanyDirectoryOnThePhone: a logged-in user's directory file lists
// their contacts, then the colleagues their directory scope shows (not
// themselves, nobody without a number, no disabled user); the phone's
// upload of that very file does not turn the company entries into
// personal contacts (the round trip), while an entry the user gave a speed
// dial on the handset becomes theirs. A scope naming one site shows that
// site's colleagues only.
func TestCompanyDirectoryOnThePhone(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		e := loggedInOn(t, front)
		ctx := context.Background()
		hq, err := e.st.ListSites(ctx)
		if err != nil || len(hq) != 1 {
			t.Fatalf("sites %v %v", hq, err)
		}
		branch := prov.Site{Name: "Branch"}
		if err := e.st.CreateSite(ctx, &branch); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			user, first, last, number string
			site                      int64
			status                    prov.UserStatus
		}{
			{"bob", "Bob", "Baker", "1002", hq[0].ID, prov.StatusActive},
			{"carol", "Carol", "Cruz", "1003", branch.ID, prov.StatusActive},
			{"dave", "Dave", "Dunn", "", hq[0].ID, prov.StatusActive},      // no number
			{"erin", "Erin", "Eve", "1005", hq[0].ID, prov.StatusDisabled}, // disabled
		} {
			u := prov.User{Username: c.user, FirstName: c.first, LastName: c.last, Status: c.status,
				Kind: prov.KindPerson, SiteID: c.site}
			if err := e.st.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			if c.number != "" {
				if err := e.st.AssignNumber(ctx, c.number, u.ID); err != nil {
					t.Fatal(err)
				}
			}
		}
		alice, err := e.st.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		mine := []prov.Contact{{UserID: alice.ID, Position: 1, FirstName: "Zed", LastName: "Friend", Number: "+4930777", SpeedDial: 1}}
		if err := e.st.ReplaceContacts(ctx, alice.ID, mine); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventUserChanged, UserID: alice.ID, Reason: "test"})

		get := func() string {
			t.Helper()
			code, body := e.alice(t, "GET", "/alice-directory.xml", "")
			if code != 200 {
				t.Fatalf("GET alice-directory.xml = %d %s", code, body)
			}
			return body
		}
		first := get()
		golden(t, "directory_company.golden", first)

		// The phone uploads the file as it got it (after an edit elsewhere in
		// it): the company entries stay company entries.
		if code, body := e.alice(t, "PUT", "/alice-directory.xml", first); code != 204 {
			t.Fatalf("PUT = %d %s", code, body)
		}
		cs, err := e.st.ListContacts(ctx, alice.ID)
		if err != nil || len(cs) != 1 || cs[0].Number != "+4930777" {
			t.Fatalf("contacts after the round trip: %+v %v", cs, err)
		}
		if again := get(); again != first {
			t.Fatalf("directory after the round trip differs:\n%s\nwant\n%s", again, first)
		}

		// On the handset alice gives Bob speed dial 2: that item is hers now,
		// listed once.
		edited := strings.Replace(first, "<ct>1002</ct>", "<ct>1002</ct>\n      <sd>2</sd>", 1)
		if code, body := e.alice(t, "PUT", "/alice-directory.xml", edited); code != 204 {
			t.Fatalf("PUT edited = %d %s", code, body)
		}
		cs, err = e.st.ListContacts(ctx, alice.ID)
		if err != nil || len(cs) != 2 || cs[1].Number != "1002" || cs[1].SpeedDial != 2 {
			t.Fatalf("contacts after a speed dial on a company entry: %+v %v", cs, err)
		}
		if got := get(); strings.Count(got, "<ct>1002</ct>") != 1 || !strings.Contains(got, "<sd>2</sd>") {
			t.Fatalf("Bob not listed once, with his speed dial:\n%s", got)
		}

		// Scope: HQ only — Carol (Branch) goes.
		alice.DirectoryScope = "HQ"
		if err := e.st.UpdateUser(ctx, &alice); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventUserChanged, UserID: alice.ID, Reason: "test"})
		if got := get(); strings.Contains(got, "1003") || !strings.Contains(got, "1002") {
			t.Fatalf("scope HQ:\n%s", got)
		}
	})
}

// golden compares got with testdata/name (-update rewrites it).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update):\n%s", path, got)
	}
}

// countingStore counts the reads a company directory and a view make.
type countingStore struct {
	prov.Store
	users, sessions, userByID atomic.Int64
	uploads, signals, sigPuts atomic.Int64
	deviceByID                atomic.Int64
}

func (c *countingStore) LatestUploads(ctx context.Context, owner string, names ...string) ([]prov.Upload, error) {
	c.uploads.Add(1)
	return c.Store.LatestUploads(ctx, owner, names...)
}

func (c *countingStore) DeviceSignals(ctx context.Context, id int64) (prov.DeviceSignals, error) {
	c.signals.Add(1)
	return c.Store.DeviceSignals(ctx, id)
}

func (c *countingStore) PutDeviceSignals(ctx context.Context, sig prov.DeviceSignals) error {
	c.sigPuts.Add(1)
	return c.Store.PutDeviceSignals(ctx, sig)
}

func (c *countingStore) GetDeviceByID(ctx context.Context, id int64) (prov.Device, error) {
	c.deviceByID.Add(1)
	return c.Store.GetDeviceByID(ctx, id)
}

// GetUserByID is counted: a logged-in phone's view reads its user so.
func (c *countingStore) GetUserByID(ctx context.Context, id int64) (prov.User, error) {
	c.userByID.Add(1)
	return c.Store.GetUserByID(ctx, id)
}

func (c *countingStore) ListUsers(ctx context.Context, q prov.UserQuery) ([]prov.User, int, error) {
	c.users.Add(1)
	return c.Store.ListUsers(ctx, q)
}

func (c *countingStore) ListSessions(ctx context.Context, q prov.SessionQuery) ([]prov.Session, error) {
	c.sessions.Add(1)
	return c.Store.ListSessions(ctx, q)
}

// TestCompanyDirectoryReadOncePerChange: the company directory every
// logged-in phone's files list is read from the store once per change of
// the users, not once per view — a login or a registration on a phone
// rebuilds that phone's view but not the directory (in a boot storm the
// per-view read of every user was half the daemon's CPU); a new colleague
// shows up as soon as the change's event is published.
func TestCompanyDirectoryReadOncePerChange(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		var cs *countingStore
		e := newEnvStoreOn(t, front, nil, func(st prov.Store) prov.Store { cs = &countingStore{Store: st}; return cs })
		ctx := context.Background()
		e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA})
		e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil)
		add := func(name, number string) {
			t.Helper()
			u := prov.User{Username: name, FirstName: strings.ToUpper(name[:1]) + name[1:], LastName: "X",
				Status: prov.StatusActive, Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s(name, "pw1234")}
			if err := e.st.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			if err := e.st.AssignNumber(ctx, number, u.ID); err != nil {
				t.Fatal(err)
			}
			e.events.Publish(ctx, prov.Event{Kind: prov.EventUserChanged, UserID: u.ID, Reason: "test"})
		}
		add("alice", "1001")
		add("bob", "1002")
		if code, body := e.alice(t, "GET", "/alice.cfg", ""); code != 200 {
			t.Fatalf("native login: %d %s", code, body)
		}
		get := func() string {
			t.Helper()
			code, body := e.alice(t, "GET", "/alice-directory.xml", "")
			if code != 200 {
				t.Fatalf("GET alice-directory.xml = %d %s", code, body)
			}
			return body
		}
		if got := get(); !strings.Contains(got, "<ct>1002</ct>") {
			t.Fatalf("bob missing:\n%s", got)
		}
		d, err := e.st.GetDevice(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		// The view reads the session's user: counted as its rebuilds (the
		// device's session itself stays cached, no session event came).
		users, views := cs.users.Load(), cs.userByID.Load()
		for i := range 3 {
			// The phone's own events: its view is rebuilt, the directory is not re-read.
			e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID, Reason: "registered"})
			if got := get(); !strings.Contains(got, "<ct>1002</ct>") {
				t.Fatalf("round %d: bob missing:\n%s", i, got)
			}
		}
		if n := cs.userByID.Load() - views; n < 3 {
			t.Fatalf("view rebuilt %d times after 3 device events, want ≥ 3", n)
		}
		if n := cs.users.Load() - users; n != 0 {
			t.Fatalf("all users read %d times for 3 views of an unchanged directory, want 0", n)
		}
		add("carol", "1003")
		if got := get(); !strings.Contains(got, "<ct>1003</ct>") {
			t.Fatalf("carol missing after her event:\n%s", got)
		}
		if n := cs.users.Load() - users; n != 1 {
			t.Fatalf("all users read %d times after one change, want 1", n)
		}
	})
}

// deviceCountingStore counts the device reads provisioning makes.
type deviceCountingStore struct {
	prov.Store
	devices atomic.Int64
}

func (c *deviceCountingStore) GetDevice(ctx context.Context, mac string) (prov.Device, error) {
	c.devices.Add(1)
	return c.Store.GetDevice(ctx, mac)
}

// TestDigestFetchReadsNoDevice: a phone's digest-authenticated fetches of
// its own file are checked against the cached device, not a store read per
// fetch (a fifth of the daemon's CPU serving 1,000 phones); a credential
// change's event drops it, and the old password is refused at once.
func TestDigestFetchReadsNoDevice(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		var cs *deviceCountingStore
		e := newEnvStoreOn(t, front, nil, func(st prov.Store) prov.Store { cs = &deviceCountingStore{Store: st}; return cs })
		ctx := context.Background()
		e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA})
		e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil) // hands out the credentials
		if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 {
			t.Fatalf("first authenticated fetch: %d %s", code, body)
		}
		before := cs.devices.Load()
		for i := range 5 {
			if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 {
				t.Fatalf("fetch %d: %d %s", i, code, body)
			}
		}
		if n := cs.devices.Load() - before; n != 0 {
			t.Fatalf("5 authenticated fetches read the device %d times, want 0", n)
		}
		// New credentials: the event drops the cached device; the old ones fail.
		d, err := e.st.GetDevice(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		old := d.ProvPassword
		// As an admin's reset does, then the phone's fetch of them and its
		// registration.
		if err := e.st.ResetDeviceCredentials(ctx, d.ID, "rotated-"+old, d.SIPPassword, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.MarkCredsDelivered(ctx, d.ID, time.Now(), "10.0.0.5", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.st.MarkDeployed(ctx, d.ID, time.Now(), ""); err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceChanged, DeviceID: d.ID, Reason: "updated"})
		if code := e.digestGet(t, "/"+mac+"-hotdesk.cfg", "MD5", d.ProvUser, old); code != 401 {
			t.Fatalf("old password after the change: %d, want 401", code)
		}
		if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 {
			t.Fatalf("new password: %d %s", code, body)
		}
	})
}

// uploadCountingStore counts the upload reads a view makes.
type uploadCountingStore struct {
	prov.Store
	one, many atomic.Int64
}

func (c *uploadCountingStore) LatestUpload(ctx context.Context, owner, name string) (prov.Upload, error) {
	c.one.Add(1)
	return c.Store.LatestUpload(ctx, owner, name)
}

func (c *uploadCountingStore) LatestUploads(ctx context.Context, owner string, names ...string) ([]prov.Upload, error) {
	c.many.Add(1)
	return c.Store.LatestUploads(ctx, owner, names...)
}

// TestViewReadsUploadsOncePerOwner: building a logged-in phone's view reads
// the device's uploads (web.cfg, phone.cfg) in one query and the user's
// (phone.cfg, directory.xml) in another — not a query per file, which a boot
// storm pays for every phone — and still renders what they hold.
func TestViewReadsUploadsOncePerOwner(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		var cs *uploadCountingStore
		e := newEnvStoreOn(t, front, nil, func(st prov.Store) prov.Store { cs = &uploadCountingStore{Store: st}; return cs })
		ctx := context.Background()
		e.do(t, "GET", "/"+mac+".cfg", "", map[string]string{"User-Agent": phoneUA})
		e.do(t, "GET", "/"+mac+"-hotdesk.cfg", "", nil)
		u := prov.User{Username: "alice", FirstName: "Alice", LastName: "A", Status: prov.StatusActive,
			Kind: prov.KindPerson, LoginHA1: prov.LoginHA1s("alice", "pw1234")}
		if err := e.st.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		if err := e.st.AssignNumber(ctx, "1001", u.ID); err != nil {
			t.Fatal(err)
		}
		if code, body := e.alice(t, "GET", "/alice.cfg", ""); code != 200 {
			t.Fatalf("native login: %d %s", code, body)
		}
		if code, body := e.dev(t, "PUT", "/"+mac+"-phone.cfg", `<PHONE_CONFIG><ALL up.backlight.idleIntensity="1"/></PHONE_CONFIG>`); code != 204 {
			t.Fatalf("device upload: %d %s", code, body)
		}
		d, err := e.st.GetDevice(ctx, mac)
		if err != nil {
			t.Fatal(err)
		}
		e.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID, Reason: "registered"})
		one, many := cs.one.Load(), cs.many.Load()
		code, body := e.alice(t, "GET", "/alice.cfg", "")
		if code != 200 {
			t.Fatalf("alice.cfg: %d %s", code, body)
		}
		if n, m := cs.one.Load()-one, cs.many.Load()-many; n != 0 || m != 2 {
			t.Fatalf("one view read uploads %d times one by one and %d times per owner, want 0 and 2", n, m)
		}
		if code, body := e.dev(t, "GET", "/"+mac+"-hotdesk.cfg", ""); code != 200 || !strings.Contains(body, `up.backlight.idleIntensity="1"`) {
			t.Fatalf("device file without the phone's upload: %d %s", code, body)
		}
	})
}
