package daemon

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"hotdesk/prov"
)

// TestFeatureKeysEndToEnd: the admin programs a user's keys through the
// API (a BLF on a number nobody has is refused, naming the key); the
// phone she logs in on gets them as flexible line keys (BLF as an
// attendant resource, DND and forward as enhanced feature keys dialling
// the site's codes); pressing them — dialling the codes from her line —
// turns her DND on and off and forwards her calls, as the proxy then
// honours.
func TestFeatureKeysEndToEnd(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	api := "http://" + addrs.Admin + "/api/v1/"
	c := &http.Client{}
	sites, err := a.store.ListSites(ctx)
	if err != nil || len(sites) == 0 {
		t.Fatalf("sites: %v %v", sites, err)
	}
	site := strconv.FormatInt(sites[0].ID, 10)
	if code, body := jsonCall(t, c, "PATCH", api+"sites/"+site, `{"feature_codes":{"dnd":"*7"}}`, "admin", "test-admin-pw"); code != 400 ||
		!strings.Contains(body, "feature_codes.dnd") {
		t.Fatalf("a DND code that is a prefix of the login code = %d %s", code, body)
	}
	if code, body := jsonCall(t, c, "PATCH", api+"sites/"+site, `{"feature_codes":{"dnd":"*66","forward":"*62"}}`,
		"admin", "test-admin-pw"); code != 200 {
		t.Fatalf("site feature codes = %d %s", code, body)
	}
	if code, body := jsonCall(t, c, "PUT", api+"users/alice/keys", `{"keys":[{"kind":"blf","target":"9999"}]}`,
		"admin", "test-admin-pw"); code != 400 || !strings.Contains(body, "keys[0].target") {
		t.Fatalf("BLF on an unknown number = %d %s", code, body)
	}
	code, body := jsonCall(t, c, "PUT", api+"users/alice/keys", `{"keys":[{"kind":"blf","target":"1002","label":"Bob"},
		{"kind":"dnd"},{"kind":"forward","target":"1003","label":"To Carol"}]}`, "admin", "test-admin-pw")
	if code != 200 || !strings.Contains(body, `"kind":"blf"`) {
		t.Fatalf("PUT keys = %d %s", code, body)
	}

	dev, phone := lockedHandset(t, a, addrs, "0004f2000001")
	if _, reason := phone.call(t, "*77alice*alice-demo", dev.SIPUser, dev.SIPPassword); !strings.Contains(reason, "Logged in as alice") {
		t.Fatalf("login: %q", reason)
	}
	sess, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID)
	if !ok {
		t.Fatal("no session")
	}
	code, body = jsonCall(t, c, "GET", api+"devices/"+dev.MAC+"/effective-config", "", "admin", "test-admin-pw")
	if code != 200 {
		t.Fatalf("effective config = %d %s", code, body)
	}
	for _, want := range []string{`"attendant.resourceList.1.address"`, `"1002@`, `"lineKey.reassignment.enabled"`,
		`"*66$Tinvite$"`, `"*621003$Tinvite$"`, `"To Carol"`} {
		if !strings.Contains(body, want) {
			t.Errorf("effective config lacks %s", want)
		}
	}

	handling := func() prov.CallHandling {
		u, err := a.store.GetUser(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		return u.CallHandling
	}
	for _, step := range []struct {
		dial, reason string
		check        func(prov.CallHandling) bool
	}{
		{"*66", "Do not disturb on", func(h prov.CallHandling) bool { return h.DND }},
		{"*66", "Do not disturb off", func(h prov.CallHandling) bool { return !h.DND }},
		{"*621003", "Forwarding to 1003", func(h prov.CallHandling) bool { return h.ForwardAlways == "1003" }},
		{"*62", "Forwarding off", func(h prov.CallHandling) bool { return h.ForwardAlways == "" }},
	} {
		if _, reason := phone.call(t, step.dial, sess.SIPUser, sess.SIPPassword); reason != step.reason || !step.check(handling()) {
			t.Fatalf("%s: %q, call handling %+v", step.dial, reason, handling())
		}
	}
	if _, reason := phone.call(t, "*62alice", sess.SIPUser, sess.SIPPassword); reason != "Forward target refused" {
		t.Fatalf("forward to herself: %q", reason)
	}
	// The locked phone's own account has nobody's call handling to change.
	if _, reason := phone.call(t, "*66", dev.SIPUser, dev.SIPPassword); reason != "Nobody is logged in" {
		t.Fatalf("DND from the device account: %q", reason)
	}
}
