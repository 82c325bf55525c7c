// Package digestserver is the server side of HTTP/SIP digest
// authentication (RFC 7616, RFC 3261 §22) that the SIP registrar and the
// HTTP provisioning server share: self-authenticating nonces with an
// expiry, bound to the source they were sent to, and a replay guard per
// (nonce, user) that answers stale when a nonce has been used as much as
// it may. Answers are parsed in place with github.com/icholy/digest's
// grammar and checked as its Digest computes them, by one parser and one
// check for both (Answer). It imports no hotdesk package, so both rooms
// may use it.
package digestserver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash"
	"hash/maphash"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/icholy/digest"
)

// ErrMalformed is returned for an Authorization value that is not a
// usable Digest answer.
var ErrMalformed = errors.New("malformed digest credentials")

// maxHeader bounds what is parsed: no real answer comes near it.
const maxHeader = 4096

// Parse is ParseAnswer returning icholy/digest's Credentials (FuzzParse
// holds it to icholy/digest's ParseCredentials); the values are slices of
// h unless quoted with escapes.
func Parse(h string) (*digest.Credentials, error) {
	var a Answer
	if err := ParseAnswer(h, &a); err != nil {
		return nil, err
	}
	return &digest.Credentials{Username: a.Username, Realm: a.Realm, Nonce: a.Nonce, URI: a.URI,
		Response: a.Response, Algorithm: a.Algorithm, Cnonce: a.Cnonce, Opaque: a.Opaque, QOP: a.QOP, Nc: a.Nc,
		Userhash: a.Userhash}, nil
}

// Verify reports whether c answers with the password whose
// H(username:realm:password) is ha1, for method: Answer's check, with the
// nc formatted as icholy/digest's Digest hashes it (%08x).
func Verify(c *digest.Credentials, method, ha1 string) bool {
	a := Answer{URI: c.URI, Nonce: c.Nonce, Response: c.Response, Algorithm: c.Algorithm, Cnonce: c.Cnonce,
		QOP: c.QOP, Nc: c.Nc}
	var digits [16]byte
	n := strconv.AppendUint(digits[:0], uint64(c.Nc), 16)
	var buf [24]byte
	nc := append(append(buf[:0], "00000000"[min(len(n), 8):]...), n...)
	var h [2 * sha512.Size]byte
	return verify(&a, nc, method, append(h[:0], ha1...))
}

// Challenge formats a WWW-Authenticate value offering qop="auth" (RFC 7616
// §3.3), by hand: it is on every registration's path, and
// icholy/digest's formatter costs a dozen allocations (the tests parse it
// back with icholy/digest).
func Challenge(realm, nonce, alg string, stale bool) string {
	var b strings.Builder
	b.Grow(len(realm) + len(nonce) + 80)
	b.WriteString(`Digest realm="`)
	b.WriteString(realm)
	b.WriteString(`", nonce="`)
	b.WriteString(nonce)
	b.WriteString(`", algorithm=`)
	b.WriteString(alg)
	b.WriteString(`, qop="auth"`)
	if stale {
		b.WriteString(", stale=true")
	}
	return b.String()
}

// State is the verdict on a nonce or on one use of it.
type State int

const (
	OK      State = iota
	Invalid       // not ours for this source: forged, issued to another source, or from before a restart
	Expired       // ours but too old, or used as much as it may: answer stale=true
	Replay        // this answer was given before
)

func (s State) String() string {
	return [...]string{"ok", "invalid", "expired", "replay"}[s]
}

// nonceLen is the raw nonce: 8 bytes issue time (unix ns), 8 bytes id, 12
// bytes MAC over those and the source the challenge went to.
const nonceLen = 28

// Nonces issues self-authenticating nonces (no state per challenge) bound
// to the source they were sent to, and remembers, per nonce and user, the
// answers given with it so none is accepted twice. Use-state lives in two
// generations of the TTL each, so forgetting expired nonces is dropping a
// map.
type Nonces struct {
	key      [32]byte
	macs     sync.Pool // of *macState: HMAC-SHA256 keyed with key
	seed     maphash.Seed
	ttl      time.Duration
	shardCap int
	perNonce uint32
	shards   [32]shard
}

// Nonce is a nonce that passed Check.
type Nonce struct {
	ID     uint64
	Issued time.Time
}

type useKey struct{ id, user, answer uint64 }
type userKey struct{ id, user uint64 }

type generation struct {
	// answers are the answers not kept in their user's runs (those with a
	// request, without an nc, or past ncRuns runs) → the request each
	// answered (retransmissions).
	answers map[useKey]uint64
	uses    map[userKey]ncUse
}

// ncUse is one user's use of one nonce: how many answers, and the nc
// values given, as runs of consecutive values. A phone counts its nc up
// by one, so its answers extend one run: checking and recording one is a
// lookup and an overwrite of this entry, where an entry per answer made
// the map grow with every request (issue 17: every provisioning fetch).
type ncUse struct {
	count   uint32
	n       uint8 // runs in use
	spilled bool  // some of this user's answers are in answers
	runs    [ncRuns]ncRun
}

// ncRuns bounds the runs per user and nonce: clients with a counter per
// connection or thread interleave a few; past that answers go to the map.
const ncRuns = 4

type ncRun struct{ lo, hi uint32 }

// has reports whether nc was given.
func (u *ncUse) has(nc uint32) bool {
	for _, r := range u.runs[:u.n] {
		if r.lo <= nc && nc <= r.hi {
			return true
		}
	}
	return false
}

// add records nc (not given before) in a run: false when it extends none
// and every run is in use.
func (u *ncUse) add(nc uint32) bool {
	for i := range u.runs[:u.n] {
		r := &u.runs[i]
		switch {
		case r.hi != ^uint32(0) && nc == r.hi+1:
			r.hi = nc
			u.merge(i, nc+1, true)
			return true
		case r.lo != 0 && nc == r.lo-1:
			r.lo = nc
			u.merge(i, nc-1, false)
			return true
		}
	}
	if int(u.n) == len(u.runs) {
		return false
	}
	u.runs[u.n] = ncRun{nc, nc}
	u.n++
	return true
}

// merge joins run i, just extended, with the run starting (after) or
// ending (before) at next, if any: runs never touch, so has and add see
// each value once.
func (u *ncUse) merge(i int, next uint32, after bool) {
	for j := range u.runs[:u.n] {
		o := u.runs[j]
		if j == i || after && o.lo != next || !after && o.hi != next {
			continue
		}
		r := &u.runs[i]
		r.lo, r.hi = min(r.lo, o.lo), max(r.hi, o.hi)
		u.n--
		u.runs[j] = u.runs[u.n]
		return
	}
}

func newGeneration() generation {
	return generation{answers: map[useKey]uint64{}, uses: map[userKey]ncUse{}}
}

type shard struct {
	mu        sync.Mutex
	gen       int64
	cur, prev generation
}

// New returns nonces valid for ttl. maxTracked bounds the answers
// remembered (about 60 bytes each) and perNonce the answers one user may
// give with one nonce; past either the nonce is stale, so a client gets a
// fresh one, and only a client that passed verification reaches that.
func New(ttl time.Duration, maxTracked, perNonce int) *Nonces {
	n := &Nonces{ttl: ttl, shardCap: max(1, maxTracked/32), perNonce: uint32(perNonce), seed: maphash.MakeSeed()}
	if _, err := rand.Read(n.key[:]); err != nil {
		panic("digestserver: crypto/rand failed: " + err.Error()) // cannot happen on Linux
	}
	n.macs.New = func() any {
		return &macState{h: hmac.New(sha256.New, n.key[:]), in: make([]byte, 0, 64), sum: make([]byte, 0, sha256.Size)}
	}
	for i := range n.shards {
		n.shards[i].cur, n.shards[i].prev = newGeneration(), newGeneration()
	}
	return n
}

// Source is what a nonce is bound to: the transport and IP address (not
// the port: a TCP phone reconnects from another port).
func Source(transport, ip string) string {
	return strings.ToUpper(transport) + "|" + ip
}

// Issue returns a fresh nonce for a challenge sent to src: only a host
// that receives packets at src learns it, so a host spoofing src over UDP
// cannot present one.
func (n *Nonces) Issue(now time.Time, src string) string {
	var raw [nonceLen]byte
	binary.BigEndian.PutUint64(raw[0:8], uint64(now.UnixNano()))
	rand.Read(raw[8:16])
	var sum [sha256.Size]byte
	copy(raw[16:], n.mac(raw[:16], src, sum[:0]))
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// macState is a pooled HMAC with the scratch its input and sum pass
// through: slices handed to a hash.Hash escape, so stack buffers would be
// allocated per call (nonces are checked on every digest answer).
type macState struct {
	h   hash.Hash
	in  []byte
	sum []byte
}

// mac appends HMAC-SHA256(key, msg || 0 || src) to dst.
func (n *Nonces) mac(msg []byte, src string, dst []byte) []byte {
	m := n.macs.Get().(*macState)
	m.h.Reset()
	m.in = append(append(append(m.in[:0], msg...), 0), src...)
	m.h.Write(m.in)
	m.sum = m.h.Sum(m.sum[:0])
	dst = append(dst, m.sum...)
	if cap(m.in) <= 1024 { // a pathological source is not kept
		n.macs.Put(m)
	}
	return dst
}

// Check verifies the MAC of nonce s for the source src presenting it and
// its age: OK, Invalid or Expired.
func (n *Nonces) Check(s, src string, now time.Time) (Nonce, State) {
	var raw [nonceLen + 2]byte
	var enc [(nonceLen*8 + 5) / 6]byte // copied, not converted: []byte(s) of this size allocates
	if len(enc) != len(s) {
		return Nonce{}, Invalid
	}
	copy(enc[:], s)
	k, err := base64.RawURLEncoding.Decode(raw[:], enc[:])
	if err != nil || k != nonceLen {
		return Nonce{}, Invalid
	}
	var sum [sha256.Size]byte
	if !hmac.Equal(n.mac(raw[:16], src, sum[:0])[:12], raw[16:28]) {
		return Nonce{}, Invalid
	}
	nc := Nonce{ID: binary.BigEndian.Uint64(raw[8:16]), Issued: time.Unix(0, int64(binary.BigEndian.Uint64(raw[0:8])))}
	if age := now.Sub(nc.Issued); age > n.ttl || age < -time.Minute {
		return nc, Expired
	}
	return nc, OK
}

// AnswerKey turns a string identifying an answer (for clients that send no
// nc) into an answer key that no nc equals.
func (n *Nonces) AnswerKey(s string) uint64 {
	return maphash.String(n.seed, s) | 1<<63
}

// Use records that user answered with the nonce: answer identifies the
// answer (its nc, or AnswerKey of what identifies it), req the request it
// answered. The same answer again is a Replay, unless req is not 0 and
// the same (a retransmission of that request: OK). Expired when the nonce
// is too old or used up for this user.
func (n *Nonces) Use(nonce Nonce, user string, answer, req uint64, now time.Time) State {
	uk := userKey{nonce.ID, maphash.String(n.seed, user)}
	k := useKey{uk.id, uk.user, answer}
	s := &n.shards[nonce.ID%uint64(len(n.shards))]
	ttl := int64(n.ttl)
	gen, igen := now.UnixNano()/ttl, nonce.Issued.UnixNano()/ttl
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen != s.gen {
		if gen == s.gen+1 {
			s.prev, s.cur = s.cur, newGeneration()
		} else {
			s.prev, s.cur = newGeneration(), newGeneration()
		}
		s.gen = gen
	}
	var g generation
	switch igen {
	case gen:
		g = s.cur
	case gen - 1:
		g = s.prev
	default:
		return Expired
	}
	u, known := g.uses[uk]
	// An nc without a request to tell retransmissions by is kept in the
	// user's runs; anything else in answers.
	nc, isNC := uint32(answer), req == 0 && answer != 0 && answer <= math.MaxUint32
	if isNC && u.has(nc) {
		return Replay
	}
	if !isNC || u.spilled {
		if last, seen := g.answers[k]; seen {
			if req != 0 && last == req {
				return OK
			}
			return Replay
		}
	}
	if u.count >= n.perNonce {
		return Expired
	}
	inRun := isNC && u.add(nc) // u is a copy: stored below only if accepted
	if (!known || !inRun) && len(g.answers)+len(g.uses) >= n.shardCap {
		return Expired
	}
	if !inRun {
		g.answers[k] = req
		u.spilled = true
	}
	u.count++
	g.uses[uk] = u
	return OK
}

// Tracked returns the number of answers remembered.
func (n *Nonces) Tracked() int {
	t := 0
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		for _, g := range []generation{s.cur, s.prev} {
			for _, u := range g.uses {
				t += int(u.count)
			}
		}
		s.mu.Unlock()
	}
	return t
}
