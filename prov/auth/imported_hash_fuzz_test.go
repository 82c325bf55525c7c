package auth

import (
	"strings"
	"testing"
)

// FuzzParseImportedHash: any string from an import row is refused with a
// message or accepted; what is accepted is exactly the argon2id PHC form
// (so nothing else is ever stored as a user's hash).
func FuzzParseImportedHash(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
	f.Add("$2b$12$abcdefghijklmnopqrstuu")
	f.Add("$argon2id$v=16$m=1,t=1,p=1$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		err := ParseImportedHash(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q refused without a reason", s)
			}
			return
		}
		if !strings.HasPrefix(s, "$argon2id$v=19$m=") || !strings.Contains(s, ",t=") || strings.ContainsAny(s, " \t\r\n\"") {
			t.Fatalf("accepted %q, which is not an argon2id v=19 PHC string", s)
		}
	})
}
