package portal

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"hotdesk/prov"
)

// deviceRow is a device with what the lists show beside it.
type deviceRow struct {
	D          prov.Device
	User       string
	Registered bool
	Session    *sessionView
}

type devicesView struct {
	Rows  []deviceRow
	Total int
	Sites []prov.Site
}

func (w *web) deviceRows(r *http.Request, devs []prov.Device) ([]deviceRow, error) {
	ctx := r.Context()
	ls, err := w.live(ctx)
	if err != nil {
		return nil, err
	}
	n := w.names()
	rows := make([]deviceRow, 0, len(devs))
	for _, d := range devs {
		row := deviceRow{D: d, User: n.user(ctx, d.AssignedUserID), Registered: ls.registered[d.ID]}
		if s, ok := ls.sessionOn[d.ID]; ok {
			sv := n.session(ctx, s)
			row.Session = &sv
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (w *web) adminDevices(rw http.ResponseWriter, r *http.Request, q *request) {
	w.renderDevices(rw, r, q, http.StatusOK, map[string]string{"q": r.URL.Query().Get("q"), "kind": "managed"}, nil, "")
}

func (w *web) renderDevices(rw http.ResponseWriter, r *http.Request, q *request, code int, form, errs map[string]string, msg string) {
	devs, total, err := w.d.Store.ListDevices(r.Context(), prov.DeviceQuery{Search: r.URL.Query().Get("q"), Limit: 500})
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	rows, err := w.deviceRows(r, devs)
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	sites, _ := w.d.Store.ListSites(r.Context())
	w.render(rw, r, code, "devices.html", &page{Title: "Devices", S: q.s, Active: "devices", Form: form, Errors: errs,
		Message: msg, Data: devicesView{Rows: rows, Total: total, Sites: sites}})
}

func (w *web) adminCreateDevice(rw http.ResponseWriter, r *http.Request, q *request) {
	f := formValues(r, "mac", "site_id", "kind", "model")
	siteID, _ := strconv.ParseInt(f["site_id"], 10, 64)
	d, err := w.mgr.CreateDevice(r.Context(), prov.DeviceInput{MAC: f["mac"], SiteID: siteID, Model: f["model"],
		Kind: prov.DeviceKind(f["kind"])}, q.actor(r))
	if err != nil {
		errs, msg := fieldErrors(err)
		w.renderDevices(rw, r, q, http.StatusBadRequest, f, errs, msg)
		return
	}
	w.redirect(rw, r, q.s, "/admin/devices/"+d.MAC, "Device added.")
}

// deviceView is the device page: status, assignment and actions.
type devicePage struct {
	Row   deviceRow
	Site  string
	Users []prov.User
	// PINs are shown once, right after an assignment.
	DeploymentPIN, SecurityPIN string
	// SIP is the third-party settings (password only after a reveal).
	SIP *sipSettings
}

func (w *web) adminDevice(rw http.ResponseWriter, r *http.Request, q *request) {
	w.renderDevice(rw, r, q, http.StatusOK, nil, nil, "", nil)
}

func (w *web) renderDevice(rw http.ResponseWriter, r *http.Request, q *request, code int, errs map[string]string,
	form map[string]string, msg string, fill func(*devicePage)) {
	ctx := r.Context()
	d, err := w.mgr.Device(ctx, r.PathValue("mac"))
	if err != nil {
		w.notFound(rw, r, q)
		return
	}
	rows, err := w.deviceRows(r, []prov.Device{d})
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	v := devicePage{Row: rows[0], Site: w.siteNames(r)[d.SiteID]}
	v.Users, _, _ = w.d.Store.ListUsers(ctx, prov.UserQuery{Status: prov.StatusActive, Limit: 1000})
	if d.Kind == prov.DeviceThirdParty && d.AssignedUserID != 0 {
		if acc, _, err := w.mgr.SIPAccountOf(ctx, d.MAC, false, q.actor(r)); err == nil {
			s := w.sipSettings(r, d, acc)
			v.SIP = &s
		}
	}
	if fill != nil {
		fill(&v)
	}
	if form == nil {
		form = map[string]string{"user": v.Row.User, "kind": string(d.Kind)}
	}
	w.render(rw, r, code, "device.html", &page{Title: "Phone " + d.MAC, S: q.s, Active: "devices", Data: v,
		Errors: errs, Form: form, Message: msg})
}

// sipSettings is what a person types into a third-party phone; the same
// rules as the API's (an unreadable CA file is left out silently here).
func (w *web) sipSettings(r *http.Request, d prov.Device, acc prov.SIPAccount) sipSettings {
	s, _ := thirdPartySettings(r, w.d, w.api.ThirdParty, d, acc)
	return s
}

func (w *web) adminAssign(rw http.ResponseWriter, r *http.Request, q *request) {
	f := formValues(r, "user", "kind", "number")
	if f["user"] == "" {
		w.renderDevice(rw, r, q, http.StatusBadRequest, map[string]string{"user": "Choose a user."}, f, "", nil)
		return
	}
	as, err := w.mgr.AssignDevice(r.Context(), prov.AssignInput{MAC: r.PathValue("mac"), Username: f["user"],
		Kind: prov.DeviceKind(f["kind"]), Number: f["number"]}, q.actor(r))
	if err != nil {
		errs, msg := fieldErrors(err)
		if e, ok := errs["mac"]; ok {
			errs["user"] = e
		}
		w.renderDevice(rw, r, q, http.StatusBadRequest, errs, f, msg, nil)
		return
	}
	w.renderDevice(rw, r, q, http.StatusOK, nil, nil, "Assigned to "+as.User.Username+".", func(v *devicePage) {
		v.DeploymentPIN, v.SecurityPIN = as.DeploymentPIN, as.SecurityPIN
	})
}

func (w *web) deviceOp(rw http.ResponseWriter, r *http.Request, q *request, ok string, fn func(mac string) error) {
	mac := r.PathValue("mac")
	if err := fn(mac); err != nil {
		if errors.Is(err, prov.ErrNotFound) {
			w.notFound(rw, r, q)
			return
		}
		errs, msg := fieldErrors(err)
		w.renderDevice(rw, r, q, http.StatusBadRequest, errs, nil, msg, nil)
		return
	}
	n, _ := prov.NormalizeMAC(mac)
	w.redirect(rw, r, q.s, "/admin/devices/"+n, ok)
}

func (w *web) adminUnassign(rw http.ResponseWriter, r *http.Request, q *request) {
	w.deviceOp(rw, r, q, "Unassigned: the phone returns to its locked profile.", func(mac string) error {
		_, err := w.mgr.UnassignDevice(r.Context(), mac, q.actor(r))
		return err
	})
}

func (w *web) adminCheckSync(rw http.ResponseWriter, r *http.Request, q *request) {
	reboot := r.PostFormValue("reboot") != ""
	msg := "Check-sync sent."
	if reboot {
		msg = "Reboot sent."
	}
	w.deviceOp(rw, r, q, msg, func(mac string) error {
		_, err := w.mgr.CheckSync(r.Context(), mac, reboot, q.actor(r))
		return err
	})
}

func (w *web) adminVerify(rw http.ResponseWriter, r *http.Request, q *request) {
	w.deviceOp(rw, r, q, "Verified: the phone gets the lines held for it.", func(mac string) error {
		_, err := w.mgr.VerifyDevice(r.Context(), mac, q.actor(r))
		return err
	})
}

func (w *web) adminResetCredentials(rw http.ResponseWriter, r *http.Request, q *request) {
	w.deviceOp(rw, r, q, "New provisioning credentials: the next fetch gets them.", func(mac string) error {
		_, err := w.mgr.ResetDeviceCredentials(r.Context(), mac, q.actor(r))
		return err
	})
}

func (w *web) adminForceLogout(rw http.ResponseWriter, r *http.Request, q *request) {
	w.deviceOp(rw, r, q, "Logged out.", func(mac string) error {
		d, err := w.mgr.Device(r.Context(), mac)
		if err != nil || w.d.Sessions == nil {
			return prov.ErrNotFound
		}
		s, ok, err := w.d.Sessions.ActiveOn(r.Context(), d.ID)
		if err != nil || !ok {
			return errors.Join(err, errors.New("nobody is logged in on this phone"))
		}
		return w.d.Sessions.End(r.Context(), s.ID, prov.EndAdmin, q.actor(r))
	})
}

// adminReveal shows a third-party phone's SIP password on explicit
// request; SIPAccountOf writes the reveal to the audit log.
func (w *web) adminReveal(rw http.ResponseWriter, r *http.Request, q *request) {
	acc, _, err := w.mgr.SIPAccountOf(r.Context(), r.PathValue("mac"), true, q.actor(r))
	if err != nil {
		errs, msg := fieldErrors(err)
		w.renderDevice(rw, r, q, http.StatusBadRequest, errs, nil, msg, nil)
		return
	}
	w.renderDevice(rw, r, q, http.StatusOK, nil, nil, "", func(v *devicePage) {
		s := w.sipSettings(r, v.Row.D, acc)
		v.SIP = &s
	})
}

// sitesView lists the sites.
type sitesView struct {
	Sites []prov.Site
}

func (w *web) adminSites(rw http.ResponseWriter, r *http.Request, q *request) {
	w.renderSites(rw, r, q, http.StatusOK, nil, nil, "")
}

func (w *web) renderSites(rw http.ResponseWriter, r *http.Request, q *request, code int, form, errs map[string]string, msg string) {
	sites, err := w.d.Store.ListSites(r.Context())
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	w.render(rw, r, code, "sites.html", &page{Title: "Sites", S: q.s, Active: "sites", Data: sitesView{sites},
		Form: form, Errors: errs, Message: msg})
}

func (w *web) adminCreateSite(rw http.ResponseWriter, r *http.Request, q *request) {
	f := formValues(r, "name", "domain", "time_zone", "language")
	s, err := w.mgr.CreateSite(r.Context(), prov.Site{Name: f["name"], Domain: f["domain"], TimeZone: f["time_zone"],
		Language: f["language"], Login: prov.LoginPolicy{Enabled: true, OnePerUser: "replace"}}, q.actor(r))
	if err != nil {
		errs, msg := fieldErrors(err)
		w.renderSites(rw, r, q, http.StatusBadRequest, f, errs, msg)
		return
	}
	w.redirect(rw, r, q.s, "/admin/sites/"+strconv.FormatInt(s.ID, 10), "Site created.")
}

func siteForm(s prov.Site) map[string]string {
	b := func(v bool) string {
		if v {
			return "on"
		}
		return ""
	}
	f := map[string]string{"name": s.Name, "domain": s.Domain, "time_zone": s.TimeZone, "language": s.Language,
		"login.enabled": b(s.Login.Enabled), "login.required": b(s.Login.Required),
		"login.automatic_logout": strconv.Itoa(s.Login.AutomaticLogout), "login.persistent": b(s.Login.Persistent),
		"login.default_user": s.Login.DefaultUser, "login.default_only": b(s.Login.DefaultOnly),
		"login.one_per_user": s.Login.OnePerUser, "login.max_session_minutes": strconv.Itoa(s.Login.MaxSessionMinutes),
		"login.daily_logout": s.Login.DailyLogout, "emergency": strings.Join(s.Emergency, " "),
		"feature_codes.login": s.FeatureCodes.Login, "feature_codes.logout": s.FeatureCodes.Logout,
		"feature_codes.dnd": s.FeatureCodes.DND, "feature_codes.forward": s.FeatureCodes.Forward,
		"profile_dirs.user_profiles": s.ProfileDirs.UserProfiles, "profile_dirs.contacts": s.ProfileDirs.Contacts,
		"profile_dirs.call_lists": s.ProfileDirs.CallLists}
	for i, a := range s.Authorized {
		f["authorized["+strconv.Itoa(i)+"].description"] = a.Description
		f["authorized["+strconv.Itoa(i)+"].number"] = a.Number
	}
	return f
}
