package daemon

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hotdesk/prov"
	"hotdesk/sip/media/vm"
)

// TestMediaFilesFollowRows: files never outlive their rows and rows never
// point to missing files. Left behind by a "crash" before start-up: an old
// message file and an old recording no row names, an unfinished greeting
// upload, and a greeting under a number nobody has; the start-up sweep
// removes them and keeps a file still being written. Once running, rows
// whose files vanish are removed by the sweep (the metrics count both),
// and disabling a user through the admin API removes their messages'
// rows, files and greeting.
func TestMediaFilesFollowRows(t *testing.T) {
	data := t.TempDir()
	old := time.Now().Add(-2 * time.Hour)
	write := func(rel string, aged bool) string {
		t.Helper()
		p := filepath.Join(data, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("RIFF"), 0o600); err != nil {
			t.Fatal(err)
		}
		if aged {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	orphanMsg := write("voicemail/1002/20261201T000000-0011223344556677.wav", true)
	writing := write("voicemail/1002/20261207T000000-8899aabbccddeeff.wav", false)
	tmp := write("voicemail/1002/greeting-123.tmp", true)
	stray := write("voicemail/9999/greeting.wav", false)
	orphanRec := write("recordings/20261201-000000-2-abcdef.wav", true)
	recording := write("recordings/20261207-000000-2-fedcba.wav", false)

	cfg := testConfig(t, data)
	cfg.SIP.Listen = append(cfg.SIP.Listen, "ws://127.0.0.1:0")
	cfg.SIP.WebRTC.RTPAddress, cfg.SIP.WebRTC.Loopback = "127.0.0.1", true
	cfg.SIP.Voicemail.Enabled, cfg.SIP.Voicemail.MediaAddress = true, "127.0.0.1"
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var a *app
	addrs, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	ctx := context.Background()
	gone := func(what, p string) {
		t.Helper()
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: still there (%v)", what, err)
		}
	}
	gone("an old message file without a row", orphanMsg)
	gone("an old unfinished greeting upload", tmp)
	gone("a greeting under a number nobody has", stray)
	gone("its mailbox directory", filepath.Dir(stray))
	gone("an old recording without a row", orphanRec)
	for _, p := range []string{writing, recording} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a file still being written was removed: %v", err)
		}
	}

	// Rows whose file vanished.
	bob, err := a.store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	msg := write("voicemail/1002/20261207T010000-0000000000000001.wav", false)
	if err := a.svc.voicemails.Deposit(ctx, "1002", "1001", msg, time.Second, 4); err != nil {
		t.Fatal(err)
	}
	rec := prov.Recording{UserID: bob.ID, CallID: "c1", Start: time.Now(), File: "20261207-010000-2-000000.wav"}
	if err := a.store.AddRecording(ctx, &rec); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(msg); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.mediaSweeper.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if ms, _ := a.svc.voicemails.List(ctx, bob.ID); len(ms) != 0 {
		t.Errorf("a message whose file vanished is still listed: %+v", ms)
	}
	if _, err := a.store.GetRecording(ctx, rec.ID); !errors.Is(err, prov.ErrNotFound) {
		t.Errorf("a recording whose file vanished: %v", err)
	}
	_, body := get(t, "http://"+addrs.Admin+"/metrics")
	for _, want := range []string{`hotdesk_media_orphan_files_removed_total{kind="voicemail"} 3`,
		`hotdesk_media_orphan_files_removed_total{kind="recording"} 1`,
		`hotdesk_media_orphan_rows_removed_total{kind="voicemail"} 1`,
		`hotdesk_media_orphan_rows_removed_total{kind="recording"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// Disabling carol takes her mailbox: rows, files, greeting.
	carol, err := a.store.GetUser(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	cmsg := write("voicemail/1003/20261207T020000-0000000000000002.wav", false)
	if err := a.svc.voicemails.Deposit(ctx, "1003", "1001", cmsg, time.Second, 4); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.voicemails.SetGreeting(ctx, carol.ID, vm.EncodeWAV(make([]int16, 800)), prov.Actor{Name: "user:carol"}); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", "http://"+addrs.Admin+"/api/v1/users/carol/disable", nil)
	req.SetBasicAuth("admin", "test-admin-pw")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("disabling carol = %d", res.StatusCode)
	}
	if ms, _ := a.svc.voicemails.List(ctx, carol.ID); len(ms) != 0 {
		t.Errorf("a disabled user's messages are still listed: %+v", ms)
	}
	gone("a disabled user's message", cmsg)
	gone("a disabled user's greeting", filepath.Join(data, "voicemail/1003/greeting.wav"))
	gone("a disabled user's mailbox directory", filepath.Join(data, "voicemail/1003"))
}
