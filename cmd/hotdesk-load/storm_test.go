package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/stats"
)

func stormArgs(f *fakeDaemon, extra ...string) []string {
	return append([]string{"-n", "12", "-target", f.prov.URL, "-admin", f.admin.URL, "-admin-pass", "secret",
		"-login-share", "0.5", "-hold", "250ms", "-refresh-every", "100ms", "-concurrency", "6",
		"-notify-wait", "5s", "-duration-cap", "40s", "-mac-prefix", "0004f3"}, extra...)
}

func TestStormAgainstFake(t *testing.T) {
	f := newFakeDaemon(t)
	js := filepath.Join(t.TempDir(), "out.json")
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"storm"}, stormArgs(f, "-json", js, "-alg", "SHA-256",
		"-split-port-share", "0.5", "-reboot-share", "0.34")...), &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	t.Log("\n" + out.String())
	if !strings.HasSuffix(strings.TrimSpace(out.String()), "errors: 0") {
		t.Fatalf("output does not end with errors: 0\n%s", out.String())
	}
	var s stats.Summary
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, st := range s.Steps {
		counts[st.Name] = st.Count
		if st.P50 > st.P90 || st.P90 > st.P99 || st.P99 > st.Max {
			t.Errorf("step %s percentiles not ordered: %+v", st.Name, st)
		}
	}
	want := map[string]int{"boot_fetch": 12, "device_register": 12, "login_api": 6, "login_to_notify": 6,
		"user_register": 6, "logout_to_notify": 6, "relock_register": 6, "logout_to_relocked": 6, "verify_refused": 6}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("step %s count = %d, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
	// Every login phone dropped its device line at login (accepted) and its
	// session line at logout (refused: the credentials are revoked), and
	// challenged both NOTIFYs; 3 of each 6 send from a split port, 2 of
	// each 6 reboot on check-sync.
	for k, v := range map[string]float64{"devices_registered": 12, "user_lines_registered": 6, "relocked": 6,
		"phones_left_unlocked": 0, "unregisters": 12, "unregisters_refused_401_403": 6, "notify_challenged": 12,
		"notify_refused_bad_digest": 0, "split_port_handsets": 6, "reboot_on_check_sync_handsets": 4,
		"requests_to_send_port_lost": 0} {
		if got, ok := s.Counters[k]; !ok || got != v {
			t.Errorf("figure %s = %v, want %v", k, got, v)
		}
	}
	if f.notifyAuth.Load() != 12 {
		t.Errorf("the phones challenged %d NOTIFYs, want 12", f.notifyAuth.Load())
	}
	if s.Marks["all_devices_registered"] <= 0 || s.Marks["all_users_registered"] <= 0 {
		t.Errorf("marks = %v", s.Marks)
	}
	if f.notifies.Load() != 12 {
		t.Errorf("fake sent %d NOTIFYs answered 200, want 12", f.notifies.Load())
	}
	if f.fallbacks.Load() == 0 {
		t.Error("no handset fell back to 000000000000.cfg")
	}
	if f.challenges.Load() == 0 {
		t.Error("no device file fetch was challenged: re-fetch did not exercise digest")
	}
}

// TestStormVendorMix: a storm of Polycom, Yealink and Cisco MPP handsets,
// 2:1:1, each fetching its vendor's files with its own User-Agent, taking
// its vendor's NOTIFY (Cisco: resync) and relocked after logout.
func TestStormVendorMix(t *testing.T) {
	f := newFakeDaemon(t)
	js := filepath.Join(t.TempDir(), "out.json")
	var out, errb bytes.Buffer
	args := stormArgs(f, "-json", js, "-vendor", "polycom:2, yealink,cisco:1", "-reboot-share", "0.34")
	args = slices.DeleteFunc(args, func(a string) bool { return a == "-mac-prefix" || a == "0004f3" })
	code := run(context.Background(), append([]string{"storm"}, args...), &out, &errb)
	t.Log("\n" + out.String())
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	var s stats.Summary
	b, err := os.ReadFile(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]float64{"devices_registered": 12, "user_lines_registered": 6, "relocked": 6,
		"phones_left_unlocked": 0, "handsets_polycom": 6, "handsets_yealink": 3, "handsets_cisco": 3,
		"devices_registered_polycom": 6, "devices_registered_yealink": 3, "devices_registered_cisco": 3,
		"user_lines_registered_polycom": 3, "notify_refused_bad_digest": 0} {
		if got, ok := s.Counters[k]; !ok || got != v {
			t.Errorf("figure %s = %v, want %v", k, got, v)
		}
	}
	if n := s.Counters["user_lines_registered_yealink"] + s.Counters["user_lines_registered_cisco"]; n != 3 {
		t.Errorf("Yealink and Cisco user lines %v, want 3", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	byVendor := map[string]int{}
	for mac, v := range f.vendorOf {
		byVendor[v]++
		if want := map[string]string{"polycom": "0004f3", "yealink": "001565", "cisco": "00562b"}[v]; mac[:6] != want {
			t.Errorf("%s handset with MAC %s, want its OUI %s", v, mac, want)
		}
	}
	if byVendor["polycom"] != 6 || byVendor["yealink"] != 3 || byVendor["cisco"] != 3 {
		t.Errorf("the fake served %v", byVendor)
	}
	if f.notifies.Load() != 12 {
		t.Errorf("fake sent %d NOTIFYs answered 200, want 12", f.notifies.Load())
	}
}

func TestVendorMixFlag(t *testing.T) {
	for spec, want := range map[string]string{"polycom": "", "yealink:3,cisco": "", "nokia": "unknown vendor",
		"polycom,polycom": "given twice", "cisco:0": "must be 1..100", "cisco:x": "must be 1..100", "": "unknown vendor"} {
		m, err := parseVendorMix(spec)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", spec, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
			t.Errorf("%q: err %v, want %q", spec, err, want)
		}
		if spec == "yealink:3,cisco" && (len(m.cycle) != 4 || m.of(3).Name != "cisco" || m.of(4).Name != "yealink") {
			t.Errorf("cycle %v", m.cycle)
		}
	}
}

// A daemon that forgets to revoke a session's credentials must be caught.
func TestStormCatchesLiveCredentialsAfterLogout(t *testing.T) {
	f := newFakeDaemon(t)
	f.keepCred = true
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"storm"}, stormArgs(f, "-n", "4")...), &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	if !strings.Contains(out.String(), "user_cred_still_accepted:") || !strings.Contains(out.String(), "errors: 2") {
		t.Fatalf("missing error kind\n%s", out.String())
	}
}

// The first daemon sent a logout's check-sync to the device account's
// binding only, which a logged-in phone had dropped: the phones stay
// unlocked and the storm must say so.
func TestStormCatchesNoNotifyAfterLogout(t *testing.T) {
	f := newFakeDaemon(t)
	f.notifyDeviceOnly = true
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"storm"}, stormArgs(f, "-n", "4", "-relock-notify-wait", "500ms",
		"-relock-wait", "1s")...), &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, out.String())
	}
	for _, want := range []string{"error relock_no_notify:", "phones_left_unlocked:                    2.0", "errors: 2"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("missing %q\n%s", want, out.String())
		}
	}
}

// A logout that sends check-sync but leaves the user's line in the device
// files (with live credentials) leaves the phone unlocked.
func TestStormCatchesNotRelocked(t *testing.T) {
	f := newFakeDaemon(t)
	f.keepCred, f.keepLine = true, true
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"storm"}, stormArgs(f, "-n", "4")...), &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "error relock_not_locked:") || !strings.Contains(out.String(), "errors: 2") {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
}

func TestStormNoDaemon(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"storm", "-n", "3", "-target", "http://127.0.0.1:1", "-duration-cap", "10s",
		"-src-cidr", "none"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "http_conn:") || !strings.Contains(out.String(), "errors: 3") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}

func TestRegisterWorkloadAgainstFake(t *testing.T) {
	f := newFakeDaemon(t)
	f.mu.Lock()
	f.creds["u1"], f.creds["u2"] = "p1", "p2"
	f.mu.Unlock()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"register", "-n", "50", "-sip", f.sipAddr, "-domain", "fake.lan",
		"-users", "u1:p1,u2:p2", "-user-count", "2", "-concurrency", "8", "-alg", "MD5"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "registrations_ok:                        50.0") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run(context.Background(), []string{"register", "-n", "3", "-sip", f.sipAddr, "-domain", "fake.lan",
		"-users", "u1:wrong", "-user-count", "1"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "sip_403:") {
		t.Fatalf("wrong password: exit %d\n%s", code, out.String())
	}
}

func TestFetchHTTP(t *testing.T) {
	f := newFakeDaemon(t)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"fetch", "-target", f.prov.URL, "-macs", "2", "-mac-prefix", "0004f3",
		"-mac-start", "2", "-n", "40", "-c", "4"}, &out, &errb)
	// MAC ...02 has a master, ...03 does not: half the fetches are 404.
	if code != 1 || !strings.Contains(out.String(), "http_404:") || !strings.Contains(out.String(), "errors: 20") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), nil, &out, &errb); code != 2 {
		t.Fatalf("no command: exit %d", code)
	}
	if code := run(context.Background(), []string{"bogus"}, &out, &errb); code != 2 {
		t.Fatalf("bogus: exit %d", code)
	}
	if code := run(context.Background(), []string{"storm", "-mac-prefix", "xyz"}, &out, &errb); code != 2 {
		t.Fatalf("bad prefix: exit %d", code)
	}
	_ = time.Second
}

// TestStormScale measures the tool itself against the in-process fake:
// HOTDESK_LOAD_SCALE=10000 go test -run TestStormScale -v ./cmd/hotdesk-load/
// (HOTDESK_LOAD_VENDOR=polycom,yealink,cisco for the vendor mix).
func TestStormScale(t *testing.T) {
	n := os.Getenv("HOTDESK_LOAD_SCALE")
	if n == "" {
		t.Skip("set HOTDESK_LOAD_SCALE=N to run the tool's own scale check")
	}
	f := newFakeDaemon(t)
	var out, errb bytes.Buffer
	args := stormArgs(f, "-n", n, "-login-share", "0.2",
		"-concurrency", "1000", "-hold", "2s", "-refresh-every", "1s", "-duration-cap", "110s")
	if v := os.Getenv("HOTDESK_LOAD_VENDOR"); v != "" {
		args = append(slices.DeleteFunc(args, func(a string) bool { return a == "-mac-prefix" || a == "0004f3" }), "-vendor", v)
	}
	code := run(context.Background(), append([]string{"storm"}, args...), &out, &errb)
	t.Log("\n" + out.String() + errb.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
}
