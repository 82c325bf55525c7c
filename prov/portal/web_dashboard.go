package portal

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"hotdesk/prov"
)

// StuckAfter is how recently a phone must have fetched its files, without
// a live registration, to be flagged as stuck re-provisioning.
const StuckAfter = 15 * time.Minute

// dashboardData is the admin's overview.
type dashboardData struct {
	Devices, Seen, Registered, LoggedIn, Locked int
	Users, ActiveSessions                       int
	Sessions                                    []sessionView
	Logins, Failures                            []prov.AuditEvent
	Alerts                                      []alert
}

// alert is one thing an admin should look at.
type alert struct {
	Level, Text, Href string
}

// liveState is who is registered and logged in where, shared by the
// dashboard, the device list and the live page.
type liveState struct {
	// registered holds the device IDs with a live binding (device account
	// or a session's line).
	registered map[int64]bool
	// sessionOn maps a device ID to its active session.
	sessionOn map[int64]prov.Session
	sessions  []prov.Session
	regs      []Registration
}

func (w *web) live(ctx context.Context) (liveState, error) {
	ls := liveState{registered: map[int64]bool{}, sessionOn: map[int64]prov.Session{}}
	ss, err := w.d.Store.ListSessions(ctx, prov.SessionQuery{ActiveOnly: true})
	if err != nil {
		return ls, err
	}
	ls.sessions = ss
	bySession := map[string]int64{}
	for _, s := range ss {
		ls.sessionOn[s.DeviceID] = s
		bySession[s.ID] = s.DeviceID
	}
	if w.d.Registrations != nil {
		ls.regs = w.d.Registrations.List(ctx)
	}
	for _, reg := range ls.regs {
		kind, id := reg.Owner.Kind, reg.Owner.ID
		switch kind {
		case prov.OwnerDevice:
			if n, err := strconv.ParseInt(id, 10, 64); err == nil {
				ls.registered[n] = true
			}
		case prov.OwnerSession:
			if d, ok := bySession[id]; ok {
				ls.registered[d] = true
			}
		}
	}
	return ls, nil
}

func (w *web) dashboard(rw http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	ls, err := w.live(ctx)
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	devs, _, err := w.d.Store.ListDevices(ctx, prov.DeviceQuery{})
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	d := dashboardData{Devices: len(devs), ActiveSessions: len(ls.sessions)}
	d.Users, _ = w.d.Store.CountUsers(ctx)
	now := w.now()
	for _, dev := range devs {
		if !dev.LastSeen.IsZero() {
			d.Seen++
		}
		_, in := ls.sessionOn[dev.ID]
		if in {
			d.LoggedIn++
		}
		if ls.registered[dev.ID] {
			d.Registered++
			if !in {
				d.Locked++
			}
		}
		d.Alerts = append(d.Alerts, deviceAlerts(dev, ls, now)...)
	}
	n := w.names()
	for i, s := range ls.sessions {
		if i == 10 {
			break
		}
		d.Sessions = append(d.Sessions, n.session(ctx, s))
	}
	d.Logins = w.auditOf(ctx, 10, "session.login", "portal.login")
	d.Failures = w.auditOf(ctx, 10, "portal.login_failed")
	w.render(rw, r, http.StatusOK, "dashboard.html", &page{Title: "Dashboard", S: q.s, Active: "dashboard", Data: d})
}

// deviceAlerts flags a phone stuck re-provisioning: it fetched its files
// within StuckAfter (LastSeen) but holds no live registration, the loop a
// phone enters when its config does not let it register; and a phone
// waiting for approval.
func deviceAlerts(d prov.Device, ls liveState, now time.Time) []alert {
	href := "/admin/devices/" + d.MAC
	var out []alert
	if d.Status == prov.DevicePending {
		out = append(out, alert{"info", "Phone " + d.MAC + " is waiting for approval.", href})
	}
	if !d.LastSeen.IsZero() && now.Sub(d.LastSeen) < StuckAfter && !ls.registered[d.ID] && d.Kind == prov.DeviceManaged &&
		d.Status != prov.DeviceDenied {
		out = append(out, alert{"warn", "Phone " + d.MAC + " fetched its configuration but is not registered: " +
			"it may be stuck re-provisioning.", href})
	}
	return out
}

// auditOf merges the newest events of several actions, newest first.
func (w *web) auditOf(ctx context.Context, limit int, actions ...string) []prov.AuditEvent {
	var out []prov.AuditEvent
	for _, a := range actions {
		es, err := w.d.Store.ListAudit(ctx, prov.AuditQuery{Action: a, Limit: limit})
		if err == nil {
			out = append(out, es...)
		}
	}
	slices.SortFunc(out, func(a, b prov.AuditEvent) int { return b.At.Compare(a.At) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

// names resolves IDs to names for the portal, as for the API.
func (w *web) names() *names { return newNames(w.d.Store) }

func (w *web) serverError(rw http.ResponseWriter, r *http.Request, q *request, err error) {
	w.log.Error("portal page failed", "path", r.URL.Path, "err", err)
	var s *webSession
	if q != nil {
		s = q.s
	}
	w.render(rw, r, http.StatusInternalServerError, "error.html", &page{Title: "Error", S: s,
		Message: "Something went wrong; the server log has the details."})
}

// liveView is the live page: registrations and login sessions.
type liveView struct {
	Regs     []registrationView
	Sessions []sessionView
}

func (w *web) adminLive(rw http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	ls, err := w.live(ctx)
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	n := w.names()
	var v liveView
	for _, s := range ls.sessions {
		v.Sessions = append(v.Sessions, n.session(ctx, s))
	}
	for _, reg := range ls.regs {
		v.Regs = append(v.Regs, n.registration(ctx, reg))
	}
	w.render(rw, r, http.StatusOK, "live.html", &page{Title: "Live registrations and sessions", S: q.s, Active: "live", Data: v})
}

func (w *web) adminEndSession(rw http.ResponseWriter, r *http.Request, q *request) {
	if w.d.Sessions == nil {
		w.serverError(rw, r, q, prov.ErrNotFound)
		return
	}
	id := r.PathValue("id")
	if err := w.d.Sessions.End(r.Context(), id, prov.EndAdmin, q.actor(r)); err != nil {
		w.redirect(rw, r, q.s, "/admin/live", "Could not end the session: "+err.Error())
		return
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, "/admin/") {
		back = "/admin/live"
	}
	w.redirect(rw, r, q.s, back, "Logged out.")
}

// auditView is the filtered audit log.
type auditView struct {
	Items []prov.AuditEvent
}

func (w *web) adminAudit(rw http.ResponseWriter, r *http.Request, q *request) {
	v := r.URL.Query()
	form := map[string]string{"actor": v.Get("actor"), "action": v.Get("action"), "object": v.Get("object"),
		"since": v.Get("since")}
	aq := prov.AuditQuery{Actor: form["actor"], Action: form["action"], Object: form["object"], Limit: 200}
	errs := map[string]string{}
	if s := form["since"]; s != "" {
		t, err := time.ParseInLocation("2006-01-02", s, time.Local)
		if err != nil {
			errs["since"] = "Use a date such as 2026-01-31."
		}
		aq.Since = t
	}
	var items []prov.AuditEvent
	if len(errs) == 0 {
		var err error
		if items, err = w.d.Store.ListAudit(r.Context(), aq); err != nil {
			w.serverError(rw, r, q, err)
			return
		}
	}
	w.render(rw, r, http.StatusOK, "audit.html", &page{Title: "Audit log", S: q.s, Active: "audit", Form: form,
		Errors: errs, Data: auditView{Items: items}})
}
