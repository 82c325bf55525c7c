package prov_test

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"hotdesk/prov"
)

func TestIdentitySpelling(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		got, want string
	}{
		{prov.DeviceOwner(7).String(), "device:7"},
		{prov.SessionOwner("ab").String(), "session:ab"},
		{prov.UserOwner(3).String(), "user:3"},
		{prov.Owner{}.String(), ""},
		{prov.AdminActor("root", "10.0.0.1").String(), "admin:root"},
		{prov.TokenActor("ci", "").String(), "token:ci"},
		{prov.UserActor("alice", "").String(), "user:alice"},
		{prov.PhoneActor("10.0.0.9").String(), "phone"},
		{prov.Actor{Kind: prov.ActorAnonymous}.String(), "anonymous"},
		{prov.Actor{}.String(), "system"},
		{prov.UserObject("alice").String(), "user:alice"},
		{prov.DeviceObject("0004f2000001").String(), "device:0004f2000001"},
		{prov.SiteObject(2).String(), "site:2"},
		{prov.Object{Kind: prov.ObjectUsers}.String(), "users"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want prov.Owner
		ok   bool
	}{
		{"session:s:1", prov.SessionOwner("s:1"), true},
		{"device:7", prov.DeviceOwner(7), true},
		{"", prov.Owner{}, true},
		{"garbage", prov.Owner{}, false},
		{":7", prov.Owner{}, false},
	} {
		if got, ok := prov.ParseOwner(tc.in); got != tc.want || ok != tc.ok {
			t.Errorf("ParseOwner(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	// JSON keeps the stored spelling (DeviceSignals.Reach is stored as JSON).
	b, err := json.Marshal(prov.Binding{Owner: prov.SessionOwner("s1")})
	if err != nil {
		t.Fatal(err)
	}
	var back prov.Binding
	if err := json.Unmarshal(b, &back); err != nil || back.Owner != prov.SessionOwner("s1") {
		t.Fatalf("round trip of %s: %+v, %v", b, back.Owner, err)
	}
}

// Every audit event's before and after are JSON, whatever they hold: a
// reason with quotes stays one string, and a value that does not marshal
// is recorded as an error object rather than dropped.
func TestNewAuditEventJSON(t *testing.T) {
	t.Parallel()
	at := time.Unix(1, 0)
	e := prov.NewAuditEvent(at, prov.AdminActor("root", "10.0.0.1"), "session.end", prov.SessionObject("s1"),
		nil, map[string]prov.EndReason{"reason": `a "quoted" \ reason`})
	if e.Actor != "admin:root" || e.Remote != "10.0.0.1" || e.Object != "session:s1" || e.Before != "" {
		t.Fatalf("event %+v", e)
	}
	var after map[string]string
	if err := json.Unmarshal([]byte(e.After), &after); err != nil || after["reason"] != `a "quoted" \ reason` {
		t.Fatalf("after %s: %v", e.After, err)
	}
	e = prov.NewAuditEvent(at, prov.Actor{}, "x", prov.UserObject("u"), math.Inf(1), nil)
	var bad map[string]string
	if err := json.Unmarshal([]byte(e.Before), &bad); err != nil || bad["error"] == "" || e.Actor != "system" {
		t.Fatalf("unmarshalable before %q (%v), actor %q", e.Before, err, e.Actor)
	}
}
