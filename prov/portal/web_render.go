package portal

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"hotdesk/prov"
)

// page is what every template gets.
type page struct {
	Title string
	S     *webSession
	// User is the signed-in user on user pages (for the menu).
	User *prov.User
	// Active names the menu entry to highlight.
	Active  string
	Flash   string
	Message string
	// Errors maps a field name to its message, shown next to the field.
	Errors map[string]string
	// Form holds the values shown in the fields.
	Form map[string]string
	// RO renders the page without controls (Read access).
	RO bool
	// PreCSRF is the sign-in form's token.
	PreCSRF string
	// MailOn: e-mail is configured (forgot-password, password links).
	MailOn bool
	Langs  []string
	Data   any
	Nav    []navItem
}

type navItem struct {
	Href, Label, Key string
}

// field is one labelled input, built by the "fld" template function.
type field struct {
	Name, Label, Type, Value, Err, Hint string
	RO, Required                        bool
}

// cell is one input of a table row (directory, speed dials).
type cell struct {
	Name, Label, Value, Err string
	Row                     int
	RO                      bool
}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"fld": func(p *page, name, label, typ string) field {
			return field{Name: name, Label: label, Type: typ, Value: p.Form[name], Err: p.Errors[name], RO: p.RO}
		},
		"req":     func(f field) field { f.Required = true; return f },
		"seconds": func(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', 1, 64) + " s" },
		"modeLabel": func(m string) string {
			return map[string]string{prov.CallOpsNone: "None", prov.CallOpsControl: "Call Control",
				prov.CallOpsSoftphone: "Softphone", prov.CallOpsBoth: "Both"}[m]
		},
		"hint": func(f field, h string) field { f.Hint = h; return f },
		"when": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.Local().Format("2006-01-02 15:04")
		},
		"ago": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			d := time.Since(t).Round(time.Second)
			switch {
			case d < time.Minute:
				return fmt.Sprintf("%ds ago", int(d.Seconds()))
			case d < time.Hour:
				return fmt.Sprintf("%dm ago", int(d.Minutes()))
			case d < 48*time.Hour:
				return fmt.Sprintf("%dh ago", int(d.Hours()))
			}
			return t.Local().Format("2006-01-02")
		},
		"has":  func(list []string, s string) bool { return containsString(list, s) },
		"join": strings.Join,
		"seq": func(n int) []int {
			out := make([]int, n)
			for i := range out {
				out[i] = i
			}
			return out
		},
		"add": func(a, b int) int { return a + b },
		"dict": func(p *page, i int, name, label, value string) cell {
			n := name + "_" + strconv.Itoa(i)
			return cell{Name: n, Label: label, Row: i + 1, Value: value, Err: p.Errors[n], RO: p.RO}
		},
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("portal: template %s: %w", base, err)
		}
		out[base] = t
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// render executes a page into a buffer first, so a template error is a
// clean 500 and never half a page.
func (w *web) render(rw http.ResponseWriter, r *http.Request, code int, name string, p *page) {
	t := w.pages[name]
	if t == nil {
		w.log.Error("portal: no template", "name", name)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	if code < 400 && p.Message != "" && p.Flash == "" {
		// A page rendered after a successful POST reports it as a success.
		p.Flash, p.Message = p.Message, ""
	}
	if p.S != nil && p.Flash == "" {
		p.Flash = w.sess.takeFlash(r.Context(), p.S)
	}
	if p.Form == nil {
		p.Form = map[string]string{}
	}
	if p.Errors == nil {
		p.Errors = map[string]string{}
	}
	p.Langs = w.cfg.Languages
	p.MailOn = w.d.Links.Enabled()
	p.Nav = navFor(p)
	if w.d.Voicemails != nil && p.User != nil && access(*p.User, menuProfile) != prov.AccessNone {
		// The mailbox belongs to the Profile menu (its access level).
		for i, n := range p.Nav {
			if n.Key == string(menuProfile) {
				p.Nav = append(p.Nav[:i+1], append([]navItem{{"/me/voicemail", "Voicemail", "voicemail"}}, p.Nav[i+1:]...)...)
				break
			}
		}
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, p); err != nil {
		w.log.Error("portal: render failed", "name", name, "err", err)
		http.Error(rw, "internal error", http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.WriteHeader(code)
	_, _ = rw.Write(buf.Bytes())
}

// navFor is the menu of the signed-in account: user menus with access
// None are left out.
func navFor(p *page) []navItem {
	if p.S == nil {
		return nil
	}
	if p.S.Admin {
		return []navItem{{"/admin/", "Dashboard", "dashboard"}, {"/admin/users", "Users", "users"},
			{"/admin/devices", "Devices", "devices"}, {"/admin/sites", "Sites", "sites"},
			{"/admin/live", "Live", "live"}, {"/admin/tokens", "API tokens", "tokens"},
			{"/admin/audit", "Audit log", "audit"}}
	}
	if p.User == nil {
		return nil
	}
	nav := []navItem{{"/me/", "Home", "home"}}
	for _, m := range []struct {
		m           menu
		href, label string
	}{{menuProfile, "/me/profile", "Profile"}, {menuCallHandling, "/me/call-handling", "Call handling"},
		{menuDirectory, "/me/directory", "Personal directory"}, {menuButtons, "/me/buttons", "Button programming"},
		{menuReporting, "/me/reporting", "Call reporting"}, {menuCalls, "/me/call-control", "Calls"},
		{menuSoftphone, "/me/softphone", "Softphone"}, {menuRecordings, "/me/recordings", "Recordings"}} {
		if access(*p.User, m.m) != prov.AccessNone {
			nav = append(nav, navItem{m.href, m.label, string(m.m)})
		}
	}
	return append(nav, navItem{"/me/company", "Company directory", "company"}, navItem{"/me/telephony", "Telephony", "telephony"},
		navItem{"/me/phones", "Where I'm logged in", "phones"}, navItem{"/me/calls", "Call history", "calls"})
}

// fieldErrors turns a domain error into messages next to fields, or a
// page-level message for errors without a field (returned as "").
func fieldErrors(err error) (map[string]string, string) {
	var fe *prov.FieldError
	var ce *prov.ConflictError
	switch {
	case errors.As(err, &fe):
		return map[string]string{fe.Field: fe.Msg}, ""
	case errors.As(err, &ce):
		return map[string]string{ce.Field: ce.Msg}, ""
	case errors.Is(err, prov.ErrNotFound):
		return nil, "Not found."
	case errors.Is(err, prov.ErrDisabled):
		return map[string]string{"user": "the user is disabled"}, ""
	case errors.Is(err, prov.ErrDenied):
		return nil, err.Error()
	}
	return nil, "The change failed; see the server log."
}

// formValues copies the named form fields for redisplay.
func formValues(r *http.Request, names ...string) map[string]string {
	out := map[string]string{}
	for _, n := range names {
		out[n] = strings.TrimSpace(r.PostFormValue(n))
	}
	return out
}

// redirect answers a successful POST with a flash message (post/redirect/get).
func (w *web) redirect(rw http.ResponseWriter, r *http.Request, s *webSession, to, flash string) {
	if flash != "" {
		w.sess.flash(r.Context(), s, flash)
	}
	http.Redirect(rw, r, to, http.StatusSeeOther)
}
