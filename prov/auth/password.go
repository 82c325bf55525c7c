package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters. The defaults follow OWASP's
// m=19 MiB, t=2, p=1 profile: ~35 ms on the appliance's 2 cores, so a burst of
// logins after a power cut cannot exhaust memory.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 is the cost used for new hashes.
var DefaultArgon2 = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// HashPassword returns an argon2id PHC string for password.
func HashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, 32)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string hash.
// A malformed hash never matches.
func VerifyPassword(hash, password string) bool {
	ph, ok := parsePHC(hash)
	return ok && ph.verify(password)
}

// phc is a parsed argon2id PHC string.
type phc struct {
	p          Argon2Params
	salt, want []byte
}

func parsePHC(hash string) (phc, bool) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return phc{}, false
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return phc{}, false
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return phc{}, false
	}
	if p.Memory == 0 || p.Memory > 1<<20 || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
		return phc{}, false
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return phc{}, false
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil || len(want) == 0 || len(want) > 128 {
		return phc{}, false
	}
	return phc{p: p, salt: salt, want: want}, true
}

func (h phc) verify(password string) bool {
	got := argon2.IDKey([]byte(password), h.salt, h.p.Time, h.p.Memory, h.p.Threads, uint32(len(h.want)))
	return subtle.ConstantTimeCompare(got, h.want) == 1
}

// DigestHA1 returns the HTTP/SIP digest HA1 = H(user:realm:password) for
// algorithm "MD5" or "SHA-256" (RFC 7616).
func DigestHA1(algorithm, user, realm, password string) string {
	s := user + ":" + realm + ":" + password
	if strings.EqualFold(algorithm, "SHA-256") {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// RandomSecret returns n random bytes as lowercase hex (2n characters).
func RandomSecret(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand never fails on Linux ≥ 3.17; a failure means the
		// system cannot make secrets safely at all.
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b)
}

// RandomDigits returns n random decimal digits (PINs).
func RandomDigits(n int) string {
	// rand.Int is uniform; a byte mod 10 would favour 0–5.
	b := make([]byte, n)
	ten := big.NewInt(10)
	for i := range b {
		d, err := rand.Int(rand.Reader, ten)
		if err != nil {
			panic(fmt.Sprintf("crypto/rand: %v", err))
		}
		b[i] = '0' + byte(d.Int64())
	}
	return string(b)
}
