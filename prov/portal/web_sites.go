package portal

import (
	"encoding/json"
	"errors"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"hotdesk/prov"
)

// sitePage is one site's settings form.
type sitePage struct {
	Site prov.Site
	// Slots are the row indexes of the authorized-number table.
	Slots []int
}

// storedSite reads the site the path's {id} names; it answers 404 itself
// and returns false.
func (w *web) storedSite(rw http.ResponseWriter, r *http.Request, q *request) (int64, prov.Site, bool) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s, err := w.d.Store.GetSite(r.Context(), id)
	if err != nil {
		w.notFound(rw, r, q)
		return 0, prov.Site{}, false
	}
	return id, s, true
}

func (w *web) adminSite(rw http.ResponseWriter, r *http.Request, q *request) {
	if _, s, ok := w.storedSite(rw, r, q); ok {
		w.renderSite(rw, r, q, http.StatusOK, s, siteForm(s), nil, "")
	}
}

func (w *web) renderSite(rw http.ResponseWriter, r *http.Request, q *request, code int, s prov.Site, form, errs map[string]string, msg string) {
	slots := make([]int, prov.MaxAuthorizedNumbers)
	for i := range slots {
		slots[i] = i
	}
	w.render(rw, r, code, "site.html", &page{Title: "Site " + s.Name, S: q.s, Active: "sites",
		Data: sitePage{Site: s, Slots: slots}, Form: form, Errors: errs, Message: msg})
}

// adminUpdateSite applies the form to the stored site: login policy,
// authorized numbers (empty rows are dropped), emergency numbers and
// feature codes. Manager.UpdateSite validates and re-provisions the phones.
func (w *web) adminUpdateSite(rw http.ResponseWriter, r *http.Request, q *request) {
	id, cur, ok := w.storedSite(rw, r, q)
	if !ok {
		return
	}
	form := map[string]string{}
	for k := range r.PostForm {
		if k != csrfField {
			form[k] = strings.TrimSpace(r.PostFormValue(k))
		}
	}
	s := cur
	s.Name, s.Domain, s.TimeZone, s.Language = form["name"], form["domain"], form["time_zone"], form["language"]
	errs := map[string]string{}
	num := func(key string) int {
		n, err := strconv.Atoi(strings.TrimSpace(form[key]))
		if form[key] != "" && err != nil {
			errs[key] = "Enter a whole number of minutes."
		}
		return n
	}
	s.Login = prov.LoginPolicy{Enabled: form["login.enabled"] != "", Required: form["login.required"] != "",
		AutomaticLogout: num("login.automatic_logout"), Persistent: form["login.persistent"] != "",
		DefaultUser: form["login.default_user"], DefaultOnly: form["login.default_only"] != "",
		OnePerUser: form["login.one_per_user"], MaxSessionMinutes: num("login.max_session_minutes"),
		DailyLogout: form["login.daily_logout"]}
	s.Authorized = nil
	var rows []int
	for i := range prov.MaxAuthorizedNumbers {
		k := "authorized[" + strconv.Itoa(i) + "]"
		d, n := form[k+".description"], form[k+".number"]
		if d == "" && n == "" {
			continue
		}
		s.Authorized = append(s.Authorized, prov.AuthorizedNumber{Description: d, Number: n})
		rows = append(rows, i)
	}
	s.Emergency = splitList(form["emergency"])
	s.FeatureCodes = prov.FeatureCodes{Login: form["feature_codes.login"], Logout: form["feature_codes.logout"],
		DND: form["feature_codes.dnd"], Forward: form["feature_codes.forward"]}
	s.ProfileDirs = prov.ProfileDirs{UserProfiles: form["profile_dirs.user_profiles"], Contacts: form["profile_dirs.contacts"],
		CallLists: form["profile_dirs.call_lists"]}
	if len(errs) == 0 {
		_, err := w.mgr.UpdateSite(r.Context(), id, s, q.actor(r))
		if err == nil {
			w.redirect(rw, r, q.s, "/admin/sites/"+strconv.FormatInt(id, 10), "Site saved; its phones re-provision now.")
			return
		}
		var msg string
		errs, msg = fieldErrors(err)
		if msg != "" {
			errs = map[string]string{"name": msg}
		}
	}
	w.renderSite(rw, r, q, http.StatusBadRequest, cur, form, siteErrorKeys(rows, errs), "Please correct the fields marked below.")
}

// siteErrorKeys maps an error on the n-th kept authorized row back to its
// form row (empty rows are dropped before validating), and an error on
// one emergency number to the emergency field.
func siteErrorKeys(rows []int, errs map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range errs {
		if strings.HasPrefix(k, "emergency[") {
			k = "emergency"
		}
		if rest, ok := strings.CutPrefix(k, "authorized["); ok {
			if num, field, ok := strings.Cut(rest, "]"); ok {
				if n, err := strconv.Atoi(num); err == nil && n < len(rows) {
					k = "authorized[" + strconv.Itoa(rows[n]) + "]" + field
				}
			}
		}
		out[k] = v
	}
	return out
}

// importPage is the CSV import form and, after a run, its report.
type importPage struct {
	MailOn  bool
	Columns []string
	Report  *prov.ImportReport
	Refused []prov.ImportRow
}

func (w *web) adminImportPage(rw http.ResponseWriter, r *http.Request, q *request) {
	w.render(rw, r, http.StatusOK, "import.html", &page{Title: "Import users", S: q.s, Active: "users",
		Data: importPage{Columns: prov.ImportColumns, MailOn: w.d.Links.Enabled()}})
}

// adminImport runs a CSV import from an uploaded file (or pasted text)
// and shows the per-row report. With ?progress=1 (the page's script) it
// streams NDJSON instead: {"progress":{phase,done,total}} lines as rows
// are prepared and stored, then {"status","html"}: the page it would have
// answered with.
func (w *web) adminImport(rw http.ResponseWriter, r *http.Request, q *request) {
	if r.URL.Query().Get("progress") != "1" {
		w.runImport(rw, r, q, nil)
		return
	}
	latest := make(chan prov.ImportProgress, 1)
	progress := func(p prov.ImportProgress) {
		select { // replace what the writer has not taken yet (calls never overlap)
		case <-latest:
		default:
		}
		latest <- p
	}
	page := &captured{h: http.Header{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.runImport(page, r, q, progress)
	}()
	rc := http.NewResponseController(rw)
	_ = rc.EnableFullDuplex() // the form is read while we answer (it is read whole first anyway)
	rw.Header().Set("Content-Type", "application/x-ndjson")
	rw.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(rw) // the first Encode sends the headers: the body is read by then
	send := func(v any) {
		if enc.Encode(v) == nil {
			_ = rc.Flush() // a gone browser: the import still ends (its context is cancelled)
		}
	}
	for {
		select {
		case p := <-latest:
			send(map[string]any{"progress": p})
		case <-done:
			select {
			case p := <-latest:
				send(map[string]any{"progress": p})
			default:
			}
			send(map[string]any{"status": page.code, "html": page.body.String()})
			return
		}
	}
}

// runImport is adminImport's work; progress, when set, hears of each row.
func (w *web) runImport(rw http.ResponseWriter, r *http.Request, q *request, progress func(prov.ImportProgress)) {
	p := &page{Title: "Import users", S: q.s, Active: "users", Errors: map[string]string{}}
	data := importPage{Columns: prov.ImportColumns, MailOn: w.d.Links.Enabled()}
	var src interface {
		Read([]byte) (int, error)
	}
	f, _, err := r.FormFile("file")
	switch {
	case err == nil:
		defer f.Close()
		src = f
	case errors.Is(err, http.ErrMissingFile) || errors.Is(err, multipart.ErrMessageTooLarge) || err != nil:
		text := r.PostFormValue("csv")
		if strings.TrimSpace(text) == "" {
			p.Errors["file"] = "Choose a CSV file (or paste its text)."
			p.Data = data
			w.render(rw, r, http.StatusBadRequest, "import.html", p)
			return
		}
		src = strings.NewReader(text)
	}
	rep, err := prov.ImportUsersCSV(r.Context(), w.d.Directory, src,
		prov.ImportOptions{DryRun: r.PostFormValue("dry_run") != "", Actor: q.actor(r), Progress: progress})
	if err != nil {
		errs, msg := fieldErrors(err)
		if msg != "" || len(errs) == 0 {
			errs = map[string]string{"file": err.Error()}
		}
		p.Errors, p.Data = errs, data
		w.render(rw, r, http.StatusBadRequest, "import.html", p)
		return
	}
	if r.PostFormValue("welcome") != "" && !rep.DryRun {
		rep.Welcome, err = w.d.Links.WelcomeImported(rep.CreatedUsers(), q.actor(r))
		if err != nil {
			w.log.Warn("import: welcome messages not scheduled", "err", err)
		}
	}
	data.Report = &rep
	for _, row := range rep.Results {
		if row.Status == prov.ImportRefused {
			data.Refused = append(data.Refused, row)
		}
	}
	p.Data = data
	w.render(rw, r, http.StatusOK, "import.html", p)
}
