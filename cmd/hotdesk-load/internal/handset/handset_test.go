package handset

import (
	"context"
	"fmt"
	"testing"

	"hotdesk/cmd/hotdesk-load/internal/sipua"
)

func TestKind(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{kerr("http_404_master", fmt.Errorf("x")), "http_404_master"},
		{fmt.Errorf("wrapped: %w", &sipua.StatusError{Status: 403}), "sip_403"},
		{fmt.Errorf("w: %w", sipua.ErrTimeout), "sip_timeout"},
		{context.DeadlineExceeded, "deadline"},
		{fmt.Errorf("?"), "other"},
	}
	for _, tc := range tests {
		if got := Kind(tc.err); got != tc.want {
			t.Errorf("Kind(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestNames(t *testing.T) {
	if got := sipUserAgent("FileTransport PolycomVVX-VVX_400-UA/6.4.0.0000 (SN:0004f3000001) Type/Application"); got != "PolycomVVX-VVX_400-UA/6.4.0.0000 (SN:0004f3000001)" {
		t.Errorf("sipUserAgent = %q", got)
	}
	for name, want := range map[string]string{"000000000000.cfg": "default_master", "0004f3000001.cfg": "master",
		"0004f3000001-hotdesk.cfg": "config", "sip.ld": "file"} {
		if got := kindOfName(name); got != want {
			t.Errorf("kindOfName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestSessionID(t *testing.T) {
	for body, want := range map[string]string{
		`{"id":"abc","door":"api"}`: "abc", `{"id":42}`: "42", `{"session":{"id":"s1"}}`: "s1",
		`{"data":{"id":7}}`: "7", `{"ok":true}`: "", `not json`: "", `[]`: "",
	} {
		if got := SessionID([]byte(body)); got != want {
			t.Errorf("SessionID(%s) = %q, want %q", body, got, want)
		}
	}
}
