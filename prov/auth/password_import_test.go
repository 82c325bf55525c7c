package auth_test

import (
	"strings"
	"testing"

	"hotdesk/prov/auth"
)

// TestParseImportedHash: an argon2id PHC string from another system is
// taken only in its exact form and within bounds; each refusal names
// what is wrong (prov refuses the row with it, on password_hash).
func TestParseImportedHash(t *testing.T) {
	salt := "c2FsdHNhbHRzYWx0c2FsdA"                     // 16 bytes
	key := "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g" // 32 bytes
	good, err := auth.HashPassword("pw", auth.DefaultArgon2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, hash, want string // want: "" = accepted, else part of the error
	}{
		{"ours", good, ""},
		{"owasp m=7MiB t=5", "$argon2id$v=19$m=7168,t=5,p=1$" + salt + "$" + key, ""},
		{"owasp m=46MiB t=1", "$argon2id$v=19$m=47104,t=1,p=1$" + salt + "$" + key, ""},
		{"4 lanes", "$argon2id$v=19$m=19456,t=2,p=4$" + salt + "$" + key, ""},
		{"bcrypt", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW", "$2b$ hash"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key, "$argon2i$ hash"},
		{"sha512-crypt", "$6$rounds=5000$salt$abc", "$6$ hash"},
		{"plain text", "hunter2", "not an argon2id PHC string"},
		{"empty salt", "$argon2id$v=19$m=19456,t=2,p=1$$" + key, "not an argon2id PHC string"},
		{"padding", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key, "not an argon2id PHC string"},
		{"params reordered", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key, "not an argon2id PHC string"},
		{"keyid param", "$argon2id$v=19$m=19456,t=2,p=1,keyid=a$" + salt + "$" + key, "not an argon2id PHC string"},
		{"no version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key, "not an argon2id PHC string"},
		{"trailing space", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + key + " ", "not an argon2id PHC string"},
		{"version 1.0", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key, "only v=19"},
		{"memory low", "$argon2id$v=19$m=4096,t=10,p=1$" + salt + "$" + key, "m=4096 KiB"},
		{"memory high", "$argon2id$v=19$m=1048576,t=1,p=1$" + salt + "$" + key, "m=1048576 KiB"},
		{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key, "m=019456 KiB"},
		{"t=0", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key, "t=0"},
		{"t high", "$argon2id$v=19$m=7168,t=11,p=1$" + salt + "$" + key, "t=11"},
		{"p=0", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key, "p=0"},
		{"p high", "$argon2id$v=19$m=19456,t=2,p=8$" + salt + "$" + key, "p=8"},
		{"weak", "$argon2id$v=19$m=19456,t=1,p=1$" + salt + "$" + key, "too weak"},
		{"costly", "$argon2id$v=19$m=65536,t=4,p=1$" + salt + "$" + key, "too costly"},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$" + key, "8-byte salt"},
		{"short hash", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$aGFzaGhhc2g", "8-byte hash"},
		{"long hash", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$" + strings.Repeat("A", 88), "66-byte hash"},
		{"non-canonical base64", "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:21] + "B$" + key, "not canonical"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := auth.ParseImportedHash(tc.hash)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
