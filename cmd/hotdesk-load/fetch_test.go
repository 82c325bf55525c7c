package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/pin/tftp/v3"
)

func TestFetchTFTP(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 5120)
	srv := tftp.NewServer(func(name string, rf io.ReaderFrom) error {
		if name != "phone5k.cfg" {
			return os.ErrNotExist
		}
		_, err := rf.ReadFrom(bytes.NewReader(body))
		return err
	}, nil)
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(conn) }()
	defer srv.Shutdown()
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"fetch", "-target", "tftp://" + conn.LocalAddr().String(),
		"-files", "phone5k.cfg", "-n", "50", "-c", "8"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "bytes:                                   256000.0") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run(context.Background(), []string{"fetch", "-target", "tftp://" + conn.LocalAddr().String(),
		"-files", "missing.cfg", "-n", "3", "-c", "1"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "errors: 3") {
		t.Fatalf("missing file: exit %d\n%s", code, out.String())
	}
}

func TestLoginWorkloadAgainstFake(t *testing.T) {
	f := newFakeDaemon(t)
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"login", "-admin", f.admin.URL, "-admin-pass", "secret", "-n", "20", "-c", "2",
		"-users", "alice,bob"}, &out, &errb)
	if code != 0 || !strings.Contains(out.String(), "cycles_ok:                               20.0") {
		t.Fatalf("exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	code = run(context.Background(), []string{"login", "-admin", f.admin.URL, "-admin-pass", "wrong", "-n", "2", "-c", "1"}, &out, &errb)
	if code != 1 || !strings.Contains(out.String(), "api_401:") {
		t.Fatalf("wrong admin password: exit %d\n%s", code, out.String())
	}
}

func TestUserSourceCSV(t *testing.T) {
	var u userSource
	if err := u.parseCSV("SEQUENTIAL\nu100000;[authentication username=u100000 password=pw00000x]\nu100001;[authentication username=u100001 password=pw00001x]\n"); err != nil {
		t.Fatal(err)
	}
	if n, p := u.user(1); n != "u100001" || p != "pw00001x" {
		t.Fatalf("sipp csv: %q %q", n, p)
	}
	if n, _ := u.user(2); n != "u100000" {
		t.Fatalf("does not cycle: %q", n)
	}
	var c userSource
	if err := c.parseCSV("user,password\nalice,a-pw\n"); err != nil {
		t.Fatal(err)
	}
	if n, p := c.user(0); n != "alice" || p != "a-pw" {
		t.Fatalf("plain csv: %q %q", n, p)
	}
	if err := (&userSource{}).parseCSV("SEQUENTIAL\n"); err == nil {
		t.Fatal("empty csv accepted")
	}
	pre := userSource{prefix: "u", start: 100000, passFmt: "pw{n}x"}
	if n, p := pre.user(3); n != "u100003" || p != "pw100003x" {
		t.Fatalf("prefix: %q %q", n, p)
	}
}

func TestHelpers(t *testing.T) {
	got := 0
	for i := 0; i < 1000; i++ {
		if chosen(i, 0.2) {
			got++
		}
	}
	if got != 200 || chosen(0, 0) || !chosen(5, 1) {
		t.Fatalf("chosen: %d of 1000 at 0.2", got)
	}
	if m := macFor("0004F3", 0x10); m != "0004f3000010" {
		t.Fatalf("macFor = %q", m)
	}
	s, err := newSrcAddrs("auto", "http://127.0.0.1:8080")
	if err != nil || s.addr(0) != "127.77.0.1" || s.addr(256) != "127.77.1.1" {
		t.Fatalf("auto: %v %q %q", err, s.addr(0), s.addr(256))
	}
	if s, _ := newSrcAddrs("auto", "http://10.1.2.3"); s.addr(0) != "" {
		t.Fatal("auto spread a non-loopback target")
	}
	if s, _ := newSrcAddrs("10.9.0.0/30", ""); s.addr(0) != "10.9.0.1" || s.addr(2) != "10.9.0.1" {
		t.Fatalf("/30 wraps: %q %q", s.addr(0), s.addr(2))
	}
	if _, err := newSrcAddrs("bogus", ""); err == nil {
		t.Fatal("bogus cidr accepted")
	}
}
