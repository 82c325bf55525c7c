package provhttp

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestStaticRangesAndConditions: a phone resuming a firmware download or
// asking whether its image changed gets what http.ServeContent answers, on
// either front end, with a Content-Length (never a chunked body of unknown
// length), and the bytes sent counted as the range's.
func TestStaticRangesAndConditions(t *testing.T) {
	const size = 1 << 20
	fw := make([]byte, size)
	for i := range fw {
		fw[i] = byte(i * 7 / 5)
	}
	modified := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	later, earlier := modified.Add(time.Hour).Format(http.TimeFormat), modified.Add(-time.Hour).Format(http.TimeFormat)
	tests := []struct {
		name     string
		method   string
		header   map[string]string
		status   int
		body     []byte // nil: none
		crange   string
		fastOnly bool // net/http answers several ranges multipart
	}{
		{name: "one range over 64 KiB", header: map[string]string{"Range": "bytes=100000-899999"},
			status: 206, body: fw[100000:900000], crange: "bytes 100000-899999/1048576"},
		{name: "open range", header: map[string]string{"Range": "bytes=1000000-"},
			status: 206, body: fw[1000000:], crange: "bytes 1000000-1048575/1048576"},
		{name: "suffix range", header: map[string]string{"Range": "bytes=-100"},
			status: 206, body: fw[size-100:], crange: "bytes 1048476-1048575/1048576"},
		{name: "not modified", header: map[string]string{"If-Modified-Since": later}, status: 304},
		{name: "modified", header: map[string]string{"If-Modified-Since": earlier}, status: 200, body: fw},
		{name: "range past the end", header: map[string]string{"Range": "bytes=2000000-3000000"},
			status: 416, crange: "bytes */1048576"},
		{name: "stale If-Range gets the whole file", header: map[string]string{"Range": "bytes=0-9", "If-Range": earlier},
			status: 200, body: fw},
		{name: "precondition failed", header: map[string]string{"If-Unmodified-Since": earlier}, status: 412},
		{name: "HEAD of a range", method: "HEAD", header: map[string]string{"Range": "bytes=0-99999"},
			status: 206, crange: "bytes 0-99999/1048576"},
		{name: "several ranges get the whole file", header: map[string]string{"Range": "bytes=0-9,20-29"},
			status: 200, body: fw, fastOnly: true},
	}
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "sip.ld"), fw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(filepath.Join(dir, "sip.ld"), modified, modified); err != nil {
			t.Fatal(err)
		}
		e := newEnvOn(t, front, func(c *Config) { c.StaticDir = dir })
		for _, tc := range tests {
			if tc.fastOnly && front != frontFast {
				continue
			}
			t.Run(tc.name, func(t *testing.T) {
				method := tc.method
				if method == "" {
					method = "GET"
				}
				sent := map[string]string{"proto": "http", "direction": "sent"}
				before := metricValue(t, e.reg, "hotdesk_prov_bytes_total", sent)
				req, _ := http.NewRequest(method, e.srv.URL+"/sip.ld", nil)
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				resp, err := e.srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
				if got := resp.Header.Get("Content-Range"); got != tc.crange {
					t.Errorf("Content-Range %q, want %q", got, tc.crange)
				}
				if tc.body != nil && !bytes.Equal(b, tc.body) {
					t.Errorf("body: %d bytes, want %d of the file", len(b), len(tc.body))
				}
				if tc.body == nil && tc.status < 400 && len(b) != 0 {
					t.Errorf("body of %d bytes, want none", len(b))
				}
				if tc.body != nil && (len(resp.TransferEncoding) > 0 || resp.ContentLength != int64(len(tc.body))) {
					t.Errorf("framing: Transfer-Encoding %v, Content-Length %d; want a length of %d",
						resp.TransferEncoding, resp.ContentLength, len(tc.body))
				}
				if method == "HEAD" && tc.status == 206 && resp.ContentLength != 100000 {
					t.Errorf("HEAD Content-Length %d, want the range's 100000", resp.ContentLength)
				}
				if tc.body != nil {
					waitMetric(t, func() bool {
						return metricValue(t, e.reg, "hotdesk_prov_bytes_total", sent)-before == float64(len(tc.body))
					}, "the bytes sent counted as the answer's")
				}
			})
		}
		t.Run("curl resumes a download", func(t *testing.T) {
			if _, err := exec.LookPath("curl"); err != nil {
				t.Fatal("curl is needed (installed by .ci/install-deps.sh)")
			}
			part := filepath.Join(t.TempDir(), "sip.ld")
			if err := os.WriteFile(part, fw[:300000], 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("curl", "-sS", "-f", "-C", "-", "-o", part, e.srv.URL+"/sip.ld").CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			got, _ := os.ReadFile(part)
			if !bytes.Equal(got, fw) {
				t.Fatalf("resumed file: %d bytes, differs from the image", len(got))
			}
			ranged := map[string]string{"proto": "http", "kind": "static", "status": strconv.Itoa(http.StatusPartialContent)}
			if n := metricValue(t, e.reg, "hotdesk_prov_requests_total", ranged); n == 0 {
				t.Error("the resumed download was not counted as a 206")
			}
		})
	})
}

// waitMetric polls cond: fasthttp counts a streamed body once it has
// written it, after the client read the last byte.
func waitMetric(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
