package files_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

const attackerIP = "10.1.9.9"

func fFrom(ip string, r files.Request) files.Request {
	r.Remote = netip.MustParseAddrPort(ip + ":5000")
	return r
}

// An attack a security review found (High 2): an admin pre-assigns a phone that has
// not booted yet, and whoever asks first for its files gets the user's line.
// Now the first fetch gets the locked profile only, and the credentials it
// got do not carry the login: it waits until the phone is verified.
func TestBootstrapHoldsAPreassignedLoginBack(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	u, d := f.login(t, prov.DoorAssigned) // made away from the phone, before any delivery
	_ = u
	body, err := f.read(t, fFrom(attackerIP, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg")))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(body, "sesspw") || strings.Contains(body, "s-alice") || !strings.Contains(body, d.SIPPassword) {
		t.Fatalf("first unauthenticated fetch: want the locked profile with the device account only:\n%s", body)
	}
	if _, err := f.read(t, fFrom(attackerIP, fReq(files.ProtoHTTP, "alice.cfg"))); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("alice.cfg to the unauthenticated fetcher: %v", err)
	}
	d, _ = f.st.GetDevice(ctx, fMAC)
	if d.CredsDeliveredAt.IsZero() || d.CredsAddr != attackerIP || d.CredsHeldFor != u.ID {
		t.Fatalf("delivery not recorded: %+v", d)
	}
	// With the credentials it got, the fetcher authenticates: still no line.
	as := fFrom(attackerIP, fAs(fMAC, fMAC+"-hotdesk.cfg"))
	if body, err := f.read(t, as); err != nil || strings.Contains(body, "sesspw") {
		t.Fatalf("authenticated fetch before verification: %v\n%s", err, body)
	}
	if _, err := f.read(t, fFrom(attackerIP, fAs(fMAC, "alice.cfg"))); err == nil {
		t.Fatal("alice.cfg served before verification")
	}
	// Nobody else gets anything without the credentials.
	if body, err := f.read(t, fFrom("10.1.7.7", fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg"))); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("second unauthenticated fetch: %v\n%s", err, body)
	}
	// The admin checks the address and verifies: the line goes out.
	if err := f.st.VerifyDevice(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceChanged, DeviceID: d.ID})
	if body, err := f.read(t, as); err != nil || !strings.Contains(body, "sesspw") {
		t.Fatalf("after verification: %v\n%s", err, body)
	}
}

// A login made at the phone (the user typed something on it) is not held.
func TestBootstrapLoginAtThePhoneIsNotHeld(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{})
	f.login(t, prov.DoorBrowser)
	if _, err := f.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg")); err != nil {
		t.Fatal(err)
	}
	if body, err := f.read(t, fAs(fMAC, fMAC+"-hotdesk.cfg")); err != nil || !strings.Contains(body, "sesspw") {
		t.Fatalf("authenticated fetch: %v\n%s", err, body)
	}
}

// An attack a security review found (High 2, after the phone got its files): another
// host presenting the MAC gets 401 and nothing else, and the admin sees an
// identity conflict.
func TestSecondDevicePresentingAMAC(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	f.login(t, prov.DoorBrowser)
	if _, err := f.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{fMAC + "-hotdesk.cfg", fMAC + ".cfg", fMAC + "-phone.cfg", "alice.cfg"} {
		body, err := f.read(t, fFrom(attackerIP, fReq(files.ProtoHTTP, name)))
		if !errors.Is(err, prov.ErrAuth) || body != "" {
			t.Errorf("%s to another host: %v\n%s", name, err, body)
		}
	}
	d, _ := f.st.GetDevice(ctx, fMAC)
	if d.Conflict.Reason != prov.ConflictNoCredentials || d.Conflict.From != attackerIP {
		t.Fatalf("conflict not kept: %+v", d.Conflict)
	}
	audit, err := f.st.ListAudit(ctx, prov.AuditQuery{Limit: 10})
	if err != nil || len(audit) != 1 || audit[0].Action != "device.identity_conflict" {
		t.Fatalf("audit: %+v %v", audit, err)
	}
	// The phone itself, from its own address, is challenged — not a conflict.
	f2 := newFilesFixture(t, files.Config{})
	f2.login(t, prov.DoorBrowser)
	f2.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg"))
	if _, err := f2.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg")); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("phone's own unauthenticated fetch: %v", err)
	}
	if d, _ := f2.st.GetDevice(ctx, fMAC); !d.Conflict.At.IsZero() {
		t.Fatalf("the phone's own challenge leg raised a conflict: %+v", d.Conflict)
	}
}

// secrets_https_only: plain HTTP never carries a password, nor hands out
// the credentials; HTTPS does.
func TestSecretsOverHTTPSOnly(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{SecretsHTTPSOnly: true, HTTPSPort: 443})
	ctx := context.Background()
	f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg"))
	d, _ := f.st.GetDevice(ctx, fMAC)
	body, err := f.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg"))
	if err != nil || strings.Contains(body, d.ProvPassword) || strings.Contains(body, d.SIPPassword) ||
		!strings.Contains(body, `device.prov.serverType="HTTPS"`) {
		t.Fatalf("plain HTTP: %v\n%s", err, body)
	}
	if d, _ := f.st.GetDevice(ctx, fMAC); !d.CredsDeliveredAt.IsZero() {
		t.Fatal("credentials recorded as handed out over plain HTTP")
	}
	body, err = f.read(t, fReq(files.ProtoHTTPS, fMAC+"-hotdesk.cfg"))
	if err != nil || !strings.Contains(body, d.ProvPassword) {
		t.Fatalf("HTTPS: %v\n%s", err, body)
	}
}

// An attack a security review found (High 7): uploads fill the disk. Each device's
// kept uploads and all of them together have a byte budget; over it the
// upload is refused and what was stored stays.
func TestUploadQuotas(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{MaxUploadBytes: 200, UploadQuota: 500, UploadTotal: 800, UploadVersions: 5})
	ctx := context.Background()
	const other = "0004f2000002"
	for _, mac := range []string{fMAC, other} {
		f.read(t, fReq(files.ProtoHTTP, mac+".cfg"))
	}
	put := func(mac, name string, n int) error {
		body := `<polycomConfig up.x="` + strings.Repeat("a", n) + `"/>`
		return f.files.Write(ctx, fAs(mac, mac+name), strings.NewReader(body))
	}
	// Anonymous uploads are refused outright.
	if err := f.files.Write(ctx, fReq(files.ProtoHTTP, fMAC+"-phone.cfg"), strings.NewReader("<polycomConfig/>")); !errors.Is(err, prov.ErrAuth) {
		t.Fatalf("anonymous upload: %v", err)
	}
	var err error
	stored := 0
	for range 10 {
		if err = put(fMAC, "-phone.cfg", 100); err != nil {
			break
		}
		stored++
	}
	if !errors.Is(err, files.ErrQuota) || stored != 4 {
		t.Fatalf("per-device quota: stored %d, then %v", stored, err)
	}
	ups, _ := f.st.ListUploads(ctx, "device:"+fMAC)
	if len(ups) != 4 || ups[0].Version != 4 {
		t.Fatalf("after the refused upload: %d versions, newest %d", len(ups), ups[0].Version)
	}
	// The other device fills the rest of the total budget.
	stored = 0
	for range 10 {
		if err = put(other, "-web.cfg", 100); err != nil {
			break
		}
		stored++
	}
	if !errors.Is(err, files.ErrQuota) || stored != 2 {
		t.Fatalf("total quota: stored %d, then %v", stored, err)
	}
}

// The rest of a first boot (overrides, directory) comes before the phone
// applies its credentials: from the address they went to, for a short
// while, those files (no secret in them) come without; from elsewhere, or
// later, they need the credentials.
func TestBootGraceForTheFirstBoot(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	f.read(t, fReq(files.ProtoHTTP, fMAC+".cfg"))
	if _, err := f.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from string
		want       error
	}{
		{fMAC + "-phone.cfg", fPhoneIP, prov.ErrNotFound}, // no upload yet: but not a challenge
		{fMAC + "-directory.xml", fPhoneIP, prov.ErrNotFound},
		{fMAC + "-hotdesk.cfg", fPhoneIP, prov.ErrAuth},
		{fMAC + "-phone.cfg", attackerIP, prov.ErrAuth},
	} {
		if _, err := f.read(t, fFrom(tc.from, fReq(files.ProtoHTTP, tc.name))); !errors.Is(err, tc.want) {
			t.Errorf("%s from %s: %v, want %v", tc.name, tc.from, err, tc.want)
		}
	}
	if err := f.files.Write(ctx, fReq(files.ProtoHTTP, fMAC+"-phone.cfg"), strings.NewReader("<polycomConfig/>")); !errors.Is(err, prov.ErrAuth) {
		t.Errorf("upload in the grace: %v", err)
	}
	d, _ := f.st.GetDevice(ctx, fMAC)
	if err := f.st.ResetDeviceCredentials(ctx, d.ID, "p", "s", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.MarkCredsDelivered(ctx, d.ID, time.Now().Add(-3*time.Minute), fPhoneIP, 0); err != nil {
		t.Fatal(err)
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceChanged, DeviceID: d.ID})
	if _, err := f.read(t, fReq(files.ProtoHTTP, fMAC+"-phone.cfg")); !errors.Is(err, prov.ErrAuth) {
		t.Errorf("after the grace: %v", err)
	}
}

// With tftp_secrets on, TFTP (which authenticates nothing) hands the
// credentials out once like HTTP, and never again.
func TestTFTPSecretsGoOutOnce(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{TFTPSecrets: true})
	ctx := context.Background()
	f.read(t, fReq(files.ProtoTFTP, fMAC+".cfg"))
	d, _ := f.st.GetDevice(ctx, fMAC)
	if body, err := f.read(t, fReq(files.ProtoTFTP, fMAC+"-hotdesk.cfg")); err != nil || !strings.Contains(body, d.ProvPassword) {
		t.Fatalf("first TFTP fetch: %v\n%s", err, body)
	}
	for _, from := range []string{fPhoneIP, attackerIP} {
		body, err := f.read(t, fFrom(from, fReq(files.ProtoTFTP, fMAC+"-hotdesk.cfg")))
		if err != nil || strings.Contains(body, d.ProvPassword) || strings.Contains(body, d.SIPPassword) {
			t.Fatalf("TFTP fetch after the hand-out: %v\n%s", err, body)
		}
	}
}

// A site's profile directories. The master file names
// them, and the phone's user profile, directories and call lists are
// served (and stored) in them; a directory that is not the site's is no
// way in.
func TestProfileDirectories(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	sites, err := f.st.ListSites(ctx)
	if err != nil {
		t.Fatal(err)
	}
	site := sites[0]
	site.ProfileDirs = prov.ProfileDirs{UserProfiles: "profiles", Contacts: "contacts", CallLists: "calls"}
	if err := f.st.UpdateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	f.events.Publish(ctx, prov.Event{Kind: prov.EventSiteChanged})
	f.login(t, prov.DoorBrowser)
	f.read(t, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg"))
	master, err := f.read(t, fAs(fMAC, fMAC+".cfg"))
	if err != nil || !strings.Contains(master, `USER_PROFILES_DIRECTORY="profiles"`) ||
		!strings.Contains(master, `CONTACTS_DIRECTORY="contacts"`) || !strings.Contains(master, `CALL_LISTS_DIRECTORY="calls"`) {
		t.Fatalf("master: %v\n%s", err, master)
	}
	if body, err := f.read(t, fAs(fMAC, "profiles/alice.cfg")); err != nil || !strings.Contains(body, "sesspw") {
		t.Fatalf("profiles/alice.cfg: %v\n%s", err, body)
	}
	dir := `<directory><item_list><item><fn>Bob</fn><ct>202</ct></item></item_list></directory>`
	if err := f.files.Write(ctx, fAs(fMAC, "contacts/"+fMAC+"-directory.xml"), strings.NewReader(dir)); err != nil {
		t.Fatalf("upload into the contacts directory: %v", err)
	}
	if body, err := f.read(t, fAs(fMAC, "contacts/alice-directory.xml")); err != nil || !strings.Contains(body, "<ct>202</ct>") {
		t.Fatalf("contacts/alice-directory.xml: %v\n%s", err, body)
	}
	for _, p := range []string{"calls/alice.cfg", "other/alice.cfg", "profiles/" + fMAC + "-directory.xml"} {
		if body, err := f.read(t, fAs(fMAC, p)); !errors.Is(err, prov.ErrNotFound) {
			t.Errorf("%s: %v\n%s", p, err, body)
		}
	}
}

// Review finding: a held user's files could still be overwritten by the
// fetcher that took the credentials. Held lines are held for uploads too.
func TestHeldUserFilesCannotBeWritten(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	u, _ := f.login(t, prov.DoorAssigned)
	if err := f.st.ReplaceContacts(ctx, u.ID, []prov.Contact{{UserID: u.ID, Position: 1, FirstName: "Real", Number: "300"}}); err != nil {
		t.Fatal(err)
	}
	f.read(t, fFrom(attackerIP, fReq(files.ProtoHTTP, fMAC+"-hotdesk.cfg"))) // takes the credentials; alice is held
	dir := `<directory><item_list><item><fn>Evil</fn><ct>666</ct></item></item_list></directory>`
	as := func(name string) files.Request { return fFrom(attackerIP, fAs(fMAC, name)) }
	if err := f.files.Write(ctx, as("alice-directory.xml"), strings.NewReader(dir)); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("write alice-directory.xml while held: %v", err)
	}
	if err := f.files.Write(ctx, as(fMAC+"-directory.xml"), strings.NewReader(dir)); err != nil {
		t.Fatalf("the device's own directory: %v", err)
	}
	cs, _ := f.st.ListContacts(ctx, u.ID)
	if len(cs) != 1 || cs[0].Number != "300" {
		t.Fatalf("alice's contacts changed: %+v", cs)
	}
	if _, err := f.st.LatestUpload(ctx, "user:alice", "directory.xml"); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("an upload was stored as alice's: %v", err)
	}
}

// Review finding: the default-login password is in every phone of the
// site, so a login with it may not change the user's own password.
func TestDefaultLoginCannotChangeThePassword(t *testing.T) {
	t.Parallel()
	f := newFilesFixture(t, files.Config{})
	ctx := context.Background()
	f.login(t, prov.DoorNative)
	up := `<polycomConfig prov.login.localPassword="taken-over-1" up.volume.handset="2"/>`
	r := fAs(fMAC, "alice-phone.cfg")
	r.DeviceAuthenticated, r.LoginUser, r.DefaultLogin = false, "alice", true
	if err := f.files.Write(ctx, r, strings.NewReader(up)); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.passwords) != 0 {
		t.Fatalf("a default login changed the password: %v", f.passwords)
	}
}
