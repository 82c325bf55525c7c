// Package storetest is the conformance suite every prov.Store implementation
// (SQLite and PostgreSQL) must pass.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"hotdesk/prov"
)

// Run runs every conformance test; open must return a new, empty, migrated
// store and arrange for it to be closed when t ends.
func Run(t *testing.T, open func(t *testing.T) prov.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s prov.Store)
	}{
		{"Sites", testSites},
		{"Users", testUsers},
		{"ListUsers", testListUsers},
		{"Numbers", testNumbers},
		{"Contacts", testContacts},
		{"Devices", testDevices},
		{"Sessions", testSessions},
		{"EndSessionOnce", testEndSessionOnce},
		{"Bindings", testBindings},
		{"DeviceSignals", testDeviceSignals},
		{"MarkDeployed", testMarkDeployed},
		{"DeviceTrust", testDeviceTrust},
		{"DeviceStaleUpdate", testDeviceStaleUpdate},
		{"UploadBytes", testUploadBytes},
		{"Uploads", testUploads},
		{"UploadsConcurrent", testUploadsConcurrent},
		{"Leases", testLeases},
		{"LeaseAddressOnce", testLeaseAddressOnce},
		{"HeldBindings", testHeldBindings},
		{"ClusterLockAndNotify", testClusterLockAndNotify},
		{"LoginState", testLoginState},
		{"StartSession", testStartSession},
		{"MarkDeviceSync", testMarkDeviceSync},
		{"NativeLogouts", testNativeLogouts},
		{"HeldSyncs", testHeldSyncs},
		{"History", testHistory},
		{"Recordings", testRecordings},
		{"RecordingsIn", testRecordingsIn},
		{"Admins", testAdmins},
		{"PasswordTokens", testPasswordTokens},
		{"TxRollback", testTxRollback},
		{"TxCommitNested", testTxCommitNested},
		{"Voicemails", testVoicemails},
		{"WebSessions", testWebSessions},
		{"ParkSlots", testParkSlots},
		{"Media", testMedia},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// T0 is a millisecond-exact UTC time: the precision stores keep.
var T0 = time.UnixMilli(1_790_000_000_123).UTC()

func ctx(t *testing.T) context.Context { return t.Context() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func testSites(t *testing.T, s prov.Store) {
	site := prov.Site{
		Name: "hq", Domain: "hq.example", TimeZone: "Europe/Paris", Language: "fr",
		Subnets:      []string{"10.0.0.0/24"},
		Login:        prov.LoginPolicy{Enabled: true, Required: true, AutomaticLogout: 30, OnePerUser: "deny", DailyLogout: "23:00"},
		Authorized:   []prov.AuthorizedNumber{{Description: "Front desk", Number: "1000"}},
		Emergency:    []string{"911", "112"},
		FeatureCodes: prov.FeatureCodes{Login: "*55", Logout: "*56"},
		Trunk:        prov.Trunk{Address: "sip.example:5060", Username: "u", Password: "p"},
		Params:       map[string]string{"a": "b"},
		UpdatedAt:    T0,
	}
	must(t, s.CreateSite(ctx(t), &site))
	if site.ID == 0 {
		t.Fatal("CreateSite did not set ID")
	}
	got, err := s.GetSite(ctx(t), site.ID)
	must(t, err)
	equal(t, "GetSite", got, site)
	got, err = s.SiteByName(ctx(t), "hq")
	must(t, err)
	equal(t, "SiteByName", got, site)

	dup := prov.Site{Name: "hq"}
	wantErr(t, s.CreateSite(ctx(t), &dup), prov.ErrConflict)
	_, err = s.GetSite(ctx(t), 999)
	wantErr(t, err, prov.ErrNotFound)
	_, err = s.SiteByName(ctx(t), "nope")
	wantErr(t, err, prov.ErrNotFound)

	site.Domain = "new.example"
	site.Params = nil
	must(t, s.UpdateSite(ctx(t), &site))
	got, err = s.GetSite(ctx(t), site.ID)
	must(t, err)
	equal(t, "after UpdateSite", got.Domain, "new.example")
	equal(t, "params cleared", len(got.Params), 0)
	missing := prov.Site{ID: 999, Name: "x"}
	wantErr(t, s.UpdateSite(ctx(t), &missing), prov.ErrNotFound)

	other := prov.Site{Name: "branch"}
	must(t, s.CreateSite(ctx(t), &other))
	list, err := s.ListSites(ctx(t))
	must(t, err)
	if len(list) != 2 || list[0].Name != "branch" || list[1].Name != "hq" {
		t.Fatalf("ListSites = %+v", list)
	}
}

// fullUser sets every field, so a column the store forgets shows up.
func fullUser(name string, siteID int64) prov.User {
	return prov.User{
		Username: name, FirstName: "First " + name, LastName: "Last", Email: name + "@example.com",
		Language: "en", DirectoryScope: "site", Custom1: "c1", Custom2: "c2", Custom3: "c3",
		Kind: prov.KindPerson, ResponsibleEmail: "boss@example.com", Status: prov.StatusActive, SiteID: siteID,
		PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", SIPPassword: "sip-secret",
		LoginHA1: map[string]string{"MD5": "0123", "SHA-256": "4567"},
		Portal:   prov.PortalAccess{Enabled: true, Profile: prov.AccessWrite, CallHandling: prov.AccessRead, WizardDone: true},
		CallHandling: prov.CallHandling{DND: true, ForwardAlways: "1002", ForwardBusy: "1003", ForwardNoAnswer: "1004",
			NoAnswerSeconds: 20, Twinning: "+15551234"},
		Params: map[string]string{"voice.volume": "7"},
		Keys: []prov.FeatureKey{{Kind: prov.KeyBLF, Target: "1002", Label: "Bob"}, {Kind: prov.KeyDND},
			{Kind: prov.KeyForward, Target: "+15551234", Label: "Mobile"}},
		CreatedAt: T0, UpdatedAt: T0.Add(time.Second),
	}
}

func testUsers(t *testing.T, s prov.Store) {
	site := prov.Site{Name: "hq"}
	must(t, s.CreateSite(ctx(t), &site))
	u := fullUser("alice", site.ID)
	must(t, s.CreateUser(ctx(t), &u))
	if u.ID == 0 {
		t.Fatal("CreateUser did not set ID")
	}
	got, err := s.GetUser(ctx(t), "alice")
	must(t, err)
	equal(t, "GetUser", got, u)
	got, err = s.GetUserByID(ctx(t), u.ID)
	must(t, err)
	equal(t, "GetUserByID", got, u)

	bare := prov.User{Username: "bare", Kind: prov.KindCommonArea, Status: prov.StatusDisabled}
	must(t, s.CreateUser(ctx(t), &bare))
	got, err = s.GetUserByID(ctx(t), bare.ID)
	must(t, err)
	equal(t, "bare user", got, bare)

	dup := prov.User{Username: "alice"}
	wantErr(t, s.CreateUser(ctx(t), &dup), prov.ErrConflict)
	badSite := prov.User{Username: "x", SiteID: 12345}
	wantErr(t, s.CreateUser(ctx(t), &badSite), prov.ErrNotFound)
	_, err = s.GetUser(ctx(t), "nobody")
	wantErr(t, err, prov.ErrNotFound)
	_, err = s.GetUserByID(ctx(t), 99999)
	wantErr(t, err, prov.ErrNotFound)

	u.LastName, u.Status, u.LoginHA1 = "Changed", prov.StatusDisabled, nil
	must(t, s.UpdateUser(ctx(t), &u))
	got, err = s.GetUser(ctx(t), "alice")
	must(t, err)
	equal(t, "after UpdateUser", got, u)
	equal(t, "CreatedAt kept", got.CreatedAt, T0)
	rename := u
	rename.Username = "bare"
	wantErr(t, s.UpdateUser(ctx(t), &rename), prov.ErrConflict)
	ghost := prov.User{ID: 99999, Username: "ghost"}
	wantErr(t, s.UpdateUser(ctx(t), &ghost), prov.ErrNotFound)

	n, err := s.CountUsers(ctx(t))
	must(t, err)
	equal(t, "CountUsers", n, 2)
}

func testListUsers(t *testing.T, s prov.Store) {
	// Lower-case names only: PostgreSQL's collation may order case differently.
	names := []string{"dave", "alice", "carol", "bob", "erin", "frank", "grace_x"}
	for i, n := range names {
		u := prov.User{Username: n, FirstName: "F" + n, Email: n + "@corp.test", Status: prov.StatusActive}
		if i%3 == 0 {
			u.Status = prov.StatusDisabled
		}
		must(t, s.CreateUser(ctx(t), &u))
	}
	usernames := func(us []prov.User) []string {
		out := []string{}
		for _, u := range us {
			out = append(out, u.Username)
		}
		return out
	}
	tests := []struct {
		name  string
		q     prov.UserQuery
		want  []string
		total int
	}{
		{"all", prov.UserQuery{}, []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace_x"}, 7},
		{"first page", prov.UserQuery{Limit: 3}, []string{"alice", "bob", "carol"}, 7},
		{"second page", prov.UserQuery{Offset: 3, Limit: 3}, []string{"dave", "erin", "frank"}, 7},
		{"last page", prov.UserQuery{Offset: 6, Limit: 3}, []string{"grace_x"}, 7},
		{"past the end", prov.UserQuery{Offset: 10, Limit: 3}, []string{}, 7},
		{"offset no limit", prov.UserQuery{Offset: 5}, []string{"frank", "grace_x"}, 7},
		{"search name", prov.UserQuery{Search: "AR"}, []string{"carol"}, 1},
		{"search first name", prov.UserQuery{Search: "fbo"}, []string{"bob"}, 1},
		{"search email", prov.UserQuery{Search: "corp.TEST", Limit: 2}, []string{"alice", "bob"}, 7},
		{"search case-insensitive", prov.UserQuery{Search: "GRACE"}, []string{"grace_x"}, 1},
		{"underscore is literal", prov.UserQuery{Search: "_"}, []string{"grace_x"}, 1},
		{"percent is literal", prov.UserQuery{Search: "%"}, []string{}, 0},
		{"status", prov.UserQuery{Status: prov.StatusDisabled}, []string{"bob", "dave", "grace_x"}, 3},
		{"status and search", prov.UserQuery{Status: prov.StatusActive, Search: "a"}, []string{"alice", "carol", "frank"}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			us, total, err := s.ListUsers(ctx(t), tc.q)
			must(t, err)
			equal(t, "names", usernames(us), tc.want)
			equal(t, "total", total, tc.total)
		})
	}
	_, _, err := s.ListUsers(ctx(t), prov.UserQuery{Limit: -1})
	wantErr(t, err, prov.ErrInvalid)
}

func testNumbers(t *testing.T, s prov.Store) {
	a := prov.User{Username: "alice"}
	b := prov.User{Username: "bob"}
	must(t, s.CreateUser(ctx(t), &a))
	must(t, s.CreateUser(ctx(t), &b))
	must(t, s.AssignNumber(ctx(t), "1001", a.ID))
	must(t, s.AssignNumber(ctx(t), "+33123", a.ID))
	must(t, s.AssignNumber(ctx(t), "1001", a.ID)) // again: no-op
	must(t, s.AssignNumber(ctx(t), "1002", b.ID))
	wantErr(t, s.AssignNumber(ctx(t), "1001", b.ID), prov.ErrConflict)
	wantErr(t, s.AssignNumber(ctx(t), "1009", 99999), prov.ErrNotFound)

	nums, err := s.NumbersOf(ctx(t), a.ID)
	must(t, err)
	equal(t, "NumbersOf", nums, []string{"+33123", "1001"})
	u, err := s.UserByNumber(ctx(t), "1002")
	must(t, err)
	equal(t, "UserByNumber", u.Username, "bob")
	_, err = s.UserByNumber(ctx(t), "1009")
	wantErr(t, err, prov.ErrNotFound)
	all, err := s.AllNumbers(ctx(t))
	must(t, err)
	equal(t, "AllNumbers", all, map[string]int64{"1001": a.ID, "+33123": a.ID, "1002": b.ID})

	must(t, s.UnassignNumber(ctx(t), "1001"))
	wantErr(t, s.UnassignNumber(ctx(t), "1001"), prov.ErrNotFound)
	must(t, s.AssignNumber(ctx(t), "1001", b.ID))
	u, err = s.UserByNumber(ctx(t), "1001")
	must(t, err)
	equal(t, "moved number", u.Username, "bob")
}

func testContacts(t *testing.T, s prov.Store) {
	a := prov.User{Username: "alice"}
	must(t, s.CreateUser(ctx(t), &a))
	cs := []prov.Contact{
		{UserID: a.ID, Position: 2, FirstName: "Bob", LastName: "B", Number: "1002", SpeedDial: 2, Label: "work"},
		{UserID: a.ID, Position: 1, FirstName: "Carol", Number: "1003"},
	}
	must(t, s.ReplaceContacts(ctx(t), a.ID, cs))
	got, err := s.ListContacts(ctx(t), a.ID)
	must(t, err)
	equal(t, "ListContacts", got, []prov.Contact{cs[1], cs[0]})
	must(t, s.ReplaceContacts(ctx(t), a.ID, cs[:1]))
	got, err = s.ListContacts(ctx(t), a.ID)
	must(t, err)
	equal(t, "after replace", got, cs[:1])
	// A duplicate position fails the whole replacement.
	wantErr(t, s.ReplaceContacts(ctx(t), a.ID, []prov.Contact{cs[1], cs[1]}), prov.ErrConflict)
	got, err = s.ListContacts(ctx(t), a.ID)
	must(t, err)
	equal(t, "kept after failed replace", got, cs[:1])
	must(t, s.ReplaceContacts(ctx(t), a.ID, nil))
	got, err = s.ListContacts(ctx(t), a.ID)
	must(t, err)
	equal(t, "emptied", len(got), 0)
}
