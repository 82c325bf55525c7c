package digestserver

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/icholy/digest"
)

// Answer is a Digest Authorization value parsed in place: every field is a
// substring of the header, so parsing allocates nothing (a quoted value
// with a backslash escape or invalid UTF-8, which no phone sends, is
// copied). It is what the registrar and every provisioning fetch check.
type Answer struct {
	Username, Realm, Nonce, URI, Response, Algorithm, Cnonce, Opaque, QOP string
	// NC is the nonce count as sent (hashed as sent); Nc its value.
	NC       string
	Nc       int
	Userhash bool
}

// ParseAnswer parses an Authorization (or Proxy-Authorization) Digest
// value into a with icholy/digest's grammar (FuzzParse holds them to it),
// parameter names in any case (RFC 7235 §2.1), and checks the fields every
// answer needs: username, nonce and response, and a positive nc with a
// qop.
func ParseAnswer(h string, a *Answer) error {
	*a = Answer{}
	h = strings.TrimLeft(h, " \t")
	if len(h) > maxHeader {
		return fmt.Errorf("%w: %d bytes", ErrMalformed, len(h))
	}
	if err := a.parse(h); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if a.Username == "" || a.Nonce == "" || a.Response == "" {
		return fmt.Errorf("%w: username, nonce or response missing", ErrMalformed)
	}
	if a.QOP != "" && a.Nc <= 0 {
		return fmt.Errorf("%w: qop without a positive nc", ErrMalformed)
	}
	return nil
}

// parse is icholy/digest's grammar: "Digest " then name = value pairs
// split by commas, spaces around them, a value a token or a quoted string
// with backslash escapes; unknown names are ignored, a later one wins.
func (a *Answer) parse(h string) error {
	s, ok := digest.CutPrefix(h)
	if !ok {
		return errors.New("not a Digest answer")
	}
	i := 0
	skip := func() {
		for i < len(s) && s[i] == ' ' {
			i++
		}
	}
	token := func() string {
		j := i
		for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9' || s[i] == '-') {
			i++
		}
		return s[j:i]
	}
	// Bounded: every turn consumes at least the '=' of a pair.
	for first := true; ; first = false {
		skip()
		if i == len(s) {
			return nil
		}
		if !first {
			if s[i] != ',' {
				return fmt.Errorf("expected ',' at %d", i)
			}
			i++
			skip()
		}
		key := token()
		skip()
		if i == len(s) || s[i] != '=' {
			return fmt.Errorf("expected '=' at %d", i)
		}
		i++
		skip()
		var val string
		if i < len(s) && s[i] == '"' {
			v, n, err := quoted(s[i:])
			if err != nil {
				return err
			}
			val, i = v, i+n
		} else {
			val = token()
		}
		if err := a.set(key, val); err != nil {
			return err
		}
	}
}

func (a *Answer) set(key, val string) error {
	// By length first, so a name is compared with three others at most:
	// every REGISTER and fetch matches its answer's nine or so names.
	switch len(key) {
	case 2:
		if strings.EqualFold(key, "nc") {
			nc, err := strconv.ParseInt(val, 16, 32)
			if err != nil {
				return fmt.Errorf("invalid nc: %w", err)
			}
			a.NC, a.Nc = val, int(nc)
		}
	case 3:
		switch {
		case strings.EqualFold(key, "uri"):
			a.URI = val
		case strings.EqualFold(key, "qop"):
			a.QOP = val
		}
	case 5:
		switch {
		case strings.EqualFold(key, "realm"):
			a.Realm = val
		case strings.EqualFold(key, "nonce"):
			a.Nonce = val
		}
	case 6:
		switch {
		case strings.EqualFold(key, "cnonce"):
			a.Cnonce = val
		case strings.EqualFold(key, "opaque"):
			a.Opaque = val
		}
	case 8:
		switch {
		case strings.EqualFold(key, "username"):
			a.Username = val
		case strings.EqualFold(key, "response"):
			a.Response = val
		case strings.EqualFold(key, "userhash"):
			a.Userhash = strings.EqualFold(val, "true")
		}
	case 9:
		if strings.EqualFold(key, "algorithm") {
			a.Algorithm = val
		}
	}
	return nil
}

// quoted reads the quoted string s starts with and returns its value and
// length: a slice of s when it has no escape and is valid UTF-8, else
// built rune by rune as icholy/digest does (invalid bytes become U+FFFD).
func quoted(s string) (string, int, error) {
	end := -1
	plain, ascii := true, true
	for j := 1; j < len(s); j++ {
		if s[j] == '\\' {
			plain = false
			j++
			continue
		}
		if s[j] == '"' {
			end = j
			break
		}
		ascii = ascii && s[j] < utf8.RuneSelf
	}
	if end < 0 {
		return "", 0, errors.New("unterminated quoted string")
	}
	if v := s[1:end]; plain && (ascii || utf8.ValidString(v)) {
		return v, end + 1, nil
	}
	var b strings.Builder
	escaped := false
	for _, r := range s[1:end] {
		if !escaped && r == '\\' {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(r)
	}
	return b.String(), end + 1, nil
}

// Verify reports whether a answers with the password whose
// H(username:realm:password) is the hex string ha1, for method; see
// verify.
func (a *Answer) Verify(method, ha1 string) bool {
	var nc [16]byte
	var h [2 * sha512.Size]byte
	return verify(a, append(nc[:0], a.NC...), method, append(h[:0], ha1...))
}

// VerifyPassword is Verify for a password kept in clear (a device's
// provisioning credentials): HA1 is computed here from a's username and
// realm, without allocating.
func (a *Answer) VerifyPassword(method, password string) bool {
	var buf [256]byte
	var ha1 [2 * sha512.Size]byte
	b := append(append(buf[:0], a.Username...), ':')
	b = append(append(append(b, a.Realm...), ':'), password...)
	h, ok := hexSum(ha1[:0], a.Algorithm, b)
	var nc [16]byte
	return ok && verify(a, append(nc[:0], a.NC...), method, h)
}

// verify is the one digest check (RFC 7616 §3.4.1, the algorithms hexSum
// knows, qop "auth" or none, nc hashed as given): the response is compared
// in constant time, and nothing is allocated for headers of ordinary size
// (it runs for every authenticated REGISTER and fetch). Not generic over
// string and []byte: callers in other packages would see a escape.
func verify(a *Answer, nc []byte, method string, ha1 []byte) bool {
	if len(ha1) == 0 || a.QOP != "" && (a.QOP != "auth" || a.Cnonce == "" || a.Nc <= 0) {
		return false
	}
	var buf [512]byte
	in := append(append(append(buf[:0], method...), ':'), a.URI...)
	var a2 [2 * sha512.Size]byte
	ha2, ok := hexSum(a2[:0], a.Algorithm, in)
	if !ok {
		return false
	}
	in = append(append(append(append(buf[:0], ha1...), ':'), a.Nonce...), ':')
	if a.QOP != "" {
		in = append(append(append(append(append(append(in, nc...), ':'), a.Cnonce...), ':'), a.QOP...), ':')
	}
	in = append(in, ha2...)
	var r [2 * sha512.Size]byte
	want, _ := hexSum(r[:0], a.Algorithm, in)
	if len(a.Response) != len(want) {
		return false
	}
	var l [2 * sha512.Size]byte
	got := l[:0]
	for i := 0; i < len(a.Response); i++ {
		b := a.Response[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		got = append(got, b)
	}
	return subtle.ConstantTimeCompare(want, got) == 1
}

// hexSum appends the hex digest of in under a digest algorithm (any
// case; "" is MD5), false for one not supported.
func hexSum(dst []byte, alg string, in []byte) ([]byte, bool) {
	switch {
	case alg == "" || strings.EqualFold(alg, "MD5"):
		s := md5.Sum(in)
		return hex.AppendEncode(dst, s[:]), true
	case strings.EqualFold(alg, "SHA-256"):
		s := sha256.Sum256(in)
		return hex.AppendEncode(dst, s[:]), true
	case strings.EqualFold(alg, "SHA-512"):
		s := sha512.Sum512(in)
		return hex.AppendEncode(dst, s[:]), true
	case strings.EqualFold(alg, "SHA-512-256"):
		s := sha512.Sum512_256(in)
		return hex.AppendEncode(dst, s[:]), true
	}
	return dst, false
}
