package auth

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
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

// Bounds of an imported argon2id hash (ParseImportedHash): no weaker than
// OWASP's argon2id profiles (m=7 MiB with t=5 … m=46 MiB with t=1, all about
// 36 MiB-passes), no dearer to verify at login than four of our own hashes.
const (
	importMinMemory  = 7 * 1024  // KiB
	importMaxMemory  = 64 * 1024 // KiB; a login holds this much while it verifies
	importMinWork    = 7 * 1024 * 5
	importMaxTime    = 10
	importMaxThreads = 4
	importMinBytes   = 16 // salt and hash
	importMaxBytes   = 64
)

var (
	phcRE = regexp.MustCompile(`^\$argon2id\$v=(\d+)\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$`)
	// otherHashRE names schemes that are not argon2id, for a clearer error.
	otherHashRE = regexp.MustCompile(`^\$(argon2i|argon2d|2[abxy]?|1|5|6|7|y|scrypt|pbkdf2[-a-z0-9]*)\$`)
)

// ParseImportedHash checks an argon2id PHC string brought from another
// system ($argon2id$v=19$m=…,t=…,p=…$salt$hash, unpadded standard base64):
// exactly that form, version 19, memory, passes and lanes within bounds,
// salt and hash of 16–64 bytes. The error says what is wrong, in words
// for the row's report ("is not …", "has m=… KiB: …").
func ParseImportedHash(s string) error {
	bad := func(msg string) error { return errors.New(msg) }
	m := phcRE.FindStringSubmatch(s)
	if m == nil {
		if o := otherHashRE.FindStringSubmatch(s); o != nil {
			return bad(fmt.Sprintf("is a $%s$ hash: only argon2id hashes can be imported (the user sets a password instead)", o[1]))
		}
		return bad("is not an argon2id PHC string ($argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>, unpadded base64)")
	}
	num := func(v string) uint64 {
		if len(v) > 1 && v[0] == '0' {
			return 0 // leading zeros are not canonical: refused as out of range
		}
		n, _ := strconv.ParseUint(v, 10, 64) // \d{1,10}: always parses
		return n
	}
	ver, mem, t, p := num(m[1]), num(m[2]), num(m[3]), num(m[4])
	switch {
	case ver != argon2.Version:
		return bad(fmt.Sprintf("has version v=%s: only v=%d (argon2 1.3) is supported", m[1], argon2.Version))
	case mem < importMinMemory || mem > importMaxMemory:
		return bad(fmt.Sprintf("has m=%s KiB: must be %d–%d", m[2], importMinMemory, importMaxMemory))
	case t < 1 || t > importMaxTime:
		return bad(fmt.Sprintf("has t=%s: must be 1–%d", m[3], importMaxTime))
	case p < 1 || p > importMaxThreads:
		return bad(fmt.Sprintf("has p=%s: must be 1–%d", m[4], importMaxThreads))
	case mem*t < importMinWork:
		return bad(fmt.Sprintf("is too weak (m=%s, t=%s): m×t must be at least %d, e.g. m=19456,t=2", m[2], m[3], importMinWork))
	case mem*t > 4*uint64(DefaultArgon2.Memory)*uint64(DefaultArgon2.Time):
		return bad(fmt.Sprintf("is too costly to verify at each login (m=%s, t=%s): m×t must be at most %d",
			m[2], m[3], 4*DefaultArgon2.Memory*DefaultArgon2.Time))
	}
	b64 := base64.RawStdEncoding.Strict()
	for _, part := range []struct{ name, v string }{{"salt", m[5]}, {"hash", m[6]}} {
		b, err := b64.DecodeString(part.v)
		if err != nil {
			return bad(fmt.Sprintf("has a %s that is not canonical unpadded base64", part.name))
		}
		if len(b) < importMinBytes || len(b) > importMaxBytes {
			return bad(fmt.Sprintf("has a %d-byte %s: must be %d–%d bytes", len(b), part.name, importMinBytes, importMaxBytes))
		}
	}
	if _, ok := parsePHC(s); !ok {
		return bad("cannot be verified") // parsePHC's bounds are wider: a guard, never expected
	}
	return nil
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
