package sipua

import (
	"errors"
	"testing"
)

func TestPickChallenge(t *testing.T) {
	sha := `Digest realm="demo.lan", qop="auth", algorithm=SHA-256, nonce="n1"`
	md5 := `Digest realm="demo.lan", qop="auth", algorithm=MD5, nonce="n2"`
	tests := []struct {
		name     string
		values   []string
		alg      string
		wantAlg  string
		wantQOP  bool
		wantErr  bool
		wantSt   bool
		wantNonc string
	}{
		{"auto prefers SHA-256 whatever the order", []string{md5, sha}, "auto", "SHA-256", true, false, false, "n1"},
		{"MD5 asked", []string{sha, md5}, "MD5", "MD5", true, false, false, "n2"},
		{"SHA-256 asked but only MD5 offered", []string{md5}, "SHA-256", "", false, true, false, ""},
		{"no algorithm means MD5", []string{`Digest realm="r", nonce="x"`}, "MD5", "", false, false, false, "x"},
		{"auth-int only is unusable", []string{`Digest realm="r", nonce="x", qop="auth-int"`}, "", "", false, true, false, ""},
		{"auth,auth-int picks auth", []string{`Digest realm="r", nonce="x", qop="auth,auth-int", algorithm=md5`}, "", "MD5", true, false, false, "x"},
		{"stale kept", []string{`Digest realm="r", nonce="y", qop="auth", stale=true`}, "", "", true, false, true, "y"},
		{"garbage and Basic skipped", []string{`Basic realm="r"`, `Digest`, sha}, "", "SHA-256", true, false, false, "n1"},
		{"unknown algorithm skipped", []string{`Digest realm="r", nonce="z", algorithm=SHA-1`}, "", "", false, true, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := PickChallenge(tc.values, tc.alg)
			if tc.wantErr {
				if !errors.Is(err, ErrNoChallenge) {
					t.Fatalf("err = %v, want ErrNoChallenge", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Algorithm != tc.wantAlg || c.Nonce != tc.wantNonc || c.Stale != tc.wantSt {
				t.Fatalf("got alg=%q nonce=%q stale=%v", c.Algorithm, c.Nonce, c.Stale)
			}
			if got := len(c.QOP) == 1 && c.QOP[0] == "auth"; got != tc.wantQOP {
				t.Fatalf("QOP = %q", c.QOP)
			}
		})
	}
}

func FuzzPickChallenge(f *testing.F) {
	f.Add(`Digest realm="demo.lan", qop="auth", algorithm=SHA-256, nonce="n1"`)
	f.Add(`Digest realm=, nonce="`)
	f.Fuzz(func(t *testing.T, v string) {
		c, err := PickChallenge([]string{v}, "auto")
		if err == nil && len(c.QOP) > 1 {
			t.Fatalf("qop %q", c.QOP)
		}
	})
}
