package portal

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"hotdesk/prov"
)

// Call control in the user portal: the Calls page (a dial box and the
// calls in progress with Hang up) and its JSON twin under /api/v1/me/calls,
// both behind the admin's "Allowed call operations" (menuCalls) and the
// signed-in user's portal session; writes need the session's CSRF token
// (form field, or the X-CSRF-Token header for the JSON API).

func (w *web) callControlRoutes() {
	w.handle("GET /me/call-control", roleUser, menuCalls, w.callControlPage)
	w.handle("POST /me/call-control", roleUser, menuCalls, w.callControlDial)
	w.handle("POST /me/call-control/{id}/hangup", roleUser, menuCalls, w.callControlHangUp)
	w.handle("POST /me/call-control/{id}/hold", roleUser, menuCalls, w.callControlHold(true))
	w.handle("POST /me/call-control/{id}/resume", roleUser, menuCalls, w.callControlHold(false))
	w.handle("POST /me/call-control/{id}/transfer", roleUser, menuCalls, w.callControlTransfer)
	w.meAPI("GET /api/v1/me/calls", w.apiMyCalls)
	w.meAPI("POST /api/v1/me/calls", w.apiDial)
	w.meAPI("DELETE /api/v1/me/calls/{id}", w.apiHangUp)
	w.meAPI("POST /api/v1/me/calls/{id}/hold", w.apiHold(true))
	w.meAPI("POST /api/v1/me/calls/{id}/resume", w.apiHold(false))
	w.meAPI("POST /api/v1/me/calls/{id}/transfer", w.apiTransfer)
}

type callControlView struct {
	Calls []callRow
}

// callRow is a call with its state in words and the controls it allows.
type callRow struct {
	prov.ControlledCall
	Label     string
	Connected bool
	Held      bool
}

func callRows(cs []prov.ControlledCall) []callRow {
	out := make([]callRow, 0, len(cs))
	for _, c := range cs {
		r := callRow{ControlledCall: c, Label: c.State, Connected: c.State == "connected", Held: c.State == "held"}
		if s, ok := callStates[c.State]; ok {
			r.Label = s
		}
		out = append(out, r)
	}
	return out
}

var callStates = map[string]string{"calling_phone": "Calling your phone…", "calling_target": "Calling the number…",
	"connected": "Connected", "held": "On hold", "ended": "Ended"}

func (w *web) callControlPage(rw http.ResponseWriter, r *http.Request, q *request) {
	p := userPage(q, "Calls", string(menuCalls))
	p.Data = callControlView{Calls: callRows(w.d.CallControl.Calls(q.user))}
	p.Form = map[string]string{"target": r.URL.Query().Get("target")}
	w.render(rw, r, http.StatusOK, "me_call_control.html", p)
}

func (w *web) callControlDial(rw http.ResponseWriter, r *http.Request, q *request) {
	target := strings.TrimSpace(r.PostFormValue("target"))
	_, err := w.d.CallControl.Dial(r.Context(), q.user, target, q.actor(r))
	if err != nil {
		code, msg := callError(err)
		p := userPage(q, "Calls", string(menuCalls))
		p.Data = callControlView{Calls: callRows(w.d.CallControl.Calls(q.user))}
		p.Form = map[string]string{"target": target}
		p.Errors = map[string]string{"target": msg}
		w.render(rw, r, code, "me_call_control.html", p)
		return
	}
	w.redirect(rw, r, q.s, "/me/call-control", "Calling your phone; it connects you to "+target+".")
}

func (w *web) callControlHangUp(rw http.ResponseWriter, r *http.Request, q *request) {
	if err := w.d.CallControl.HangUp(r.Context(), q.user, r.PathValue("id"), q.actor(r)); err != nil {
		_, msg := callError(err)
		w.redirect(rw, r, q.s, "/me/call-control", msg)
		return
	}
	w.redirect(rw, r, q.s, "/me/call-control", "Hung up.")
}

func (w *web) callControlHold(on bool) handlerFunc {
	return func(rw http.ResponseWriter, r *http.Request, q *request) {
		if err := w.d.CallControl.Hold(r.Context(), q.user, r.PathValue("id"), on, q.actor(r)); err != nil {
			_, msg := callError(err)
			w.redirect(rw, r, q.s, "/me/call-control", msg)
			return
		}
		msg := "Resumed."
		if on {
			msg = "On hold."
		}
		w.redirect(rw, r, q.s, "/me/call-control", msg)
	}
}

func (w *web) callControlTransfer(rw http.ResponseWriter, r *http.Request, q *request) {
	to := strings.TrimSpace(r.PostFormValue("to"))
	if err := w.d.CallControl.Transfer(r.Context(), q.user, r.PathValue("id"), to, q.actor(r)); err != nil {
		_, msg := callError(err)
		w.redirect(rw, r, q.s, "/me/call-control", msg)
		return
	}
	w.redirect(rw, r, q.s, "/me/call-control", "Transferred to "+to+".")
}

// callError maps a call-control error to a status and what the user reads.
func callError(err error) (int, string) {
	switch {
	case errors.Is(err, prov.ErrDenied):
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return http.StatusForbidden, "Refused: " + msg
	case errors.Is(err, prov.ErrNoPhone):
		return http.StatusConflict, "None of your desk phones is registered right now."
	case errors.Is(err, prov.ErrNotFound):
		return http.StatusNotFound, "No such number or user (or that call has ended)."
	case errors.Is(err, prov.ErrInvalid):
		return http.StatusBadRequest, "Enter a number or user name (up to 64 characters)."
	case errors.Is(err, prov.ErrNotSupported):
		return http.StatusConflict, "The other party's phone does not accept transfers."
	case errors.Is(err, prov.ErrNotConnected):
		return http.StatusConflict, "That call is not connected."
	case errors.Is(err, prov.ErrCallControlOff):
		return http.StatusServiceUnavailable, "Call control is not available on this server."
	case errors.Is(err, prov.ErrConflict):
		return http.StatusConflict, "Too many calls in progress; hang one up first."
	}
	return http.StatusInternalServerError, "The call could not be placed."
}

// meAPI serves a JSON route of the signed-in user: 401 without a portal
// session, 403 for an admin session, a withdrawn account or without call
// control, and a CSRF header on writes.
func (w *web) meAPI(pattern string, fn func(http.ResponseWriter, *http.Request, *request)) {
	w.meAPIFor(pattern, menuCalls, fn)
}

// meAPIFor is meAPI behind another menu's access.
func (w *web) meAPIFor(pattern string, m menu, fn func(http.ResponseWriter, *http.Request, *request)) {
	write := !strings.HasPrefix(pattern, "GET ")
	w.meRegistered = append(w.meRegistered, pattern)
	w.mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
		s := w.sess.get(r)
		if s == nil {
			w.m.refused.WithLabelValues("no_session").Inc()
			writeError(rw, http.StatusUnauthorized, "sign in to the portal first", "")
			return
		}
		if s.Admin {
			w.m.refused.WithLabelValues("role").Inc()
			writeError(rw, http.StatusForbidden, "a user's own calls only", "")
			return
		}
		if write {
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
				w.m.refused.WithLabelValues("csrf").Inc()
				writeError(rw, http.StatusForbidden, "missing or stale X-CSRF-Token", "")
				return
			}
			r.Body = http.MaxBytesReader(rw, r.Body, w.api.MaxBodyBytes)
		}
		u, err := w.d.Store.GetUser(r.Context(), s.Name)
		if err != nil || u.Status != prov.StatusActive || !u.Portal.Enabled {
			w.sess.end(r.Context(), s)
			w.m.refused.WithLabelValues("account").Inc()
			writeError(rw, http.StatusForbidden, "portal access withdrawn", "")
			return
		}
		// A read needs Read (the menus behind calls are None or Write only).
		if acc := access(u, m); acc == prov.AccessNone || acc == "" || (write && acc != prov.AccessWrite) {
			w.m.refused.WithLabelValues("menu_access").Inc()
			writeError(rw, http.StatusForbidden, string(m)+" is not allowed for this user", "")
			return
		}
		fn(rw, r, &request{s: s, user: u, acc: access(u, m)})
	})
}

type myCallsView struct {
	Calls []prov.ControlledCall `json:"calls"`
	// CSRFToken goes in X-CSRF-Token on POST and DELETE.
	CSRFToken string `json:"csrf_token"`
}

func (w *web) apiMyCalls(rw http.ResponseWriter, _ *http.Request, q *request) {
	cs := w.d.CallControl.Calls(q.user)
	if cs == nil {
		cs = []prov.ControlledCall{}
	}
	writeJSON(rw, http.StatusOK, myCallsView{Calls: cs, CSRFToken: q.s.CSRF})
}

type dialBody struct {
	Target string `json:"target"`
}

func (w *web) apiDial(rw http.ResponseWriter, r *http.Request, q *request) {
	var b dialBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(rw, http.StatusBadRequest, "body: want {\"target\": \"<number>\"}", "target")
		return
	}
	cc, err := w.d.CallControl.Dial(r.Context(), q.user, strings.TrimSpace(b.Target), q.actor(r))
	if err != nil {
		code, msg := callError(err)
		writeError(rw, code, msg, "target")
		return
	}
	rw.Header().Set("Location", "/api/v1/me/calls/"+cc.ID)
	writeJSON(rw, http.StatusCreated, cc)
}

func (w *web) apiHold(on bool) func(http.ResponseWriter, *http.Request, *request) {
	return func(rw http.ResponseWriter, r *http.Request, q *request) {
		if err := w.d.CallControl.Hold(r.Context(), q.user, r.PathValue("id"), on, q.actor(r)); err != nil {
			code, msg := callError(err)
			writeError(rw, code, msg, "")
			return
		}
		rw.WriteHeader(http.StatusNoContent)
	}
}

func (w *web) apiTransfer(rw http.ResponseWriter, r *http.Request, q *request) {
	var b dialBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		writeError(rw, http.StatusBadRequest, "body: want {\"target\": \"<number>\"}", "target")
		return
	}
	if err := w.d.CallControl.Transfer(r.Context(), q.user, r.PathValue("id"), strings.TrimSpace(b.Target), q.actor(r)); err != nil {
		code, msg := callError(err)
		writeError(rw, code, msg, "target")
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}

func (w *web) apiHangUp(rw http.ResponseWriter, r *http.Request, q *request) {
	if err := w.d.CallControl.HangUp(r.Context(), q.user, r.PathValue("id"), q.actor(r)); err != nil {
		code, msg := callError(err)
		writeError(rw, code, msg, "")
		return
	}
	rw.WriteHeader(http.StatusNoContent)
}
