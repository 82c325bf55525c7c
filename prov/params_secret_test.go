package prov

import (
	"strings"
	"testing"
)

// TestSecretParam: a name is secret when it holds "password" in any case,
// the same answer as lowering it first, non-ASCII names included.
func TestSecretParam(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"", false},
		{"reg.1.auth.password", true},
		{"device.auth.localAdminPassword", true},
		{"PASSWORD", true},
		{"x.PassWord.y", true},
		{"passwor", false},
		{"reg.1.auth.userId", false},
		{"pässword", false},
		{"Größe.password", true},
		{"\u212aey.password", true}, // Kelvin sign: lowered to k
	} {
		if got := SecretParam(tc.name); got != tc.want || got != strings.Contains(strings.ToLower(tc.name), "password") {
			t.Errorf("SecretParam(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}
