package digestserver

import (
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// answerOf is a client's answer to nonce, computed with icholy/digest.
func answerOf(t testing.TB, alg, user, realm, pw, nonce, uri string, nc int) string {
	t.Helper()
	c, err := digest.Digest(&digest.Challenge{Realm: realm, Nonce: nonce, Algorithm: alg, QOP: []string{"auth"}},
		digest.Options{Method: "GET", URI: uri, Username: user, Password: pw, Count: nc, Cnonce: "0a4f113b"})
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// TestParseAnswerAgreesWithParse: the in-place parser reads what
// icholy/digest reads, refuses what Parse refuses, and verifies alike.
func TestParseAnswerAgreesWithParse(t *testing.T) {
	md5ans := answerOf(t, "MD5", "0004f2000001", "hotdesk", "pw", "abc", "/0004f2000001.cfg", 7)
	shaans := answerOf(t, "SHA-256", "alice", "hotdesk-x", "secret", "n2", "/alice.cfg", 0x1234)
	tests := []struct {
		name, h string
		ok      bool
	}{
		{"md5", md5ans, true},
		{"sha256", shaans, true},
		{"upper names", "Digest USERNAME=\"a\", Realm=\"r\", NONCE=\"n\", uri=\"/x\", response=\"00\"", true},
		{"unquoted", "Digest username=a,realm=r , nonce=n,uri=x,response=00,qop=auth,nc=00000001,cnonce=c", true},
		// icholy/digest's grammar, which Parse has always held to: a
		// tab after "Digest" or a token value with a '/' is refused.
		{"tab", "Digest\tusername=a,realm=r , nonce=n,uri=x,response=00,qop=auth,nc=00000001,cnonce=c", false},
		{"unquoted slash", "Digest username=a,realm=r , nonce=n,uri=/x,response=00,qop=auth,nc=00000001,cnonce=c", false},
		{"escape", `Digest username="a\"b", realm="r", nonce="n", uri="/x", response="00"`, true},
		{"no response", `Digest username="a", realm="r", nonce="n", uri="/x"`, false},
		{"qop without nc", `Digest username="a", realm="r", nonce="n", uri="/x", response="00", qop=auth`, false},
		{"bad nc", `Digest username="a", realm="r", nonce="n", uri="/x", response="00", qop=auth, nc=zz`, false},
		{"unterminated", `Digest username="a, realm="r`, false},
		{"basic", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", false},
		{"junk", `Digest username="a" x, nonce="n", response="0"`, false},
		{"no value", `Digest username`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Answer
			err := ParseAnswer(tc.h, &a)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseAnswer: %v, want ok %v", err, tc.ok)
			}
			c, perr := Parse(tc.h)
			if tc.ok && perr == nil {
				if a.Username != c.Username || a.Realm != c.Realm || a.Nonce != c.Nonce || a.URI != c.URI ||
					a.Response != c.Response || a.QOP != c.QOP || int(a.Nc) != c.Nc || a.Cnonce != c.Cnonce {
					t.Fatalf("ParseAnswer %+v, Parse %+v", a, *c)
				}
			}
		})
	}
	for _, tc := range []struct {
		h, user, realm, pw string
	}{{md5ans, "0004f2000001", "hotdesk", "pw"}, {shaans, "alice", "hotdesk-x", "secret"}} {
		var a Answer
		if err := ParseAnswer(tc.h, &a); err != nil {
			t.Fatal(err)
		}
		if !a.VerifyPassword("GET", tc.pw) || a.VerifyPassword("GET", "wrong") || a.VerifyPassword("PUT", tc.pw) {
			t.Fatalf("%s: VerifyPassword disagrees", a.Algorithm)
		}
		c, _ := Parse(tc.h)
		alg := c.Algorithm
		ha1 := hashHA1(t, alg, tc.user, tc.realm, tc.pw)
		if !a.Verify("GET", ha1) || !Verify(c, "GET", ha1) {
			t.Fatalf("%s: Verify with HA1 disagrees", alg)
		}
	}
}

// TestAnswerCheckAllocatesNothing: parsing an answer, checking its nonce,
// recording its use and verifying it allocate nothing once warm (they run
// on every authenticated provisioning fetch).
func TestAnswerCheckAllocatesNothing(t *testing.T) {
	n := New(time.Minute, 1_000_000, 1<<30)
	now := time.Now()
	nonce := n.Issue(now, "HTTP")
	nc := 0
	hs := make([]string, 1200)
	for i := range hs {
		hs[i] = answerOf(t, "MD5", "0004f2000001", "hotdesk", "pw", nonce, "/0004f2000001-hotdesk.cfg", i+1)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		var a Answer
		if err := ParseAnswer(hs[nc], &a); err != nil {
			t.Fatal(err)
		}
		nc++
		no, st := n.Check(a.Nonce, "HTTP", now)
		if st != OK || !a.VerifyPassword("GET", "pw") {
			t.Fatalf("check %v", st)
		}
		n.Use(no, a.Username, uint64(a.Nc), 0, now)
	})
	// The replay guard's maps grow now and then: well under one per answer.
	if allocs >= 0.5 && !raceEnabled {
		t.Fatalf("%.2f allocations per answer, want 0", allocs)
	}
}

func BenchmarkAnswerCheck(b *testing.B) {
	n := New(time.Minute, 1_000_000, 1<<30)
	now := time.Now()
	nonce := n.Issue(now, "HTTP")
	h := answerOf(b, "MD5", "0004f2000001", "hotdesk", "pw", nonce, "/0004f2000001-hotdesk.cfg", 1)
	b.ReportAllocs()
	for b.Loop() {
		var a Answer
		if err := ParseAnswer(h, &a); err != nil {
			b.Fatal(err)
		}
		if _, st := n.Check(a.Nonce, "HTTP", now); st != OK || !a.VerifyPassword("GET", "pw") {
			b.Fatal(st)
		}
	}
}

// BenchmarkParseAnswer is parsing alone: a phone's MD5 answer as wrk's
// digest.lua and the phones send it.
func BenchmarkParseAnswer(b *testing.B) {
	h := answerOf(b, "MD5", "0004f2000001", "hotdesk", "pw", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/0004f2000001-hotdesk.cfg", 1)
	b.ReportAllocs()
	for b.Loop() {
		var a Answer
		if err := ParseAnswer(h, &a); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAnswerVerifyAlgorithms: Answer's checks share Verify's core: every
// algorithm it knows, against icholy/digest, without allocating, and an
// answer with a qop but no cnonce is refused by both.
func TestAnswerVerifyAlgorithms(t *testing.T) {
	for _, alg := range []string{"", "MD5", "sha-256", "SHA-512", "SHA-512-256"} {
		t.Run(alg, func(t *testing.T) {
			h := answerOf(t, alg, "u", "r", "pw", "n0", "/u.cfg", 0x2a)
			var a Answer
			if err := ParseAnswer(h, &a); err != nil {
				t.Fatal(err)
			}
			name := strings.ToUpper(alg)
			if alg == "" {
				name = "MD5"
			}
			ha1 := hashHA1(t, name, "u", "r", "pw")
			if !a.VerifyPassword("GET", "pw") || !a.Verify("GET", ha1) {
				t.Fatalf("%s: the right answer refused", h)
			}
			if a.VerifyPassword("GET", "px") || a.Verify("PUT", ha1) {
				t.Fatalf("%s: a wrong answer accepted", h)
			}
			if n := testing.AllocsPerRun(50, func() { a.VerifyPassword("GET", "pw"); a.Verify("GET", ha1) }); n != 0 {
				t.Errorf("%v allocations, want 0", n)
			}
			a.Cnonce = ""
			if a.VerifyPassword("GET", "pw") {
				t.Error("qop auth without a cnonce accepted")
			}
		})
	}
	var a Answer
	if err := ParseAnswer(`Digest username="u", realm="r", nonce="n", uri="/x", response="00", algorithm=SHA-1`, &a); err != nil ||
		a.VerifyPassword("GET", "pw") || a.Verify("GET", "00") {
		t.Fatalf("an unknown algorithm accepted (%v)", err)
	}
}
