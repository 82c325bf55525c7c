package provhttp

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"strings"
	"sync"
	"time"
)

// digestCreds is a parsed RFC 7616 Authorization: Digest header.
type digestCreds struct {
	Username, Realm, Nonce, URI, Response, Algorithm, QOP, NC, CNonce, Opaque string
}

// parseDigest parses the header; ok is false for anything else or a
// header missing the fields every answer needs.
func parseDigest(h string) (digestCreds, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Digest") || len(h) > 4096 {
		return digestCreds{}, false
	}
	var c digestCreds
	for rest = strings.TrimSpace(rest); rest != ""; {
		k, r, ok := strings.Cut(rest, "=")
		if !ok {
			return digestCreds{}, false
		}
		k = strings.ToLower(strings.TrimSpace(k))
		r = strings.TrimLeft(r, " ")
		var v string
		if strings.HasPrefix(r, `"`) {
			end := strings.IndexByte(r[1:], '"')
			if end < 0 {
				return digestCreds{}, false
			}
			v, r = r[1:1+end], r[2+end:]
		} else {
			end := strings.IndexByte(r, ',')
			if end < 0 {
				end = len(r)
			}
			v, r = strings.TrimSpace(r[:end]), r[end:]
		}
		switch k {
		case "username":
			c.Username = v
		case "realm":
			c.Realm = v
		case "nonce":
			c.Nonce = v
		case "uri":
			c.URI = v
		case "response":
			c.Response = strings.ToLower(v)
		case "algorithm":
			c.Algorithm = v
		case "qop":
			c.QOP = v
		case "nc":
			c.NC = v
		case "cnonce":
			c.CNonce = v
		case "opaque":
			c.Opaque = v
		}
		rest = strings.TrimLeft(strings.TrimSpace(r), ",")
		rest = strings.TrimSpace(rest)
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" || c.URI == "" {
		return digestCreds{}, false
	}
	if c.Algorithm == "" {
		c.Algorithm = "MD5"
	}
	if !strings.EqualFold(c.Algorithm, "MD5") && !strings.EqualFold(c.Algorithm, "SHA-256") {
		return digestCreds{}, false
	}
	return c, true
}

func newHash(alg string) hash.Hash {
	if strings.EqualFold(alg, "SHA-256") {
		return sha256.New()
	}
	return md5.New()
}

func hexHash(alg, s string) string {
	h := newHash(alg)
	h.Write([]byte(s))
	return hex.EncodeToString(h.Sum(nil))
}

// verify checks the response against ha1 for method; constant time.
func (c digestCreds) verify(method, ha1 string) bool {
	if ha1 == "" {
		return false
	}
	ha2 := hexHash(c.Algorithm, method+":"+c.URI)
	var want string
	switch c.QOP {
	case "auth":
		want = hexHash(c.Algorithm, ha1+":"+c.Nonce+":"+c.NC+":"+c.CNonce+":auth:"+ha2)
	case "":
		want = hexHash(c.Algorithm, ha1+":"+c.Nonce+":"+ha2) // RFC 2069 phones
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(c.Response)) == 1
}

// nonces are issue time + HMAC(key, time), so any node restart only
// makes phones re-authenticate once. The answers they carried are kept
// until they expire, so that a captured request cannot be replayed: an nc
// (or, for RFC 2069 phones that send none, a URI and response) is good once.
type nonces struct {
	key [32]byte
	ttl time.Duration
	now func() time.Time

	mu        sync.Mutex
	used      map[string]*nonceUse
	lastSweep time.Time
}

// nonceUse is what was answered with one nonce.
type nonceUse struct {
	issued time.Time
	seen   map[string]struct{}
}

// maxUsesPerNonce bounds one nonce's memory: a phone fetching more files
// than that with one nonce is asked to take a new one.
const maxUsesPerNonce = 1024

func newNonces(ttl time.Duration, now func() time.Time) *nonces {
	n := &nonces{ttl: ttl, now: now, used: map[string]*nonceUse{}}
	if _, err := rand.Read(n.key[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return n
}

func (n *nonces) make() string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(n.now().UnixNano()))
	m := hmac.New(sha256.New, n.key[:])
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errStale = errors.New("stale nonce")

// check returns nil for a fresh nonce we issued, errStale for an expired one.
func (n *nonces) check(s string) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 24 {
		return errors.New("bad nonce")
	}
	m := hmac.New(sha256.New, n.key[:])
	m.Write(b[:8])
	if !hmac.Equal(m.Sum(nil)[:16], b[8:]) {
		return errors.New("bad nonce")
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	if age := n.now().Sub(issued); age > n.ttl || age < -time.Minute {
		return errStale
	}
	return nil
}

// use records an answer that verified: ok false if the same answer came
// before (a replay); stale when the nonce has answered as many as it may
// for this user (the phone takes a new one). Kept per nonce and user, so
// nobody else's answers can use up a phone's.
func (n *nonces) use(c digestCreds) (ok, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(c.Nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	key := c.NC
	if c.QOP == "" {
		key = c.URI + " " + c.Response
	}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	if now.Sub(n.lastSweep) > n.ttl {
		for k, u := range n.used {
			if now.Sub(u.issued) > n.ttl+time.Minute {
				delete(n.used, k)
			}
		}
		n.lastSweep = now
	}
	id := c.Nonce + "\x00" + c.Username
	u := n.used[id]
	if u == nil {
		u = &nonceUse{issued: issued, seen: map[string]struct{}{}}
		n.used[id] = u
	}
	if _, dup := u.seen[key]; dup {
		return false, false
	}
	if len(u.seen) >= maxUsesPerNonce {
		return false, true
	}
	u.seen[key] = struct{}{}
	return true, false
}
