package provhttp

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
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
