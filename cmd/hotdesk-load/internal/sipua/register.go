package sipua

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// Account is what REGISTER needs: the AOR user and domain and the digest
// credentials.
type Account struct {
	User     string
	Domain   string
	AuthUser string
	Password string
}

// Registration is one line's registration state: the Call-ID and CSeq a
// phone keeps across refreshes, and the last challenge (reused with an
// incremented nonce count, as phones do).
type Registration struct {
	Acct    Account
	callID  string
	fromTag string
	cseq    uint32
	chal    *digest.Challenge
	nc      int
}

// NewRegistration starts the state of one line.
func NewRegistration(a Account) *Registration {
	return &Registration{Acct: a, callID: sip.GenerateTagN(20), fromTag: sip.GenerateTagN(10)}
}

// CallID is the Call-ID the line keeps across refreshes.
func (r *Registration) CallID() string { return r.callID }

// Result describes a finished REGISTER exchange.
type Result struct {
	Status int
	// Expires is what the registrar granted for our contact (0 if none).
	Expires int
	// Sent is how many requests went out (challenges make it ≥ 2).
	Sent int
}

// StatusError is a final non-2xx answer; Refused reports whether it was an
// authentication refusal (401/407 after fresh credentials, or 403).
type StatusError struct {
	Status int
	Reason string
}

func (e *StatusError) Error() string { return fmt.Sprintf("sip %d %s", e.Status, e.Reason) }

// Refused reports whether err says the registrar refused the credentials.
func Refused(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && (se.Status == 401 || se.Status == 407 || se.Status == 403)
}

// Register sends REGISTER for r with expires (0 unregisters our contact),
// answering digest challenges, stale nonces and 423 Interval Too Brief.
func (u *UA) Register(ctx context.Context, r *Registration, expires int) (Result, error) {
	var res Result
	justChallenged := false
	for range 5 {
		usedFresh := justChallenged
		justChallenged = false
		req, err := u.registerRequest(r, expires)
		if err != nil {
			return res, err
		}
		res.Sent++
		resp, err := u.transact(ctx, req)
		if err != nil {
			return res, fmt.Errorf("register %s: %w", r.Acct.User, err)
		}
		res.Status = resp.StatusCode
		switch {
		case resp.StatusCode >= 200 && resp.StatusCode < 300:
			res.Expires = grantedExpires(resp, u, expires)
			return res, nil
		case resp.StatusCode == 401 || resp.StatusCode == 407:
			hdr := "WWW-Authenticate"
			if resp.StatusCode == 407 {
				hdr = "Proxy-Authenticate"
			}
			chal, err := PickChallenge(headerValues(resp, hdr), u.cfg.Algorithm)
			if err != nil {
				return res, fmt.Errorf("register %s: %w", r.Acct.User, err)
			}
			if usedFresh && !chal.Stale {
				return res, &StatusError{Status: resp.StatusCode, Reason: resp.Reason}
			}
			r.chal, r.nc, justChallenged = chal, 0, true
		case resp.StatusCode == 423:
			if h := resp.GetHeader("Min-Expires"); h != nil {
				if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > expires {
					expires = n
					continue
				}
			}
			return res, &StatusError{Status: resp.StatusCode, Reason: resp.Reason}
		default:
			return res, &StatusError{Status: resp.StatusCode, Reason: resp.Reason}
		}
	}
	return res, fmt.Errorf("register %s: too many challenges", r.Acct.User)
}

func (u *UA) registerRequest(r *Registration, expires int) (*sip.Request, error) {
	ruri := sip.Uri{Scheme: "sip", Host: r.Acct.Domain}
	req := u.newRequest(sip.REGISTER, ruri)
	aor := sip.Uri{Scheme: "sip", User: r.Acct.User, Host: r.Acct.Domain}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", r.fromTag)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	cid := sip.CallIDHeader(r.callID)
	req.AppendHeader(&cid)
	r.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: r.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(u.contact(r.Acct.User))
	exp := sip.ExpiresHeader(expires)
	req.AppendHeader(&exp)
	if r.chal != nil {
		r.nc++
		cred, err := digest.Digest(r.chal, digest.Options{Method: "REGISTER", URI: ruri.String(),
			Username: r.Acct.AuthUser, Password: r.Acct.Password, Count: r.nc})
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", r.Acct.User, err)
		}
		req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
	}
	cl := sip.ContentLengthHeader(0)
	req.AppendHeader(&cl)
	return req, nil
}

// grantedExpires finds our contact's expires in a 200 OK.
func grantedExpires(res *sip.Response, u *UA, asked int) int {
	me := u.caddr.IP.String() + ":" + strconv.Itoa(u.caddr.Port)
	for _, h := range res.GetHeaders("Contact") {
		v := h.Value()
		if !strings.Contains(v, me) {
			continue
		}
		if i := strings.Index(strings.ToLower(v), "expires="); i >= 0 {
			s := v[i+len("expires="):]
			end := strings.IndexAny(s, ";,> ")
			if end >= 0 {
				s = s[:end]
			}
			if n, err := strconv.Atoi(s); err == nil {
				return n
			}
		}
	}
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			return n
		}
	}
	return asked
}

func headerValues(m interface{ GetHeaders(string) []sip.Header }, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

// ErrNoChallenge means no offered challenge is usable.
var ErrNoChallenge = errors.New("sipua: no usable digest challenge")

// PickChallenge parses the offered challenges (one per header value) and
// picks one: alg "" or "auto" prefers SHA-256 then MD5; otherwise only the
// named algorithm. qop must be absent or include auth.
func PickChallenge(values []string, alg string) (*digest.Challenge, error) {
	var best *digest.Challenge
	rank := func(c *digest.Challenge) int {
		switch strings.ToUpper(c.Algorithm) {
		case "SHA-256":
			return 2
		case "", "MD5":
			return 1
		}
		return 0
	}
	for _, v := range values {
		c, err := digest.ParseChallenge(v)
		if err != nil || !digest.CanDigest(c) || (len(c.QOP) > 0 && !c.SupportsQOP("auth")) {
			continue
		}
		c.Algorithm = strings.ToUpper(c.Algorithm)
		if len(c.QOP) > 0 {
			c.QOP = []string{"auth"} // never auth-int: REGISTER has no body to protect
		}
		if alg != "" && !strings.EqualFold(alg, "auto") {
			want := strings.ToUpper(alg)
			if c.Algorithm == want || (want == "MD5" && c.Algorithm == "") {
				return c, nil
			}
			continue
		}
		if best == nil || rank(c) > rank(best) {
			best = c
		}
	}
	if best == nil {
		return nil, ErrNoChallenge
	}
	return best, nil
}
