package prov

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

// TestValidParamNameAsTheGrammar: the loop accepts exactly the names the
// grammar ^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$ does (the regexp it replaced).
func TestValidParamNameAsTheGrammar(t *testing.T) {
	re := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$`)
	cases := []string{"", "a", "_", "Z9", "9a", ".a", "-a", "reg.1.address", "a b", "a\n", "a\x00", "é",
		"voIpProt.SIP.specialEvent.checkSync.alwaysReboot", "a-b_c.d", strings.Repeat("a", 128), strings.Repeat("a", 129),
		"a$", "a/b", "a:b"}
	r := rand.New(rand.NewPCG(1, 2))
	const alphabet = "aZ_09.-: \n\xff/"
	for range 5000 {
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		if got, want := ValidParamName(c), re.MatchString(c); got != want {
			t.Errorf("ValidParamName(%q) = %v, the grammar says %v", c, got, want)
		}
	}
}
