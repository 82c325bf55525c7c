// Package mailpittest runs a real SMTP server for tests: mailpit
// (github.com/axllent/mailpit, pinned below) on loopback ports, with its
// HTTP API to read what arrived. The binary is $MAILPIT_BIN, else mailpit
// on PATH, else installed once with `go install` into the user cache.
package mailpittest

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the mailpit release the tests run.
const Version = "v1.33.1"

// Server is one running mailpit.
type Server struct {
	Host string // SMTP host (127.0.0.1)
	Port int    // SMTP port
	API  string // http://127.0.0.1:port
}

var installMu sync.Mutex

// Binary returns the mailpit binary, installing it if needed.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MAILPIT_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	installMu.Lock()
	defer installMu.Unlock()
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	bin := filepath.Join(dir, "hotdesk-test", "mailpit-"+Version)
	p := filepath.Join(bin, "mailpit")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	cmd := exec.Command("go", "install", "github.com/axllent/mailpit@"+Version)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install mailpit@%s: %v\n%s", Version, err, out)
	}
	return p
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs mailpit until the test ends; extra are more mailpit flags
// (TLS, authentication).
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := Binary(t)
	var lastErr error
	// A port picked free can be taken before mailpit binds it: a few tries.
	for range 3 {
		smtpPort, httpPort := freePort(t), freePort(t)
		args := append([]string{"--smtp", "127.0.0.1:" + strconv.Itoa(smtpPort),
			"--listen", "127.0.0.1:" + strconv.Itoa(httpPort), "--database", filepath.Join(t.TempDir(), "mailpit.db"),
			"--smtp-disable-rdns", "--disable-version-check", "--quiet"}, extra...)
		cmd := exec.Command(bin, args...)
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start mailpit: %v", err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		s := &Server{Host: "127.0.0.1", Port: smtpPort, API: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
		if err := s.ready(exited); err != nil {
			_ = cmd.Process.Kill()
			<-exited
			lastErr = fmt.Errorf("%w\n%s", err, out.String())
			continue
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-exited
		})
		return s
	}
	t.Fatalf("mailpit did not start: %v", lastErr)
	return nil
}

// ready waits (at most 30 s) until both the API and SMTP answer.
func (s *Server) ready(exited chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("mailpit exited: %v", err)
		default:
		}
		resp, err := http.Get(s.API + "/readyz")
		if err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("tcp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), time.Second); err == nil {
				c.Close()
				if resp.StatusCode == http.StatusOK {
					return nil
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("mailpit not ready within 30 s")
}

// Summary is a message in the list.
type Summary struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
}

// Message is one message in full.
type Message struct {
	ID      string                     `json:"ID"`
	Subject string                     `json:"Subject"`
	Text    string                     `json:"Text"`
	HTML    string                     `json:"HTML"`
	From    struct{ Address string }   `json:"From"`
	To      []struct{ Address string } `json:"To"`
}

// Messages lists what arrived, newest first.
func (s *Server) Messages(t testing.TB) []Summary {
	t.Helper()
	var out struct {
		Messages []Summary `json:"messages"`
	}
	s.get(t, "/api/v1/messages?limit=1000", &out)
	return out.Messages
}

// To returns the messages sent to addr, newest first.
func (s *Server) To(t testing.TB, addr string) []Summary {
	var out []Summary
	for _, m := range s.Messages(t) {
		for _, a := range m.To {
			if strings.EqualFold(a.Address, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

// Message returns one message in full.
func (s *Server) Message(t testing.TB, id string) Message {
	t.Helper()
	var m Message
	s.get(t, "/api/v1/message/"+id, &m)
	return m
}

// Wait returns the n-th message (1: the first) sent to addr, waiting for it
// (at most 30 s): mail goes out in the background.
func (s *Server) Wait(t testing.TB, addr string, n int) Message {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if ms := s.To(t, addr); len(ms) >= n {
			return s.Message(t, ms[len(ms)-n].ID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no message %d to %s within 30 s (have %d)", n, addr, len(s.To(t, addr)))
	return Message{}
}

func (s *Server) get(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(s.API + path)
	if err != nil {
		t.Fatalf("mailpit API %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit API %s: %s", path, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit API %s: %v", path, err)
	}
}
