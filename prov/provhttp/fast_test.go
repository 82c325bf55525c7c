package provhttp

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestPlainPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"/0004f2000001-hotdesk.cfg", true},
		{"/prov/alice.cfg", true},
		{"/", true},
		{"", false},
		{"http://host/0004f2000001.cfg", false},
		{"/a.cfg?x=1", false},
		{"/a%2ecfg", false},
		{"/../etc/passwd", false},
		{"/a/./b.cfg", false},
		{"//a.cfg", false},
		{"/a\\b.cfg", false},
		{"/a b.cfg", false},
		{"/a\x7f.cfg", false},
		{"/a.cfg#x", false},
	} {
		if got := plainPath([]byte(tc.in)); got != tc.want {
			t.Errorf("plainPath(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestFrontEndsAnswerAlike: what the fast path answers by itself (a HEAD
// of a device's file: its length, no body) and what the fasthttp front
// end streams through the adaptor (a static file larger than it holds)
// are what net/http answers.
func TestFrontEndsAnswerAlike(t *testing.T) {
	t.Parallel()
	fw := bytes.Repeat([]byte("firmware"), 40<<10) // 320 KiB: streamed
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "sip.ld"), fw, 0o644); err != nil {
			t.Fatal(err)
		}
		e := newEnvOn(t, front, func(c *Config) { c.StaticDir = dir })
		if code, _ := e.do(t, "GET", "/"+mac+".cfg", "", nil); code != http.StatusOK {
			t.Fatalf("enrol: %d", code)
		}
		for _, tc := range []struct {
			method, path string
			body         []byte // nil: the GET's body, for a HEAD
		}{
			{"GET", "/sip.ld", fw},
			{"HEAD", "/sip.ld", nil},
			{"GET", "/" + mac + ".cfg", nil},
			{"HEAD", "/" + mac + ".cfg", nil},
		} {
			code, got := e.do(t, tc.method, tc.path, "", nil)
			req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
			resp, err := e.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			_, full := e.do(t, "GET", tc.path, "", nil)
			want := []byte(full)
			if tc.method == "HEAD" {
				want = nil
			} else if tc.body != nil && !bytes.Equal(tc.body, want) {
				t.Errorf("%s %s: %d bytes, want %d", tc.method, tc.path, len(want), len(tc.body))
			}
			if code != http.StatusOK || !bytes.Equal(b, want) || len(got) != len(want) {
				t.Errorf("%s %s: %d, %d bytes, want 200 and %d", tc.method, tc.path, code, len(b), len(want))
			}
			if cl := resp.Header.Get("Content-Length"); cl != strconv.Itoa(len(full)) {
				t.Errorf("%s %s: Content-Length %q, want %d", tc.method, tc.path, cl, len(full))
			}
		}
	})
}

// metricValue is the value of the counter name with exactly labels, or 0.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// TestFastFrontBadInputAndBrokenTransfers: on the phones' fasthttp
// listener a request it cannot read is answered 400 and counted, and a
// firmware download the phone abandons is counted by the bytes sent, not
// the file's size.
func TestFastFrontBadInputAndBrokenTransfers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fw := bytes.Repeat([]byte("firmware"), 4<<20) // 32 MiB: more than the sockets buffer
	if err := os.WriteFile(filepath.Join(dir, "sip.ld"), fw, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, frontFast, func(c *Config) { c.StaticDir = dir })
	host := strings.TrimPrefix(e.srv.URL, "http://")

	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("NOT A REQUEST\r\n\r\n"))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.Contains(line, " 400 ") {
		t.Fatalf("malformed request answered %q, want 400", line)
	}
	bad := map[string]string{"proto": "http", "kind": "other", "status": "400"}
	if n := metricValue(t, e.reg, "hotdesk_prov_requests_total", bad); n != 1 {
		t.Errorf("malformed requests counted %v, want 1", n)
	}

	sent := map[string]string{"proto": "http", "direction": "sent"}
	before := metricValue(t, e.reg, "hotdesk_prov_bytes_total", sent)
	static := map[string]string{"proto": "http", "kind": "static", "status": "200"}
	conn, err = net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = conn.Write([]byte("GET /sip.ld HTTP/1.1\r\nHost: x\r\n\r\n"))
	if _, err := io.ReadFull(conn, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).SetLinger(0) // the phone resets the connection mid-file
	conn.Close()
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(t, e.reg, "hotdesk_prov_requests_total", static) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the abandoned download was never counted")
		}
		time.Sleep(10 * time.Millisecond) // polled: fasthttp ends the stream when its write fails
	}
	if n := metricValue(t, e.reg, "hotdesk_prov_bytes_total", sent) - before; n <= 0 || n >= float64(len(fw)) {
		t.Errorf("abandoned download counted %v bytes sent, want some of the %d", n, len(fw))
	}
}
