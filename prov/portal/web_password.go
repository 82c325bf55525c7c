package portal

import (
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

// The "forgot password" and "set password" pages are public: like the
// sign-in form they carry a token of their own in the pre-session cookie.

// checkPreCSRF checks the public form's token against the cookie.
func (w *web) checkPreCSRF(r *http.Request) bool {
	c, err := r.Cookie(preCookie)
	tok := r.PostFormValue(csrfField)
	return err == nil && tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(c.Value)) == 1
}

func (w *web) publicForm(rw http.ResponseWriter, r *http.Request, code int, name, title string, p *page) {
	tok := provauth.RandomSecret(24)
	w.setCookie(rw, r, preCookie, tok, 3600)
	p.Title, p.PreCSRF = title, tok
	w.render(rw, r, code, name, p)
}

func (w *web) forgotPage(rw http.ResponseWriter, r *http.Request) {
	if !w.d.Links.Enabled() {
		w.render(rw, r, http.StatusNotFound, "error.html", &page{Title: "Not available",
			Message: "Passwords cannot be reset by e-mail here. Ask your administrator."})
		return
	}
	w.publicForm(rw, r, http.StatusOK, "forgot.html", "Forgot your password?", &page{})
}

// forgotAnswer is the one answer to every well-formed request: whether
// the account exists is not told.
const forgotAnswer = "If an account with that user name or e-mail address exists and has an e-mail address, " +
	"a link to set a new password is on its way. It works once and for a limited time."

// forgot sends a reset link to the account named, if there is one, and
// answers the same either way; a source is limited to ForgotRate an hour.
func (w *web) forgot(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
	if !w.d.Links.Enabled() {
		w.render(rw, r, http.StatusNotFound, "error.html", &page{Title: "Not available",
			Message: "Passwords cannot be reset by e-mail here. Ask your administrator."})
		return
	}
	if !w.checkPreCSRF(r) {
		w.m.refused.WithLabelValues("csrf").Inc()
		w.publicForm(rw, r, http.StatusForbidden, "forgot.html", "Forgot your password?",
			&page{Message: "The form expired. Please try again."})
		return
	}
	src := remoteHost(r)
	if !w.forgotRate.allow("forgot:" + src) {
		w.m.refused.WithLabelValues("forgot_rate").Inc()
		w.log.Warn("forgot password: rate limited", "remote", src)
		rw.Header().Set("Retry-After", "3600")
		w.publicForm(rw, r, http.StatusTooManyRequests, "forgot.html", "Forgot your password?",
			&page{Message: "Too many requests from your address. Try again later."})
		return
	}
	login := strings.TrimSpace(r.PostFormValue("login"))
	if login == "" {
		w.publicForm(rw, r, http.StatusBadRequest, "forgot.html", "Forgot your password?",
			&page{Errors: map[string]string{"login": "Enter your user name or e-mail address."}})
		return
	}
	w.d.Links.ForgotLater(r.Context(), login, src)
	w.setCookie(rw, r, preCookie, "", -1)
	w.render(rw, r, http.StatusOK, "forgot.html", &page{Title: "Forgot your password?", Flash: forgotAnswer,
		Data: "sent"})
}

// linkMessage says why a password link does not work, and what to do.
func linkMessage(err error) (int, string) {
	switch {
	case errors.Is(err, prov.ErrLinkUsed):
		return http.StatusGone, "This link has already been used. Ask for a new one with \"Forgot your password?\" on the sign-in page."
	case errors.Is(err, prov.ErrLinkExpired):
		return http.StatusGone, "This link has expired. Ask for a new one with \"Forgot your password?\" on the sign-in page."
	case errors.Is(err, prov.ErrLinkInvalid):
		return http.StatusNotFound, "This link is not valid. Check that you copied all of it, or ask for a new one."
	}
	return http.StatusInternalServerError, "Passwords cannot be set right now; try again later."
}

type setPasswordData struct {
	Token    string
	Username string
}

// setPasswordPage shows the form a password link opens.
func (w *web) setPasswordPage(rw http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	u, _, err := w.d.Links.Check(r.Context(), tok)
	if err != nil {
		code, msg := linkMessage(err)
		if code == http.StatusInternalServerError {
			w.log.Error("password link check failed", "err", err)
		}
		w.render(rw, r, code, "error.html", &page{Title: "Set your password", Message: msg})
		return
	}
	w.publicForm(rw, r, http.StatusOK, "set_password.html", "Set your password",
		&page{Data: setPasswordData{Token: tok, Username: u.Username}})
}

// setPassword spends the link, sets the password and ends every portal
// session of the user.
func (w *web) setPassword(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
	tok := r.PostFormValue("token")
	if !w.checkPreCSRF(r) {
		w.m.refused.WithLabelValues("csrf").Inc()
		w.render(rw, r, http.StatusForbidden, "error.html", &page{Title: "Set your password",
			Message: "The form expired. Open the link from the message again."})
		return
	}
	u, err := w.d.Links.SetPassword(r.Context(), tok, r.PostFormValue("password"), r.PostFormValue("confirm"),
		remoteHost(r))
	var fe *prov.FieldError
	switch {
	case errors.As(err, &fe):
		uu, _, _ := w.d.Links.Check(r.Context(), tok)
		w.publicForm(rw, r, http.StatusBadRequest, "set_password.html", "Set your password",
			&page{Data: setPasswordData{Token: tok, Username: uu.Username}, Errors: map[string]string{fe.Field: fe.Msg}})
		return
	case err != nil:
		code, msg := linkMessage(err)
		if code == http.StatusInternalServerError {
			w.log.Error("set password by link failed", "err", err)
		}
		w.render(rw, r, code, "error.html", &page{Title: "Set your password", Message: msg})
		return
	}
	w.sess.endUser(r.Context(), u.Username, nil)
	w.renderSignIn(rw, r, http.StatusOK, "", nil, "Your password is set. Sign in with it.")
}

// adminUserPasswordLink e-mails the user a link to set a new password.
func (w *web) adminUserPasswordLink(rw http.ResponseWriter, r *http.Request, q *request) {
	u, err := w.d.Store.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		w.notFound(rw, r, q)
		return
	}
	err = w.d.Links.SendReset(r.Context(), u.Username, q.actor(r))
	var msg string
	switch {
	case errors.Is(err, prov.ErrMailOff):
		msg = "E-mail is not configured (mail.host)."
	case errors.Is(err, prov.ErrNoEmail):
		msg = "The user has no e-mail address."
	case errors.Is(err, prov.ErrDisabled):
		msg = "The user is disabled."
	case err != nil:
		w.log.Error("password link not sent", "user", u.Username, "err", err)
		msg = "The link could not be sent; see the server log."
	}
	if msg != "" {
		w.renderUser(rw, r, q, http.StatusBadRequest, u, userFormOf(u), nil, msg)
		return
	}
	w.redirect(rw, r, q.s, "/admin/users/"+url.PathEscape(u.Username),
		"A link to set a new password is on its way to "+u.Email+".")
}
