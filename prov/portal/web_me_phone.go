package portal

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"hotdesk/prov"
)

// newContactRows is how many empty rows the directory form offers.
const newContactRows = 3

// directoryView is the personal directory form.
type directoryView struct {
	// Rows are the contacts plus empty rows for new ones.
	Rows []prov.Contact
}

// contactsPage starts the directory or the buttons page: the user's
// contacts, plus blank rows for new ones unless the page is read-only.
func (w *web) contactsPage(rw http.ResponseWriter, r *http.Request, q *request, title string, m menu,
	blank int) (*page, []prov.Contact, bool) {
	cs, err := w.d.Store.ListContacts(r.Context(), q.user.ID)
	if err != nil {
		w.serverError(rw, r, q, err)
		return nil, nil, false
	}
	p := userPage(q, title, string(m))
	if !p.RO {
		cs = append(cs, make([]prov.Contact, blank)...)
	}
	return p, cs, true
}

func (w *web) directoryPage(rw http.ResponseWriter, r *http.Request, q *request) {
	p, rows, ok := w.contactsPage(rw, r, q, "Personal directory", menuDirectory, newContactRows)
	if !ok {
		return
	}
	p.Data = directoryView{Rows: rows}
	w.render(rw, r, http.StatusOK, "me_directory.html", p)
}

// contactsFromForm reads rows 0..rows-1 of the directory form; empty rows
// and rows marked for deletion are left out. index maps a kept contact to
// its form row, so an error lands on the right row.
func contactsFromForm(r *http.Request) (cs []prov.Contact, index []int) {
	for i, c := range formRows(r) {
		if r.PostFormValue("delete_"+strconv.Itoa(i)) != "" ||
			strings.TrimSpace(c.FirstName+c.LastName+c.Number+c.Label) == "" {
			continue
		}
		cs = append(cs, c)
		index = append(index, i)
	}
	return cs, index
}

// rowErrors re-keys contacts[i].field errors to the form row's field.
func rowErrors(errs map[string]string, index []int) map[string]string {
	out := map[string]string{}
	for k, v := range errs {
		var i int
		var f string
		if _, err := fmtSscanf(k, &i, &f); err == nil && i < len(index) {
			out[f+"_"+strconv.Itoa(index[i])] = v
			continue
		}
		out[k] = v
	}
	return out
}

// fmtSscanf parses "contacts[3].number".
func fmtSscanf(k string, i *int, f *string) (int, error) {
	rest, ok := strings.CutPrefix(k, "contacts[")
	if !ok {
		return 0, prov.ErrInvalid
	}
	num, field, ok := strings.Cut(rest, "].")
	if !ok {
		return 0, prov.ErrInvalid
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, err
	}
	*i, *f = n, field
	return 2, nil
}

func (w *web) directory(rw http.ResponseWriter, r *http.Request, q *request) {
	cs, index := contactsFromForm(r)
	if _, err := w.mgr.SetContacts(r.Context(), q.user.Username, cs, q.actor(r)); err != nil {
		errs, msg := fieldErrors(err)
		p := userPage(q, "Personal directory", string(menuDirectory))
		p.Errors, p.Message = rowErrors(errs, index), msg
		p.Data = directoryView{Rows: formRows(r)}
		w.render(rw, r, http.StatusBadRequest, "me_directory.html", p)
		return
	}
	w.redirect(rw, r, q.s, "/me/directory", "Directory saved; your phones update now.")
}

// formRows redisplays every submitted row as typed.
func formRows(r *http.Request) []prov.Contact {
	n, _ := strconv.Atoi(r.PostFormValue("rows"))
	n = min(max(n, 0), 2100)
	out := make([]prov.Contact, n)
	for i := range out {
		k := strconv.Itoa(i)
		out[i] = prov.Contact{FirstName: r.PostFormValue("first_name_" + k), LastName: r.PostFormValue("last_name_" + k),
			Number: r.PostFormValue("number_" + k), Label: r.PostFormValue("label_" + k)}
		out[i].SpeedDial, _ = strconv.Atoi(r.PostFormValue("speed_dial_" + k))
	}
	return out
}

// buttonsView is the button programming form: speed dials are contacts
// with a speed-dial index; line keys are how many keys the user's line takes.
type buttonsView struct {
	Rows     []prov.Contact
	LineKeys int
	Max      int
	MaxKeys  int
	// Dials says what the user's directory rights allow of the speed
	// dials, which are directory contacts: "write", "read" or "" (hidden).
	Dials prov.Access
	// Keys are the feature keys (plus blank rows when writable).
	Keys     []prov.FeatureKey
	KeyKinds []keyKind
}

// keyKind is one choice of the feature key form.
type keyKind struct{ Value, Label string }

var keyKinds = []keyKind{{"", "(none)"}, {prov.KeyBLF, "Busy lamp (BLF)"}, {prov.KeySpeedDial, "Speed dial"},
	{prov.KeyDND, "Do not disturb"}, {prov.KeyForward, "Call forward"}}

// newKeyRows is how many empty feature key rows the buttons form offers.
const newKeyRows = 2

// keysFromForm reads the feature key rows; rows without a kind are left
// out. index maps a kept key to its form row.
func keysFromForm(r *http.Request) (ks []prov.FeatureKey, index []int, rows []prov.FeatureKey) {
	n, _ := strconv.Atoi(r.PostFormValue("key_rows"))
	n = min(max(n, 0), prov.MaxFeatureKeys+newKeyRows)
	for i := range n {
		k := strconv.Itoa(i)
		fk := prov.FeatureKey{Kind: r.PostFormValue("key_kind_" + k), Target: r.PostFormValue("key_target_" + k),
			Label: r.PostFormValue("key_label_" + k)}
		rows = append(rows, fk)
		if strings.TrimSpace(fk.Kind) == "" {
			continue
		}
		ks, index = append(ks, fk), append(index, i)
	}
	return ks, index, rows
}

// keyErrors re-keys keys[i].field errors to the form row's field.
func keyErrors(errs map[string]string, index []int) map[string]string {
	out := map[string]string{}
	for k, v := range errs {
		var i int
		var f string
		if rest, ok := strings.CutPrefix(k, "keys["); ok {
			if num, field, ok := strings.Cut(rest, "]."); ok {
				if n, err := strconv.Atoi(num); err == nil && n < len(index) {
					i, f = n, field
					out["key_"+f+"_"+strconv.Itoa(index[i])] = v
					continue
				}
			}
		}
		out[k] = v
	}
	return out
}

func (w *web) buttonsPage(rw http.ResponseWriter, r *http.Request, q *request) {
	p, rows, ok := w.contactsPage(rw, r, q, "Button programming", menuButtons, 1)
	if !ok {
		return
	}
	dials := leastAccess(access(q.user, menuDirectory), q.acc)
	switch {
	case dials == prov.AccessNone:
		rows = nil
	case dials == prov.AccessRead && !p.RO && len(rows) > 0:
		rows = rows[:len(rows)-1] // no blank row for a new speed dial
	}
	p.Form = map[string]string{"line_keys": strconv.Itoa(prov.LineKeys(q.user))}
	keys := append([]prov.FeatureKey(nil), q.user.Keys...)
	if !p.RO {
		keys = append(keys, make([]prov.FeatureKey, newKeyRows)...)
	}
	p.Data = buttonsView{Rows: rows, LineKeys: prov.LineKeys(q.user), Max: prov.MaxSpeedDial, MaxKeys: prov.MaxLineKeys,
		Dials: dials, Keys: keys, KeyKinds: keyKinds}
	w.render(rw, r, http.StatusOK, "me_buttons.html", p)
}

// buttons saves the speed dials (the same directory the phone edits) and
// the line keys. Speed dials are directory contacts: without write access
// to the directory menu, only the line keys are saved, and a form that
// carries speed dials anyway is refused.
func (w *web) buttons(rw http.ResponseWriter, r *http.Request, q *request) {
	cs, index := contactsFromForm(r)
	dirWrite := access(q.user, menuDirectory) == prov.AccessWrite
	if !dirWrite && r.PostFormValue("rows") != "" && r.PostFormValue("rows") != "0" {
		w.m.refused.WithLabelValues("menu_access").Inc()
		w.log.Info("portal: speed dials refused, the directory is not writable", "user", q.user.Username)
		w.forbidden(rw, r, q.s, http.StatusForbidden, "Your personal directory is read-only: speed dials cannot be changed.")
		return
	}
	fkeys, kindex, krows := keysFromForm(r)
	keys, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue("line_keys")))
	if err != nil {
		err = prov.Invalid("line_keys", "Enter a number of keys.")
	}
	// Feature keys first: refused, nothing else is saved either. A form
	// without the feature key table leaves the keys alone.
	if err == nil && r.PostFormValue("key_rows") != "" {
		_, err = w.mgr.SetKeys(r.Context(), q.user.Username, fkeys, q.actor(r))
	}
	switch {
	case err != nil:
	case dirWrite:
		if _, err = w.mgr.SetContacts(r.Context(), q.user.Username, cs, q.actor(r)); err == nil {
			_, err = w.mgr.SetLineKeys(r.Context(), q.user.Username, keys, q.actor(r))
		}
	default:
		_, err = w.mgr.SetLineKeys(r.Context(), q.user.Username, keys, q.actor(r))
	}
	if err != nil {
		errs, msg := fieldErrors(err)
		p := userPage(q, "Button programming", string(menuButtons))
		p.Errors, p.Message = keyErrors(rowErrors(errs, index), kindex), msg
		p.Form = map[string]string{"line_keys": r.PostFormValue("line_keys")}
		p.Data = buttonsView{Rows: formRows(r), Max: prov.MaxSpeedDial, MaxKeys: prov.MaxLineKeys,
			Dials: leastAccess(access(q.user, menuDirectory), q.acc), Keys: krows, KeyKinds: keyKinds}
		w.render(rw, r, http.StatusBadRequest, "me_buttons.html", p)
		return
	}
	w.redirect(rw, r, q.s, "/me/buttons", "Buttons saved; your phones update now.")
}

// telephonyView lists the user's desk phones: third-party ones with the
// settings to type in, managed ones with their deployment status and PINs.
type telephonyView struct {
	Phones  []telephonyPhone
	Managed []managedPhone
}

// managedPhone is a managed desk phone as its user sees it (seed 003,
// Settings > Telephony). The PINs are shown after an audited "Show PINs";
// the deployment PIN only while it is unused, as it is the claim code.
type managedPhone struct {
	D prov.Device
	// ClaimCode is what to dial on the phone to claim it: the site's login
	// code and the deployment PIN ("" when nothing is left to claim or the
	// site has no login code).
	ClaimCode string
	// PendingClaim: a deployment PIN is waiting to be typed on a phone.
	PendingClaim bool
	Revealed     bool
}

type telephonyPhone struct {
	D   prov.Device
	SIP sipSettings
}

func (w *web) telephonyPage(rw http.ResponseWriter, r *http.Request, q *request) {
	w.renderTelephony(rw, r, q, "")
}

func (w *web) renderTelephony(rw http.ResponseWriter, r *http.Request, q *request, reveal string) {
	ctx := r.Context()
	devs, err := w.mgr.DevicesOf(ctx, q.user.ID)
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	var v telephonyView
	for _, d := range devs {
		if d.Kind == prov.DeviceManaged {
			v.Managed = append(v.Managed, w.managedPhone(ctx, d, d.MAC == reveal, q, r))
			continue
		}
		if d.Kind != prov.DeviceThirdParty {
			continue
		}
		acc, _, err := w.mgr.SIPAccountOf(ctx, d.MAC, d.MAC == reveal, q.actor(r))
		if err != nil {
			continue
		}
		v.Phones = append(v.Phones, telephonyPhone{D: d, SIP: w.sipSettings(r, d, acc)})
	}
	p := userPage(q, "Telephony", "telephony")
	p.Data = v
	w.render(rw, r, http.StatusOK, "me_telephony.html", p)
}

// managedPhone is d as its user sees it; with reveal, its PINs (audited).
func (w *web) managedPhone(ctx context.Context, d prov.Device, reveal bool, q *request, r *http.Request) managedPhone {
	mp := managedPhone{D: d, PendingClaim: d.DeploymentPIN != "", Revealed: reveal}
	if !reveal {
		mp.D.DeploymentPIN, mp.D.SecurityPIN = "", ""
		return mp
	}
	if d.DeploymentPIN != "" {
		if site, err := w.d.Store.GetSite(ctx, d.SiteID); err == nil && site.FeatureCodes.Login != "" {
			mp.ClaimCode = site.FeatureCodes.Login + d.DeploymentPIN
		}
	}
	w.mgr.Audit(ctx, q.actor(r), "device.pins.reveal", prov.DeviceObject(d.MAC), nil,
		map[string]any{"user": q.user.Username, "deployment_pin_unused": d.DeploymentPIN != ""})
	return mp
}

// telephonyReveal shows the SIP password of one of the user's own
// third-party phones, or the PINs of a managed one; the reveal is audited.
func (w *web) telephonyReveal(rw http.ResponseWriter, r *http.Request, q *request) {
	mac, _ := prov.NormalizeMAC(r.PostFormValue("mac"))
	d, err := w.d.Store.GetDevice(r.Context(), mac)
	if err != nil || d.AssignedUserID != q.user.ID || (d.Kind != prov.DeviceThirdParty && d.Kind != prov.DeviceManaged) {
		w.forbidden(rw, r, q.s, http.StatusNotFound, "That phone is not yours.")
		return
	}
	w.renderTelephony(rw, r, q, d.MAC)
}

// phonesView is where the user is logged in.
type phonesView struct {
	Sessions []phoneSession
}

type phoneSession struct {
	S      prov.Session
	Device prov.Device
}

func (w *web) phonesPage(rw http.ResponseWriter, r *http.Request, q *request) {
	ctx := r.Context()
	ss, err := w.d.Store.ListSessions(ctx, prov.SessionQuery{UserID: q.user.ID, ActiveOnly: true})
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	var v phonesView
	for _, s := range ss {
		d, _ := w.d.Store.GetDeviceByID(ctx, s.DeviceID)
		v.Sessions = append(v.Sessions, phoneSession{S: s, Device: d})
	}
	p := userPage(q, "Where I'm logged in", "phones")
	p.Data = v
	w.render(rw, r, http.StatusOK, "me_phones.html", p)
}

// phoneLogout logs the user out of one phone: Sessions.End with reason
// logout, the phone's bindings removed and a check-sync sent.
func (w *web) phoneLogout(rw http.ResponseWriter, r *http.Request, q *request) {
	if err := w.mgr.EndOwnSession(r.Context(), q.user.Username, r.PathValue("id"), q.actor(r)); err != nil {
		w.forbidden(rw, r, q.s, http.StatusNotFound, "That login session is not yours or has ended.")
		return
	}
	w.redirect(rw, r, q.s, "/me/phones", "Logged out of the phone.")
}

// callsView is the user's call history.
type callsView struct {
	Calls []prov.CallRecord
}

func (w *web) callsPage(rw http.ResponseWriter, r *http.Request, q *request) {
	cs, err := w.d.Store.ListCallRecords(r.Context(), q.user.ID, 200)
	if err != nil {
		w.serverError(rw, r, q, err)
		return
	}
	p := userPage(q, "Call history", "calls")
	p.Data = callsView{Calls: cs}
	w.render(rw, r, http.StatusOK, "me_calls.html", p)
}

// leastAccess is the lower of two access levels.
func leastAccess(a, b prov.Access) prov.Access {
	rank := map[prov.Access]int{prov.AccessNone: 0, prov.AccessRead: 1, prov.AccessWrite: 2}
	if rank[a] <= rank[b] {
		return a
	}
	return b
}
