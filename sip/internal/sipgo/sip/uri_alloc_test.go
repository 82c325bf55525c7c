package sip

import (
	"strings"
	"testing"
)

// TestIsIPV6 covers the quick reject: hosts without a colon are never
// parsed, and the answers are those of a full parse.
func TestIsIPV6(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": false, "hotdesk.test": false, "::1": true,
		"2001:db8::1": true, "[::1]": false, "::ffff:127.0.0.1": false, "": false, "a:b": false} {
		if got := isIPV6(host); got != want {
			t.Errorf("isIPV6(%q) = %v, want %v", host, got, want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { isIPV6("127.0.0.1"); isIPV6("hotdesk.test") }); n != 0 {
		t.Errorf("%v allocations for hosts without a colon, want 0", n)
	}
}

// TestUriStringWriteNoParamString: a URI with parameters writes the same
// text as before (ToString) with two allocations fewer per URI: no
// parameter string, no host parse.
func TestUriStringWriteNoParamString(t *testing.T) {
	u := Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 5060,
		UriParams: HeaderParams{{K: "transport", V: "udp"}, {K: "lr", V: ""}, {K: "x", V: "a b"}}}
	want := "sip:bob@127.0.0.1:5060;" + u.UriParams.ToString(';')
	var b strings.Builder
	u.StringWrite(&b)
	if b.String() != want || want != `sip:bob@127.0.0.1:5060;transport=udp;lr;x="a b"` {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
	b.Grow(256)
	n := testing.AllocsPerRun(100, func() { b.Reset(); b.Grow(256); u.StringWrite(&b) })
	// Left: the buffer (Grow), the port (strconv.Itoa ≥ 100) and one in
	// the builder; before: 5.
	if n > 3 {
		t.Errorf("%v allocations per URI written, want at most 3", n)
	}
}
