package store

import (
	"maps"
	"strings"
	"testing"
)

// FuzzHA1 checks that decodeHA1 never panics on a damaged column and that
// any map of algorithm names to digests survives encode/decode.
func FuzzHA1(f *testing.F) {
	f.Add("MD5", "0123456789abcdef0123456789abcdef", "SHA-256", "00ff", "MD5=x;SHA-256=y")
	f.Add("", "", "", "", "")
	f.Add("a", "", "b", "c", ";;=;=")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, raw string) {
		_ = decodeHA1(raw)
		m := map[string]string{}
		for _, kv := range [][2]string{{k1, v1}, {k2, v2}} {
			if kv[0] == "" || strings.ContainsAny(kv[0], "=;") || strings.Contains(kv[1], ";") {
				return // not an algorithm name / hex digest
			}
			m[kv[0]] = kv[1]
		}
		got := decodeHA1(encodeHA1(m))
		if !maps.Equal(got, m) {
			t.Fatalf("round trip %q -> %q -> %q", m, encodeHA1(m), got)
		}
	})
}

func TestLikePattern(t *testing.T) {
	tests := map[string]string{"Ab": "%ab%", "50%": `%50\%%`, "a_b": `%a\_b%`, `c:\x`: `%c:\\x%`}
	for in, want := range tests {
		if got := likePattern(in); got != want {
			t.Errorf("likePattern(%q) = %q, want %q", in, got, want)
		}
	}
}
