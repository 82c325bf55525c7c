package sipua

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Validation is Polycom's request validation
// (voIpProt.SIP.requestValidation.1.method="digest"): a request of one of
// Methods is answered 401 with a fresh MD5 digest challenge, and the
// request sent again is accepted only if its Authorization is a valid
// digest of the credentials of the line it is addressed to (the user of
// its Request-URI, else of its To).
type Validation struct {
	// Methods are the validated methods (none: NOTIFY).
	Methods []string
	// Realm is the challenge's realm.
	Realm string
	// Creds returns the digest username and password of the line whose
	// address of record has user part user; ok false when there is none.
	// It is called from the UA's reader: it must not block.
	Creds func(user string) (authUser, password string, ok bool)
}

// nonceLife bounds how long a challenge can be answered: longer than a
// UDP client transaction (Timer F, 32 s) of the challenged request.
const nonceLife = time.Minute

func (v *Validation) covers(m sip.RequestMethod) bool {
	if v == nil || v.Creds == nil {
		return false
	}
	if len(v.Methods) == 0 {
		return m == sip.NOTIFY
	}
	return slices.ContainsFunc(v.Methods, func(s string) bool { return strings.EqualFold(s, m.String()) })
}

// verdict is the outcome of validating one request: a challenge to send,
// or ok (with the line it matched) or a refusal.
type verdict struct {
	challenge      sip.Header
	ok             bool
	user, authUser string
}

// addressedUser is the user part of the Request-URI, else of To.
func addressedUser(req *sip.Request) string {
	if req.Recipient.User != "" {
		return req.Recipient.User
	}
	if to := req.To(); to != nil {
		return to.Address.User
	}
	return ""
}

// validate checks req's Authorization against the addressed line.
func (u *UA) validate(req *sip.Request) verdict {
	v := u.cfg.Validation
	h := req.GetHeader("Authorization")
	if h == nil {
		return verdict{challenge: u.challenge(false)}
	}
	c, err := digest.ParseCredentials(h.Value())
	if err != nil {
		return verdict{user: addressedUser(req)}
	}
	if !u.nonceValid(c.Nonce) {
		return verdict{challenge: u.challenge(true)}
	}
	// The line the request is addressed to: Request-URI user, else To.
	var user, authUser, password string
	ok := false
	for _, cand := range []string{req.Recipient.User, toUser(req)} {
		if cand == "" {
			continue
		}
		if authUser, password, ok = v.Creds(cand); ok {
			user = cand
			break
		}
	}
	if !ok {
		return verdict{user: addressedUser(req)}
	}
	out := verdict{user: user, authUser: c.Username}
	alg := strings.ToUpper(c.Algorithm)
	if c.Username != authUser || c.Realm != v.Realm || (alg != "" && alg != "MD5") || c.QOP != "auth" ||
		c.URI == "" || c.Cnonce == "" || c.Nc < 1 {
		return out
	}
	want, err := digest.Digest(&digest.Challenge{Realm: v.Realm, Nonce: c.Nonce, Algorithm: "MD5", QOP: []string{"auth"}},
		digest.Options{Method: req.Method.String(), URI: c.URI, Username: authUser, Password: password,
			Cnonce: c.Cnonce, Count: c.Nc})
	out.ok = err == nil && subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(c.Response))) == 1
	return out
}

func toUser(req *sip.Request) string {
	if to := req.To(); to != nil {
		return to.Address.User
	}
	return ""
}

// challenge issues a nonce and builds the WWW-Authenticate header.
func (u *UA) challenge(stale bool) sip.Header {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	nonce := hex.EncodeToString(b)
	now := time.Now()
	u.mu.Lock()
	if len(u.nonces) >= 64 {
		for n, t := range u.nonces {
			if now.Sub(t) > nonceLife {
				delete(u.nonces, n)
			}
		}
		if len(u.nonces) >= 64 {
			clear(u.nonces)
		}
	}
	u.nonces[nonce] = now
	u.mu.Unlock()
	v := `Digest realm="` + u.cfg.Validation.Realm + `", nonce="` + nonce + `", algorithm=MD5, qop="auth"`
	if stale {
		v += ", stale=true"
	}
	return sip.NewHeader("WWW-Authenticate", v)
}

func (u *UA) nonceValid(n string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	t, ok := u.nonces[n]
	return ok && time.Since(t) <= nonceLife
}
