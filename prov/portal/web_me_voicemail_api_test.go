package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
)

// do sends a request with the session's cookie and, when csrf is set, the
// X-CSRF-Token header.
func (b *browser) do(method, path, csrf string, body []byte) page2 {
	b.t.Helper()
	req, err := http.NewRequest(method, b.base+path, bytes.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.read(res)
}

// voicemailWebEnv is the portal with mailboxes in a temporary directory;
// alice (1001) and bob (1002) are portal users.
func voicemailWebEnv(t *testing.T) (*webEnv, *prov.Voicemails, string) {
	t.Helper()
	we := newWebEnv(t)
	we.portalUser("alice", "1001")
	we.portalUser("bob", "1002")
	creds, err := prov.NewCredentials(context.Background(), we.st)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vms := prov.NewVoicemails(we.st, creds, prov.VoicemailConfig{Dir: dir, MaxUserBytes: 1 << 20,
		CheckGreeting: func(b []byte) error {
			if !bytes.HasPrefix(b, []byte("RIFF")) {
				return errors.New("not a WAV file")
			}
			return nil
		}}, nil, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), we.clock.now)
	we.web.d.Voicemails = vms // before any request
	we.api.d.Voicemails = vms
	return we, vms, dir
}

// deposit leaves a message in mailbox, as the voicemail server does.
func deposit(t *testing.T, vms *prov.Voicemails, dir, mailbox, from, content string) string {
	t.Helper()
	p := filepath.Join(dir, mailbox, from+"-"+strconv.Itoa(len(content))+".wav")
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := vms.Deposit(context.Background(), mailbox, from, p, 2*time.Second, int64(len(content))); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestVoicemailAPI drives /api/v1/me/voicemail over real HTTP with a
// portal session: list, play (marks heard), mark heard, delete, greeting
// upload and removal; another user reaches none of it, Profile=Read only
// reads, writes need the CSRF header, and each action is audited.
func TestVoicemailAPI(t *testing.T) {
	t.Parallel()
	we, vms, dir := voicemailWebEnv(t)
	ctx := context.Background()
	first := deposit(t, vms, dir, "1001", "1002", "RIFF-first")
	deposit(t, vms, dir, "1001", "1003", "RIFF-second-message")

	u := we.browser()
	u.mustSignIn("alice", "password-alice", "/me/")
	list := func(b *browser) myVoicemailList {
		t.Helper()
		p := b.get("/api/v1/me/voicemail")
		var l myVoicemailList
		if p.code != http.StatusOK || json.Unmarshal([]byte(p.body), &l) != nil {
			t.Fatalf("GET /api/v1/me/voicemail = %d %s", p.code, p.body)
		}
		return l
	}
	l := list(u)
	if !l.On || l.New != 2 || len(l.Messages) != 2 || l.Greeting || l.CSRFToken == "" {
		t.Fatalf("alice's voicemail: %+v", l)
	}
	if strings.Contains(u.get("/api/v1/me/voicemail").body, dir) {
		t.Fatal("the list shows the files' paths")
	}
	second, oldest := l.Messages[0], l.Messages[1]
	if oldest.From != "1002" || oldest.DurationMS != 2000 || oldest.Bytes != int64(len("RIFF-first")) || oldest.Heard {
		t.Fatalf("the first message: %+v", oldest)
	}
	msg := func(id int64, tail string) string { return "/api/v1/me/voicemail/" + strconv.FormatInt(id, 10) + tail }

	// Another user reaches none of it.
	b := we.browser()
	b.mustSignIn("bob", "password-bob", "/me/")
	if p := b.get(msg(oldest.ID, "/audio")); p.code != http.StatusNotFound {
		t.Fatalf("bob playing alice's message = %d", p.code)
	}
	if p := b.do("DELETE", msg(oldest.ID, ""), list(b).CSRFToken, nil); p.code != http.StatusNotFound {
		t.Fatalf("bob deleting alice's message = %d", p.code)
	}
	// An admin's session is not a user's.
	a := we.browser()
	a.mustSignIn(adminUser, adminPass, "/admin/")
	if p := a.get("/api/v1/me/voicemail"); p.code != http.StatusForbidden {
		t.Fatalf("an admin session on /api/v1/me/voicemail = %d", p.code)
	}

	// Play: the audio, marked heard, audited.
	p := u.get(msg(oldest.ID, "/audio"))
	if p.code != http.StatusOK || p.body != "RIFF-first" || p.hdr.Get("Content-Type") != "audio/wav" {
		t.Fatalf("playing = %d %q %v", p.code, p.body, p.hdr)
	}
	if l := list(u); l.New != 1 || !l.Messages[1].Heard || l.Messages[1].HeardAt == nil {
		t.Fatalf("after playing: %+v", l)
	}
	// Mark heard: CSRF first.
	if p := u.do("POST", msg(second.ID, "/heard"), "", nil); p.code != http.StatusForbidden {
		t.Fatalf("POST heard without X-CSRF-Token = %d", p.code)
	}
	if p := u.do("POST", msg(second.ID, "/heard"), l.CSRFToken, nil); p.code != http.StatusNoContent {
		t.Fatalf("POST heard = %d %s", p.code, p.body)
	}
	if p := u.do("POST", msg(999999, "/heard"), l.CSRFToken, nil); p.code != http.StatusNotFound {
		t.Fatalf("POST heard of no message = %d", p.code)
	}
	if l := list(u); l.New != 0 {
		t.Fatalf("after marking heard: %+v", l)
	}

	// Profile Read: lists and plays, writes nothing.
	we.setAccess("alice", menuProfile, prov.AccessRead)
	if p := u.do("DELETE", msg(oldest.ID, ""), l.CSRFToken, nil); p.code != http.StatusForbidden {
		t.Fatalf("DELETE with Profile=Read = %d", p.code)
	}
	if p := u.do("PUT", "/api/v1/me/voicemail/greeting", l.CSRFToken, []byte("RIFF-greeting")); p.code != http.StatusForbidden {
		t.Fatalf("PUT greeting with Profile=Read = %d", p.code)
	}
	if l := list(u); len(l.Messages) != 2 {
		t.Fatalf("list with Profile=Read: %+v", l)
	}
	we.setAccess("alice", menuProfile, prov.AccessWrite)

	// Delete: the row and the file, audited.
	if p := u.do("DELETE", msg(oldest.ID, ""), l.CSRFToken, nil); p.code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", p.code, p.body)
	}
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the deleted message's file: %v", err)
	}
	if p := u.get(msg(oldest.ID, "/audio")); p.code != http.StatusNotFound {
		t.Fatalf("playing a deleted message = %d", p.code)
	}

	// Greeting: a WAV replaces it, anything else is refused; then removed.
	if p := u.do("PUT", "/api/v1/me/voicemail/greeting", l.CSRFToken, []byte("not a wav")); p.code != http.StatusBadRequest ||
		!strings.Contains(p.body, `"field":"greeting"`) {
		t.Fatalf("PUT a non-WAV greeting = %d %s", p.code, p.body)
	}
	if p := u.do("PUT", "/api/v1/me/voicemail/greeting", l.CSRFToken, []byte("RIFF-greeting")); p.code != http.StatusNoContent {
		t.Fatalf("PUT greeting = %d %s", p.code, p.body)
	}
	if g, err := vms.Greeting(ctx, "1001"); err != nil || g == "" || !list(u).Greeting {
		t.Fatalf("greeting after PUT: %q, %v", g, err)
	}
	if p := u.do("DELETE", "/api/v1/me/voicemail/greeting", l.CSRFToken, nil); p.code != http.StatusNoContent {
		t.Fatalf("DELETE greeting = %d %s", p.code, p.body)
	}
	if p := u.do("DELETE", "/api/v1/me/voicemail/greeting", l.CSRFToken, nil); p.code != http.StatusNotFound {
		t.Fatalf("DELETE greeting again = %d", p.code)
	}
	if g, _ := vms.Greeting(ctx, "1001"); g != "" || list(u).Greeting {
		t.Fatalf("greeting after DELETE: %q", g)
	}

	for _, action := range []string{"voicemail.play", "voicemail.heard", "voicemail.delete", "voicemail.greeting",
		"voicemail.greeting_delete"} {
		ev, err := we.st.ListAudit(ctx, prov.AuditQuery{Action: action})
		if err != nil || len(ev) != 1 || !strings.Contains(ev[0].Actor, "alice") {
			t.Errorf("audit %s: %+v, %v", action, ev, err)
		}
	}
}

// TestOpenAPIDocumentsMeRoutes: every /api/v1/me route the portal
// registers is in the served OpenAPI document and the document names no
// other (each routed by the web to that very pattern), and live answers
// conform to their schemas.
func TestOpenAPIDocumentsMeRoutes(t *testing.T) {
	t.Parallel()
	we, vms, dir := voicemailWebEnv(t)
	deposit(t, vms, dir, "1001", "1002", "RIFF-x")
	var doc map[string]any
	we.want(we.do(anonymous, "GET", "/api/v1/openapi.json", nil), 200).into(t, &doc)
	paths := doc["paths"].(map[string]any)
	param := regexp.MustCompile(`\{[^}]+\}`)
	documented := map[string]bool{}
	for path, item := range paths {
		if !strings.HasPrefix(path, "/api/v1/me/") {
			continue
		}
		for method, op := range item.(map[string]any) {
			pattern := strings.ToUpper(method) + " " + path
			documented[pattern] = true
			req, _ := http.NewRequest(strings.ToUpper(method), "http://x"+param.ReplaceAllString(path, "x1"), nil)
			if _, got := we.web.mux.Handler(req); got != pattern {
				t.Errorf("documented %s is routed by the web to %q", pattern, got)
			}
			if sec, _ := op.(map[string]any)["security"].([]any); len(sec) != 1 {
				t.Errorf("%s: security %v, want the session", pattern, sec)
			}
		}
	}
	for _, p := range we.web.meRegistered {
		if !documented[p] {
			t.Errorf("route %s is not in the document", p)
		}
		delete(documented, p)
	}
	for p := range documented {
		t.Errorf("documented %s is not registered", p)
	}
	if len(we.web.meRegistered) < 15 {
		t.Fatalf("only %d /api/v1/me routes registered", len(we.web.meRegistered))
	}

	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	u := we.browser()
	u.mustSignIn("alice", "password-alice", "/me/")
	for _, c := range []struct {
		path string
		code int
	}{{"/api/v1/me/voicemail", 200}, {"/api/v1/me/calls", 403}, {"/api/v1/me/recordings", 403}} {
		p := u.get(c.path)
		if p.code != c.code {
			t.Fatalf("GET %s = %d %s", c.path, p.code, p.body)
		}
		op := paths[c.path].(map[string]any)["get"].(map[string]any)
		rs, ok := op["responses"].(map[string]any)[strconv.Itoa(p.code)].(map[string]any)
		if !ok {
			t.Errorf("GET %s answered %d, not declared", c.path, p.code)
			continue
		}
		schema := rs["content"].(map[string]any)["application/json"].(map[string]any)["schema"]
		var body any
		if err := json.NewDecoder(io.LimitReader(strings.NewReader(p.body), 1<<20)).Decode(&body); err != nil {
			t.Fatal(err)
		}
		conform(t, "GET "+c.path, schemas, schema.(map[string]any), body)
	}
}

// TestVoicemailAdminAPI: the admin sees a user's mailbox (counts and
// messages, no audio route) and removes a greeting, audited; without
// credentials nothing.
func TestVoicemailAdminAPI(t *testing.T) {
	t.Parallel()
	we, vms, dir := voicemailWebEnv(t)
	ctx := context.Background()
	deposit(t, vms, dir, "1001", "1002", "RIFF-one")
	alice, _ := we.st.GetUser(ctx, "alice")
	if err := vms.SetGreeting(ctx, alice.ID, []byte("RIFF-greeting"), prov.Actor{Name: "user:alice"}); err != nil {
		t.Fatal(err)
	}
	we.want(we.do(anonymous, "GET", "/api/v1/users/alice/voicemail", nil), 401)
	var v userVoicemailView
	we.want(we.do(asAdmin, "GET", "/api/v1/users/alice/voicemail", nil), 200).into(t, &v)
	if v.New != 1 || v.Heard != 0 || v.Bytes != int64(len("RIFF-one")) || !v.Greeting || len(v.Messages) != 1 ||
		v.Messages[0].From != "1002" {
		t.Fatalf("alice's mailbox as the admin sees it: %+v", v)
	}
	we.want(we.do(asAdmin, "GET", "/api/v1/users/nobody/voicemail", nil), 404)
	we.want(we.do(asAdmin, "DELETE", "/api/v1/users/alice/voicemail/greeting", nil), 204)
	we.want(we.do(asAdmin, "DELETE", "/api/v1/users/alice/voicemail/greeting", nil), 404)
	if g, _ := vms.Greeting(ctx, "1001"); g != "" {
		t.Fatalf("greeting left: %q", g)
	}
	ev, err := we.st.ListAudit(ctx, prov.AuditQuery{Action: "voicemail.greeting_delete"})
	if err != nil || len(ev) != 1 || !strings.Contains(ev[0].Actor, adminUser) || ev[0].Object != "user:"+strconv.FormatInt(alice.ID, 10) {
		t.Fatalf("audit: %+v, %v", ev, err)
	}
}
