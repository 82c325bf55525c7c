package sip

import (
	"testing"
	"time"

	"github.com/icholy/digest"
)

func TestNonceLifecycle(t *testing.T) {
	n := newNonces(time.Minute)
	now := time.Unix(1_800_000_000, 0)
	src := nonceSource("udp", "192.0.2.10")
	s := n.issue(now, src)
	id, issued, st := n.parse(s, src, now.Add(30*time.Second))
	if st != nonceOK {
		t.Fatalf("fresh nonce: %v", st)
	}
	tests := []struct {
		nc, req uint32
		want    nonceState
	}{
		{1, 7, nonceOK},
		{1, 7, nonceOK},     // retransmission of the same request
		{1, 8, nonceReplay}, // same nc, other request
		{2, 9, nonceOK},
		{2, 10, nonceReplay},
	}
	for i, tc := range tests {
		if got := n.use(id, issued, now, tc.nc, tc.req); got != tc.want {
			t.Fatalf("step %d: %v, want %v", i, got, tc.want)
		}
	}
	if _, _, st := n.parse(s, src, now.Add(2*time.Minute)); st != nonceExpired {
		t.Fatalf("old nonce: %v", st)
	}
	if _, _, st := n.parse(s[:len(s)-2]+"AA", src, now); st != nonceInvalid {
		t.Fatalf("forged nonce: %v", st)
	}
	if _, _, st := newNonces(time.Minute).parse(s, src, now); st != nonceInvalid {
		t.Fatalf("nonce of another key (before a restart): %v", st)
	}
	for _, other := range []string{nonceSource("udp", "192.0.2.11"), nonceSource("tcp", "192.0.2.10")} {
		if _, _, st := n.parse(s, other, now); st != nonceInvalid {
			t.Fatalf("nonce presented by %s, issued to %s: %v", other, src, st)
		}
	}
	// Generations rotate: use-state is forgotten after two TTLs.
	n.use(id, issued, now.Add(3*time.Minute), 3, 1)
	if n.size() > 1 {
		t.Fatalf("%d nonces tracked after rotation", n.size())
	}
}

func TestParseAuthorization(t *testing.T) {
	chal := &digest.Challenge{Realm: "hotdesk.test", Nonce: "abc", Algorithm: "MD5", QOP: []string{"auth"}}
	ref, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:hotdesk.test",
		Username: `we"ird\user`, Password: "pw", Count: 10, Cnonce: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseAuthorization(ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if c.Username != `we"ird\user` || c.Nc != 10 || c.NC != "0000000a" || c.Cnonce != "c1" || c.QOP != "auth" {
		t.Fatalf("%+v from %s", c, ref.String())
	}
	newH, _ := hashFor("MD5")
	ha1 := hexHash(newH, `we"ird\user`, "hotdesk.test", "pw")
	if got := digestResponse("MD5", ha1, "REGISTER", c.URI, c.Nonce, c.NC, c.Cnonce, c.QOP); got != ref.Response {
		t.Fatalf("response %s, icholy/digest says %s", got, ref.Response)
	}
	for _, bad := range []string{"", "Basic abc", "Digest", `Digest username="x`, "Digest =x",
		`Digest username="a", qop=auth, nc=1`} {
		if _, err := parseAuthorization(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
