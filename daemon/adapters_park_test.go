package daemon

import "testing"

func TestParkAddr(t *testing.T) {
	for _, tc := range []struct {
		udp   []string
		media string
		want  string
	}{
		{[]string{"10.0.0.5:5060", "10.0.1.5:5060"}, "10.0.0.5", "10.0.0.5:5060"},
		{[]string{"0.0.0.0:5060"}, "10.0.0.5", "10.0.0.5:5060"},
		{[]string{"[::]:5070"}, "fd00::5", "[fd00::5]:5070"},
		{[]string{"0.0.0.0:5060"}, "", ""},
		{nil, "10.0.0.5", ""},
	} {
		if got := parkAddr(tc.udp, tc.media); got != tc.want {
			t.Errorf("parkAddr(%v, %q) = %q, want %q", tc.udp, tc.media, got, tc.want)
		}
	}
}
