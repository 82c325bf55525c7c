package sip

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"hotdesk/sip/digestserver"
)

// maxContacts bounds the contacts of one REGISTER and the bindings of one
// owner on one AOR, so a credential cannot fill memory.
const maxContacts = 16

// register answers a REGISTER (RFC 3261 §10.3). It never blocks on I/O
// other than the in-memory Credentials, and it is idempotent: a
// retransmission (same Call-ID and CSeq) gets the same answer.
func (s *Server) register(ctx context.Context, req *sip.Request, local string) (*sip.Response, string) {
	now := s.now()
	to := req.To()
	domain := strings.ToLower(to.Address.Host)
	if !slices.Contains(s.domains, domain) {
		return s.reply(req, 404, "Not Found"), "not_found"
	}
	srcIP := hostOf(req.Source())
	if s.lock.locked("ip:"+srcIP, now) {
		return s.reply(req, 403, "Forbidden"), "locked"
	}
	cred, res, result := s.authenticate(ctx, req, domain, srcIP, now, nil)
	if res != nil {
		return res, result
	}
	canon, ok := s.creds.CanonicalUser(ctx, to.Address.User)
	if !ok || !slices.Contains(cred.AORs, canon) {
		return s.reply(req, 403, "Forbidden"), "forbidden"
	}
	aor := "sip:" + canon + "@" + domain
	op, res, result := s.parseContacts(req, aor)
	if res != nil {
		return res, result
	}
	if op == nil { // a fetch: no Contact
		return s.okResponse(req, s.loc.lookup(aor, now), 0, now), "fetch"
	}
	op.tmpl = Binding{AOR: aor, CallID: req.CallID().Value(), CSeq: req.CSeq().SeqNo,
		Source: req.Source(), Transport: strings.ToUpper(req.Transport()), Local: local,
		LocalHost: req.Recipient.Host, UserAgent: headerText(req, "User-Agent", 200),
		Owner: cred.Owner, AuthUser: cred.Username, Device: cred.Device}
	for _, h := range pathHeaders(req) {
		op.tmpl.Path = append(op.tmpl.Path, stripCRLF(h.Value()))
	}
	ar, bs := s.loc.apply(*op, now)
	switch ar {
	case applyOutOfOrder:
		return s.reply(req, 400, "CSeq Out Of Order"), "out_of_order"
	case applyTooMany:
		return s.reply(req, 403, "Too Many Bindings"), "forbidden"
	}
	granted := 0
	if len(op.contacts) == 1 {
		granted = op.contacts[0].expires
	}
	if op.wildcard || granted == 0 && len(op.contacts) == 1 {
		return s.okResponse(req, bs, -1, now), "unregistered"
	}
	return s.okResponse(req, bs, granted, now), "ok"
}

// authenticate checks the digest credentials; a nil response means pass.
// emergency, when not nil, reports that the request is a call to an
// emergency number: a lockout does not refuse it (the digest still has to
// be right), within a lockout budget of its own.
func (s *Server) authenticate(ctx context.Context, req *sip.Request, realm, srcIP string, now time.Time,
	emergency func() bool) (Credential, *sip.Response, string) {
	h := req.GetHeader("Authorization")
	if h == nil {
		return Credential{}, s.challenge(req, realm, false, now), "challenge"
	}
	var dc digestserver.Answer
	if err := digestserver.ParseAnswer(h.Value(), &dc); err != nil {
		return Credential{}, s.reply(req, 400, "Malformed Authorization"), "bad_request"
	}
	alg := canonicalAlg(dc.Algorithm)
	if dc.Realm != realm || !slices.Contains(s.algs, alg) || (dc.QOP != "" && dc.QOP != "auth") ||
		(dc.Algorithm != "" && !strings.EqualFold(dc.Algorithm, alg)) {
		return Credential{}, s.challenge(req, realm, false, now), "challenge"
	}
	// Failures lock the (account, source) pair, so guesses from one host
	// never lock the real phone out; the account as a whole has a larger
	// budget, which once spent refuses only sources it never worked from.
	pairKey, acctKey := "user:"+dc.Username+"|"+srcIP, "account:"+dc.Username
	exempt := false
	if s.lock.locked(pairKey, now) || s.budget.locked(acctKey, now) && !s.lock.known(pairKey, now) {
		if emergency == nil || s.emergency.locked(pairKey, now) || !emergency() {
			return Credential{}, s.reply(req, 403, "Forbidden"), "locked"
		}
		exempt = true
	}
	// A nonce we did not issue to this source proves the sender never got
	// our challenge there: a host spoofing the phone's address over UDP.
	// It is refused before the password is looked at and counts nowhere
	// near the lockout, so spoofed guesses cannot lock the phone out. A
	// nonce from before a restart looks the same: stale, so phones retry.
	nonce, st := s.nonces.Check(dc.Nonce, digestserver.Source(req.Transport(), srcIP), now)
	if st == digestserver.Invalid {
		s.m.foreignNonces.Inc()
		s.log.Debug("credentials with a nonce not issued to their source", "username", stripCRLF(dc.Username),
			"source", srcIP)
		return Credential{}, s.challenge(req, realm, true, now), "foreign_nonce"
	}
	cred, err := s.creds.Credential(ctx, dc.Username)
	known := err == nil
	if err != nil && !errors.Is(err, ErrUnknownUser) {
		s.log.Warn("credential lookup failed", "err", err)
		return Credential{}, s.reply(req, 500, "Server Internal Error"), "error"
	}
	ha1 := ""
	if known {
		ha1 = cred.HA1[alg]
		if ha1 == "" && cred.Password != "" {
			ha1 = s.ha1.get(alg, dc.Username, realm, cred.Password)
		}
	}
	if ha1 == "" {
		// Same work as for a known user, so timing does not tell them apart.
		known = false
		ha1 = s.ha1.get(alg, dc.Username, realm, "\x00no such user")
	}
	if !dc.Verify(string(req.Method), ha1) || !known {
		s.authFailed(srcIP, dc.Username, now)
		if exempt && s.emergency.fail(pairKey, now) {
			s.log.Info("emergency calls through a lockout refused after failed authentications",
				"username", stripCRLF(dc.Username), "source", srcIP)
		}
		return Credential{}, s.challenge(req, realm, false, now), "auth_failed"
	}
	if st == digestserver.OK {
		// nc 0 (no qop) makes the nonce single use; a retransmission of
		// the same request (Call-ID and CSeq) is not a replay.
		st = s.nonces.Use(nonce, dc.Username, uint64(dc.Nc), uint64(reqHash(req))|1<<32, now)
	}
	if st != digestserver.OK {
		return Credential{}, s.challenge(req, realm, true, now), "stale"
	}
	hadPair, hadIP := s.lock.succeed(pairKey), s.lock.succeed("ip:"+srcIP)
	s.lock.remember(pairKey, now)
	if (hadPair || hadIP) && s.authRelay != nil {
		s.authRelay(dc.Username, srcIP, false)
	}
	if t := req.Transport(); !strings.EqualFold(t, "udp") {
		s.guard.authenticated(req.Source())
	}
	return cred, nil, ""
}

// authFailed counts a failed authentication against the source address and
// the username (known or not: both look alike from outside).
func (s *Server) authFailed(srcIP, username string, now time.Time) {
	s.m.authFailures.Inc()
	s.countFailure(srcIP, username, now)
	if s.authRelay != nil {
		s.authRelay(username, srcIP, true)
	}
}

// AuthElsewhere counts another cluster node's authentication result for
// username from srcIP as if it had happened here (see Deps.AuthRelay).
func (s *Server) AuthElsewhere(username, srcIP string, failed bool) {
	now := s.now()
	if !failed {
		pairKey := "user:" + username + "|" + srcIP
		s.lock.succeed(pairKey)
		s.lock.succeed("ip:" + srcIP)
		s.lock.remember(pairKey, now)
		return
	}
	s.countFailure(srcIP, username, now)
}

// countFailure spends the lockout budgets of a failed authentication.
func (s *Server) countFailure(srcIP, username string, now time.Time) {
	if s.lock.fail("ip:"+srcIP, now) {
		s.m.lockouts.Inc()
		s.log.Info("source locked out after failed authentications", "source", srcIP)
	}
	if s.lock.fail("user:"+username+"|"+srcIP, now) {
		s.m.lockouts.Inc()
		s.log.Info("username locked out for a source after failed authentications", "username", stripCRLF(username),
			"source", srcIP)
	}
	if s.budget.fail("account:"+username, now) {
		s.m.lockouts.Inc()
		s.log.Warn("account under attack: sources it never worked from are refused", "username", stripCRLF(username))
	}
}

// challenge builds a 401 with one WWW-Authenticate per algorithm offered
// to this client (offeredAlgs).
func (s *Server) challenge(req *sip.Request, realm string, stale bool, now time.Time) *sip.Response {
	res := s.reply(req, 401, "Unauthorized")
	nonce := s.nonces.Issue(now, digestserver.Source(req.Transport(), hostOf(req.Source())))
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	for _, alg := range s.offeredAlgs(ua) {
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", digestserver.Challenge(realm, nonce, alg, stale)))
	}
	return res
}

// parseContacts turns the Contact and Expires headers into an operation;
// nil op and nil response mean a fetch.
func (s *Server) parseContacts(req *sip.Request, aor string) (*registerOp, *sip.Response, string) {
	hdrExp := -1
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			return nil, s.reply(req, 400, "Invalid Expires"), "bad_request"
		}
		hdrExp = int(min(v, 1<<31))
	}
	hs := req.GetHeaders("Contact")
	if len(hs) == 0 {
		return nil, nil, ""
	}
	if len(hs) > maxContacts {
		return nil, s.reply(req, 403, "Too Many Contacts"), "forbidden"
	}
	op := &registerOp{aor: aor}
	tooBrief := false
	for _, h := range hs {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, s.reply(req, 400, "Invalid Contact"), "bad_request"
		}
		if ch.Address.Wildcard {
			if len(hs) != 1 || hdrExp != 0 {
				return nil, s.reply(req, 400, "Invalid Wildcard Contact"), "bad_request"
			}
			op.wildcard = true
			return op, nil, ""
		}
		c, brief, err := s.contactUpdate(ch, hdrExp)
		if err != nil {
			return nil, s.reply(req, 400, err.Error()), "bad_request"
		}
		tooBrief = tooBrief || brief
		op.contacts = append(op.contacts, c)
	}
	if tooBrief {
		res := s.reply(req, 423, "Interval Too Brief")
		res.AppendHeader(sip.NewHeader("Min-Expires", strconv.Itoa(s.cfg.MinExpires)))
		return nil, res, "interval_too_brief"
	}
	return op, nil, ""
}

func (s *Server) contactUpdate(ch *sip.ContactHeader, hdrExp int) (contactUpdate, bool, error) {
	scheme := strings.ToLower(ch.Address.Scheme)
	if scheme != "sip" && scheme != "sips" || ch.Address.Host == "" {
		return contactUpdate{}, false, errors.New("Invalid Contact URI")
	}
	if ch.Address.Headers.Length() > 0 {
		return contactUpdate{}, false, errors.New("Contact URI Has Headers")
	}
	exp := s.cfg.DefaultExpires
	if hdrExp >= 0 {
		exp = hdrExp
	}
	if v, ok := ch.Params.Get("expires"); ok {
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
			exp = int(min(n, 1<<31))
		}
	}
	brief := exp > 0 && exp < s.cfg.MinExpires
	exp = min(exp, s.cfg.MaxExpires)
	c := contactUpdate{uri: stripCRLF(ch.Address.String()), expires: exp}
	c.key = uriKey(&ch.Address)
	if q, ok := ch.Params.Get("q"); ok {
		v, err := strconv.ParseFloat(q, 64)
		if err != nil || v < 0 || v > 1 || len(q) > 5 {
			return contactUpdate{}, false, errors.New("Invalid q-value")
		}
		c.q = q
	}
	if inst, ok := ch.Params.Get("+sip.instance"); ok {
		c.instance = stripCRLF(strings.Trim(inst, `"`))
		c.regID, _ = ch.Params.Get("reg-id")
	}
	return c, brief, nil
}

// okResponse is the 200 listing every current binding with its expiry.
// granted > 0 adds an Expires header (some UAs read only that one).
func (s *Server) okResponse(req *sip.Request, bs []Binding, granted int, now time.Time) *sip.Response {
	res := s.reply(req, 200, "OK")
	for _, b := range bs {
		left := int(b.Expires.Sub(now).Round(time.Second) / time.Second)
		if left <= 0 {
			continue
		}
		var v strings.Builder
		v.Grow(len(b.Contact) + 32)
		v.WriteByte('<')
		v.WriteString(b.Contact)
		v.WriteString(">;expires=")
		v.WriteString(strconv.Itoa(left))
		if b.Q != "" {
			v.WriteString(";q=")
			v.WriteString(b.Q)
		}
		if b.Instance != "" {
			v.WriteString(`;+sip.instance="`)
			v.WriteString(b.Instance)
			v.WriteByte('"')
			if b.RegID != "" {
				v.WriteString(";reg-id=")
				v.WriteString(b.RegID)
			}
		}
		res.AppendHeader(sip.NewHeader("Contact", v.String()))
	}
	if granted > 0 {
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(granted)))
	}
	if req.GetHeader("Path") != nil && supports(req, "path") {
		for _, h := range req.GetHeaders("Path") {
			res.AppendHeader(sip.NewHeader("Path", stripCRLF(h.Value())))
		}
	}
	return res
}

// supportedExt are the option tags hotdesk's registrar understands.
var supportedExt = []string{"path", "outbound"}

// checkRequire answers 420 for an option tag we do not support (RFC 3261 §8.2.2.3).
func (s *Server) checkRequire(req *sip.Request) *sip.Response {
	var bad []string
	for _, h := range req.GetHeaders("Require") {
		for _, tag := range strings.Split(h.Value(), ",") {
			tag = strings.ToLower(strings.TrimSpace(tag))
			if tag != "" && !slices.Contains(supportedExt, tag) {
				bad = append(bad, stripCRLF(tag))
			}
		}
	}
	if len(bad) == 0 {
		return nil
	}
	res := s.reply(req, 420, "Bad Extension")
	res.AppendHeader(sip.NewHeader("Unsupported", strings.Join(bad, ", ")))
	return res
}

func supports(req *sip.Request, tag string) bool {
	for _, h := range req.GetHeaders("Supported") {
		for _, t := range strings.Split(h.Value(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), tag) {
				return true
			}
		}
	}
	return false
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}

// headerText returns a header's value without CR/LF, cut to max bytes.
func headerText(req *sip.Request, name string, max int) string {
	h := req.GetHeader(name)
	if h == nil {
		return ""
	}
	v := stripCRLF(h.Value())
	if len(v) > max {
		v = v[:max]
	}
	return v
}

// stripCRLF removes CR, LF and NUL from text we store or echo, so no header
// injection can ride on it.
func stripCRLF(s string) string {
	if !strings.ContainsAny(s, "\r\n\x00") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' || r == 0 {
			return -1
		}
		return r
	}, s)
}

func pathHeaders(req *sip.Request) []sip.Header {
	if req.GetHeader("Path") == nil {
		return nil
	}
	return req.GetHeaders("Path")
}

// SoftphoneUserAgent is the User-Agent of the portal's own softphone,
// which is challenged with SHA-256 (when accepted) and nothing else.
const SoftphoneUserAgent = "hotdesk-softphone"

// offeredAlgs returns the configured algorithms a client with this
// User-Agent is challenged with: SHA-256 only when the client is known to
// handle it (Config.SHA256UserAgents) or nothing else is configured. A
// client that fails on an unknown algorithm instead of skipping its
// challenge (baresip 1.0, several phone firmwares) would otherwise never
// register; any accepted algorithm is still verified when a client uses it.
func (s *Server) offeredAlgs(userAgent string) []string {
	if !slices.Contains(s.algs, "SHA-256") || len(s.algs) == 1 {
		return s.algs
	}
	ua := strings.ToLower(userAgent)
	if strings.Contains(ua, SoftphoneUserAgent) {
		return []string{"SHA-256"} // browsers have SHA-256 (WebCrypto) but no MD5
	}
	for _, known := range s.sha256UAs {
		if strings.Contains(ua, known) {
			return s.algs
		}
	}
	out := make([]string, 0, len(s.algs))
	for _, a := range s.algs {
		if a != "SHA-256" {
			out = append(out, a)
		}
	}
	return out
}
