package prov_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
	"hotdesk/prov/store"
)

type mwiRecorder struct {
	mu  sync.Mutex
	got []string
}

func (m *mwiRecorder) MessageWaiting(_ context.Context, user string, n, o int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, user+":"+strconv.Itoa(n)+"/"+strconv.Itoa(o))
}

func (m *mwiRecorder) last() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.got) == 0 {
		return ""
	}
	return m.got[len(m.got)-1]
}

// TestVoicemailBudgetsRetentionAndOwnership runs the mailboxes on a real
// store and files: a message over the mailbox budget is refused, a user
// reaches only their own messages, reading marks heard, retention deletes
// old messages with their files, and every change tells message-waiting.
func TestVoicemailBudgetsRetentionAndOwnership(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, store.DefaultConfig(), t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	site := prov.Site{Name: "HQ", FeatureCodes: prov.FeatureCodes{Voicemail: "*97"}}
	if err := st.CreateSite(ctx, &site); err != nil {
		t.Fatal(err)
	}
	dir := prov.NewDirectory(st, nil, time.Now)
	for _, u := range []struct{ name, num string }{{"ann", "2001"}, {"ben", "2002"}} {
		if _, err := dir.CreateUser(ctx, prov.UserInput{Username: u.name, FirstName: u.name, LastName: "Test", Email: u.name + "@example.com", Language: "en", SiteID: site.ID, Password: u.name + "-password-1",
			SIPPassword: u.name + "-sip-secret", Numbers: []string{u.num}}); err != nil {
			t.Fatal(err)
		}
	}
	ann, _ := st.GetUser(ctx, "ann")
	ben, _ := st.GetUser(ctx, "ben")
	creds, err := prov.NewCredentials(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	vmDir := t.TempDir()
	mwi := &mwiRecorder{}
	v := prov.NewVoicemails(st, creds, prov.VoicemailConfig{Dir: vmDir, MaxUserBytes: 1000, MaxTotalBytes: 5000,
		Retention: 24 * time.Hour}, mwi, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), func() time.Time { return now })

	file := func(name string, size int) string {
		p := filepath.Join(vmDir, "2001", name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := file("a.wav", 600)
	if err := v.Deposit(ctx, "2001", "2002", first, time.Second, 600); err != nil {
		t.Fatal(err)
	}
	if got := mwi.last(); got != "2001:1/0" {
		t.Fatalf("message-waiting after a deposit = %q", got)
	}
	if err := v.Deposit(ctx, "2001", "2002", file("b.wav", 600), time.Second, 600); !errors.Is(err, prov.ErrMailboxFull) {
		t.Fatalf("a deposit over the mailbox budget = %v, want ErrMailboxFull", err)
	}
	if err := v.Deposit(ctx, "2001", "x", "/etc/passwd", time.Second, 10); !errors.Is(err, prov.ErrInvalid) {
		t.Fatalf("a deposit outside the voicemail directory = %v", err)
	}
	msgs, err := v.List(ctx, ann.ID)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("ann's messages: %v, %v", msgs, err)
	}
	id := msgs[0].ID
	// Ben reaches none of ann's messages, by phone or portal.
	if _, _, err := v.Open(ctx, ben.ID, id, prov.Actor{Name: "user:ben"}); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("ben opening ann's message = %v", err)
	}
	if err := v.DeleteFor(ctx, ben.ID, id, prov.Actor{Name: "user:ben"}); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("ben deleting ann's message = %v", err)
	}
	if err := v.Delete(ctx, "2002", id); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("ben's mailbox deleting ann's message = %v", err)
	}
	annOwner := prov.OwnerUser
	if mb, ok := v.MailboxOf(ctx, annOwner, strconv.FormatInt(ann.ID, 10), "2002"); ok {
		t.Fatalf("ann may watch ben's mailbox %q", mb)
	}
	if mb, ok := v.ListenCode(ctx, annOwner, strconv.FormatInt(ann.ID, 10), "*97"); !ok || mb != "2001" {
		t.Fatalf("ann's *97 = %q, %v", mb, ok)
	}
	f, _, err := v.Open(ctx, ann.ID, id, prov.Actor{Name: "user:ann"})
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got := mwi.last(); got != "2001:0/1" {
		t.Fatalf("message-waiting after listening = %q", got)
	}
	// A day later the message is past retention: row and file go.
	now = now.Add(25 * time.Hour)
	if err := v.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if msgs, _ := v.List(ctx, ann.ID); len(msgs) != 0 {
		t.Fatalf("messages past retention kept: %v", msgs)
	}
	if _, err := os.Stat(first); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the expired message's file: %v", err)
	}
	if got := mwi.last(); got != "2001:0/0" {
		t.Fatalf("message-waiting after retention = %q", got)
	}
}
