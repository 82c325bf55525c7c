package portal

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestRecordingRightsForm: the admin sets seed 002's recording rights on
// the user's access form (own, site, others by number list, all); the
// Recordings page and its audio URLs follow them (another's recording out
// of every scope is 404, a download under Read is 403), as do their JSON
// twins under /api/v1/me/recordings, and every replay
// and download is audited.
func TestRecordingRightsForm(t *testing.T) {
	t.Parallel()
	we := newWebEnv(t)
	ctx := context.Background()
	m := prov.NewManager(prov.ManagerDeps{Store: we.st, Directory: prov.NewDirectory(we.st, we.ev, we.clock.now),
		Sessions: we.sess, Events: we.ev, Logger: slog.New(slog.DiscardHandler), Now: we.clock.now})
	recs, err := prov.NewRecordings(prov.RecordingsConfig{Dir: t.TempDir()}, we.st, m, slog.New(slog.DiscardHandler), we.clock.now)
	if err != nil {
		t.Fatal(err)
	}
	we.web.d.Recordings = recs // before any request
	we.portalUser("alice", "1001")
	id := map[string]int64{}
	for _, c := range []struct{ who, number, peer string }{{"bob", "1002", "9000"}, {"carol", "1003", "9001"}} {
		u := we.portalUser(c.who, c.number)
		name, path := recs.NewFile(u)
		if err := os.WriteFile(path, []byte("RIFF-"+c.who), 0o640); err != nil {
			t.Fatal(err)
		}
		if err := recs.Finished(ctx, prov.Recording{UserID: u.ID, CallID: c.who, Peer: c.peer, Start: we.clock.now(), Bytes: 9, File: name}); err != nil {
			t.Fatal(err)
		}
		l, _ := we.st.ListRecordings(ctx, u.ID, 1)
		id[c.who] = l[0].ID
	}
	audio := func(who string) string { return "/me/recordings/" + strconv.FormatInt(id[who], 10) + "/audio" }

	u := we.browser()
	u.mustSignIn("alice", "password-alice", "/me/")
	if p := u.get("/me/recordings"); p.code != http.StatusForbidden {
		t.Fatalf("recordings without any right = %d", p.code)
	}
	a := we.browser()
	a.mustSignIn(adminUser, adminPass, "/admin/")
	form := url.Values{"portal_enabled": {"on"}, "profile": {"write"}, "call_handling": {"write"}, "directory": {"write"},
		"buttons": {"write"}, "reporting": {"none"}, "call_operations": {"none"}, "recordings": {"none"},
		"recordings_group": {"none"}, "recordings_others": {"read"}, "recordings_numbers": {"1003, x"}, "recordings_all": {"none"}}
	if p := a.submit("/admin/users/alice", "/admin/users/alice/access", form); p.code == http.StatusSeeOther {
		t.Fatal("a bad number list was accepted")
	}
	form.Set("recordings_numbers", strings.Repeat("1,", prov.MaxRecordingNumbers+1))
	if p := a.submit("/admin/users/alice", "/admin/users/alice/access", form); p.code == http.StatusSeeOther ||
		!strings.Contains(p.body, "at most") {
		t.Fatalf("a list of %d numbers = %d", prov.MaxRecordingNumbers+1, p.code)
	}
	form.Set("recordings_numbers", "1003")
	if p := a.submit("/admin/users/alice", "/admin/users/alice/access", form); p.code != http.StatusSeeOther {
		t.Fatalf("saving recording rights = %d: %s", p.code, excerpt(p.body))
	}
	if p := a.get("/admin/users/alice"); !strings.Contains(p.body, `name="recordings_numbers" value="1003"`) {
		t.Errorf("the access form does not show the number list: %s", excerpt(p.body))
	}
	// Others by number, Read: carol's (1003) is listed and plays, no download; bob's is not found.
	p := u.get("/me/recordings")
	if p.code != http.StatusOK || !strings.Contains(p.body, audio("carol")) || strings.Contains(p.body, audio("bob")) ||
		strings.Contains(p.body, "download=1") {
		t.Fatalf("recordings page with others=Read(1003) = %d: %s", p.code, excerpt(p.body))
	}
	if p := u.get(audio("carol")); p.code != http.StatusOK || p.body != "RIFF-carol" {
		t.Fatalf("replaying carol's = %d %q", p.code, p.body)
	}
	if p := u.get(audio("carol") + "?download=1"); p.code != http.StatusForbidden {
		t.Fatalf("downloading with Read = %d", p.code)
	}
	if p := u.get(audio("bob")); p.code != http.StatusNotFound {
		t.Fatalf("replaying bob's, out of scope = %d", p.code)
	}
	// The API under the same rights.
	if p := u.get("/api/v1/me/recordings"); p.code != http.StatusOK || !strings.Contains(p.body, `"call_id":"carol"`) ||
		strings.Contains(p.body, `"call_id":"bob"`) || !strings.Contains(p.body, `"download":false`) {
		t.Fatalf("GET /api/v1/me/recordings = %d %s", p.code, p.body)
	}
	if p := u.get("/api/v1" + audio("bob")); p.code != http.StatusNotFound {
		t.Fatalf("API replay of bob's = %d", p.code)
	}
	if p := u.get("/api/v1" + audio("carol") + "?download=1"); p.code != http.StatusForbidden || !strings.Contains(p.body, "not allowed") {
		t.Fatalf("API download under Read = %d %s", p.code, p.body)
	}
	// The site (all three share the test site), Write: bob's downloads too.
	form.Set("recordings_group", "write")
	if p := a.submit("/admin/users/alice", "/admin/users/alice/access", form); p.code != http.StatusSeeOther {
		t.Fatalf("saving recording rights = %d: %s", p.code, excerpt(p.body))
	}
	if p := u.get("/me/recordings"); !strings.Contains(p.body, audio("bob")+"?download=1") {
		t.Fatalf("no download link with group=Write: %s", excerpt(p.body))
	}
	if p := u.get(audio("bob") + "?download=1"); p.code != http.StatusOK || !strings.Contains(p.hdr.Get("Content-Disposition"), "attachment") {
		t.Fatalf("downloading bob's with group=Write = %d %v", p.code, p.hdr)
	}
	if p := u.get("/api/v1" + audio("bob") + "?download=1"); p.code != http.StatusOK || p.body != "RIFF-bob" {
		t.Fatalf("API download of bob's with group=Write = %d %q", p.code, p.body)
	}
	for action, want := range map[string]string{"recording.replay": "user:carol", "recording.download": "user:bob"} {
		ev, _ := we.st.ListAudit(ctx, prov.AuditQuery{Action: action})
		n := map[string]int{"recording.replay": 1, "recording.download": 2}[action]
		if len(ev) != n {
			t.Errorf("%s audited %d times, want %d", action, len(ev), n)
		}
		for _, e := range ev {
			if e.Object != want || !strings.Contains(e.Actor, "alice") {
				t.Errorf("%s audit = %+v, want on %s by alice", action, e, want)
			}
		}
	}
}
