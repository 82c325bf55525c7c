package portal

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

// routes registers every page. A user page names its menu, whose access
// level the wrapper enforces for GET and POST alike.
func (w *web) routes() {
	w.mux.HandleFunc("GET /{$}", w.signInPage)
	w.mux.HandleFunc("POST /login", w.signIn)
	w.mux.HandleFunc("POST /logout", w.signOut)
	w.mux.HandleFunc("GET /forgot", w.forgotPage)
	w.mux.HandleFunc("POST /forgot", w.forgot)
	w.mux.HandleFunc("GET "+prov.PasswordPath, w.setPasswordPage)
	w.mux.HandleFunc("POST "+prov.PasswordPath, w.setPassword)
	w.mux.Handle("GET /admin", http.RedirectHandler("/admin/", http.StatusMovedPermanently))
	w.mux.Handle("GET /me", http.RedirectHandler("/me/", http.StatusMovedPermanently))

	w.handle("GET /admin/{$}", roleAdmin, menuNone, w.dashboard)
	w.handle("GET /admin/users", roleAdmin, menuNone, w.adminUsers)
	w.handle("POST /admin/users/columns", roleAdmin, menuNone, w.adminSaveColumns)
	w.handle("GET /admin/users/new", roleAdmin, menuNone, w.adminNewUser)
	w.handle("POST /admin/users", roleAdmin, menuNone, w.adminCreateUser)
	w.handle("GET /admin/users/import", roleAdmin, menuNone, w.adminImportPage)
	w.handle("POST /admin/users/import", roleAdmin, menuNone, w.adminImport)
	w.handle("GET /admin/users/{username}", roleAdmin, menuNone, w.adminUser)
	w.handle("POST /admin/users/{username}", roleAdmin, menuNone, w.adminUpdateUser)
	w.handle("POST /admin/users/{username}/access", roleAdmin, menuNone, w.adminUserAccess)
	w.handle("POST /admin/users/{username}/params", roleAdmin, menuNone, w.adminUserParams)
	w.handle("POST /admin/users/{username}/numbers", roleAdmin, menuNone, w.adminUserNumbers)
	w.handle("POST /admin/users/{username}/status", roleAdmin, menuNone, w.adminUserStatus)
	w.handle("POST /admin/users/{username}/password", roleAdmin, menuNone, w.adminUserPassword)
	w.handle("POST /admin/users/{username}/password-link", roleAdmin, menuNone, w.adminUserPasswordLink)

	w.handle("GET /admin/devices", roleAdmin, menuNone, w.adminDevices)
	w.handle("POST /admin/devices", roleAdmin, menuNone, w.adminCreateDevice)
	w.handle("GET /admin/devices/{mac}", roleAdmin, menuNone, w.adminDevice)
	w.handle("POST /admin/devices/{mac}/assign", roleAdmin, menuNone, w.adminAssign)
	w.handle("POST /admin/devices/{mac}/unassign", roleAdmin, menuNone, w.adminUnassign)
	w.handle("POST /admin/devices/{mac}/check-sync", roleAdmin, menuNone, w.adminCheckSync)
	w.handle("POST /admin/devices/{mac}/verify", roleAdmin, menuNone, w.adminVerify)
	w.handle("POST /admin/devices/{mac}/reset-credentials", roleAdmin, menuNone, w.adminResetCredentials)
	w.handle("POST /admin/devices/{mac}/logout", roleAdmin, menuNone, w.adminForceLogout)
	w.handle("POST /admin/devices/{mac}/reveal", roleAdmin, menuNone, w.adminReveal)

	w.handle("GET /admin/sites", roleAdmin, menuNone, w.adminSites)
	w.handle("POST /admin/sites", roleAdmin, menuNone, w.adminCreateSite)
	w.handle("GET /admin/sites/{id}", roleAdmin, menuNone, w.adminSite)
	w.handle("POST /admin/sites/{id}", roleAdmin, menuNone, w.adminUpdateSite)
	w.handle("GET /admin/live", roleAdmin, menuNone, w.adminLive)
	w.handle("POST /admin/sessions/{id}/end", roleAdmin, menuNone, w.adminEndSession)
	w.handle("GET /admin/audit", roleAdmin, menuNone, w.adminAudit)
	w.handle("GET /admin/tokens", roleAdmin, menuNone, w.adminTokens)
	w.handle("POST /admin/tokens/{id}/revoke", roleAdmin, menuNone, w.adminRevokeToken)

	w.handle("GET /me/{$}", roleUser, menuNone, w.userHome)
	w.handle("GET /me/welcome", roleUser, menuNone, w.wizardPage)
	w.handle("POST /me/welcome", roleUser, menuNone, w.wizard)
	w.handle("GET /me/profile", roleUser, menuProfile, w.profilePage)
	w.handle("POST /me/profile", roleUser, menuProfile, w.profile)
	w.handle("POST /me/password", roleUser, menuProfile, w.password)
	w.handle("GET /me/call-handling", roleUser, menuCallHandling, w.callHandlingPage)
	w.handle("POST /me/call-handling", roleUser, menuCallHandling, w.callHandling)
	w.handle("GET /me/directory", roleUser, menuDirectory, w.directoryPage)
	w.handle("POST /me/directory", roleUser, menuDirectory, w.directory)
	w.handle("GET /me/buttons", roleUser, menuButtons, w.buttonsPage)
	w.handle("POST /me/buttons", roleUser, menuButtons, w.buttons)
	w.handle("GET /me/reporting", roleUser, menuReporting, w.reportingPage)
	w.handle("GET /me/company", roleUser, menuNone, w.companyPage)
	w.handle("GET /me/telephony", roleUser, menuNone, w.telephonyPage)
	w.handle("POST /me/telephony/reveal", roleUser, menuNone, w.telephonyReveal)
	w.handle("GET /me/phones", roleUser, menuNone, w.phonesPage)
	w.handle("POST /me/phones/{id}/logout", roleUser, menuNone, w.phoneLogout)
	w.handle("GET /me/calls", roleUser, menuNone, w.callsPage)
	w.callControlRoutes()
	w.voicemailRoutes()
	w.voicemailAPIRoutes()
	w.softphoneRoutes()
	w.recordingRoutes()
}

// signInPage shows the one sign-in form, or sends a signed-in browser on.
func (w *web) signInPage(rw http.ResponseWriter, r *http.Request) {
	if s := w.sess.get(r); s != nil {
		http.Redirect(rw, r, home(s), http.StatusSeeOther)
		return
	}
	w.renderSignIn(rw, r, http.StatusOK, r.URL.Query().Get("next"), nil, "")
}

func (w *web) renderSignIn(rw http.ResponseWriter, r *http.Request, code int, next string, errs map[string]string, msg string) {
	tok := provauth.RandomSecret(24)
	w.setCookie(rw, r, preCookie, tok, 3600)
	w.render(rw, r, code, "login.html", &page{Title: "Sign in", PreCSRF: tok, Errors: errs, Message: msg,
		Form: map[string]string{"username": r.PostFormValue("username"), "next": next}})
}

func home(s *webSession) string {
	if s.Admin {
		return "/admin/"
	}
	return "/me/"
}

// safeNext keeps a post-sign-in redirect on this site and in the role's area.
func safeNext(next string, s *webSession) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.HasPrefix(next, "//") ||
		strings.Contains(next, "\\") || !strings.HasPrefix(next, home(s)) {
		return home(s)
	}
	return next
}

// signIn checks the form's token, the rate limit and the lockout, then
// the credentials: an admin account first, then a user whose portal is on.
func (w *web) signIn(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
	c, err := r.Cookie(preCookie)
	tok := r.PostFormValue(csrfField)
	if err != nil || tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(c.Value)) != 1 {
		w.m.refused.WithLabelValues("csrf").Inc()
		w.renderSignIn(rw, r, http.StatusForbidden, "", nil, "The sign-in form expired. Please try again.")
		return
	}
	name, pass, next := strings.TrimSpace(r.PostFormValue("username")), r.PostFormValue("password"), r.PostFormValue("next")
	src := remoteHost(r)
	now := w.now()
	srcKey, nameKey := "web-source:"+src, "web-name:"+strings.ToLower(name)
	if !w.signInAllowed(rw, r, src, srcKey, nameKey, next) {
		return
	}
	if name == "" || pass == "" {
		errs := map[string]string{}
		if name == "" {
			errs["username"] = "Enter your user name."
		}
		if pass == "" {
			errs["password"] = "Enter your password."
		}
		w.renderSignIn(rw, r, http.StatusBadRequest, next, errs, "")
		return
	}
	// Counted before the check, so parallel guesses cannot all be verified
	// first; per name and source, so a burst from one host locks out that
	// host, not the real owner of the name (see provauth.Lockout.TryGuess).
	doneSrc, okSrc := w.lock.Try(srcKey, now)
	doneName, okName := w.lock.TryGuess(nameKey, src, now)
	defer func() { doneSrc(false); doneName(false) }()
	if !okSrc || !okName {
		w.m.logins.WithLabelValues("locked").Inc()
		rw.Header().Set("Retry-After", "60")
		w.renderSignIn(rw, r, http.StatusTooManyRequests, next, nil,
			"Too many failed attempts: sign-in is locked for a while. Try again later.")
		return
	}
	admin, ok, err := w.verify(r.Context(), name, pass)
	if r.Context().Err() != nil {
		return // the browser went away while its check waited; nobody to answer
	}
	if err != nil {
		w.log.Error("portal sign-in failed", "err", err)
		w.renderSignIn(rw, r, http.StatusInternalServerError, next, nil, "Sign-in is unavailable; try again later.")
		return
	}
	if !ok {
		doneSrc(true)
		doneName(true)
		w.m.logins.WithLabelValues("failed").Inc()
		w.mgr.Audit(r.Context(), prov.Actor{Kind: prov.ActorAnonymous, Remote: src}, "portal.login_failed", prov.PortalObject(name), nil, nil)
		w.renderSignIn(rw, r, http.StatusUnauthorized, next,
			map[string]string{"password": "The user name or password is wrong."}, "")
		return
	}
	w.lock.GuessSucceeded(nameKey, src, now)
	s, err := w.sess.start(r.Context(), admin, name)
	if err != nil {
		w.log.Error("portal sign-in", "component", "portal", "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	w.setCookie(rw, r, sessionCookie, s.ID, int(w.cfg.SessionMax.Seconds()))
	w.setCookie(rw, r, preCookie, "", -1)
	who := prov.UserActor(name, src)
	if admin {
		who.Kind = prov.ActorAdmin
	}
	w.m.logins.WithLabelValues("ok_" + string(who.Kind)).Inc()
	w.mgr.Audit(r.Context(), who, "portal.login", prov.PortalObject(name), nil, nil)
	to := safeNext(next, s)
	if !admin {
		if u, err := w.d.Store.GetUser(r.Context(), name); err == nil && u.Portal.Wizard && !u.Portal.WizardDone {
			to = "/me/welcome"
		}
	}
	http.Redirect(rw, r, to, http.StatusSeeOther)
}

// signInAllowed applies the per-source rate limit and the lockout per
// source and per (name, source); it answers 429 itself.
func (w *web) signInAllowed(rw http.ResponseWriter, r *http.Request, src, srcKey, nameKey, next string) bool {
	now := w.now()
	msg := ""
	switch {
	case !w.rate.allow("src:" + src):
		w.m.logins.WithLabelValues("rate_limited").Inc()
		msg = "Too many sign-in attempts. Wait a minute and try again."
	case w.lock.Locked(srcKey, now) || w.lock.LockedGuess(nameKey, src, now):
		w.m.logins.WithLabelValues("locked").Inc()
		msg = "Too many failed attempts: sign-in is locked for a while. Try again later."
	default:
		return true
	}
	rw.Header().Set("Retry-After", "60")
	w.renderSignIn(rw, r, http.StatusTooManyRequests, next, nil, msg)
	return false
}

// verify checks name and password against the admin accounts, else the
// users with the portal enabled. Every attempt costs exactly one argon2id
// verification — an admin's name, a user's, a user without a password or
// an unknown name — so timing reveals none of them. (An admin's name is
// therefore never tried as a user's too.)
func (w *web) verify(ctx context.Context, name, pass string) (admin, ok bool, err error) {
	adm, err := w.d.Store.GetAdmin(ctx, name)
	switch {
	case err == nil:
		ok, err = w.hasher.VerifyContext(ctx, adm.PasswordHash, pass)
		return ok, ok, err
	case !errors.Is(err, prov.ErrNotFound):
		return false, false, err
	}
	u, err := w.d.Store.GetUser(ctx, name)
	if errors.Is(err, prov.ErrNotFound) {
		return false, false, w.hasher.VerifyNobodyContext(ctx, pass)
	} else if err != nil {
		return false, false, err
	}
	if ok, err = w.hasher.VerifyContext(ctx, u.PasswordHash, pass); err != nil {
		return false, false, err
	}
	if !ok || u.Status != prov.StatusActive || !u.Portal.Enabled {
		return false, false, nil
	}
	return false, true, nil
}

// signOut ends the portal session (CSRF-checked, so no page can sign
// someone out behind their back).
func (w *web) signOut(rw http.ResponseWriter, r *http.Request) {
	s := w.sess.get(r)
	if s == nil {
		http.Redirect(rw, r, "/", http.StatusSeeOther)
		return
	}
	if !w.checkCSRF(rw, r, s) {
		return
	}
	w.sess.end(r.Context(), s)
	w.setCookie(rw, r, sessionCookie, "", -1)
	http.Redirect(rw, r, "/", http.StatusSeeOther)
}
