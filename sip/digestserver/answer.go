package digestserver

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Answer is a Digest Authorization value parsed in place: every field is a
// substring of the header, so parsing allocates nothing (a quoted value
// with a backslash escape, which no phone sends, is copied unescaped). It
// is the allocation-free twin of Parse for paths that run per request, such
// as every provisioning fetch.
type Answer struct {
	Username, Realm, Nonce, URI, Response, Algorithm, Cnonce, Opaque, QOP string
	// NC is the nonce count as sent (hashed as sent); Nc its value.
	NC string
	Nc uint32
}

// ParseAnswer parses an Authorization Digest value into a, with Parse's
// checks: username, nonce and response present, and a positive nc with a
// qop. Parameter names are case-insensitive (RFC 7235 §2.1); unknown ones
// are ignored.
func ParseAnswer(h string, a *Answer) error {
	*a = Answer{}
	h = strings.TrimLeft(h, " \t")
	if len(h) > maxHeader {
		return fmt.Errorf("%w: %d bytes", ErrMalformed, len(h))
	}
	if len(h) < 7 || !strings.EqualFold(h[:6], "Digest") || (h[6] != ' ' && h[6] != '\t') {
		return fmt.Errorf("%w: not a Digest answer", ErrMalformed)
	}
	s := h[7:]
	// Bounded: every turn consumes at least one byte of s.
	for s != "" {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		i := 0
		for i < len(s) && isToken(s[i]) {
			i++
		}
		if i == 0 {
			return fmt.Errorf("%w: bad parameter name at %q", ErrMalformed, s[:min(len(s), 16)])
		}
		name := s[:i]
		s = strings.TrimLeft(s[i:], " \t")
		if s == "" || s[0] != '=' {
			return fmt.Errorf("%w: %s without a value", ErrMalformed, name)
		}
		s = strings.TrimLeft(s[1:], " \t")
		var val string
		if s != "" && s[0] == '"' {
			var ok bool
			val, s, ok = quotedValue(s)
			if !ok {
				return fmt.Errorf("%w: unterminated quoted %s", ErrMalformed, name)
			}
		} else {
			j := 0
			for j < len(s) && s[j] != ',' && s[j] != ' ' && s[j] != '\t' {
				j++
			}
			val, s = s[:j], s[j:]
		}
		s = strings.TrimLeft(s, " \t")
		if s != "" && s[0] != ',' {
			return fmt.Errorf("%w: junk after %s", ErrMalformed, name)
		}
		if err := a.set(name, val); err != nil {
			return err
		}
	}
	if a.Username == "" || a.Nonce == "" || a.Response == "" {
		return fmt.Errorf("%w: username, nonce or response missing", ErrMalformed)
	}
	if a.QOP != "" && a.Nc == 0 {
		return fmt.Errorf("%w: qop without a positive nc", ErrMalformed)
	}
	return nil
}

func (a *Answer) set(name, val string) error {
	switch {
	case strings.EqualFold(name, "username"):
		a.Username = val
	case strings.EqualFold(name, "realm"):
		a.Realm = val
	case strings.EqualFold(name, "nonce"):
		a.Nonce = val
	case strings.EqualFold(name, "uri"):
		a.URI = val
	case strings.EqualFold(name, "response"):
		a.Response = val
	case strings.EqualFold(name, "algorithm"):
		a.Algorithm = val
	case strings.EqualFold(name, "cnonce"):
		a.Cnonce = val
	case strings.EqualFold(name, "opaque"):
		a.Opaque = val
	case strings.EqualFold(name, "qop"):
		a.QOP = val
	case strings.EqualFold(name, "nc"):
		n, ok := parseHex32(val)
		if !ok {
			return fmt.Errorf("%w: bad nc %q", ErrMalformed, val[:min(len(val), 16)])
		}
		a.NC, a.Nc = val, n
	}
	return nil
}

// quotedValue splits a quoted-string off s (which starts with '"'): its value
// (unescaped; a copy only when it had escapes) and the rest after it.
func quotedValue(s string) (val, rest string, ok bool) {
	esc := false
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			esc = true
			i++
		case '"':
			if !esc {
				return s[1:i], s[i+1:], true
			}
			var b strings.Builder
			for j := 1; j < i; j++ {
				if s[j] == '\\' {
					j++
				}
				b.WriteByte(s[j])
			}
			return b.String(), s[i+1:], true
		}
	}
	return "", "", false
}

func isToken(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// parseHex32 parses 1–8 hex digits.
func parseHex32(s string) (uint32, bool) {
	if s == "" || len(s) > 8 {
		return 0, false
	}
	var n uint32
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint32(c)
	}
	return n, true
}

// Verify reports whether a answers with the password whose
// H(username:realm:password) is the hex string ha1, for method (qop "auth"
// or none; MD5 or SHA-256); constant-time, and allocation-free for headers
// of ordinary size.
func (a *Answer) Verify(method, ha1 string) bool { return verify(a, method, ha1) }

func verify[S string | []byte](a *Answer, method string, ha1 S) bool {
	if len(ha1) == 0 || (a.QOP != "" && a.QOP != "auth") {
		return false
	}
	sha := strings.EqualFold(a.Algorithm, "SHA-256")
	if !sha && a.Algorithm != "" && !strings.EqualFold(a.Algorithm, "MD5") {
		return false
	}
	var buf [512]byte
	var ha2 [2 * sha256.Size]byte
	b := append(append(append(buf[:0], method...), ':'), a.URI...)
	h2 := hexSumOf(ha2[:0], b, sha)
	b = append(append(buf[:0], ha1...), ':')
	b = append(b, a.Nonce...)
	if a.QOP != "" {
		b = append(append(b, ':'), a.NC...)
		b = append(append(b, ':'), a.Cnonce...)
		b = append(append(b, ':'), a.QOP...)
	}
	b = append(append(b, ':'), h2...)
	var want [2 * sha256.Size]byte
	w := hexSumOf(want[:0], b, sha)
	if len(a.Response) != len(w) {
		return false
	}
	var d byte
	for i := range w {
		c := a.Response[i]
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		d |= c ^ w[i]
	}
	return d == 0
}

// VerifyPassword is Verify for a password kept in clear (a device's
// provisioning credentials): HA1 is computed here from a's username and
// realm, without allocating.
func (a *Answer) VerifyPassword(method, password string) bool {
	sha := strings.EqualFold(a.Algorithm, "SHA-256")
	var buf [256]byte
	var ha1 [2 * sha256.Size]byte
	b := append(append(buf[:0], a.Username...), ':')
	b = append(append(append(b, a.Realm...), ':'), password...)
	return verify(a, method, hexSumOf(ha1[:0], b, sha))
}

// hexSumOf appends the hex MD5 (or SHA-256) of b to dst.
func hexSumOf(dst, b []byte, sha bool) []byte {
	if sha {
		s := sha256.Sum256(b)
		return hex.AppendEncode(dst, s[:])
	}
	s := md5.Sum(b)
	return hex.AppendEncode(dst, s[:])
}
