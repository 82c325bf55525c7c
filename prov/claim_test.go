package prov_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
)

// claimManager is a Manager over st (the fixture's store, or a wrapper).
func claimManager(f *fixture, st prov.Store) *prov.Manager {
	return prov.NewManager(prov.ManagerDeps{Store: st, Directory: prov.NewDirectory(f.st, nil, f.clk.now),
		Sessions: f.ss, Events: &prov.Events{}, Logger: slog.New(slog.DiscardHandler), Now: f.clk.now})
}

// assignForClaim assigns the fixture's first phone to alice: it waits for
// its deployment PIN.
func assignForClaim(t *testing.T, m *prov.Manager) prov.Assignment {
	t.Helper()
	as, err := m.AssignDevice(context.Background(), prov.AssignInput{MAC: "00000000000d", Username: "alice",
		Kind: prov.DeviceManaged}, prov.Actor{Kind: prov.ActorAdmin, Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// TestClaimPINsCannotBeBruteForced is the attack of a host on the LAN
// guessing deployment PINs through the claim door with many fake phones
// and parallel requests, then from many hosts: only the limit's worth of
// guesses is ever checked.
func TestClaimPINsCannotBeBruteForced(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	m := claimManager(f, f.st)
	as := assignForClaim(t, m)
	guess := func(mac, remote string, i int) error {
		pin := fmt.Sprintf("%08d", i)
		if pin == as.DeploymentPIN {
			pin = fmt.Sprintf("%08d", i+1)
		}
		_, err := m.ClaimByPIN(ctx, mac, pin, "", remote)
		return err
	}
	count := func(errs []error) (checked, refused int) {
		for _, err := range errs {
			switch {
			case errors.Is(err, prov.ErrAuth):
				checked++
			case errors.Is(err, prov.ErrLocked):
				refused++
			default:
				t.Fatalf("guess: %v", err)
			}
		}
		return
	}
	// One host, 50 parallel guesses, each from a fresh fake phone.
	errs := make([]error, 50)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { errs[i] = guess(fmt.Sprintf("0004f2ee%04d", i), "10.9.0.1", i) })
	}
	wg.Wait()
	if checked, _ := count(errs); checked > 5 {
		t.Fatalf("%d parallel guesses from one host were checked, limit 5", checked)
	}
	// Many hosts, one guess each: the global budget holds.
	errs = errs[:0]
	for i := range 100 {
		errs = append(errs, guess(fmt.Sprintf("0004f2ef%04d", i), fmt.Sprintf("10.9.1.%d", i), 1000+i))
	}
	if checked, refused := count(errs); checked > 20 || refused == 0 {
		t.Fatalf("distributed guesses: %d checked, %d refused; at most the burst (20) may be checked", checked, refused)
	}
	// The right PIN, typed on the real phone, works once the budget refills.
	f.clk.add(time.Minute)
	if d, err := m.ClaimByPIN(ctx, "00000000000e", as.DeploymentPIN, "", "10.9.2.1"); err != nil || d.AssignedUserID == 0 {
		t.Fatalf("the real claim after the attack: %+v, %v", d, err)
	}
}

// markedWhileRead is a store on which the phone registers (and is marked
// deployed) right after the claim has read its device row.
type markedWhileRead struct {
	prov.Store
	once *sync.Once
	at   time.Time
}

func (s markedWhileRead) GetDevice(ctx context.Context, mac string) (prov.Device, error) {
	d, err := s.Store.GetDevice(ctx, mac)
	if err == nil {
		s.once.Do(func() { _, err = s.Store.MarkDeployed(ctx, d.ID, s.at, "10.0.0.5") })
	}
	return d, err
}

// TestClaimKeepsWhatThePhoneWroteMeanwhile: the user types the deployment
// PIN on a phone that is registering; the registration's "deployed" lands
// between the claim's read and its write, and the claim must not undo it.
func TestClaimKeepsWhatThePhoneWroteMeanwhile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	as := assignForClaim(t, claimManager(f, f.st))
	racing := claimManager(f, markedWhileRead{f.st, &sync.Once{}, f.clk.now()})
	if _, err := racing.ClaimByPIN(ctx, "00000000000d", as.DeploymentPIN, "", "10.0.0.5"); err != nil {
		t.Fatal(err)
	}
	d, _ := f.st.GetDevice(ctx, "00000000000d")
	if d.Status != prov.DeviceDeployed || d.LastIP != "10.0.0.5" || d.AssignedUserID == 0 || d.DeploymentPIN != "" {
		t.Fatalf("after the claim: status %s, last IP %q, user %d, deployment PIN %q; want deployed, 10.0.0.5, assigned, none",
			d.Status, d.LastIP, d.AssignedUserID, d.DeploymentPIN)
	}
}

// TestDeviceEditKeepsWhatThePhoneWroteMeanwhile: an admin saves a phone's
// settings while it registers; the registration's "deployed" lands between
// the edit's read and its write, and the edit must not undo it. Approving a
// deployed phone again is refused rather than silently kept.
func TestDeviceEditKeepsWhatThePhoneWroteMeanwhile(t *testing.T) {
	t.Parallel()
	f := newFixture(t, openPolicy)
	ctx := context.Background()
	admin := prov.Actor{Kind: prov.ActorAdmin, Name: "test"}
	racing := claimManager(f, markedWhileRead{f.st, &sync.Once{}, f.clk.now()})
	model := "VVX 450"
	got, err := racing.UpdateDevice(ctx, "00000000000d", prov.DevicePatch{Model: &model}, admin)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := f.st.GetDevice(ctx, "00000000000d")
	if d.Status != prov.DeviceDeployed || d.LastIP != "10.0.0.5" || d.Model != model {
		t.Fatalf("after the edit: status %s, last IP %q, model %q; want deployed, 10.0.0.5, %s", d.Status, d.LastIP,
			d.Model, model)
	}
	if got.Status != d.Status || !got.LastSeen.Equal(d.LastSeen) {
		t.Errorf("the edit answered status %s, last seen %v; stored %s, %v", got.Status, got.LastSeen, d.Status, d.LastSeen)
	}
	approve := prov.DeviceNotDeployed
	_, err = racing.UpdateDevice(ctx, "00000000000d", prov.DevicePatch{Status: &approve}, admin)
	var fe *prov.FieldError
	if !errors.As(err, &fe) || fe.Field != "status" {
		t.Fatalf("approving a deployed phone: %v, want a status field error", err)
	}
}
