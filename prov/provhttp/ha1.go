package provhttp

import (
	"sync"

	"hotdesk/prov/auth"
)

// maxCachedHA1 bounds the device HA1 cache: past it, it starts over.
const maxCachedHA1 = 1 << 17

// ha1Cache keeps each device's digest HA1s in prov.LoginRealm, the realm
// its files are challenged in, so an authenticated fetch hashes the
// answer, not the password again (issue 17: one MD5 of three per fetch).
// An entry holds the user and password it was computed from and is
// recomputed when they no longer match: a changed password is never
// verified against its old HA1.
type ha1Cache struct {
	realm string
	mu    sync.RWMutex
	m     map[string]ha1Entry // by MAC
}

type ha1Entry struct {
	user, password string
	md5, sha256    string // hex
}

func newHA1Cache(realm string) *ha1Cache {
	return &ha1Cache{realm: realm, m: map[string]ha1Entry{}}
}

// get returns the HA1 of user and password under alg ("MD5" or
// "SHA-256", algKey's), the device mac's.
func (c *ha1Cache) get(mac, user, password, alg string) string {
	c.mu.RLock()
	e, ok := c.m[mac]
	c.mu.RUnlock()
	if !ok || e.user != user || e.password != password {
		e = ha1Entry{user: user, password: password, md5: auth.DigestHA1("MD5", user, c.realm, password),
			sha256: auth.DigestHA1("SHA-256", user, c.realm, password)}
		c.mu.Lock()
		if len(c.m) >= maxCachedHA1 {
			clear(c.m)
		}
		c.m[mac] = e
		c.mu.Unlock()
	}
	if alg == "SHA-256" {
		return e.sha256
	}
	return e.md5
}
