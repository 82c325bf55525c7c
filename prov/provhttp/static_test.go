package provhttp

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO (or any other non-regular file) in static_dir is never opened: an
// open blocks until a writer comes and pinned an OS thread per request, so a
// few hundred GETs exhausted the thread limit. It is answered 404 at once,
// next to a regular file that is served.
func TestFIFOInStaticDirIsNotOpened(t *testing.T) {
	forEachFront(t, func(t *testing.T, front string) {
		t.Parallel()
		dir := t.TempDir()
		if err := syscall.Mkfifo(filepath.Join(dir, "fw.ld"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "ok.ld"), []byte("firmware"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("fw.ld", filepath.Join(dir, "link.ld")); err != nil {
			t.Fatal(err)
		}
		e := newEnvOn(t, front, func(c *Config) { c.StaticDir = dir })
		client := &http.Client{Timeout: 10 * time.Second}
		for _, tc := range []struct {
			path string
			code int
			body string
		}{
			{"/fw.ld", http.StatusNotFound, ""},
			{"/link.ld", http.StatusNotFound, ""},
			{"/ok.ld", http.StatusOK, "firmware"},
		} {
			for range 20 {
				resp, err := client.Get(e.srv.URL + tc.path)
				if err != nil {
					t.Fatalf("GET %s: %v (the server blocked opening it)", tc.path, err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.code || tc.body != "" && string(b) != tc.body {
					t.Fatalf("GET %s = %d %q, want %d %q", tc.path, resp.StatusCode, b, tc.code, tc.body)
				}
			}
		}
	})
}
