package sip

import (
	"bufio"

	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const healthOptions = "OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/%s 127.0.0.1:5999;branch=z9hG4bK-health%d;rport\r\n" +
	"From: <sip:probe@hotdesk.test>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: health-%d\r\nCSeq: 1 OPTIONS\r\n" +
	"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"

// exchange sends one message and returns the status line of the answer ("" if none).
func exchange(t *testing.T, network, addr string, msg []byte, wait time.Duration) string {
	t.Helper()
	c, err := net.Dial(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return ""
	}
	c.SetReadDeadline(time.Now().Add(wait))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestRFC4475 sends every torture message over UDP and TCP: the server must
// stay up, answer the valid requests, and never accept an invalid one. Over
// UDP the answers go to the messages' own Via addresses (example.com hosts),
// so there the registrar's request counters tell what was answered; over
// TCP the answer comes back on the connection (when sipgo's stream framing
// delivers the message at all: several files carry bytes past their
// Content-Length, which a stream parser must treat as the next message, and
// sipgo v1.7.2's stream parser drops esc01, esc02, intmeth and mpart01
// over TCP although its datagram parser takes them).
func TestRFC4475(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	files, _ := filepath.Glob("testdata/rfc4475/*/*.dat")
	if len(files) < 49 {
		t.Fatalf("found %d torture files", len(files))
	}
	// Valid messages that are responses, not requests: nobody answers those.
	responses := map[string]bool{"noreason.dat": true, "unreason.dat": true}
	// badbranch is well-formed (RFC 4475 §3.2.1): answering it is right.
	acceptable := map[string]bool{"badbranch.dat": true}
	for _, network := range []string{"udp", "tcp"} {
		addr := e.udp
		if network == "tcp" {
			addr = e.tcp
		}
		for i, f := range files {
			name := filepath.Base(f)
			valid := strings.Contains(f, "/valid/")
			msg, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all0, ok0 := answered(t, e)
			wait := 100 * time.Millisecond
			if network == "tcp" {
				wait = 500 * time.Millisecond
			}
			got := exchange(t, network, addr, msg, wait)
			probe := fmt.Sprintf(healthOptions, strings.ToUpper(network), i, i)
			if got := exchange(t, network, addr, []byte(probe), 2*time.Second); got != "SIP/2.0 200 OK" {
				t.Fatalf("%s: server not answering after %s: %q", network, name, got)
			}
			all1, ok1 := answered(t, e)
			all, oks := all1-all0-1, ok1-ok0-1 // minus the probe
			t.Logf("%s %s %s → %q (answers %v, 2xx %v)", network, map[bool]string{true: "valid", false: "invalid"}[valid], name, got, all, oks)
			switch {
			case network == "udp" && valid && !responses[name] && all < 1 && got == "":
				t.Errorf("%s %s: valid request got no answer", network, name)
			case !valid && !acceptable[name] && (oks > 0 || strings.HasPrefix(got, "SIP/2.0 2")):
				t.Errorf("%s %s: invalid request accepted: %s", network, name, got)
			}
		}
	}
}

// answered sums the registrar's answers so far: all, and 2xx only.
func answered(t *testing.T, e *testEnv) (all, ok float64) {
	t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hotdesk_sip_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			all += v
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == "2xx" {
					ok += v
				}
			}
		}
	}
	return all, ok
}
