package sip

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
)

// hashFor returns the hash constructor of a digest algorithm name.
func hashFor(alg string) (func() hash.Hash, bool) {
	switch strings.ToUpper(alg) {
	case "", "MD5":
		return md5.New, true
	case "SHA-256":
		return sha256.New, true
	}
	return nil, false
}

// canonicalAlg maps the algorithm of a credential ("" means MD5) to a key.
func canonicalAlg(alg string) string {
	if strings.EqualFold(alg, "SHA-256") {
		return "SHA-256"
	}
	return "MD5"
}

func hexHash(newH func() hash.Hash, parts ...string) string {
	h := newH()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{':'})
		}
		h.Write([]byte(p))
	}
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// maxTrackedNonces bounds the nonce use-state (about 60 bytes an answer).
// When it is full a new answer gets stale=true, i.e. a fresh challenge,
// until the generation rotates; only a client that passed digest
// verification reaches that point.
const maxTrackedNonces = 2_000_000

// maxUsesPerNonce bounds the answers one user gives with one nonce (a
// phone re-registers with a fresh one well before).
const maxUsesPerNonce = 1024

// ha1Cache memoizes H(username:realm:password) keyed by everything it is
// derived from, so a changed or revoked password never hits a stale entry.
type ha1Cache struct {
	mu  sync.Mutex
	m   map[string]string
	max int
}

func newHA1Cache(max int) *ha1Cache { return &ha1Cache{m: map[string]string{}, max: max} }

func (c *ha1Cache) get(alg, user, realm, password string) string {
	key := alg + "\x00" + user + "\x00" + realm + "\x00" + password
	c.mu.Lock()
	v, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return v
	}
	newH, _ := hashFor(alg)
	v = hexHash(newH, user, realm, password)
	c.mu.Lock()
	if len(c.m) >= c.max {
		clear(c.m) // bounded: a full cache starts over
	}
	c.m[key] = v
	c.mu.Unlock()
	return v
}
