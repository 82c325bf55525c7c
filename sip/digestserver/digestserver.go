// Package digestserver is the server side of HTTP/SIP digest
// authentication (RFC 7616, RFC 3261 §22) that the SIP registrar and the
// HTTP provisioning server share: self-authenticating nonces with an
// expiry, bound to the source they were sent to, and a replay guard per
// (nonce, user) that answers stale when a nonce has been used as much as
// it may. Headers are parsed and responses computed with
// github.com/icholy/digest. It imports no hotdesk package, so both rooms
// may use it.
package digestserver

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/icholy/digest"
)

// ErrMalformed is returned for an Authorization value that is not a
// usable Digest answer.
var ErrMalformed = errors.New("malformed digest credentials")

// maxHeader bounds what is parsed: no real answer comes near it.
const maxHeader = 4096

// Parse parses an Authorization (or Proxy-Authorization) Digest value as
// icholy/digest's ParseCredentials does, parameter names in any case (RFC
// 7235 §2.1), and checks the fields every answer needs. The values are
// slices of h unless quoted with escapes: it runs for every authenticated
// REGISTER and fetch, and icholy/digest's reader costs ~60 allocations.
func Parse(h string) (*digest.Credentials, error) {
	h = strings.TrimLeft(h, " \t")
	if len(h) > maxHeader {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(h))
	}
	c, err := parseCredentials(h)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if c.Username == "" || c.Nonce == "" || c.Response == "" {
		return nil, fmt.Errorf("%w: username, nonce or response missing", ErrMalformed)
	}
	if c.QOP != "" && c.Nc <= 0 {
		return nil, fmt.Errorf("%w: qop without a positive nc", ErrMalformed)
	}
	return c, nil
}

// parseCredentials is icholy/digest's grammar: "Digest " then
// name = value pairs split by commas, spaces around them, a value a
// token or a quoted string with backslash escapes; unknown names are
// ignored, a later one wins.
func parseCredentials(h string) (*digest.Credentials, error) {
	s, ok := digest.CutPrefix(h)
	if !ok {
		return nil, errors.New("invalid credentials prefix")
	}
	c := &digest.Credentials{}
	i := 0
	skip := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	token := func() string {
		j := i
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '-') {
			i++
		}
		return s[j:i]
	}
	for first := true; ; first = false {
		skip()
		if i == len(s) {
			return c, nil
		}
		if !first {
			if s[i] != ',' {
				return nil, fmt.Errorf("expected ',' at %d", i)
			}
			i++
			skip()
		}
		key := token()
		skip()
		if i == len(s) || s[i] != '=' {
			return nil, fmt.Errorf("expected '=' at %d", i)
		}
		i++
		skip()
		var val string
		if i < len(s) && s[i] == '"' {
			v, n, err := quoted(s[i:])
			if err != nil {
				return nil, err
			}
			val, i = v, i+n
		} else {
			val = token()
		}
		switch {
		case strings.EqualFold(key, "username"):
			c.Username = val
		case strings.EqualFold(key, "realm"):
			c.Realm = val
		case strings.EqualFold(key, "nonce"):
			c.Nonce = val
		case strings.EqualFold(key, "uri"):
			c.URI = val
		case strings.EqualFold(key, "response"):
			c.Response = val
		case strings.EqualFold(key, "algorithm"):
			c.Algorithm = val
		case strings.EqualFold(key, "cnonce"):
			c.Cnonce = val
		case strings.EqualFold(key, "opaque"):
			c.Opaque = val
		case strings.EqualFold(key, "qop"):
			c.QOP = val
		case strings.EqualFold(key, "nc"):
			nc, err := strconv.ParseInt(val, 16, 32)
			if err != nil {
				return nil, fmt.Errorf("invalid nc: %w", err)
			}
			c.Nc = int(nc)
		case strings.EqualFold(key, "userhash"):
			c.Userhash = strings.EqualFold(val, "true")
		}
	}
}

// quoted reads the quoted string s starts with and returns its value and
// length: a slice of s when it has no escape and is valid UTF-8, else
// built rune by rune as icholy/digest does (invalid bytes become U+FFFD).
func quoted(s string) (string, int, error) {
	end := -1
	plain := true
	for j := 1; j < len(s); j++ {
		if s[j] == '\\' {
			plain = false
			j++
			continue
		}
		if s[j] == '"' {
			end = j
			break
		}
	}
	if end < 0 {
		return "", 0, errors.New("unterminated quoted string")
	}
	if v := s[1:end]; plain && utf8.ValidString(v) {
		return v, end + 1, nil
	}
	var b strings.Builder
	escaped := false
	for _, r := range s[1:end] {
		if !escaped && r == '\\' {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(r)
	}
	return b.String(), end + 1, nil
}

// Verify reports whether c answers with the password whose
// H(username:realm:password) is ha1, for method (qop "auth" or none, as
// offered); the comparison is constant time. It computes what
// icholy/digest's Digest would (RFC 7616 §3.4.1, the same algorithms), on
// the stack: it runs for every authenticated REGISTER and fetch, and
// Digest's hash joins cost ~20 allocations.
func Verify(c *digest.Credentials, method, ha1 string) bool {
	if ha1 == "" || (c.QOP != "" && c.QOP != "auth") || c.QOP != "" && (c.Cnonce == "" || c.Nc <= 0) {
		return false
	}
	alg := c.Algorithm
	var buf [512]byte
	in := append(append(append(buf[:0], method...), ':'), c.URI...)
	var a2 [128]byte
	ha2, ok := hexSum(a2[:0], alg, in)
	if !ok {
		return false
	}
	in = append(append(append(append(buf[:0], ha1...), ':'), c.Nonce...), ':')
	if c.QOP != "" {
		var nc [16]byte
		n := strconv.AppendUint(nc[:0], uint64(c.Nc), 16)
		for range 8 - len(n) {
			in = append(in, '0')
		}
		in = append(append(append(append(append(append(in, n...), ':'), c.Cnonce...), ':'), c.QOP...), ':')
	}
	in = append(in, ha2...)
	var r [128]byte
	want, _ := hexSum(r[:0], alg, in)
	var l [128]byte
	got := l[:0]
	for i := 0; i < len(c.Response); i++ {
		b := c.Response[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		got = append(got, b)
	}
	return subtle.ConstantTimeCompare(want, got) == 1
}

// hexSum appends the hex digest of in under a digest algorithm (any
// case; "" is MD5), false for one not supported.
func hexSum(dst []byte, alg string, in []byte) ([]byte, bool) {
	switch {
	case alg == "" || strings.EqualFold(alg, "MD5"):
		s := md5.Sum(in)
		return hex.AppendEncode(dst, s[:]), true
	case strings.EqualFold(alg, "SHA-256"):
		s := sha256.Sum256(in)
		return hex.AppendEncode(dst, s[:]), true
	case strings.EqualFold(alg, "SHA-512"):
		s := sha512.Sum512(in)
		return hex.AppendEncode(dst, s[:]), true
	case strings.EqualFold(alg, "SHA-512-256"):
		s := sha512.Sum512_256(in)
		return hex.AppendEncode(dst, s[:]), true
	}
	return dst, false
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
	answers map[useKey]uint64 // → the request it answered (retransmissions)
	counts  map[userKey]uint32
}

func newGeneration() generation {
	return generation{answers: map[useKey]uint64{}, counts: map[userKey]uint32{}}
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
	if last, seen := g.answers[k]; seen {
		if req != 0 && last == req {
			return OK
		}
		return Replay
	}
	if len(g.answers) >= n.shardCap || g.counts[uk] >= n.perNonce {
		return Expired
	}
	g.answers[k] = req
	g.counts[uk]++
	return OK
}

// Tracked returns the number of answers remembered.
func (n *Nonces) Tracked() int {
	t := 0
	for i := range n.shards {
		s := &n.shards[i]
		s.mu.Lock()
		t += len(s.cur.answers) + len(s.prev.answers)
		s.mu.Unlock()
	}
	return t
}
