package portal

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

// column is one selectable column of the user list.
type column struct {
	Key, Label string
}

func (w *web) userColumns() []column {
	cols := []column{{"username", "User name"}, {"name", "Name"}, {"email", "Email"}, {"numbers", "Numbers"},
		{"language", "Language"}, {"kind", "Kind"}, {"status", "Status"}, {"site", "Site"}, {"portal", "Portal"}}
	for i, n := range w.api.CustomFields {
		cols = append(cols, column{"custom" + strconv.Itoa(i+1), n})
	}
	return cols
}

var defaultColumns = []string{"username", "name", "email", "numbers", "status"}

// userRow is one user with the cells the list shows.
type userRow struct {
	U       prov.User
	Numbers string
	Cells   map[string]string
}

type usersView struct {
	Columns  []column
	Shown    []string
	Rows     []userRow
	Total    int
	Offset   int
	PrevHref string
	NextHref string
}

const usersPageSize = 50

// knownColumns keeps the keys that name a column of the list, once each.
func knownColumns(keys []string, all []column) []string {
	var out []string
	for _, c := range keys {
		if slices.ContainsFunc(all, func(k column) bool { return k.Key == c }) && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// adminSaveColumns keeps the columns shown as the admin's own default for
// the users list.
func (w *web) adminSaveColumns(rw http.ResponseWriter, r *http.Request, q *request) {
	_ = r.ParseForm() // done by the CSRF check already; cheap if so
	cols := knownColumns(r.PostForm["col"], w.userColumns())
	a, err := w.d.Store.GetAdmin(r.Context(), q.s.Name)
	if err == nil {
		err = w.d.Store.SetAdminUserColumns(r.Context(), a.ID, cols)
	}
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	w.redirect(rw, r, q.s, "/admin/users", "Columns saved: the users list shows them from now on.")
}

func (w *web) adminUsers(rw http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	v := r.URL.Query()
	all := w.userColumns()
	shown := knownColumns(v["col"], all)
	if len(shown) == 0 {
		// The columns this admin saved (seed 001's "Save"), else the defaults.
		if a, err := w.d.Store.GetAdmin(ctx, q.s.Name); err == nil {
			shown = knownColumns(a.UserColumns, all)
		}
	}
	if len(shown) == 0 {
		shown = defaultColumns
	}
	offset, _ := strconv.Atoi(v.Get("offset"))
	offset = max(offset, 0)
	status := prov.UserStatus(v.Get("status"))
	if status != prov.StatusActive && status != prov.StatusDisabled {
		status = ""
	}
	users, total, err := w.d.Store.ListUsers(ctx, prov.UserQuery{Search: v.Get("q"), Status: status,
		Offset: offset, Limit: usersPageSize})
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	byUser, err := numbersByUser(ctx, w.d.Store)
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	sites := w.siteNames(r)
	out := usersView{Columns: all, Shown: shown, Total: total, Offset: offset}
	for _, u := range users {
		ns := byUser[u.ID]
		out.Rows = append(out.Rows, userRow{U: u, Numbers: strings.Join(ns, ", "), Cells: userCells(u, ns, sites)})
	}
	pageHref := func(off int) string {
		nv := url.Values{"q": {v.Get("q")}, "status": {string(status)}, "col": shown, "offset": {strconv.Itoa(off)}}
		return "/admin/users?" + nv.Encode()
	}
	if offset > 0 {
		out.PrevHref = pageHref(max(offset-usersPageSize, 0))
	}
	if offset+usersPageSize < total {
		out.NextHref = pageHref(offset + usersPageSize)
	}
	w.render(rw, r, http.StatusOK, "users.html", &page{Title: "Users", S: q.s, Active: "users", Data: out,
		Form: map[string]string{"q": v.Get("q"), "status": string(status)}})
}

func userCells(u prov.User, nums []string, sites map[int64]string) map[string]string {
	portal := "off"
	if u.Portal.Enabled {
		portal = "on"
	}
	return map[string]string{"username": u.Username, "name": u.FirstName + " " + u.LastName, "email": u.Email,
		"numbers": strings.Join(nums, ", "), "language": u.Language, "kind": kindLabel(u.Kind),
		"status": string(u.Status), "site": sites[u.SiteID], "portal": portal,
		"custom1": u.Custom1, "custom2": u.Custom2, "custom3": u.Custom3}
}

func kindLabel(k prov.UserKind) string {
	if k == prov.KindCommonArea {
		return "common area"
	}
	return "person"
}

func (w *web) siteNames(r *http.Request) map[int64]string {
	out := map[int64]string{}
	if sites, err := w.d.Store.ListSites(r.Context()); err == nil {
		for _, s := range sites {
			out[s.ID] = s.Name
		}
	}
	return out
}

// userFormData is what the create and edit forms need besides values.
type userFormData struct {
	Sites        []prov.Site
	CustomFields []string
	User         prov.User
	Numbers      []string
	Devices      []deviceRow
	Sessions     []sessionView
	// Password is a generated initial password, shown this once.
	Password string
}

var userFormFields = []string{"username", "first_name", "last_name", "email", "language", "directory_scope",
	"custom1", "custom2", "custom3", "kind", "responsible_email", "site_id", "password", "numbers", "portal_enabled"}

func (w *web) userForm(r *http.Request) userFormData {
	sites, _ := w.d.Store.ListSites(r.Context())
	return userFormData{Sites: sites, CustomFields: w.api.CustomFields}
}

func (w *web) adminNewUser(rw http.ResponseWriter, r *http.Request, q *request) {
	kind := "person"
	if r.URL.Query().Get("kind") == string(prov.KindCommonArea) {
		kind = string(prov.KindCommonArea)
	}
	w.render(rw, r, http.StatusOK, "user_new.html", &page{Title: "New user", S: q.s, Active: "users",
		Data: w.userForm(r), Form: map[string]string{"kind": kind, "language": w.cfg.Languages[0], "directory_scope": "all"}})
}

func (w *web) adminCreateUser(rw http.ResponseWriter, r *http.Request, q *request) {
	form := formValues(r, userFormFields...)
	siteID, _ := strconv.ParseInt(form["site_id"], 10, 64)
	pw := r.PostFormValue("password")
	generated := ""
	if pw == "" {
		generated = provauth.RandomSecret(10)
		pw = generated
	}
	in := prov.UserInput{Username: form["username"], FirstName: form["first_name"], LastName: form["last_name"],
		Email: form["email"], Language: form["language"], DirectoryScope: form["directory_scope"],
		Custom1: form["custom1"], Custom2: form["custom2"], Custom3: form["custom3"], Kind: prov.UserKind(form["kind"]),
		ResponsibleEmail: form["responsible_email"], SiteID: siteID, Password: pw, Numbers: splitList(form["numbers"]),
		Portal: &prov.PortalAccess{Enabled: form["portal_enabled"] != "", Profile: prov.AccessWrite,
			CallHandling: prov.AccessWrite, Directory: prov.AccessWrite, Buttons: prov.AccessWrite}}
	u, err := w.mgr.CreateUser(r.Context(), in, q.actor(r))
	if err != nil {
		errs, msg := fieldErrors(err)
		form["password"] = ""
		w.render(rw, r, http.StatusBadRequest, "user_new.html", &page{Title: "New user", S: q.s, Active: "users",
			Data: w.userForm(r), Form: form, Errors: errs, Message: msg})
		return
	}
	msg := "User " + u.Username + " created."
	if generated != "" {
		msg += " Initial password (shown only now): " + generated
	}
	if w.d.Links.Enabled() && u.Email != "" {
		w.d.Links.Welcome(r.Context(), u, q.actor(r))
		msg += " A welcome message with a link to set a password is on its way to " + u.Email + "."
	}
	w.redirect(rw, r, q.s, "/admin/users/"+url.PathEscape(u.Username), msg)
}

// splitList splits numbers typed with spaces, commas or semicolons.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' || r == ';' || r == '\n' || r == '\r' || r == '\t' })
}

func (w *web) userPageData(r *http.Request, u prov.User) userFormData {
	ctx := r.Context()
	d := w.userForm(r)
	d.User = u
	d.Numbers, _ = w.d.Store.NumbersOf(ctx, u.ID)
	devs, _ := w.mgr.DevicesOf(ctx, u.ID)
	for _, dev := range devs {
		d.Devices = append(d.Devices, deviceRow{D: dev})
	}
	if ss, err := w.d.Store.ListSessions(ctx, prov.SessionQuery{UserID: u.ID, ActiveOnly: true}); err == nil {
		n := w.names()
		for _, s := range ss {
			d.Sessions = append(d.Sessions, n.session(ctx, s))
		}
	}
	return d
}

func userFormOf(u prov.User) map[string]string {
	f := map[string]string{"username": u.Username, "first_name": u.FirstName, "last_name": u.LastName,
		"email": u.Email, "language": u.Language, "directory_scope": u.DirectoryScope, "custom1": u.Custom1,
		"custom2": u.Custom2, "custom3": u.Custom3, "kind": string(u.Kind), "responsible_email": u.ResponsibleEmail,
		"site_id": strconv.FormatInt(u.SiteID, 10)}
	f["profile"], f["call_handling"] = string(u.Portal.Profile), string(u.Portal.CallHandling)
	f["directory"], f["buttons"] = string(u.Portal.Directory), string(u.Portal.Buttons)
	f["reporting"] = string(u.Portal.Reporting)
	f["call_operations"] = u.Portal.CallOperations
	f["recordings"] = string(u.Portal.Recordings)
	f["recordings_group"], f["recordings_others"] = string(u.Portal.RecordingsGroup), string(u.Portal.RecordingsOthers)
	f["recordings_all"], f["recordings_numbers"] = string(u.Portal.RecordingsAll), u.Portal.RecordingsNumbers
	if u.Portal.RecordCalls {
		f["record_calls"] = "on"
	}
	f["params"] = formatParams(u.Params)
	if u.Portal.Wizard {
		f["wizard"] = "on"
	}
	if u.Portal.Enabled {
		f["portal_enabled"] = "on"
	}
	return f
}

func (w *web) adminUser(rw http.ResponseWriter, r *http.Request, q *request) {
	u, err := w.d.Store.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		w.notFound(rw, r, q)
		return
	}
	w.renderUser(rw, r, q, http.StatusOK, u, userFormOf(u), nil, "")
}

func (w *web) renderUser(rw http.ResponseWriter, r *http.Request, q *request, code int, u prov.User,
	form, errs map[string]string, msg string) {
	w.render(rw, r, code, "user_edit.html", &page{Title: u.FirstName + " " + u.LastName, S: q.s, Active: "users",
		Data: w.userPageData(r, u), Form: form, Errors: errs, Message: msg})
}

func (w *web) notFound(rw http.ResponseWriter, r *http.Request, q *request) {
	w.render(rw, r, http.StatusNotFound, "error.html", &page{Title: "Not found", S: q.s, Message: "There is no such page."})
}

// userOp runs a change on the named user and answers: back to the user
// page with a flash, or the page again with the errors next to the fields.
func (w *web) userOp(rw http.ResponseWriter, r *http.Request, q *request, ok string, fn func(prov.User) error) {
	u, err := w.d.Store.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		w.notFound(rw, r, q)
		return
	}
	if err := fn(u); err != nil {
		errs, msg := fieldErrors(err)
		form := userFormOf(u)
		for k := range r.PostForm {
			if k != "password" && k != csrfField {
				form[k] = strings.TrimSpace(r.PostFormValue(k))
			}
		}
		w.renderUser(rw, r, q, http.StatusBadRequest, u, form, errs, msg)
		return
	}
	w.redirect(rw, r, q.s, "/admin/users/"+url.PathEscape(u.Username), ok)
}

func (w *web) adminUpdateUser(rw http.ResponseWriter, r *http.Request, q *request) {
	w.userOp(rw, r, q, "Saved.", func(u prov.User) error {
		f := formValues(r, userFormFields...)
		kind := prov.UserKind(f["kind"])
		siteID, _ := strconv.ParseInt(f["site_id"], 10, 64)
		_, err := w.mgr.UpdateUser(r.Context(), u.Username, prov.UserPatch{FirstName: ptr(f["first_name"]),
			LastName: ptr(f["last_name"]), Email: ptr(f["email"]), Language: ptr(f["language"]),
			DirectoryScope: ptr(f["directory_scope"]), Custom1: ptr(f["custom1"]), Custom2: ptr(f["custom2"]),
			Custom3: ptr(f["custom3"]), Kind: &kind, ResponsibleEmail: ptr(f["responsible_email"]), SiteID: &siteID},
			q.actor(r))
		return err
	})
}

func ptr[T any](v T) *T { return &v }

// parseAccess reads a No/Read/Write select; anything else is an error.
func parseAccess(r *http.Request, name string) (prov.Access, error) {
	switch a := prov.Access(r.PostFormValue(name)); a {
	case prov.AccessNone, prov.AccessRead, prov.AccessWrite:
		return a, nil
	}
	return "", prov.Invalid(name, "is No, Read or Write")
}

// adminUserParams replaces the user's profile parameters from the form's
// name=value lines; a refusal names the parameter next to the field.
func (w *web) adminUserParams(rw http.ResponseWriter, r *http.Request, q *request) {
	w.userOp(rw, r, q, "Profile parameters saved; the user's phones update now.", func(u prov.User) error {
		m, err := parseParamLines(r.PostFormValue("params"))
		if err != nil {
			return err
		}
		_, err = w.mgr.UpdateUser(r.Context(), u.Username, prov.UserPatch{Params: &m}, q.actor(r))
		var fe *prov.FieldError
		if errors.As(err, &fe) && strings.HasPrefix(fe.Field, "params.") {
			return prov.Invalid("params", strings.TrimPrefix(fe.Field, "params.")+" "+fe.Msg)
		}
		return err
	})
}

// parseParamLines reads name=value lines; blank lines are skipped.
func parseParamLines(text string) (map[string]string, error) {
	m := map[string]string{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, prov.Invalid("params", "line "+strconv.Itoa(i+1)+" is not name=value")
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}

// formatParams writes parameters as sorted name=value lines.
func formatParams(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + "=" + m[k] + "\n")
	}
	return b.String()
}

func (w *web) adminUserAccess(rw http.ResponseWriter, r *http.Request, q *request) {
	w.userOp(rw, r, q, "Portal access saved.", func(u prov.User) error {
		p := u.Portal
		p.Enabled = r.PostFormValue("portal_enabled") != ""
		p.Wizard = r.PostFormValue("wizard") != ""
		for _, m := range []struct {
			name string
			dst  *prov.Access
		}{{"profile", &p.Profile}, {"call_handling", &p.CallHandling}, {"directory", &p.Directory}, {"buttons", &p.Buttons},
			{"reporting", &p.Reporting}} {
			a, err := parseAccess(r, m.name)
			if err != nil {
				return err
			}
			*m.dst = a
		}
		p.CallOperations = r.PostFormValue("call_operations")
		if r.PostFormValue("recordings") != "" { // a form from before recordings keeps them
			a, err := parseAccess(r, "recordings")
			if err != nil {
				return err
			}
			p.Recordings = a
			p.RecordCalls = r.PostFormValue("record_calls") != ""
			for _, m := range []struct {
				name string
				dst  *prov.Access
			}{{"recordings_group", &p.RecordingsGroup}, {"recordings_others", &p.RecordingsOthers}, {"recordings_all", &p.RecordingsAll}} {
				if r.PostFormValue(m.name) == "" { // an older form keeps them
					continue
				}
				if *m.dst, err = parseAccess(r, m.name); err != nil {
					return err
				}
			}
			p.RecordingsNumbers = strings.Join(splitList(r.PostFormValue("recordings_numbers")), ",")
		}
		_, err := w.mgr.UpdateUser(r.Context(), u.Username, prov.UserPatch{Portal: &p}, q.actor(r))
		if err == nil && !p.Enabled {
			w.sess.endUser(r.Context(), u.Username, nil)
		}
		return err
	})
}

func (w *web) adminUserNumbers(rw http.ResponseWriter, r *http.Request, q *request) {
	w.userOp(rw, r, q, "Numbers saved.", func(u prov.User) error {
		if n := r.PostFormValue("remove"); n != "" {
			_, err := w.mgr.UnassignNumber(r.Context(), u.Username, n, q.actor(r))
			return err
		}
		_, err := w.mgr.AssignNumbers(r.Context(), u.Username, splitList(r.PostFormValue("numbers")), q.actor(r))
		return err
	})
}

func (w *web) adminUserStatus(rw http.ResponseWriter, r *http.Request, q *request) {
	action := r.PostFormValue("action")
	msg := "User re-enabled. Reassign their numbers and phones."
	if action == "disable" {
		msg = "User disabled: sessions ended, numbers and phones removed."
	}
	w.userOp(rw, r, q, msg, func(u prov.User) error {
		var err error
		if action == "disable" {
			_, err = w.mgr.DisableUser(r.Context(), u.Username, q.actor(r))
			w.sess.endUser(r.Context(), u.Username, nil)
		} else {
			_, err = w.mgr.EnableUser(r.Context(), u.Username, q.actor(r))
		}
		return err
	})
}

func (w *web) adminUserPassword(rw http.ResponseWriter, r *http.Request, q *request) {
	w.userOp(rw, r, q, "Password set.", func(u prov.User) error {
		pw := r.PostFormValue("new_password")
		var fe *prov.FieldError
		if err := prov.CheckPasswordPolicy(pw); errors.As(err, &fe) {
			return prov.Invalid("new_password", fe.Msg)
		}
		_, err := w.mgr.UpdateUser(r.Context(), u.Username, prov.UserPatch{Password: &pw}, q.actor(r))
		return err
	})
}
