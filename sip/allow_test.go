package sip

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestOptionsAllowListsWhatIsServed: the registrar alone allows REGISTER
// and OPTIONS; with the proxy on, OPTIONS and a 405 also list the methods
// the proxy routes, so a UA probing capabilities sees it may call.
func TestOptionsAllowListsWhatIsServed(t *testing.T) {
	t.Parallel()
	reg := startEnv(t, nil)
	px := startProxyEnv(t)
	for _, tc := range []struct {
		name, addr string
		want       []string
		not        []string
	}{
		{"registrar", reg.tcp, []string{"REGISTER", "OPTIONS"}, []string{"INVITE"}},
		{"proxy", px.tcp, []string{"REGISTER", "OPTIONS", "INVITE", "ACK", "CANCEL", "BYE", "REFER", "MESSAGE"}, nil},
	} {
		allow := allowHeader(t, tc.addr)
		for _, m := range tc.want {
			if !strings.Contains(allow, m) {
				t.Errorf("%s: Allow %q lacks %s", tc.name, allow, m)
			}
		}
		for _, m := range tc.not {
			if strings.Contains(allow, m) {
				t.Errorf("%s: Allow %q lists %s, which nobody serves", tc.name, allow, m)
			}
		}
	}
}

// allowHeader sends OPTIONS over TCP and returns the answer's Allow value.
func allowHeader(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, healthOptions, "TCP", 1, 1); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	status, _ := r.ReadString('\n')
	if !strings.HasPrefix(status, "SIP/2.0 200") {
		t.Fatalf("OPTIONS answered %q", status)
	}
	for {
		line, err := r.ReadString('\n')
		line = strings.TrimSpace(line)
		if err != nil || line == "" {
			t.Fatalf("no Allow header in the answer (%v)", err)
		}
		if name, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(name), "Allow") {
			return strings.TrimSpace(v)
		}
	}
}
