package prov_test

import (
	"testing"

	"hotdesk/prov"
)

func TestTrunkHostPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"sip.provider.test", "sip.provider.test:5060", true},
		{"sip:sip.provider.test:5080", "sip.provider.test:5080", true},
		{"10.0.0.1:5060", "10.0.0.1:5060", true},
		{"[2001:db8::1]:5061", "[2001:db8::1]:5061", true},
		{"[2001:db8::1]", "[2001:db8::1]:5060", true},
		{"2001:db8::1", "", false},
		{"sip:acct@carrier", "", false},
		{"host:99999", "", false},
		{"host name", "", false},
		{"", "", false},
	} {
		got, ok := prov.Trunk{Address: tc.in}.HostPort()
		if got != tc.want || ok != tc.ok {
			t.Errorf("HostPort(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}
