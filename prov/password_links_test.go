package prov_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

// outbox records what PasswordLinks queues; delivery through a real SMTP
// server is tested in mail and daemon.
type outbox struct {
	mu sync.Mutex
	m  []prov.Mail
}

func (o *outbox) Enqueue(m prov.Mail) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.m = append(o.m, m)
	return true
}

func (o *outbox) EnqueueWait(_ context.Context, m prov.Mail) error {
	o.Enqueue(m)
	return nil
}

func (o *outbox) sent() []prov.Mail {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]prov.Mail(nil), o.m...)
}

func secretOf(t *testing.T, m prov.Mail) string {
	t.Helper()
	u, err := url.Parse(m.Link)
	if err != nil || u.Path != prov.PasswordPath {
		t.Fatalf("link %q", m.Link)
	}
	return u.Query().Get("token")
}

func TestPasswordLinks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ev := &prov.Events{}
	dir := prov.NewDirectory(st, ev, clock)
	ob := &outbox{}
	links := prov.NewPasswordLinks(prov.LinksConfig{BaseURL: "https://pbx.example.test/", WelcomeTTL: 48 * time.Hour,
		ResetTTL: time.Hour}, prov.PasswordLinksDeps{Store: st, Directory: dir, Events: ev, Mailer: ob, Now: clock})
	u, err := dir.CreateUser(ctx, prov.UserInput{Username: "hans", FirstName: "Hans", LastName: "Huber",
		Email: "hans@example.test", Language: "de", Kind: prov.KindPerson, Password: "old-pass-1"})
	if err != nil {
		t.Fatal(err)
	}

	links.Welcome(ctx, u, prov.Actor{Kind: prov.ActorAdmin, Name: "root"})
	ms := ob.sent()
	if len(ms) != 1 || ms[0].Kind != prov.LinkWelcome || ms[0].Language != "de" || ms[0].To != u.Email ||
		ms[0].Name != "Hans Huber" || !ms[0].Expires.Equal(now.Add(48*time.Hour)) ||
		!strings.HasPrefix(ms[0].Link, "https://pbx.example.test/password?token=") {
		t.Fatalf("welcome: %+v", ms)
	}
	welcome := secretOf(t, ms[0])

	// The link expires: at its expiry it no longer works.
	now = now.Add(48 * time.Hour)
	if _, _, err := links.Check(ctx, welcome); !errors.Is(err, prov.ErrLinkExpired) {
		t.Fatalf("expired welcome: %v", err)
	}
	if _, err := links.SetPassword(ctx, welcome, "new-pass-1", "new-pass-1", ""); !errors.Is(err, prov.ErrLinkExpired) {
		t.Fatalf("set with an expired link: %v", err)
	}

	// Forgot: by e-mail address (any case); an unknown name sends nothing;
	// a second request within ForgotInterval sends nothing either.
	links.Forgot(ctx, "nobody", "192.0.2.1")
	links.Forgot(ctx, "HANS@example.test", "192.0.2.1")
	links.Forgot(ctx, "hans", "192.0.2.2")
	if ms = ob.sent(); len(ms) != 2 || ms[1].Kind != prov.LinkReset || !ms[1].Expires.Equal(now.Add(time.Hour)) {
		t.Fatalf("after forgot: %+v", ms)
	}
	reset := secretOf(t, ms[1])
	now = now.Add(prov.ForgotInterval)
	links.Forgot(ctx, "hans", "192.0.2.2")
	if ms = ob.sent(); len(ms) != 3 {
		t.Fatalf("forgot after the interval: %d messages", len(ms))
	}
	other := secretOf(t, ms[2])

	// The policy applies; a failed try does not spend the link.
	var fe *prov.FieldError
	if _, err := links.SetPassword(ctx, reset, "abc", "abc", ""); !errors.As(err, &fe) || fe.Field != "password" {
		t.Fatalf("short password: %v", err)
	}
	if _, err := links.SetPassword(ctx, reset, "new-pass-1", "other-pass", ""); !errors.As(err, &fe) || fe.Field != "confirm" {
		t.Fatalf("mismatch: %v", err)
	}
	if _, err := links.SetPassword(ctx, reset, "new-pass-1", "new-pass-1", "192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetUser(ctx, "hans")
	if err != nil {
		t.Fatal(err)
	}
	if !dir.Hasher().Verify(got.PasswordHash, "new-pass-1") {
		t.Fatal("password not set")
	}
	// Once only, and the user's other link is spent with it.
	for name, s := range map[string]string{"same": reset, "other": other} {
		if _, err := links.SetPassword(ctx, s, "third-pass-1", "third-pass-1", ""); !errors.Is(err, prov.ErrLinkUsed) {
			t.Fatalf("%s link after use: %v", name, err)
		}
	}
	if _, _, err := links.Check(ctx, "made-up"); !errors.Is(err, prov.ErrLinkInvalid) {
		t.Fatalf("made-up link: %v", err)
	}

	// A disabled user gets no link; mail off refuses.
	got.Status = prov.StatusDisabled
	if err := st.UpdateUser(ctx, &got); err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	links.Forgot(ctx, "hans", "192.0.2.3")
	if err := links.SendReset(ctx, "hans", prov.Actor{}); !errors.Is(err, prov.ErrDisabled) {
		t.Fatalf("reset for a disabled user: %v", err)
	}
	if n := len(ob.sent()); n != 3 {
		t.Fatalf("%d messages, want still 3", n)
	}
	off := prov.NewPasswordLinks(prov.LinksConfig{}, prov.PasswordLinksDeps{Store: st, Directory: dir, Events: ev})
	if err := off.SendReset(ctx, "hans", prov.Actor{}); !errors.Is(err, prov.ErrMailOff) || off.Enabled() {
		t.Fatalf("mail off: %v", err)
	}
}
