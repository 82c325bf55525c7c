package daemon

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"hotdesk/sip"
)

// TestBindingsRoundTripTheStore: what the registrar persists comes back
// whole after a restart — the owner, the listener and the digest username
// it answers a phone's NOTIFY challenge with.
func TestBindingsRoundTripTheStore(t *testing.T) {
	ctx := context.Background()
	cfg := Default()
	cfg.DataDir = t.TempDir()
	st, closeStore, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond)
	in := sip.Binding{AOR: "sip:1001@hq.test", Contact: "sip:1001@10.0.0.7:5060", CallID: "c1", CSeq: 7,
		Expires: exp, Q: "0.5", Source: "10.0.0.7:5060", Transport: "UDP", UserAgent: "VVX",
		Owner: sip.Owner{Kind: sip.OwnerSession, ID: "abc"}, Local: "10.0.0.1:5060", AuthUser: "s0123456789abcdef",
		Updated: exp}
	a := sipBindings{st: st}
	if err := a.SaveBindings(ctx, []sip.Binding{in}, nil); err != nil {
		t.Fatal(err)
	}
	out, err := a.LoadBindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("loaded %d bindings", len(out))
	}
	got := out[0]
	if got.AuthUser != in.AuthUser || got.Owner != in.Owner || got.Local != in.Local || got.Q != in.Q ||
		!got.Expires.Equal(in.Expires) || got.CSeq != in.CSeq {
		t.Errorf("loaded %+v\nsaved  %+v", got, in)
	}
}
