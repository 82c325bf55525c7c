package sip

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strings"
	"sync"
	"time"
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

// nonceLen is the raw nonce: 8 bytes issue time (unix ns), 8 bytes id, 12
// bytes MAC over those and the source the challenge went to.
const nonceLen = 28

// nonces issues self-authenticating nonces (no state per challenge) bound
// to the source (transport and IP) they were sent to, and
// tracks, per nonce actually used, the highest nonce-count seen so replays
// are refused. Use-state lives in two generations of NonceTTL each, so
// forgetting expired nonces is dropping a map.
type nonces struct {
	key      [32]byte
	macs     sync.Pool // of hash.Hash: HMAC-SHA256 keyed with key
	ttl      time.Duration
	shardCap int
	shards   [32]nonceShard
}

// maxTrackedNonces bounds the use-state (about 24 bytes each, so ~50 MB).
// When a shard is full a new nonce gets stale=true, i.e. a fresh challenge,
// until the generation rotates; only a client that passed digest
// verification reaches that point.
const maxTrackedNonces = 2_000_000

// nonceUse is the last use of a nonce: its nc and a hash of Call-ID+CSeq,
// so an exact retransmission is told from a replay.
type nonceUse struct {
	nc  uint32
	req uint32
}

type nonceShard struct {
	mu      sync.Mutex
	gen     int64
	cur     map[uint64]nonceUse
	prev    map[uint64]nonceUse
	counter uint64
}

func newNonces(ttl time.Duration) *nonces {
	n := &nonces{ttl: ttl, shardCap: maxTrackedNonces / 32}
	if _, err := rand.Read(n.key[:]); err != nil {
		panic("sip: crypto/rand failed: " + err.Error()) // cannot happen on Linux
	}
	n.macs.New = func() any { return hmac.New(sha256.New, n.key[:]) }
	for i := range n.shards {
		n.shards[i].cur = map[uint64]nonceUse{}
		n.shards[i].prev = map[uint64]nonceUse{}
		n.shards[i].counter = uint64(i)
	}
	return n
}

// issue returns a fresh nonce string for a challenge sent to src (see
// nonceSource): only a host that receives packets at src learns it, so a
// host spoofing src over UDP cannot present one.
func (n *nonces) issue(now time.Time, src string) string {
	var raw [nonceLen]byte
	binary.BigEndian.PutUint64(raw[0:8], uint64(now.UnixNano()))
	rand.Read(raw[8:16])
	var sum [sha256.Size]byte
	copy(raw[16:], n.mac(raw[:16], src, sum[:0]))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// nonceSource is what a nonce is bound to: the transport and IP address
// (not the port: a TCP phone reconnects from another port).
func nonceSource(transport, ip string) string {
	return strings.ToUpper(transport) + "|" + ip
}

// mac appends HMAC-SHA256(key, msg || 0 || src) to dst.
func (n *nonces) mac(msg []byte, src string, dst []byte) []byte {
	m := n.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(msg)
	m.Write([]byte{0})
	m.Write([]byte(src))
	dst = m.Sum(dst)
	n.macs.Put(m)
	return dst
}

// nonceState is the verdict on a nonce presented in credentials.
type nonceState int

const (
	nonceOK      nonceState = iota
	nonceInvalid            // not ours for this source (forged, issued to another source, or from before a restart)
	nonceExpired            // ours but older than ttl
	nonceReplay             // nc not above the last one seen
)

// parse checks the MAC (for the source src presenting it) and age of a
// nonce and returns its id and issue time.
func (n *nonces) parse(s, src string, now time.Time) (id uint64, issued time.Time, st nonceState) {
	var raw [nonceLen + 2]byte
	if base64.RawURLEncoding.EncodedLen(nonceLen) != len(s) {
		return 0, time.Time{}, nonceInvalid
	}
	k, err := base64.RawURLEncoding.Decode(raw[:], []byte(s))
	if err != nil || k != nonceLen {
		return 0, time.Time{}, nonceInvalid
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(n.mac(raw[:16], src, sum[:0])[:12], raw[16:28]) {
		return 0, time.Time{}, nonceInvalid
	}
	issued = time.Unix(0, int64(binary.BigEndian.Uint64(raw[0:8])))
	id = binary.BigEndian.Uint64(raw[8:16])
	if age := now.Sub(issued); age > n.ttl || age < -time.Minute {
		return id, issued, nonceExpired
	}
	return id, issued, nonceOK
}

// use records nc for the nonce id; nc==0 means "no qop": single use. The
// same nc with the same request hash is a retransmission, not a replay.
func (n *nonces) use(id uint64, issued, now time.Time, nc, req uint32) nonceState {
	s := &n.shards[id%uint64(len(n.shards))]
	ttl := int64(n.ttl)
	gen, igen := now.UnixNano()/ttl, issued.UnixNano()/ttl
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		if gen == s.gen+1 {
			s.prev, s.cur = s.cur, map[uint64]nonceUse{}
		} else {
			s.prev, s.cur = map[uint64]nonceUse{}, map[uint64]nonceUse{}
		}
		s.gen = gen
	}
	var m map[uint64]nonceUse
	switch igen {
	case gen:
		m = s.cur
	case gen - 1:
		m = s.prev
	default:
		return nonceExpired
	}
	last, seen := m[id]
	if seen && last.nc == nc && last.req == req {
		return nonceOK
	}
	if seen && (nc == 0 || nc <= last.nc) {
		return nonceReplay
	}
	if !seen && len(m) >= n.shardCap {
		return nonceExpired
	}
	m[id] = nonceUse{nc: nc, req: req}
	return nonceOK
}

// size returns the number of tracked nonces (for tests).
func (n *nonces) size() int {
	t := 0
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		t += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return t
}

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

// digestResponse computes the expected response (RFC 7616 §3.4.1, qop=auth
// or none).
func digestResponse(alg, ha1, method, uri, nonce, nc, cnonce, qop string) string {
	newH, _ := hashFor(alg)
	ha2 := hexHash(newH, method, uri)
	if qop == "" {
		return hexHash(newH, ha1, nonce, ha2)
	}
	return hexHash(newH, ha1, nonce, nc, cnonce, qop, ha2)
}

// equalHex compares two hex digests in constant time, case-insensitively.
func equalHex(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.ToLower(a)), []byte(strings.ToLower(b))) == 1
}
