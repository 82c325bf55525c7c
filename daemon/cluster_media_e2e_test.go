package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/sip/media/vm"
	"hotdesk/sip/media/vm/vmtest"
)

// TestClusterVoicemailAudioOnEveryNode: bob uploads a greeting through
// n2's API; alice, on n1, calls bob (no phone of his is registered) and
// n1's voicemail plays that greeting and records her message. n1 stops
// and its voicemail directory is lost; n2's API still serves the message
// byte for byte (from the store), and bob's phone registered on n2 hears
// it on *97. A delete through n2 removes the stored audio; disabling bob
// removes his greeting's; stored audio no row names is swept.
func TestClusterVoicemailAudioOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	nodes := startClusterWith(t, 2, func(c *Config) {
		c.SIP.Voicemail.Enabled, c.SIP.Voicemail.MediaAddress = true, "127.0.0.1"
	})
	n1, n2 := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), 3*settleTimeout)
	defer cancel()
	bobUser, err := n2.a.store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	bobID := fmt.Sprint(bobUser.ID)

	// Bob's greeting, through n2.
	base2 := "http://" + n2.addrs.Admin
	web2 := browser(t)
	if code, _ := signIn(t, web2, base2, "bob", "bob-demo"); code != http.StatusSeeOther {
		t.Fatalf("bob's sign-in on n2 = %d", code)
	}
	list := func() myVoicemailAPI {
		t.Helper()
		code, body := fetch(t, web2, "GET", base2+"/api/v1/me/voicemail", nil)
		var v myVoicemailAPI
		if code != 200 || json.Unmarshal([]byte(body), &v) != nil {
			t.Fatalf("GET /api/v1/me/voicemail on n2 = %d %s", code, body)
		}
		return v
	}
	csrf := list().CSRF
	greetingPCM := vmtest.Ramp(800, 3)
	if code, body := callJSON(t, web2, "PUT", base2+"/api/v1/me/voicemail/greeting", csrf,
		string(vm.EncodeWAV(greetingPCM))); code != http.StatusNoContent {
		t.Fatalf("PUT greeting on n2 = %d %s", code, body)
	}

	// Alice, on n1, leaves bob a message; n1 plays the greeting n2 stored.
	alice := newVMPhone(t, n1.addrs.SIPUDP[0], "1001")
	if code := alice.register(t, "1001", "1001", "alice-sip", 600); code != 200 {
		t.Fatalf("alice REGISTER on n1 = %d", code)
	}
	peer, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	alice.dial(t, ctx, "1002", "1001", "alice-sip", peer)
	// The greeting (100 ms) and the beep (200 ms): 15 frames.
	got := peer.Received(15, settleTimeout)
	if len(got) < 15 || !slices.EqualFunc(got[:5], vm.PCMUFrames(greetingPCM), bytes.Equal) {
		t.Fatalf("alice heard %d frames on n1, not the greeting bob stored through n2", len(got))
	}
	msg := vmtest.Ramp(50*160, 7)
	if err := peer.Send(vm.PCMUFrames(msg)); err != nil {
		t.Fatal(err)
	}
	if err := peer.Digit('#'); err != nil {
		t.Fatal(err)
	}
	select {
	case <-alice.byes:
	case <-ctx.Done():
		t.Fatal("voicemail on n1 did not hang up after #")
	}
	var msgs []prov.Voicemail
	waitFor(t, "bob's message row", func() bool {
		msgs, err = n2.a.store.ListVoicemails(ctx, bobUser.ID)
		return err == nil && len(msgs) == 1
	})
	recorded, err := os.ReadFile(msgs[0].Path) // n1's file
	if err != nil || !strings.HasPrefix(msgs[0].Path, n1.a.cfg.DataDir) {
		t.Fatalf("the message's file on n1 (%s): %v", msgs[0].Path, err)
	}
	name := filepath.Base(filepath.Dir(msgs[0].Path)) + "/" + filepath.Base(msgs[0].Path)
	if o, err := n2.a.store.GetMedia(ctx, prov.MediaVoicemail, name); err != nil || o.Size != int64(len(recorded)) {
		t.Fatalf("stored message: %+v, %v; want %d bytes", o, err, len(recorded))
	}

	// n1 goes, and its disk with it.
	if err := n1.stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(n1.a.cfg.DataDir, "voicemail")); err != nil {
		t.Fatal(err)
	}
	audio := fmt.Sprintf("%s/api/v1/me/voicemail/%d/audio", base2, msgs[0].ID)
	code, body := fetch(t, web2, "GET", audio, nil)
	if code != 200 || body != string(recorded) {
		t.Fatalf("the message through n2 with n1 gone = %d, %d bytes; want 200, the %d bytes n1 recorded",
			code, len(body), len(recorded))
	}
	// A ranged read, as the portal's audio player makes.
	req, _ := http.NewRequest("GET", audio, nil)
	req.Header.Set("Range", "bytes=44-1043")
	if res, err := web2.Do(req); err != nil || res.StatusCode != http.StatusPartialContent {
		t.Fatalf("ranged read = %v, %v", res, err)
	} else {
		b := make([]byte, 2000)
		n, _ := res.Body.Read(b)
		for n < 1000 {
			k, err := res.Body.Read(b[n:])
			n += k
			if err != nil {
				break
			}
		}
		res.Body.Close()
		if !bytes.Equal(b[:n], recorded[44:1044]) {
			t.Fatalf("ranged read: %d bytes, not the recording's", n)
		}
	}

	// Bob's phone on n2 hears it: n2's copy is removed first, so the
	// player's comes from the store too.
	if err := os.RemoveAll(filepath.Join(n2.a.cfg.DataDir, "voicemail", "1002")); err != nil {
		t.Fatal(err)
	}
	bob := newVMPhone(t, n2.addrs.SIPUDP[0], "1002")
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER on n2 = %d", code)
	}
	peer2, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer peer2.Close()
	bob.dial(t, ctx, "*97", "1002", "bob-sip", peer2)
	got = peer2.Received(55, settleTimeout) // a 100 ms beep, then the message
	if len(got) < 55 || !slices.EqualFunc(got[5:55], vm.PCMUFrames(msg), bytes.Equal) {
		t.Fatalf("bob heard %d frames on n2, not alice's message recorded on n1", len(got))
	}
	if err := peer2.Digit('9'); err != nil { // keep it
		t.Fatal(err)
	}
	select {
	case <-bob.byes:
	case <-ctx.Done():
		t.Fatal("voicemail on n2 did not hang up after the last message")
	}
	if n := counterOf(t, n2, "hotdesk_media_shared_fetches_total", "kind", "voicemail", "result", "ok"); n != 2 {
		t.Fatalf("n2 copied the message from the store %v times, want 2 (the API, then the phone)", n)
	}

	// Delete through n2: the stored audio goes with the row.
	if code, body := callJSON(t, web2, "DELETE", fmt.Sprintf("%s/api/v1/me/voicemail/%d", base2, msgs[0].ID), csrf, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE the message on n2 = %d %s", code, body)
	}
	if _, err := n2.a.store.GetMedia(ctx, prov.MediaVoicemail, name); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("stored message after the delete: %v, want ErrNotFound", err)
	}
	if _, err := n2.a.store.MediaChunk(ctx, prov.MediaVoicemail, name, 0); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("stored chunk after the delete: %v, want ErrNotFound", err)
	}

	// Stored audio no row names (a crash between the two) is swept once
	// past the grace period; a recent one is left (its row may follow).
	old := time.Now().Add(-time.Hour)
	if _, err := n2.a.store.PutMedia(ctx, prov.MediaVoicemail, "1002/lost.wav", strings.NewReader("RIFF"), old); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.a.store.PutMedia(ctx, prov.MediaVoicemail, "1002/new.wav", strings.NewReader("RIFF"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := n2.a.svc.mediaSweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := n2.a.store.GetMedia(ctx, prov.MediaVoicemail, "1002/lost.wav"); !errors.Is(err, prov.ErrNotFound) {
		t.Fatalf("stored audio without a row after the sweep: %v", err)
	}
	if _, err := n2.a.store.GetMedia(ctx, prov.MediaVoicemail, "1002/new.wav"); err != nil {
		t.Fatalf("recent stored audio after the sweep: %v", err)
	}
	if n := counterOf(t, n2, "hotdesk_media_orphan_stored_removed_total", "kind", "voicemail"); n != 1 {
		t.Fatalf("hotdesk_media_orphan_stored_removed_total{voicemail} = %v, want 1", n)
	}

	// Disabling bob takes his greeting's stored audio.
	if code, body := n2.api(t, "POST", "/users/bob/disable", ""); code/100 != 2 {
		t.Fatalf("disable bob = %d %v", code, body)
	}
	waitFor(t, "bob's stored greeting removed", func() bool {
		_, err := n2.a.store.GetMedia(ctx, prov.MediaGreeting, bobID)
		return errors.Is(err, prov.ErrNotFound)
	})
}

type myVoicemailAPI struct {
	Greeting bool   `json:"greeting"`
	CSRF     string `json:"csrf_token"`
}

// counterOf is a node's counter with the given label pairs (0: none yet).
func counterOf(t *testing.T, nd *clusterNode, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := nd.a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestClusterDeskRecordingOnEveryNode: carol's desk phone calls bob's on
// n1, which records the call (bob's number is recorded); n1 stops and its
// recordings directory is lost; bob downloads the recording through n2's
// API, byte for byte what n1 wrote.
func TestClusterDeskRecordingOnEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	nodes := startClusterWith(t, 2, func(c *Config) {
		c.SIP.Listen = append(c.SIP.Listen, "ws://127.0.0.1:0")
		c.SIP.WebRTC.RTPAddress, c.SIP.WebRTC.Loopback = "127.0.0.1", true
		c.SIP.WebRTC.RecordNumbers = []string{"1002"}
	})
	n1, n2 := nodes[0], nodes[1]
	ctx := context.Background()
	bob, carol := newRTPPhone(t, n1.addrs.SIPUDP[0]), newRTPPhone(t, n1.addrs.SIPUDP[0])
	for _, p := range []struct {
		ph        *rtpPhone
		num, pass string
	}{{bob, "1002", "bob-sip"}, {carol, "1003", "carol-sip"}} {
		if code := p.ph.register(t, p.num, p.num, p.pass, 600); code != 200 {
			t.Fatalf("%s REGISTER on n1 = %d", p.num, code)
		}
	}
	bob.counting.Store(1)
	carol.counting.Store(129)
	s, err := carol.callAs("1002", "1003", "carol-sip")
	if err != nil {
		t.Fatal(err)
	}
	inv := recvReq(t, bob.invites, "carol's INVITE at bob's phone")
	bob.learn(t, inv.Body())
	carol.learn(t, s.InviteResponse.Body())
	if !eventually(func() bool { return bob.got.Load() >= 50 && carol.got.Load() >= 50 }) {
		t.Fatalf("through n1's bridge bob got %d packets, carol %d", bob.got.Load(), carol.got.Load())
	}
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	recvReq(t, bob.byes, "BYE at bob's phone")
	u, err := n2.a.store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	var recs []prov.Recording
	waitFor(t, "bob's recording", func() bool { recs, _ = n2.a.store.ListRecordings(ctx, u.ID, 0); return len(recs) == 1 })
	wav, err := os.ReadFile(filepath.Join(n1.a.cfg.DataDir, "recordings", recs[0].File))
	if err != nil {
		t.Fatal(err)
	}
	if err := n1.stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(n1.a.cfg.DataDir, "recordings")); err != nil {
		t.Fatal(err)
	}

	u.Portal.Recordings = prov.AccessWrite
	if err := n2.a.store.UpdateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	base2 := "http://" + n2.addrs.Admin
	web2 := browser(t)
	if code, _ := signIn(t, web2, base2, "bob", "bob-demo"); code != http.StatusSeeOther {
		t.Fatalf("bob's sign-in on n2 = %d", code)
	}
	code, body := fetch(t, web2, "GET", fmt.Sprintf("%s/api/v1/me/recordings/%d/audio?download=1", base2, recs[0].ID), nil)
	if code != 200 || body != string(wav) {
		t.Fatalf("the recording through n2 with n1 gone = %d, %d bytes; want 200, the %d bytes n1 wrote",
			code, len(body), len(wav))
	}
	if n := counterOf(t, n2, "hotdesk_media_shared_fetches_total", "kind", "recording", "result", "ok"); n != 1 {
		t.Fatalf("n2 copied the recording from the store %v times, want 1", n)
	}
}
