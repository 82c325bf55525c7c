package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"hotdesk/prov"
)

// userPage starts a page of the user portal; Read access renders it
// without controls.
func userPage(q *request, title, active string) *page {
	u := q.user
	return &page{Title: title, S: q.s, User: &u, Active: active, RO: q.acc != prov.AccessWrite}
}

// homeView is the user's overview.
type homeView struct {
	Numbers  []string
	Sessions int
	CH       prov.CallHandling
	// Modes are the call modes the user may pick (more than None: the
	// picker shows), Mode the one in use.
	Modes []string
	Mode  string
}

func (w *web) userHome(rw http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	var v homeView
	v.Numbers, _ = w.d.Store.NumbersOf(ctx, q.user.ID)
	if ss, err := w.d.Store.ListSessions(ctx, prov.SessionQuery{UserID: q.user.ID, ActiveOnly: true}); err == nil {
		v.Sessions = len(ss)
	}
	v.CH = q.user.CallHandling
	v.Modes, v.Mode = prov.AllowedCallModes(q.user), prov.CallMode(q.user)
	p := userPage(q, "Welcome, "+q.user.FirstName, "home")
	p.Data = v
	w.render(rw, r, http.StatusOK, "me_home.html", p)
}

func (w *web) wizardPage(rw http.ResponseWriter, r *http.Request, q *request) {
	p := userPage(q, "Welcome to hotdesk", "home")
	p.RO = access(q.user, menuProfile) != prov.AccessWrite
	p.Form = map[string]string{"language": q.user.Language}
	w.render(rw, r, http.StatusOK, "me_welcome.html", p)
}

// wizard is the optional first-login wizard: change the initial password
// and pick the language (when the profile is writable), or skip.
func (w *web) wizard(rw http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	a := q.actor(r)
	portal := q.user.Portal
	portal.WizardDone = true
	patch := prov.UserPatch{Portal: &portal}
	if r.PostFormValue("action") != "skip" && access(q.user, menuProfile) == prov.AccessWrite {
		lang := strings.TrimSpace(r.PostFormValue("language"))
		if lang != "" && !containsString(w.cfg.Languages, lang) {
			w.wizardError(rw, r, q, map[string]string{"language": "Choose one of the offered languages."})
			return
		}
		patch.Language = &lang
		if r.PostFormValue("new_password") != "" {
			if errs := w.changePassword(r, q); errs != nil {
				w.wizardError(rw, r, q, errs)
				return
			}
		}
	}
	if _, err := w.mgr.UpdateUser(ctx, q.user.Username, patch, a); err != nil {
		errs, _ := fieldErrors(err)
		w.wizardError(rw, r, q, errs)
		return
	}
	w.redirect(rw, r, q.s, "/me/", "You are all set.")
}

func (w *web) wizardError(rw http.ResponseWriter, r *http.Request, q *request, errs map[string]string) {
	p := userPage(q, "Welcome to hotdesk", "home")
	p.Errors, p.Form = errs, map[string]string{"language": r.PostFormValue("language")}
	w.render(rw, r, http.StatusBadRequest, "me_welcome.html", p)
}

// changePassword changes the signed-in user's password from the form's
// current_password, new_password and confirm; it returns field errors.
// The user's other portal sessions end; phone sessions keep running.
func (w *web) changePassword(r *http.Request, q *request) map[string]string {
	_, err := w.d.Directory.ChangePassword(r.Context(), prov.PasswordChange{Username: q.user.Username,
		Old: r.PostFormValue("current_password"), New: r.PostFormValue("new_password"), Confirm: r.PostFormValue("confirm"),
		Remote: r.RemoteAddr})
	if errors.Is(err, prov.ErrAuth) {
		return map[string]string{"current_password": "The current password is wrong."}
	}
	if err != nil {
		errs, msg := fieldErrors(err)
		if p, ok := errs["password"]; ok {
			errs = map[string]string{"new_password": p}
		}
		if msg != "" {
			errs = map[string]string{"new_password": msg}
		}
		return errs
	}
	w.mgr.Audit(r.Context(), q.actor(r), "user.password.change", prov.UserObject(q.user.Username), nil,
		map[string]bool{"password_changed": true})
	w.sess.endUser(r.Context(), q.user.Username, q.s)
	return nil
}

var profileFields = []string{"first_name", "last_name", "email", "language"}

// profileForm is the profile page's fields as stored.
func profileForm(u prov.User) map[string]string {
	return map[string]string{"first_name": u.FirstName, "last_name": u.LastName, "email": u.Email, "language": u.Language}
}

func (w *web) profilePage(rw http.ResponseWriter, r *http.Request, q *request) {
	p := userPage(q, "Profile", string(menuProfile))
	p.Form = profileForm(q.user)
	w.render(rw, r, http.StatusOK, "me_profile.html", p)
}

func (w *web) profile(rw http.ResponseWriter, r *http.Request, q *request) {
	f := formValues(r, profileFields...)
	if f["language"] != "" && !containsString(w.cfg.Languages, f["language"]) {
		w.profileError(rw, r, q, f, map[string]string{"language": "Choose one of the offered languages."})
		return
	}
	_, err := w.mgr.UpdateUser(r.Context(), q.user.Username, prov.UserPatch{FirstName: ptr(f["first_name"]),
		LastName: ptr(f["last_name"]), Email: ptr(f["email"]), Language: ptr(f["language"])}, q.actor(r))
	if err != nil {
		errs, _ := fieldErrors(err)
		w.profileError(rw, r, q, f, errs)
		return
	}
	w.mgr.NotifyUserDevices(r.Context(), q.user.ID, "profile")
	w.redirect(rw, r, q.s, "/me/profile", "Profile saved.")
}

func (w *web) profileError(rw http.ResponseWriter, r *http.Request, q *request, f, errs map[string]string) {
	p := userPage(q, "Profile", string(menuProfile))
	p.Form, p.Errors = f, errs
	w.render(rw, r, http.StatusBadRequest, "me_profile.html", p)
}

func (w *web) password(rw http.ResponseWriter, r *http.Request, q *request) {
	if errs := w.changePassword(r, q); errs != nil {
		w.profileError(rw, r, q, profileForm(q.user), errs)
		return
	}
	w.redirect(rw, r, q.s, "/me/profile", "Password changed. Use it on the phones too.")
}

func callHandlingForm(ch prov.CallHandling) map[string]string {
	f := map[string]string{"forward_always": ch.ForwardAlways, "forward_busy": ch.ForwardBusy,
		"forward_no_answer": ch.ForwardNoAnswer, "twinning": ch.Twinning, "no_answer_seconds": ""}
	if ch.NoAnswerSeconds > 0 {
		f["no_answer_seconds"] = strconv.Itoa(ch.NoAnswerSeconds)
	}
	if ch.DND {
		f["dnd"] = "on"
	}
	if !ch.VoicemailOff {
		f["voicemail"] = "on"
	}
	return f
}

func (w *web) callHandlingPage(rw http.ResponseWriter, r *http.Request, q *request) {
	p := userPage(q, "Call handling", string(menuCallHandling))
	p.Form = callHandlingForm(q.user.CallHandling)
	p.Data = w.d.Voicemails != nil // the voicemail box is shown
	w.render(rw, r, http.StatusOK, "me_call_handling.html", p)
}

func (w *web) callHandling(rw http.ResponseWriter, r *http.Request, q *request) {
	f := formValues(r, "dnd", "forward_always", "forward_busy", "forward_no_answer", "no_answer_seconds", "twinning",
		"voicemail")
	errs := map[string]string{}
	secs := 0
	if f["no_answer_seconds"] != "" {
		var err error
		if secs, err = strconv.Atoi(f["no_answer_seconds"]); err != nil {
			errs["no_answer_seconds"] = "Enter a number of seconds."
		}
	}
	if len(errs) == 0 {
		ch := prov.CallHandling{DND: f["dnd"] != "", ForwardAlways: f["forward_always"], ForwardBusy: f["forward_busy"],
			ForwardNoAnswer: f["forward_no_answer"], NoAnswerSeconds: secs, Twinning: f["twinning"],
			VoicemailOff: q.user.CallHandling.VoicemailOff}
		if w.d.Voicemails != nil { // the form has the box only then
			ch.VoicemailOff = f["voicemail"] == ""
		}
		_, err := w.mgr.SetCallHandling(r.Context(), q.user.Username, ch, q.actor(r))
		if err == nil {
			w.redirect(rw, r, q.s, "/me/call-handling", "Call handling saved.")
			return
		}
		errs, _ = fieldErrors(err)
	}
	p := userPage(q, "Call handling", string(menuCallHandling))
	p.Form, p.Errors, p.Data = f, errs, w.d.Voicemails != nil
	w.render(rw, r, http.StatusBadRequest, "me_call_handling.html", p)
}
