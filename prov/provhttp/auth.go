package provhttp

import (
	"net/http"
	"strings"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/prov/files"
	"hotdesk/sip/digestserver"
)

// authenticate checks an Authorization header. A device's digest
// credentials establish req.DeviceMAC; a user's (the native login door)
// establish req.LoginUser, the device they are at, and — for a GET of
// their own <user>.cfg — the login itself. Unknown user and wrong password
// take the same path and answer alike.
func (h *Handler) authenticate(r reqLine, header string, req *files.Request, kind files.FileKind, em *emFetch) (ok, stale bool) {
	var ans digestserver.Answer
	c := &ans
	if !parseDigest(header, c) || c.Realm != h.realm(r) || c.URI != r.uri {
		return false, false
	}
	now := h.now() // one reading for the nonce's age and its use
	nonce, st := h.nonces.Check(c.Nonce, nonceSource, now)
	if st != digestserver.OK {
		return false, st == digestserver.Expired
	}
	ctx := r.ctx
	if mac, isMAC := prov.NormalizeMAC(c.Username); isMAC {
		d, err := h.files.Device(ctx, mac)
		if err != nil || d.ProvUser != c.Username || d.ProvPassword == "" {
			return false, false
		}
		if !c.VerifyPassword(r.method, d.ProvPassword) { // c.Username is d.ProvUser
			// The phone holds its own credentials: this is another device
			// presenting the MAC (or the phone after a factory reset).
			h.files.WrongCredentials(ctx, d, *req)
			return false, false
		}
		if ok, stale := h.replayGuard(c, nonce, req, now); !ok {
			return false, stale
		}
		req.DeviceMAC, req.DeviceAuthenticated = d.MAC, true
		return true, false
	}
	// A user's login is good only for that user's own files (or, signing
	// in on a Cisco MPP, the profile of the phone they sign in on), and
	// each try counts against the same lockout as every other login door.
	isEM := em != nil && em.user != "" && em.user == c.Username
	if files.UserOfFile(req.Path) != c.Username && !isEM {
		return false, false
	}
	if h.logins != nil {
		done, allowed := h.logins.NativeGuard(c.Username, req.Remote.String())
		if !allowed {
			return false, false
		}
		ok := false
		defer func() { done(!ok) }()
		defer func() { ok = req.LoginUser != "" || req.EMToken != "" }()
	}
	u, err := h.acct.GetUser(ctx, c.Username)
	ha1 := ""
	if err == nil && u.Status != prov.StatusDisabled {
		ha1 = u.LoginHA1[algKey(c.Algorithm)]
	}
	if ha1 == "" {
		ha1 = strings.Repeat("0", 32) // same work as a wrong password
	}
	verified, byDefault := c.Verify(r.method, ha1), false
	if !verified && err == nil && u.Status != prov.StatusDisabled {
		// The site's default user, logged in by the phone itself with the
		// password its configuration carries (prov.login.defaultPassword).
		if secret := h.files.DefaultLoginSecretFor(ctx, *req, u); secret != "" {
			verified = c.Verify(r.method, auth.DigestHA1(c.Algorithm, u.Username, c.Realm, secret))
			byDefault = verified
		}
	}
	if !verified || err != nil || u.Status == prov.StatusDisabled {
		return false, false
	}
	if ok, stale := h.replayGuard(c, nonce, req, now); !ok {
		return false, stale
	}
	dev, err := h.files.Identify(ctx, *req)
	if err != nil {
		h.log.Debug("native login: device not identified", "remote", req.Remote)
		return false, false
	}
	if isEM {
		return h.extensionMobility(r, req, dev, u.Username, em.token), false
	}
	req.DeviceMAC, req.LoginUser, req.DefaultLogin = dev.MAC, u.Username, byDefault
	// <user>.cfg, at the root or in the site's user-profile directory.
	if kind == files.KindUserConfig && r.method != http.MethodPut && files.UserOfFile(req.Path) == u.Username {
		if h.logins == nil {
			return false, false
		}
		if _, err := h.logins.NativeLogin(ctx, dev.MAC, u.Username, req.Remote.String()); err != nil {
			h.log.Info("native login refused", "mac", dev.MAC, "user", u.Username, "err", err)
			return false, false
		}
	}
	return true, false
}

// extensionMobility applies a verified Cisco MPP sign-in fetch: the
// user's session profile when they are (or now get) logged in, the
// device's own profile for a login that has ended (with its token, so the
// phone's next re-sync with it is refused again), 401 when refused.
func (h *Handler) extensionMobility(r reqLine, req *files.Request, dev prov.Device, user, token string) bool {
	if h.logins == nil || r.method == http.MethodPut {
		return false
	}
	res, err := h.logins.ExtensionMobility(r.ctx, dev.MAC, user, token, req.Remote.String())
	switch {
	case err != nil:
		h.log.Info("extension mobility login refused", "component", "provhttp", "mac", dev.MAC, "user", user, "err", err)
		return false
	case res == prov.EMStale:
		// The phone proved both the user's password and the token only
		// this phone was given: it is the device, holding an ended login.
		req.DeviceMAC, req.DeviceAuthenticated, req.EMToken = dev.MAC, true, token
	default:
		req.DeviceMAC, req.LoginUser, req.EMLogin = dev.MAC, user, true
	}
	return true
}

// replayGuard refuses an answer that verified before: a captured request
// (over plain HTTP anyone on the path sees it) replayed within the nonce's
// lifetime.
func (h *Handler) replayGuard(c *digestserver.Answer, nonce digestserver.Nonce, req *files.Request, now time.Time) (ok, stale bool) {
	switch h.nonces.Use(nonce, c.Username, h.answerKey(c), 0, now) {
	case digestserver.OK:
		return true, false
	case digestserver.Expired:
		return false, true
	}
	h.log.Warn("provisioning digest answer replayed: refused", "component", "provhttp", "user", c.Username,
		"remote", req.Remote.String(), "uri", c.URI)
	h.files.CountReplay()
	return false, false
}

func algKey(alg string) string {
	if strings.EqualFold(alg, "SHA-256") {
		return "SHA-256"
	}
	return "MD5"
}
