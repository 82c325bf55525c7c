package tftp

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needTool skips when a peer client is missing; `make test` installs them
// (Debian packages curl and tftp-hpa).
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPED: %s not installed (apt-get install %s) — peer-client test not run", name, pkg)
	}
	return p
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func peerServer(t *testing.T) (*testServer, []byte) {
	body := pattern(200_000, 5)
	cfg := testConfig()
	cfg.MaxUploadBytes = 100_000
	fsys := newMemFS(map[string][]byte{"fw/sip.ld": body, "old.cfg": []byte("previous")})
	return startServer(t, cfg, fsys, nil), body
}

func TestCurl(t *testing.T) {
	curl := needTool(t, "curl", "curl")
	ts, body := peerServer(t)
	dir := t.TempDir()
	url := "tftp://" + ts.addr + "/"
	for _, blk := range []string{"512", "1468"} {
		out := filepath.Join(dir, "fw"+blk)
		if o, err := run(t, curl, "-sS", "--tftp-blksize", blk, "-o", out, url+"fw/sip.ld"); err != nil {
			t.Fatalf("curl get blksize %s: %v\n%s", blk, err, o)
		}
		if got, _ := os.ReadFile(out); !bytes.Equal(got, body) {
			t.Fatalf("curl get blksize %s: %d bytes, want %d identical", blk, len(got), len(body))
		}
	}
	// Exit 68 is CURLE_TFTP_NOTFOUND: the ERROR packet had code 1. (curl
	// 7.88's message for it is a misleading getpeername() line.)
	if o, err := run(t, curl, "-sS", "-o", filepath.Join(dir, "x"), url+"missing.cfg"); exitCode(err) != 68 {
		t.Errorf("curl get missing: err=%v out=%q, want exit 68 (TFTP not found)", err, o)
	}
	up := pattern(70_000, 6)
	src := filepath.Join(dir, "up.cfg")
	os.WriteFile(src, up, 0o600)
	if o, err := run(t, curl, "-sS", "-T", src, url+"0004f2000001-phone.cfg"); err != nil {
		t.Fatalf("curl -T: %v\n%s", err, o)
	}
	if got, _ := ts.fs.get("0004f2000001-phone.cfg"); !bytes.Equal(got, up) {
		t.Fatalf("curl -T committed %d bytes, want %d identical", len(got), len(up))
	}
	// curl announces tsize on uploads: refused before Create.
	big := filepath.Join(dir, "big.cfg")
	os.WriteFile(big, pattern(150_000, 7), 0o600)
	created, _ := ts.fs.counts()
	if o, err := run(t, curl, "-sS", "-T", big, url+"old.cfg"); err == nil {
		t.Errorf("curl -T oversized: succeeded, want failure\n%s", o)
	}
	if got, _ := ts.fs.get("old.cfg"); string(got) != "previous" {
		t.Errorf("oversized upload: old.cfg=%q, want previous", got)
	}
	if now, _ := ts.fs.counts(); now != created {
		t.Errorf("oversized upload with tsize: Create called %d times, want 0", now-created)
	}
}

func TestTftpHpa(t *testing.T) {
	tftp := needTool(t, "tftp", "tftp-hpa")
	ts, body := peerServer(t)
	host, port, _ := net.SplitHostPort(ts.addr)
	dir := t.TempDir()
	out := filepath.Join(dir, "fw")
	if o, err := run(t, tftp, "-m", "binary", host, port, "-c", "get", "fw/sip.ld", out); err != nil {
		t.Fatalf("tftp get: %v\n%s", err, o)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, body) {
		t.Fatalf("tftp get: %d bytes, want %d identical", len(got), len(body))
	}
	o, _ := run(t, tftp, "-m", "binary", host, port, "-c", "get", "../etc/passwd", filepath.Join(dir, "p"))
	if !strings.Contains(o, "Error code 1: File not found") {
		t.Errorf("tftp get ../etc/passwd: %q, want Error code 1: File not found", o)
	}
	up := pattern(60_000, 8)
	src := filepath.Join(dir, "up")
	os.WriteFile(src, up, 0o600)
	if o, err := run(t, tftp, "-m", "binary", host, port, "-c", "put", src, "jdoe-directory.xml"); err != nil {
		t.Fatalf("tftp put: %v\n%s", err, o)
	}
	waitFor(t, func() bool { _, ok := ts.fs.get("jdoe-directory.xml"); return ok })
	if got, _ := ts.fs.get("jdoe-directory.xml"); !bytes.Equal(got, up) {
		t.Fatalf("tftp put committed %d bytes, want %d identical", len(got), len(up))
	}
	// tftp-hpa sends no tsize: the oversized upload is cut at the limit.
	os.WriteFile(src, pattern(150_000, 9), 0o600)
	o, _ = run(t, tftp, "-m", "binary", host, port, "-c", "put", src, "old.cfg")
	if !strings.Contains(o, "Disk full or allocation exceeded") {
		t.Errorf("tftp put oversized: %q, want Disk full", o)
	}
	waitFor(t, func() bool { _, a := ts.fs.counts(); return a == 1 })
	if got, _ := ts.fs.get("old.cfg"); string(got) != "previous" {
		t.Errorf("oversized upload: old.cfg=%q, want previous", got)
	}
	if _, aborted := ts.fs.counts(); aborted != 1 {
		t.Errorf("oversized upload: aborted=%d, want 1", aborted)
	}
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}
