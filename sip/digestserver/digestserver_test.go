package digestserver

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

func TestNonceLifecycle(t *testing.T) {
	n := New(time.Minute, 1000, 1024)
	now := time.Unix(1_800_000_000, 0)
	src := Source("udp", "192.0.2.10")
	s := n.Issue(now, src)
	nonce, st := n.Check(s, src, now.Add(30*time.Second))
	if st != OK {
		t.Fatalf("fresh nonce: %v", st)
	}
	tests := []struct {
		nc, req uint64
		want    State
	}{
		{1, 7, OK},
		{1, 7, OK},     // retransmission of the same request
		{1, 8, Replay}, // same nc, other request
		{2, 9, OK},
		{2, 10, Replay},
		{3, 0, OK},
		{3, 0, Replay}, // no request given: never a retransmission
	}
	for i, tc := range tests {
		if got := n.Use(nonce, "1001", tc.nc, tc.req, now); got != tc.want {
			t.Fatalf("step %d: %v, want %v", i, got, tc.want)
		}
	}
	if _, st := n.Check(s, src, now.Add(2*time.Minute)); st != Expired {
		t.Fatalf("old nonce: %v", st)
	}
	if _, st := n.Check(s[:len(s)-2]+"AA", src, now); st != Invalid {
		t.Fatalf("forged nonce: %v", st)
	}
	if _, st := New(time.Minute, 1000, 1024).Check(s, src, now); st != Invalid {
		t.Fatalf("nonce of another key (before a restart): %v", st)
	}
	for _, other := range []string{Source("udp", "192.0.2.11"), Source("tcp", "192.0.2.10")} {
		if _, st := n.Check(s, other, now); st != Invalid {
			t.Fatalf("nonce presented by %s, issued to %s: %v", other, src, st)
		}
	}
	// Generations rotate: use-state is forgotten after two TTLs.
	n.Use(nonce, "1001", 4, 1, now.Add(3*time.Minute))
	if n.Tracked() > 1 {
		t.Fatalf("%d answers tracked after rotation", n.Tracked())
	}
}

// TestNonceUsesArePerUser: a nonce answers at most perNonce times per
// user, then it is stale; another user's answers never use up a phone's
// (a review found them kept per nonce only, so anyone who saw a phone's
// nonce could use up its counts with their own credentials).
func TestNonceUsesArePerUser(t *testing.T) {
	n := New(time.Minute, 1_000_000, 1024)
	now := time.Now()
	nonce, st := n.Check(n.Issue(now, ""), "", now)
	if st != OK {
		t.Fatal(st)
	}
	for i := range 1024 {
		if st := n.Use(nonce, "mallory", uint64(i+1), 0, now); st != OK {
			t.Fatalf("use %d: %v", i, st)
		}
	}
	if st := n.Use(nonce, "mallory", n.AnswerKey("x"), 0, now); st != Expired {
		t.Fatalf("over the cap: %v, want a stale answer", st)
	}
	if st := n.Use(nonce, "0004f2000001", 1, 0, now); st != OK {
		t.Fatalf("another user's answers used up the phone's: %v", st)
	}
	if st := n.Use(nonce, "0004f2000001", 1, 0, now); st != Replay {
		t.Fatalf("a replay: %v", st)
	}
}

func TestParseAndVerify(t *testing.T) {
	for _, alg := range []string{"MD5", "SHA-256"} {
		for _, qop := range [][]string{{"auth"}, nil} {
			chal := &digest.Challenge{Realm: "hotdesk.test", Nonce: "abc", Algorithm: alg, QOP: qop}
			opt := digest.Options{Method: "REGISTER", URI: "sip:hotdesk.test", Username: `we"ird\user`,
				Password: "pw", Count: 10, Cnonce: "c1"}
			ref, err := digest.Digest(chal, opt)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Parse(" " + ref.String())
			if err != nil {
				t.Fatal(err)
			}
			if c.Username != `we"ird\user` || (qop != nil && (c.Nc != 10 || c.Cnonce != "c1" || c.QOP != "auth")) {
				t.Fatalf("%+v from %s", c, ref.String())
			}
			if !Verify(c, "REGISTER", hashHA1(t, alg, `we"ird\user`, "hotdesk.test", "pw")) {
				t.Errorf("%s qop %v: right password refused", alg, qop)
			}
			if Verify(c, "REGISTER", hashHA1(t, alg, `we"ird\user`, "hotdesk.test", "wrong")) || Verify(c, "INVITE",
				hashHA1(t, alg, `we"ird\user`, "hotdesk.test", "pw")) || Verify(c, "REGISTER", "") {
				t.Errorf("%s qop %v: wrong answer accepted", alg, qop)
			}
		}
	}
	// Parameter names are case-insensitive (RFC 7235 §2.1); quoted values keep their case.
	c, err := Parse(`Digest USERNAME="Al,ICE=x", Realm="R", NONCE="N", uri="sip:h", Response="ab", QOP=auth, NC=00000001, CNonce="C"`)
	if err != nil || c.Username != "Al,ICE=x" || c.Realm != "R" || c.Nonce != "N" || c.Response != "ab" || c.Nc != 1 || c.Cnonce != "C" {
		t.Fatalf("upper-case names: %+v %v", c, err)
	}
	for _, bad := range []string{"", "Basic abc", "Digest", `Digest username="x`, "Digest =x",
		`Digest username="a", nonce="n", response="r", qop=auth`, `Digest username="a", nonce="n"`,
		"Digest username=\"" + strings.Repeat("a", maxHeader) + "\""} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestChallengeParsesBack(t *testing.T) {
	c, err := digest.ParseChallenge(Challenge("hotdesk.test", "n0", "SHA-256", true))
	if err != nil || c.Realm != "hotdesk.test" || c.Nonce != "n0" || c.Algorithm != "SHA-256" || !c.Stale ||
		!c.SupportsQOP("auth") {
		t.Fatalf("%+v, %v", c, err)
	}
}

// hashHA1 is H(user:realm:password), as the credential stores keep it.
func hashHA1(t *testing.T, alg, user, realm, pw string) string {
	t.Helper()
	h := md5.New()
	switch alg {
	case "SHA-256":
		h = sha256.New()
	case "SHA-512":
		h = sha512.New()
	case "SHA-512-256":
		h = sha512.New512_256()
	}
	h.Write([]byte(user + ":" + realm + ":" + pw))
	return hex.EncodeToString(h.Sum(nil))
}

// FuzzParse: the parser never panics, and what it accepts has the fields
// every answer needs.
func FuzzParse(f *testing.F) {
	f.Add(`Digest username="1001", realm="hotdesk.test", nonce="n", uri="sip:x", response="r", qop=auth, nc=00000001, cnonce="c"`)
	f.Add(`Digest username="a\"b", algorithm=SHA-256`)
	f.Add(`Digest USERNAME="Al,ICE=x", Realm="R\\\"q", NONCE="N", uri="sip:h", Response="ab", QOP=auth, NC=00000001, CNonce="C"`)
	f.Add("Digest username=\"\xff\\\xc3\xa9\", nonce=n, response=r, userhash=TRUE, nc=zz")
	f.Fuzz(func(t *testing.T, h string) {
		c, err := Parse(h)
		ref, rerr := referenceParse(strings.TrimLeft(h, " \t"))
		if len(strings.TrimLeft(h, " \t")) <= maxHeader && (err == nil) != (rerr == nil) {
			// Parse's own checks only refuse more.
			if err == nil || !errors.Is(err, ErrMalformed) || rerr != nil || ref.Username != "" && ref.Nonce != "" &&
				ref.Response != "" && (ref.QOP == "" || ref.Nc > 0) {
				t.Fatalf("%q: Parse %+v, %v; icholy/digest %+v, %v", h, c, err, ref, rerr)
			}
		}
		if err != nil {
			return
		}
		if *c != *ref {
			t.Fatalf("%q: Parse %+v, icholy/digest %+v", h, c, ref)
		}
		if c.Username == "" || c.Nonce == "" || c.Response == "" || (c.QOP != "" && c.Nc <= 0) {
			t.Fatalf("%q accepted as %+v", h, c)
		}
		_ = Verify(c, "GET", "00")
	})
}

// FuzzCheck: a nonce not issued here is never OK.
func FuzzCheck(f *testing.F) {
	n := New(time.Minute, 1000, 10)
	now := time.Unix(1_800_000_000, 0)
	f.Add(n.Issue(now, "UDP|192.0.2.1"))
	f.Add("AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		if _, st := n.Check(s, "UDP|192.0.2.2", now); st == OK {
			t.Fatalf("%q accepted for another source", s)
		}
	})
}

// TestVerifyMatchesDigest: Verify accepts exactly the responses
// icholy/digest computes (every algorithm it supports, qop auth or none,
// nc past 8 hex digits, an upper-case response) and allocates nothing.
func TestVerifyMatchesDigest(t *testing.T) {
	for _, alg := range []string{"MD5", "md5", "SHA-256", "SHA-512", "SHA-512-256", ""} {
		for _, qop := range [][]string{{"auth"}, nil} {
			for _, nc := range []int{1, 0xabc, 1 << 33} {
				chal := &digest.Challenge{Realm: "r", Nonce: "n0", Algorithm: alg, QOP: qop}
				opt := digest.Options{Method: "REGISTER", URI: "sip:hotdesk.test;transport=udp", Username: "u",
					Password: "pw", Count: nc, Cnonce: "c1"}
				ref, err := digest.Digest(chal, opt)
				if err != nil {
					t.Fatal(err)
				}
				ha1 := hashHA1(t, strings.ToUpper(alg), "u", "r", "pw")
				if alg == "" {
					ha1 = hashHA1(t, "MD5", "u", "r", "pw")
				}
				if !Verify(ref, "REGISTER", ha1) {
					t.Errorf("%q qop %v nc %x: the right answer refused", alg, qop, nc)
				}
				up := *ref
				up.Response = strings.ToUpper(up.Response)
				if !Verify(&up, "REGISTER", ha1) {
					t.Errorf("%q qop %v: an upper-case response refused", alg, qop)
				}
				if Verify(ref, "INVITE", ha1) || Verify(ref, "REGISTER", ha1[1:]+"0") {
					t.Errorf("%q qop %v: a wrong answer accepted", alg, qop)
				}
				if n := testing.AllocsPerRun(50, func() { Verify(ref, "REGISTER", ha1) }); n != 0 {
					t.Errorf("%q qop %v: Verify allocates %v times, want 0", alg, qop, n)
				}
			}
		}
	}
	if Verify(&digest.Credentials{Algorithm: "SHA-1", Response: "x", Nonce: "n"}, "REGISTER", "ab") {
		t.Error("an unknown algorithm accepted")
	}
	ok := &digest.Credentials{Username: "u", Realm: "r", Nonce: "n", URI: "sip:h", QOP: "auth", Nc: 1}
	ok.Response = must(digest.Digest(&digest.Challenge{Realm: "r", Nonce: "n", QOP: []string{"auth"}},
		digest.Options{Method: "REGISTER", URI: "sip:h", Username: "u", Password: "pw", Count: 1, Cnonce: "x"})).Response
	if Verify(ok, "REGISTER", hashHA1(t, "MD5", "u", "r", "pw")) {
		t.Error("qop auth without a cnonce accepted")
	}
}

func must(c *digest.Credentials, err error) *digest.Credentials {
	if err != nil {
		panic(err)
	}
	return c
}

// referenceParse is how Parse parsed before it had a parser of its own:
// icholy/digest after lower-casing the parameter names.
func referenceParse(h string) (*digest.Credentials, error) {
	return digest.ParseCredentials(lowerParamNames(h))
}

// lowerParamNames (the reference) lower-cases the auth-param names of a Digest header (RFC
// 7235 §2.1: they are case-insensitive; icholy/digest matches them as
// written), leaving quoted values alone. It allocates only when a name has
// an upper-case letter.
func lowerParamNames(h string) string {
	var b []byte
	inQuote, inName := false, true
	for i := len(digest.Prefix); i < len(h); i++ {
		c := h[i]
		switch {
		case inQuote:
			if c == '\\' {
				i++
			} else if c == '"' {
				inQuote = false
			}
		case c == '"':
			inQuote = true
		case c == ',':
			inName = true
		case c == '=':
			inName = false
		case inName && 'A' <= c && c <= 'Z':
			if b == nil {
				b = []byte(h)
			}
			b[i] = c + ('a' - 'A')
		}
	}
	if b == nil {
		return h
	}
	return string(b)
}

// TestParseAllocatesOnlyTheCredentials: a phone's answer is parsed into
// slices of the header (icholy/digest's reader took ~60 allocations).
func TestParseAllocatesOnlyTheCredentials(t *testing.T) {
	h := `Digest username="1001", realm="hotdesk.test", nonce="bm9uY2U", uri="sip:hotdesk.test", ` +
		`response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", qop=auth, nc=00000001`
	if _, err := Parse(h); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { Parse(h) }); n > 1 {
		t.Errorf("Parse allocates %v times, want 1", n)
	}
}

// TestNonceCountsEachOnce: every nc is accepted once and only once per
// user and nonce, whatever order the answers come in: counting up (a
// phone), interleaved counters (a client with a counter per connection),
// backwards, gaps later filled, and more counters than a user's runs keep
// (kept in the answers map instead).
func TestNonceCountsEachOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		ncs  []uint64
	}{
		{"counting up", []uint64{1, 2, 3, 4, 5}},
		{"two counters interleaved", []uint64{1<<24 + 1, 1<<25 + 1, 1<<24 + 2, 1<<25 + 2, 1<<24 + 3}},
		{"backwards", []uint64{9, 8, 7, 6}},
		{"gap filled, runs merged", []uint64{1, 2, 4, 5, 3, 6, 10, 8, 9, 7}},
		{"more counters than runs", []uint64{100, 200, 300, 400, 500, 600, 101, 601, 201, 599, 7, 8}},
		{"largest nc", []uint64{math.MaxUint32, math.MaxUint32 - 1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := New(time.Minute, 1000, 1024)
			now := time.Unix(1_800_000_000, 0)
			nonce, st := n.Check(n.Issue(now, ""), "", now)
			if st != OK {
				t.Fatal(st)
			}
			for i, nc := range tc.ncs {
				if st := n.Use(nonce, "0004f2000001", nc, 0, now); st != OK {
					t.Fatalf("nc %d (answer %d): %v, want ok", nc, i, st)
				}
				// Every answer given so far is a replay now, this one included.
				for _, old := range tc.ncs[:i+1] {
					if st := n.Use(nonce, "0004f2000001", old, 0, now); st != Replay {
						t.Fatalf("after nc %d: nc %d again: %v, want replay", nc, old, st)
					}
				}
			}
			if got := n.Tracked(); got != len(tc.ncs) {
				t.Errorf("%d answers tracked, want %d", got, len(tc.ncs))
			}
			// Another user's counts are their own.
			if st := n.Use(nonce, "0004f2000002", tc.ncs[0], 0, now); st != OK {
				t.Errorf("another user's first answer: %v", st)
			}
		})
	}
}

// TestNonceTrackedBound: the answers remembered stay within maxTracked
// (per shard): past it a new answer is stale, as before the runs.
func TestNonceTrackedBound(t *testing.T) {
	n := New(time.Minute, 32*4, 1024) // 4 per shard
	now := time.Unix(1_800_000_000, 0)
	nonce, _ := n.Check(n.Issue(now, ""), "", now)
	// Two users with a run each, then two answers with a request (in the map).
	for i, req := range []uint64{0, 0, 7 << 32, 8 << 32} {
		if st := n.Use(nonce, "u"+strconv.Itoa(i%2), uint64(1+10*i), req, now); st != OK {
			t.Fatalf("answer %d: %v", i, st)
		}
	}
	if st := n.Use(nonce, "u0", 99, 5, now); st != Expired {
		t.Fatalf("past the bound: %v, want expired", st)
	}
	if st := n.Use(nonce, "u2", 1, 0, now); st != Expired {
		t.Fatalf("a new user past the bound: %v, want expired", st)
	}
}
