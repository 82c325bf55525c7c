package storetest

import (
	"errors"
	"testing"
	"time"

	"hotdesk/prov"
)

func testVoicemails(t *testing.T, s prov.Store) {
	site := prov.Site{Name: "hq"}
	must(t, s.CreateSite(ctx(t), &site))
	alice, bob := prov.User{Username: "alice", SiteID: site.ID}, prov.User{Username: "bob", SiteID: site.ID}
	must(t, s.CreateUser(ctx(t), &alice))
	must(t, s.CreateUser(ctx(t), &bob))
	a1 := prov.Voicemail{UserID: alice.ID, From: "1002", Path: "/data/vm/1001/a.wav", Duration: 2500 * time.Millisecond,
		Size: 40044, Created: T0}
	a2 := prov.Voicemail{UserID: alice.ID, From: "+4930123", Path: "/data/vm/1001/b.wav", Duration: time.Second,
		Size: 16044, Created: T0.Add(time.Minute)}
	b1 := prov.Voicemail{UserID: bob.ID, Path: "/data/vm/1003/c.wav", Size: 1000, Created: T0.Add(2 * time.Minute)}
	for _, v := range []*prov.Voicemail{&a1, &a2, &b1} {
		must(t, s.AddVoicemail(ctx(t), v))
		if v.ID == 0 {
			t.Fatal("AddVoicemail did not set ID")
		}
	}
	got, err := s.GetVoicemail(ctx(t), a1.ID)
	must(t, err)
	equal(t, "GetVoicemail", got, a1)
	list, err := s.ListVoicemails(ctx(t), alice.ID)
	must(t, err)
	equal(t, "ListVoicemails newest first", list, []prov.Voicemail{a2, a1})

	must(t, s.MarkVoicemailHeard(ctx(t), a1.ID, T0.Add(time.Hour)))
	must(t, s.MarkVoicemailHeard(ctx(t), a1.ID, T0.Add(2*time.Hour))) // the first listening counts
	got, err = s.GetVoicemail(ctx(t), a1.ID)
	must(t, err)
	if !got.Heard.Equal(T0.Add(time.Hour)) {
		t.Fatalf("heard at %v, want the first time", got.Heard)
	}
	wantErr(t, s.MarkVoicemailHeard(ctx(t), 99999, T0), prov.ErrNotFound)

	user, total, err := s.VoicemailBytes(ctx(t), alice.ID)
	must(t, err)
	if user != 40044+16044 || total != 40044+16044+1000 {
		t.Fatalf("VoicemailBytes = %d, %d", user, total)
	}
	old, err := s.VoicemailsBefore(ctx(t), T0.Add(90*time.Second), 10)
	must(t, err)
	if len(old) != 2 || old[0].ID != a1.ID || old[1].ID != a2.ID {
		t.Fatalf("VoicemailsBefore = %+v, want a1, a2", old)
	}
	if old, err = s.VoicemailsBefore(ctx(t), T0.Add(time.Hour), 1); err != nil || len(old) != 1 {
		t.Fatalf("VoicemailsBefore limit 1 = %d, %v", len(old), err)
	}

	must(t, s.DeleteVoicemail(ctx(t), a2.ID))
	wantErr(t, s.DeleteVoicemail(ctx(t), a2.ID), prov.ErrNotFound)
	if _, err := s.GetVoicemail(ctx(t), a2.ID); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("deleted message: %v", err)
	}
}
