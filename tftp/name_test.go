package tftp

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"
)

func TestCleanName(t *testing.T) {
	tests := []struct {
		raw, want string // want "" means refused
	}{
		{"0004f2123456.cfg", "0004f2123456.cfg"},
		{"/0004f2123456.cfg", "0004f2123456.cfg"},
		{"000000000000.cfg", "000000000000.cfg"},
		{"3111-40250-001.sip.ld", "3111-40250-001.sip.ld"},
		{"jdoe-directory.xml", "jdoe-directory.xml"},
		{"fw/5.9.0/sip.ld", "fw/5.9.0/sip.ld"},
		{"/etc/passwd", "etc/passwd"}, // one "/" stripped: relative to the namespace
		{"a+b~c@d=e,f_g", "a+b~c@d=e,f_g"},
		{"", ""},
		{"/", ""},
		{"//etc/passwd", ""},
		{"..", ""},
		{"../etc/passwd", ""},
		{"/../etc/passwd", ""},
		{"fw/../../etc/passwd", ""},
		{"fw/..", ""},
		{"./x.cfg", ""},
		{".hidden", ""},
		{"fw/.git/config", ""},
		{"fw//x", ""},
		{"fw/", ""},
		{"..\\..\\windows\\win.ini", ""},
		{"fw\\x.cfg", ""},
		{"C:x.cfg", ""},
		{"%2e%2e/etc/passwd", ""},
		{"..%2fetc", ""},
		{"\xc0\xae\xc0\xae/etc/passwd", ""}, // overlong UTF-8 "."
		{"\xef\xbc\x8e\xef\xbc\x8e/x", ""},  // fullwidth full stops
		{"x\u2215y", ""},                    // division slash
		{"caf\u00e9.cfg", ""},
		{"a\x00b", ""},
		{"a\nb", ""},
		{"a\x7fb", ""},
		{"a b.cfg", ""},
		{"~/x", "~/x"}, // no shell here: "~" is an ordinary name byte
		{strings.Repeat("a", 255), strings.Repeat("a", 255)},
		{strings.Repeat("a", 256), ""},
		{strings.Repeat("d/", 7) + "f", strings.Repeat("d/", 7) + "f"},
		{strings.Repeat("d/", 8) + "f", ""},
	}
	for _, tt := range tests {
		got, err := CleanName(tt.raw)
		if tt.want == "" {
			if err == nil || !errors.Is(err, ErrInvalidName) {
				t.Errorf("CleanName(%q) = %q, %v; want ErrInvalidName", tt.raw, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CleanName(%q) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
	}
}

// checkClean asserts what every accepted name satisfies.
func checkClean(t *testing.T, raw, name string) {
	t.Helper()
	if !fs.ValidPath(name) || name == "." {
		t.Fatalf("CleanName(%q) = %q: not a valid fs path", raw, name)
	}
	if name != raw && "/"+name != raw {
		t.Fatalf("CleanName(%q) = %q: changed more than one leading slash", raw, name)
	}
	if strings.Contains(name, "..") && strings.Contains("/"+name+"/", "/../") ||
		strings.ContainsAny(name, "\\%:\x00") || strings.HasPrefix(name, "/") {
		t.Fatalf("CleanName(%q) = %q: hostile", raw, name)
	}
	if again, err := CleanName(name); err != nil || again != name {
		t.Fatalf("CleanName not idempotent on %q: %q, %v", name, again, err)
	}
}

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"a.cfg", "/a.cfg", "//a", "../a", "a/./b", "a\\b", "%2e", "\xc0\xae", "a/b/c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := CleanName(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalidName) {
				t.Fatalf("CleanName(%q): error %v is not ErrInvalidName", raw, err)
			}
			return
		}
		checkClean(t, raw, name)
	})
}

// Hostile names sent on the wire never reach the FileSystem and all get
// the same "File not found" as a missing file.
func TestHostileNamesOnTheWire(t *testing.T) {
	fsys := newMemFS(map[string][]byte{"ok.cfg": []byte("ok")})
	ts := startServer(t, testConfig(), fsys, nil)
	names := []string{"../ok.cfg", "//ok.cfg", "a/../ok.cfg", "..\\ok.cfg", "%2e%2e/ok.cfg",
		"\xc0\xae\xc0\xae/ok.cfg", ".ok.cfg", "ok.cfg/", "ok\x01.cfg", strings.Repeat("x", 400), ""}
	for _, name := range names {
		for _, op := range []uint16{1, 2} {
			c := newRawClient(t, ts.addr)
			c.request(op, name)
			msg, ok := errorMessage(c.recv(2 * time.Second))
			want := map[uint16]string{1: msgNotFound, 2: msgAccess}[op]
			if !ok || msg != want {
				t.Errorf("op %d %q: got %q (error packet %v), want %q", op, name, msg, ok, want)
			}
		}
	}
	if seen := fsys.seenNames(); len(seen) != 0 {
		t.Errorf("FileSystem saw %q", seen)
	}
}

// FuzzRequest sends arbitrary datagrams to a live server: it must keep
// serving, and the FileSystem must only ever see clean names.
func FuzzRequest(f *testing.F) {
	for _, s := range []string{
		"\x00\x01ok.cfg\x00octet\x00",
		"\x00\x01../ok.cfg\x00octet\x00",
		"\x00\x01ok.cfg\x00netascii\x00blksize\x001468\x00tsize\x000\x00",
		"\x00\x02up.cfg\x00octet\x00tsize\x00999999999\x00",
		"\x00\x01ok.cfg",
		"\x00\x05\x00\x01boom\x00",
		"\x00\x01ok.cfg\x00octet\x00blksize\x00-1\x00windowsize\x00x\x00",
		"",
	} {
		f.Add([]byte(s))
	}
	fsys := newMemFS(map[string][]byte{"ok.cfg": []byte("ok")})
	cfg := testConfig()
	cfg.Timeout, cfg.Retries = 100*time.Millisecond, 1
	// Fuzzed requests that are never acknowledged linger 200 ms each.
	cfg.MaxTransfers, cfg.MaxTransfersPerClient = 65536, 65536
	cfg.MaxUnacknowledgedPerClient = 65536 // the reflection limit has its own test
	ts := startServer(f, cfg, fsys, nil)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		c := newRawClient(t, ts.addr)
		c.sendRaw(pkt)
		c.recv(20 * time.Millisecond) // whatever the answer, if any
		for _, name := range fsys.seenNames() {
			checkClean(t, name, name)
		}
		// Still serving?
		probe := newRawClient(t, ts.addr)
		probe.request(1, "ok.cfg")
		if p := probe.recv(2 * time.Second); len(p) < 4 || p[1] != 3 {
			t.Fatalf("after %q the server no longer answers: %q", pkt, p)
		}
		probe.ack(1)
	})
}
