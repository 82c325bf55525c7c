package sip

import (
	"bytes"
	"slices"
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

// TestNumbersWrittenWithoutStrings: ports, CSeq numbers, Content-Length
// and parameter separators are written into a message buffer as before,
// without a string each (strconv.Itoa allocates from 100 on).
func TestNumbersWrittenWithoutStrings(t *testing.T) {
	u := Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 5190,
		UriParams: HeaderParams{{K: "transport", V: "udp"}, {K: "lr", V: ""}}}
	via := &ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.1", Port: 5060,
		Params: HeaderParams{{K: "branch", V: "z9hG4bK1"}, {K: "rport", V: "5161"}}}
	cseq := &CSeqHeader{SeqNo: 31337, MethodName: INVITE}
	cl := ContentLengthHeader(1300)
	write := func(b *bytes.Buffer) {
		u.StringWrite(b)
		via.StringWrite(b)
		cseq.StringWrite(b)
		cl.StringWrite(b)
	}
	var b bytes.Buffer
	write(&b)
	want := "sip:bob@127.0.0.1:5190;transport=udp;lr" + "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=5161" +
		"CSeq: 31337 INVITE" + "Content-Length: 1300"
	if b.String() != want {
		t.Fatalf("got  %q\nwant %q", b.String(), want)
	}
	var sb strings.Builder
	u.StringWrite(&sb)
	if sb.String() != "sip:bob@127.0.0.1:5190;transport=udp;lr" {
		t.Fatalf("strings.Builder: %q", sb.String())
	}
	b.Grow(1024)
	if n := testing.AllocsPerRun(100, func() { b.Reset(); write(&b) }); n != 0 {
		t.Errorf("%v allocations, want 0 (4 before: two ports, the CSeq number, Content-Length)", n)
	}
}

// TestViaParamsParsedInOneAllocation: a Via's parameters are parsed as
// before into a list allocated once (three parameters were three
// allocations, one per doubling of the list; two were two).
func TestViaParamsParsedInOneAllocation(t *testing.T) {
	tests := []struct {
		in   string
		want HeaderParams
	}{
		{"SIP/2.0/UDP 127.0.0.1:5190;branch=z9hG4bKhd1;rport=5190;received=127.0.0.1",
			HeaderParams{{"branch", "z9hG4bKhd1"}, {"rport", "5190"}, {"received", "127.0.0.1"}}},
		{"SIP/2.0/UDP 127.0.0.1:5161;rport;branch=z9hG4bK-1", HeaderParams{{"rport", ""}, {"branch", "z9hG4bK-1"}}},
		{"SIP/2.0/UDP 10.0.0.1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var h ViaHeader
			if err := parseViaHeader(tt.in, &h); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(h.Params, tt.want) {
				t.Fatalf("params %v, want %v", h.Params, tt.want)
			}
			n := testing.AllocsPerRun(100, func() { var h ViaHeader; parseViaHeader(tt.in, &h) })
			if want := min(len(tt.want), 1) + 1; n > float64(want) {
				t.Errorf("%v allocations per Via parsed, want at most %d (the header escapes)", n, want)
			}
		})
	}
}
