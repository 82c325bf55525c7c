package provhttp

import (
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/auth"
)

// TestHA1CacheFollowsPassword: the cached HA1 is the one of the device's
// current user and password, in either algorithm; a changed password (or
// user) is hashed again, never verified against the old HA1.
func TestHA1CacheFollowsPassword(t *testing.T) {
	t.Parallel()
	c := newHA1Cache(prov.LoginRealm)
	for i, tc := range []struct {
		mac, user, password, alg string
	}{
		{mac, mac, "first", "MD5"},
		{mac, mac, "first", "SHA-256"},
		{mac, mac, "first", "MD5"}, // from the cache
		{mac, mac, "rotated", "MD5"},
		{mac, mac, "rotated", "SHA-256"},
		{mac, "renamed", "rotated", "MD5"},
		{"0004f2000002", "0004f2000002", "first", "MD5"},
		{mac, mac, "first", "MD5"}, // back: hashed again
	} {
		want := auth.DigestHA1(tc.alg, tc.user, prov.LoginRealm, tc.password)
		if got := c.get(tc.mac, tc.user, tc.password, tc.alg); got != want {
			t.Errorf("step %d (%s %s %s): %s, want %s", i, tc.user, tc.password, tc.alg, got, want)
		}
	}
}
