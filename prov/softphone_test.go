package prov_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
)

// TestCallModes: the user's pick applies within what the admin allows.
func TestCallModes(t *testing.T) {
	for _, tc := range []struct {
		allowed, pick, mode string
		control, soft       bool
	}{
		{"", "", prov.CallOpsNone, false, false},
		{prov.CallOpsControl, "", prov.CallOpsControl, true, false},
		{prov.CallOpsSoftphone, "", prov.CallOpsSoftphone, false, true},
		{prov.CallOpsBoth, "", prov.CallOpsBoth, true, true},
		{prov.CallOpsBoth, prov.CallOpsSoftphone, prov.CallOpsSoftphone, false, true},
		{prov.CallOpsBoth, prov.CallOpsNone, prov.CallOpsNone, false, false},
		{prov.CallOpsControl, prov.CallOpsSoftphone, prov.CallOpsNone, false, false}, // a pick beyond the admin's gets nothing
		{prov.CallOpsSoftphone, prov.CallOpsBoth, prov.CallOpsSoftphone, false, true},
	} {
		u := prov.User{Portal: prov.PortalAccess{CallOperations: tc.allowed, CallMode: tc.pick}}
		if m := prov.CallMode(u); m != tc.mode || prov.CanControl(u) != tc.control || prov.CanSoftphone(u) != tc.soft {
			t.Errorf("allowed %q pick %q: mode %q control %v softphone %v, want %q %v %v", tc.allowed, tc.pick, m,
				prov.CanControl(u), prov.CanSoftphone(u), tc.mode, tc.control, tc.soft)
		}
	}
	if got := prov.AllowedCallModes(prov.User{Portal: prov.PortalAccess{CallOperations: prov.CallOpsSoftphone}}); strings.Join(got, ",") != "none,softphone" {
		t.Errorf("AllowedCallModes(softphone) = %v", got)
	}
}

// TestSoftphoneCredential: a portal session's softphone gets a digest
// account for the user's number, kept in the session's row as HA1s only;
// it expires, is replaced by a second mint and is revoked (and unbound)
// when the session ends; only the softphone mode gets one; another node's
// index follows the row through the relayed event.
func TestSoftphoneCredential(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	events := &prov.Events{}
	sp := prov.NewSoftphone(prov.SoftphoneDeps{Credentials: f.creds, Registrar: f.reg, Store: f.st, Events: events,
		Realm: "hq.test", Logger: slog.New(slog.DiscardHandler), Now: f.clk.now})
	var relayed []prov.Event
	events.Subscribe(func(_ context.Context, ev prov.Event) { relayed = append(relayed, ev) })
	for _, k := range []string{"key-1", "key-2"} {
		if err := f.st.CreateWebSession(ctx, &prov.WebSession{Key: k, Name: "alice", Created: f.clk.now()}); err != nil {
			t.Fatal(err)
		}
	}
	alice, err := f.st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Mint(ctx, alice, "key-1", f.clk.now().Add(time.Hour), prov.Actor{Name: "user:alice"}); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("Mint without the softphone right = %v, want ErrDenied", err)
	}
	alice.Portal.CallOperations = prov.CallOpsSoftphone
	if _, err := sp.Mint(ctx, alice, "key-gone", f.clk.now().Add(time.Hour), prov.Actor{Name: "user:alice"}); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("Mint for an ended portal session = %v, want ErrDenied", err)
	}
	line, err := sp.Mint(ctx, alice, "key-1", f.clk.now().Add(time.Hour), prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	md5hex, shahex := prov.HA1s(line.Username, "hq.test", line.Password)
	cr, ok := f.creds.Lookup(line.Username)
	if !ok || cr.Password != "" || cr.HA1["MD5"] != md5hex || cr.HA1["SHA-256"] != shahex || cr.Kind != prov.OwnerBrowser ||
		line.Number != "2001" || len(cr.AORs) != 1 || cr.AORs[0] != "2001" {
		t.Fatalf("minted %+v: lookup %+v %v", line, cr, ok)
	}
	row, err := f.st.GetWebSession(ctx, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	if row.Softphone.Username != line.Username || row.Softphone.HA1SHA256 != shahex ||
		strings.Contains(fmt.Sprintf("%+v", row), line.Password) {
		t.Fatalf("stored %+v: want the HA1s, never the password", row.Softphone)
	}
	if len(relayed) != 1 || relayed[0].Kind != prov.EventSoftphoneChanged || relayed[0].SessionID != "key-1" {
		t.Fatalf("events %+v, want softphone_changed for key-1", relayed)
	}
	// Another node's index, built from the store, knows it too.
	other, err := prov.NewCredentials(ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	// (its softphone service sets its clock: the fixture's)
	prov.NewSoftphone(prov.SoftphoneDeps{Credentials: other, Store: f.st, Events: &prov.Events{},
		Logger: slog.New(slog.DiscardHandler), Now: f.clk.now})
	if err := other.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Lookup(line.Username); ok {
		t.Fatal("a user without the softphone right got a credential from the store")
	}
	if err := f.st.UpdateUser(ctx, &alice); err != nil {
		t.Fatal(err)
	}
	if err := other.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if cr2, ok := other.Lookup(line.Username); !ok || cr2.HA1["SHA-256"] != shahex || cr2.Owner() != cr.Owner() {
		t.Fatalf("another node's index: %+v %v", cr2, ok)
	}
	// A second mint for the same portal session replaces the first.
	line2, err := sp.Mint(ctx, alice, "key-1", f.clk.now().Add(time.Hour), prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.creds.Lookup(line.Username); ok {
		t.Fatal("the replaced credential still works")
	}
	if len(f.reg.unbound) != 1 || f.reg.unbound[0] != "browser:"+cr.OwnerID {
		t.Fatalf("the replaced credential's bindings were not unbound: %v", f.reg.unbound)
	}
	// Another portal session's credential is its own.
	line3, err := sp.Mint(ctx, alice, "key-2", f.clk.now().Add(2*time.Hour), prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	ended, err := f.st.DeleteWebSession(ctx, "key-1")
	if err != nil {
		t.Fatal(err)
	}
	sp.Ended(ctx, ended)
	if _, ok := f.creds.Lookup(line2.Username); ok {
		t.Fatal("credential still valid after sign-out")
	}
	if len(f.reg.unbound) != 2 || !strings.HasPrefix(f.reg.unbound[1], "browser:") {
		t.Fatalf("sign-out unbound %v, want the browser's owner", f.reg.unbound)
	}
	if last := relayed[len(relayed)-1]; last.Kind != prov.EventSoftphoneChanged || last.SessionID != "key-1" {
		t.Fatalf("sign-out relayed %+v", last)
	}
	if _, ok := f.creds.Lookup(line3.Username); !ok {
		t.Fatal("signing out of one portal session revoked another's softphone")
	}
	f.clk.add(2*time.Hour + time.Second)
	if _, ok := f.creds.Lookup(line3.Username); ok {
		t.Fatal("credential valid after it expired")
	}
	sp.Ended(ctx, prov.WebSession{Key: "key-unknown"}) // harmless
}
