package prov_test

import (
	"context"
	"errors"
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
// account for the user's number; it expires, is replaced by a second mint
// and is revoked (and unbound) at sign-out; only the softphone mode gets one.
func TestSoftphoneCredential(t *testing.T) {
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	sp := prov.NewSoftphone(f.creds, f.reg, nil, slog.New(slog.DiscardHandler), f.clk.now)
	alice, err := f.st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Mint(ctx, alice, "portal-1", f.clk.now().Add(time.Hour), prov.Actor{Name: "user:alice"}); !errors.Is(err, prov.ErrDenied) {
		t.Fatalf("Mint without the softphone right = %v, want ErrDenied", err)
	}
	alice.Portal.CallOperations = prov.CallOpsSoftphone
	line, err := sp.Mint(ctx, alice, "portal-1", f.clk.now().Add(time.Hour), prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	cr, ok := f.creds.Lookup(line.Username)
	if !ok || cr.Password != line.Password || cr.Kind != prov.OwnerBrowser || line.Number != "2001" || len(cr.AORs) != 1 || cr.AORs[0] != "2001" {
		t.Fatalf("minted %+v: lookup %+v %v", line, cr, ok)
	}
	// A second mint for the same portal session replaces the first.
	line2, err := sp.Mint(ctx, alice, "portal-1", f.clk.now().Add(time.Hour), prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.creds.Lookup(line.Username); ok {
		t.Fatal("the replaced credential still works")
	}
	if len(f.reg.unbound) != 1 {
		t.Fatalf("the replaced credential's bindings were not unbound: %v", f.reg.unbound)
	}
	// Another portal session's credential is its own.
	other, err := sp.Mint(ctx, alice, "portal-2", f.clk.now().Add(2*time.Hour), prov.Actor{Name: "user:alice"})
	if err != nil {
		t.Fatal(err)
	}
	sp.Revoke(ctx, "portal-1")
	if _, ok := f.creds.Lookup(line2.Username); ok {
		t.Fatal("credential still valid after sign-out")
	}
	if len(f.reg.unbound) != 2 || !strings.HasPrefix(f.reg.unbound[1], "browser:") {
		t.Fatalf("sign-out unbound %v, want the browser's owner", f.reg.unbound)
	}
	if _, ok := f.creds.Lookup(other.Username); !ok {
		t.Fatal("signing out of one portal session revoked another's softphone")
	}
	f.clk.add(2*time.Hour + time.Second)
	if _, ok := f.creds.Lookup(other.Username); ok {
		t.Fatal("credential valid after it expired")
	}
	sp.Revoke(ctx, "portal-unknown") // harmless
}
