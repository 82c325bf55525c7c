package portal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	"hotdesk/prov"
)

// userView is a user as the API shows it: no secrets, with numbers.
type userView struct {
	prov.User
	Numbers []string `json:"numbers"`
}

// userList is one page of users.
type userList struct {
	Total  int              `json:"total"`
	Offset int              `json:"offset"`
	Limit  int              `json:"limit"`
	Items  []map[string]any `json:"items"`
	// CustomFields are the deployment's names of custom1..custom3.
	CustomFields []string `json:"custom_fields"`
}

// userCreate is the POST /users body.
type userCreate struct {
	Username         string             `json:"username"`
	FirstName        string             `json:"first_name"`
	LastName         string             `json:"last_name"`
	Email            string             `json:"email"`
	Language         string             `json:"language"`
	DirectoryScope   string             `json:"directory_scope"`
	Custom1          string             `json:"custom1"`
	Custom2          string             `json:"custom2"`
	Custom3          string             `json:"custom3"`
	Kind             prov.UserKind      `json:"kind"`
	ResponsibleEmail string             `json:"responsible_email"`
	SiteID           int64              `json:"site_id"`
	Password         string             `json:"password"`
	Numbers          []string           `json:"numbers"`
	Portal           *prov.PortalAccess `json:"portal"`
}

// userPatch is the PATCH /users/{username} body; absent fields stay.
type userPatch struct {
	Username         *string            `json:"username"`
	FirstName        *string            `json:"first_name"`
	LastName         *string            `json:"last_name"`
	Email            *string            `json:"email"`
	Language         *string            `json:"language"`
	DirectoryScope   *string            `json:"directory_scope"`
	Custom1          *string            `json:"custom1"`
	Custom2          *string            `json:"custom2"`
	Custom3          *string            `json:"custom3"`
	Kind             *prov.UserKind     `json:"kind"`
	ResponsibleEmail *string            `json:"responsible_email"`
	SiteID           *int64             `json:"site_id"`
	Password         *string            `json:"password"`
	Portal           *prov.PortalAccess `json:"portal"`
	CallHandling     *prov.CallHandling `json:"call_handling"`
	// Params replaces the user's profile parameters (<user>.cfg).
	Params *map[string]string `json:"params"`
}

// numbersBody is the POST /users/{username}/numbers body.
type numbersBody struct {
	Numbers []string `json:"numbers"`
}

// numbersView lists a user's numbers.
type numbersView struct {
	Username string   `json:"username"`
	Numbers  []string `json:"numbers"`
}

func (a *api) view(ctx context.Context, u prov.User) (userView, error) {
	nums, err := a.d.Store.NumbersOf(ctx, u.ID)
	if nums == nil {
		nums = []string{}
	}
	return userView{User: u, Numbers: nums}, err
}

// answerUser answers with u as the API shows it (with its numbers), or
// with err of the operation that returned u. A 201 names the new user in
// Location.
func (a *api) answerUser(w http.ResponseWriter, r *http.Request, code int, u prov.User, err error) {
	var v userView
	if err == nil {
		v, err = a.view(r.Context(), u)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if code == http.StatusCreated {
		w.Header().Set("Location", "/api/v1/users/"+u.Username)
	}
	writeJSON(w, code, v)
}

// answerNumbers answers with the user's numbers, or with err.
func (a *api) answerNumbers(w http.ResponseWriter, r *http.Request, username string, nums []string, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, numbersView{Username: username, Numbers: orEmpty(nums)})
}

func (a *api) createUser(w http.ResponseWriter, r *http.Request, p principal) {
	var b userCreate
	if !a.decode(w, r, &b) {
		return
	}
	u, err := a.mgr.CreateUser(r.Context(), prov.UserInput{
		Username: b.Username, FirstName: b.FirstName, LastName: b.LastName, Email: b.Email, Language: b.Language,
		DirectoryScope: b.DirectoryScope, Custom1: b.Custom1, Custom2: b.Custom2, Custom3: b.Custom3, Kind: b.Kind,
		ResponsibleEmail: b.ResponsibleEmail, SiteID: b.SiteID, Password: b.Password, Numbers: b.Numbers,
		Portal: b.Portal,
	}, p.actor())
	if err == nil {
		a.d.Links.Welcome(r.Context(), u, p.actor())
	}
	a.answerUser(w, r, http.StatusCreated, u, err)
}

// userFields are the names ?fields= may choose.
var userFields = jsonFieldNames(userView{})

func (a *api) listUsers(w http.ResponseWriter, r *http.Request, _ principal) {
	offset, limit, ok := a.pageParams(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	var fields []string
	if f := q.Get("fields"); f != "" {
		for _, name := range strings.Split(f, ",") {
			name = strings.TrimSpace(name)
			if !slices.Contains(userFields, name) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown field %q", name), "fields")
				return
			}
			fields = append(fields, name)
		}
	}
	status := prov.UserStatus(q.Get("status"))
	if status != "" && status != prov.StatusActive && status != prov.StatusDisabled {
		writeError(w, http.StatusBadRequest, "is active or disabled", "status")
		return
	}
	users, total, err := a.d.Store.ListUsers(r.Context(), prov.UserQuery{Search: q.Get("q"), Status: status,
		Offset: offset, Limit: limit})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	byUser, err := numbersByUser(r.Context(), a.d.Store)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := userList{Total: total, Offset: offset, Limit: limit, Items: []map[string]any{},
		CustomFields: a.cfg.CustomFields}
	for _, u := range users {
		out.Items = append(out.Items, pick(userView{User: u, Numbers: orEmpty(byUser[u.ID])}, fields))
	}
	writeJSON(w, http.StatusOK, out)
}

// numbersByUser maps each user ID to its numbers, sorted: one query for a
// whole list page (API and web portal).
func numbersByUser(ctx context.Context, store prov.Store) (map[int64][]string, error) {
	nums, err := store.AllNumbers(ctx)
	if err != nil {
		return nil, err
	}
	byUser := map[int64][]string{}
	for n, id := range nums {
		byUser[id] = append(byUser[id], n)
	}
	for _, ns := range byUser {
		slices.Sort(ns)
	}
	return byUser, nil
}

// pick marshals v and keeps only fields (all when fields is empty).
func pick(v any, fields []string) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	if len(fields) == 0 {
		return m
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		out[f] = m[f]
	}
	return out
}

func (a *api) getUser(w http.ResponseWriter, r *http.Request, _ principal) {
	u, err := a.d.Store.GetUser(r.Context(), r.PathValue("username"))
	a.answerUser(w, r, http.StatusOK, u, err)
}

func (a *api) patchUser(w http.ResponseWriter, r *http.Request, p principal) {
	var b userPatch
	raw, ok := a.decodeRaw(w, r, &b)
	if !ok {
		return
	}
	name := r.PathValue("username")
	if b.Username != nil && *b.Username != name {
		writeError(w, http.StatusBadRequest, "cannot be changed: phones and history refer to it", "username")
		return
	}
	// portal and call_handling merge into what is stored.
	if b.Portal != nil || b.CallHandling != nil {
		cur, err := a.d.Store.GetUser(r.Context(), name)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		for field, dst := range map[string]any{"portal": &cur.Portal, "call_handling": &cur.CallHandling} {
			if err := mergeInto(raw, field, dst); err != nil {
				writeError(w, http.StatusBadRequest, err.Error(), field)
				return
			}
		}
		if b.Portal != nil {
			b.Portal = &cur.Portal
		}
		if b.CallHandling != nil {
			b.CallHandling = &cur.CallHandling
		}
	}
	u, err := a.mgr.UpdateUser(r.Context(), name, prov.UserPatch{
		FirstName: b.FirstName, LastName: b.LastName, Email: b.Email, Language: b.Language,
		DirectoryScope: b.DirectoryScope, Custom1: b.Custom1, Custom2: b.Custom2, Custom3: b.Custom3, Kind: b.Kind,
		ResponsibleEmail: b.ResponsibleEmail, SiteID: b.SiteID, Password: b.Password, Portal: b.Portal,
		CallHandling: b.CallHandling, Params: b.Params,
	}, p.actor())
	a.answerUser(w, r, http.StatusOK, u, err)
}

func (a *api) deleteUser(w http.ResponseWriter, _ *http.Request, _ principal) {
	w.Header().Set("Allow", "GET, PATCH")
	writeError(w, http.StatusMethodNotAllowed,
		"users are never deleted: history (calls, sessions, audit) refers to them; "+
			"POST /api/v1/users/{username}/disable ends their sessions and removes their numbers, desk phones and features", "")
}

func (a *api) disableUser(w http.ResponseWriter, r *http.Request, p principal) {
	u, err := a.mgr.DisableUser(r.Context(), r.PathValue("username"), p.actor())
	a.answerUser(w, r, http.StatusOK, u, err)
}

func (a *api) enableUser(w http.ResponseWriter, r *http.Request, p principal) {
	u, err := a.mgr.EnableUser(r.Context(), r.PathValue("username"), p.actor())
	a.answerUser(w, r, http.StatusOK, u, err)
}

func (a *api) importUsers(w http.ResponseWriter, r *http.Request, p principal) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != "text/csv" && mt != "application/csv") {
		writeError(w, http.StatusUnsupportedMediaType, "the body must be text/csv", "")
		return
	}
	// welcome=true (opt-in per import) sends each created user a welcome
	// message, paced; refused up front when mail is off.
	welcome := boolParam(r, "welcome")
	if welcome && !a.d.Links.Enabled() {
		writeError(w, http.StatusBadRequest, "welcome: e-mail is not configured (mail.host)", "welcome")
		return
	}
	body := http.MaxBytesReader(w, r.Body, a.cfg.MaxImportBytes)
	opts := prov.ImportOptions{DryRun: boolParam(r, "dry_run"), Actor: p.actor()}
	run := func() (prov.ImportReport, error) {
		rep, err := prov.ImportUsersCSV(r.Context(), a.d.Directory, body, opts)
		if err == nil && welcome && !rep.DryRun {
			var werr error
			if rep.Welcome, werr = a.d.Links.WelcomeImported(rep.CreatedUsers(), p.actor()); werr != nil {
				a.log.Warn("import: welcome messages not scheduled", "err", werr)
			}
		}
		if rep.Results == nil {
			rep.Results = []prov.ImportRow{}
		}
		return rep, err
	}
	if boolParam(r, "progress") {
		a.importStream(w, r, &opts, run)
		return
	}
	rep, err := run()
	a.importAnswer(w, r, rep, err)
}

// importAnswer writes an import's report, or its error with the status
// that error maps to.
func (a *api) importAnswer(w http.ResponseWriter, r *http.Request, rep prov.ImportReport, err error) {
	switch {
	case err != nil && strings.Contains(err.Error(), "http: request body too large"):
		writeError(w, http.StatusRequestEntityTooLarge, "the file is too large", "")
	case err != nil:
		a.fail(w, r, err)
	case rep.Created > 0:
		writeJSON(w, http.StatusCreated, rep)
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}

// importLine is one line of a streamed import (?progress=1, NDJSON):
// progress while it runs, then the last line: the status the plain
// request would have answered with, and its body (the report or the
// error). A file refused before a line was sent (bad header, too large)
// gets its plain answer instead.
type importLine struct {
	Progress *prov.ImportProgress `json:"progress,omitempty"`
	Status   int                  `json:"status,omitempty"`
	Body     json.RawMessage      `json:"body,omitempty"`
}

// importStream runs an import and streams its progress: a line per
// report from the import, coalesced when the client reads slower than
// rows are prepared, so a slow reader never slows the import.
func (a *api) importStream(w http.ResponseWriter, r *http.Request, opts *prov.ImportOptions,
	run func() (prov.ImportReport, error)) {
	latest := make(chan prov.ImportProgress, 1)
	opts.Progress = func(p prov.ImportProgress) {
		select { // replace what the writer has not taken yet (calls never overlap)
		case <-latest:
		default:
		}
		latest <- p
	}
	type result struct {
		rep prov.ImportReport
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := run()
		done <- result{rep, err}
	}()
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex() // the import reads the body while we answer (it reads it all first anyway)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	streaming := false
	send := func(l importLine) {
		if !streaming { // headers with the first line: until then a plain answer is possible
			streaming = true
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusOK)
		}
		if err := enc.Encode(l); err == nil {
			_ = rc.Flush() // a gone client: the import still ends (its context is cancelled)
		}
	}
	for {
		select {
		case p := <-latest:
			send(importLine{Progress: &p})
		case res := <-done:
			if !streaming && res.err != nil { // refused before any line: a plain answer
				a.importAnswer(w, r, res.rep, res.err)
				return
			}
			select {
			case p := <-latest:
				send(importLine{Progress: &p})
			default:
			}
			c := &captured{h: http.Header{}}
			a.importAnswer(c, r, res.rep, res.err)
			send(importLine{Status: c.code, Body: bytes.TrimSpace(c.body.Bytes())})
			return
		}
	}
}

// captured is an answer written to memory, to be sent inside a stream.
type captured struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (c *captured) Header() http.Header         { return c.h }
func (c *captured) Write(b []byte) (int, error) { return c.body.Write(b) }
func (c *captured) WriteHeader(code int)        { c.code = code }

func (a *api) listNumbers(w http.ResponseWriter, r *http.Request, _ principal) {
	u, err := a.d.Store.GetUser(r.Context(), r.PathValue("username"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, err := a.view(r.Context(), u)
	a.answerNumbers(w, r, u.Username, v.Numbers, err)
}

func (a *api) assignNumbers(w http.ResponseWriter, r *http.Request, p principal) {
	var b numbersBody
	if !a.decode(w, r, &b) {
		return
	}
	name := r.PathValue("username")
	nums, err := a.mgr.AssignNumbers(r.Context(), name, b.Numbers, p.actor())
	a.answerNumbers(w, r, name, nums, err)
}

func (a *api) unassignNumber(w http.ResponseWriter, r *http.Request, p principal) {
	name := r.PathValue("username")
	nums, err := a.mgr.UnassignNumber(r.Context(), name, r.PathValue("number"), p.actor())
	a.answerNumbers(w, r, name, nums, err)
}

// keysBody is the PUT /users/{username}/keys body.
type keysBody struct {
	Keys []prov.FeatureKey `json:"keys"`
}

func (a *api) setKeys(w http.ResponseWriter, r *http.Request, p principal) {
	var b keysBody
	if !a.decode(w, r, &b) {
		return
	}
	u, err := a.mgr.SetKeys(r.Context(), r.PathValue("username"), b.Keys, p.actor())
	a.answerUser(w, r, http.StatusOK, u, err)
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// passwordLinkView answers a password link request.
type passwordLinkView struct {
	Username string `json:"username"`
	// To is the address the link goes to.
	To string `json:"to"`
}

// sendPasswordLink e-mails the user a single-use link to set a new password.
func (a *api) sendPasswordLink(w http.ResponseWriter, r *http.Request, p principal) {
	name := r.PathValue("username")
	err := a.d.Links.SendReset(r.Context(), name, p.actor())
	switch {
	case errors.Is(err, prov.ErrMailOff):
		writeError(w, http.StatusServiceUnavailable, "e-mail is not configured (mail.host)", "")
	case errors.Is(err, prov.ErrNoEmail):
		writeError(w, http.StatusBadRequest, "the user has no e-mail address", "email")
	case err != nil:
		a.fail(w, r, err)
	default:
		u, err := a.d.Store.GetUser(r.Context(), name)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, passwordLinkView{Username: u.Username, To: u.Email})
	}
}
