package storetest

import (
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
)

func testPasswordTokens(t *testing.T, s prov.Store) {
	u := fullUser("pw-link", 0)
	must(t, s.CreateUser(ctx(t), &u))

	tok := prov.PasswordToken{UserID: u.ID, Hash: "h1", Purpose: "welcome", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}
	must(t, s.CreatePasswordToken(ctx(t), &tok))
	if tok.ID == 0 {
		t.Fatal("CreatePasswordToken set no ID")
	}
	wantErr(t, s.CreatePasswordToken(ctx(t), &prov.PasswordToken{UserID: u.ID, Hash: "h1", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}),
		prov.ErrConflict)
	wantErr(t, s.CreatePasswordToken(ctx(t), &prov.PasswordToken{UserID: 999, Hash: "h9", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}),
		prov.ErrNotFound)
	got, err := s.PasswordTokenByHash(ctx(t), "h1")
	must(t, err)
	equal(t, "PasswordTokenByHash", got, tok)
	_, err = s.PasswordTokenByHash(ctx(t), "nope")
	wantErr(t, err, prov.ErrNotFound)

	// Expired at the moment of use: refused, and stays unspent.
	wantErr(t, s.UsePasswordToken(ctx(t), tok.ID, T0.Add(time.Hour)), prov.ErrNotFound)
	// Racing uses spend it exactly once.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { errs[i] = s.UsePasswordToken(ctx(t), tok.ID, T0.Add(time.Minute)) })
	}
	wg.Wait()
	ok := 0
	for _, e := range errs {
		if e == nil {
			ok++
		} else {
			wantErr(t, e, prov.ErrNotFound)
		}
	}
	equal(t, "uses that succeeded", ok, 1)
	got, err = s.PasswordTokenByHash(ctx(t), "h1")
	must(t, err)
	equal(t, "spent at", got.UsedAt, T0.Add(time.Minute))
	wantErr(t, s.UsePasswordToken(ctx(t), 999, T0), prov.ErrNotFound)

	// Spending a user's links spends every unspent one, and only theirs.
	v := fullUser("pw-other", 0)
	must(t, s.CreateUser(ctx(t), &v))
	a := prov.PasswordToken{UserID: u.ID, Hash: "h2", Purpose: "reset", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}
	b := prov.PasswordToken{UserID: v.ID, Hash: "h3", Purpose: "reset", CreatedAt: T0, ExpiresAt: T0.Add(time.Hour)}
	must(t, s.CreatePasswordToken(ctx(t), &a))
	must(t, s.CreatePasswordToken(ctx(t), &b))
	must(t, s.SpendPasswordTokens(ctx(t), u.ID, T0.Add(2*time.Minute)))
	wantErr(t, s.UsePasswordToken(ctx(t), a.ID, T0.Add(3*time.Minute)), prov.ErrNotFound)
	got, err = s.PasswordTokenByHash(ctx(t), "h1")
	must(t, err)
	equal(t, "an already spent link keeps its time", got.UsedAt, T0.Add(time.Minute))
	must(t, s.UsePasswordToken(ctx(t), b.ID, T0.Add(3*time.Minute)))

	// Links long expired go when a new one is made; recent ones stay.
	later := T0.Add(60 * 24 * time.Hour)
	c := prov.PasswordToken{UserID: u.ID, Hash: "h4", CreatedAt: later, ExpiresAt: later.Add(time.Hour)}
	must(t, s.CreatePasswordToken(ctx(t), &c))
	_, err = s.PasswordTokenByHash(ctx(t), "h1")
	wantErr(t, err, prov.ErrNotFound)
	_, err = s.PasswordTokenByHash(ctx(t), "h4")
	must(t, err)
}
