package provhttp

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// PhonePagesPath is where the phone-browser login door lives, relative to
// the path prefix; the locked profile points the phone's browser here.
const PhonePagesPath = files.PhonePagesPath

// PhonePages is the login door for the phone's own browser (Polycom
// microbrowser XHTML; Yealink's XML browser with ?ui=yealink, Cisco MPP's
// XML services with ?ui=cisco, Snom's XML minibrowser with ?ui=snom): log in, log
// out and change the password, on the handset the signed link names.
type PhonePages struct {
	Store     prov.Store
	Sessions  *prov.Sessions
	Directory *prov.Directory
	Logger    *slog.Logger
	// Now is the clock of the form tokens' expiry (nil: time.Now).
	Now func() time.Time
}

type pageData struct {
	Title, Message, Action, MAC, Token string
	// Origin is scheme://host of the request: Yealink's XML browser takes
	// only absolute URLs.
	Origin string
	// LoginT, LogoutT and PasswordT are the forms' own tokens: each
	// expires (files.PhoneFormTTL) and works for its form only.
	LoginT, LogoutT, PasswordT      string
	Form, Logout, Password, Yealink bool
	// Cisco: CiscoIPPhoneInput/CiscoIPPhoneText for MPP's XML services.
	Cisco bool
	// Snom: SnomIPPhoneInput/SnomIPPhoneText for Snom's XML minibrowser
	// (Snom wiki, "SnomIPPhoneInput": Url, InputItem with DisplayName,
	// InputToken, InputFlags a/p; "SnomIPPhoneMenu": MenuItem Name/URL).
	// Its input screen has one field (its DisplayName is the title), so
	// the login takes two: the user ID, then the password, the second
	// screen's URL carrying the first answer (SnomUser, query-escaped).
	Snom     bool
	SnomUser string
	// Menu: someone is logged in: the XML browser's menu (SnomIPPhoneMenu;
	// YealinkIPPhoneTextMenu, MenuItem Prompt/URI, Yealink XML Browser
	// Developer's Guide; CiscoIPPhoneMenu, MenuItem Name/URL, Cisco IP
	// Phone Services Application Development Notes) offers the logout (a
	// GET of its URL, under the logout form's token) and a new login.
	Menu bool
	User string
}

// Polycom's microbrowser renders a small XHTML subset; keep it plain.
var phoneTmpl = template.Must(template.New("page").Parse(`{{if .Cisco}}<?xml version="1.0" encoding="UTF-8"?>
{{if .Menu}}<CiscoIPPhoneMenu><Title>{{.Title}}</Title>
<MenuItem><Name>Log out</Name><URL>{{.Origin}}{{.Action}}/logout?mac={{.MAC}}&amp;t={{.LogoutT}}&amp;ui=cisco</URL></MenuItem>
<MenuItem><Name>Log in</Name><URL>{{.Origin}}{{.Action}}?mac={{.MAC}}&amp;t={{.Token}}&amp;ui=cisco&amp;form=1</URL></MenuItem>
</CiscoIPPhoneMenu>{{else if .Form}}<CiscoIPPhoneInput><Title>{{.Title}}</Title><Prompt>{{or .Message "User ID and password"}}</Prompt>
<URL>{{.Origin}}{{.Action}}?mac={{.MAC}}&amp;t={{.LoginT}}&amp;ui=cisco</URL>
<InputItem><DisplayName>User ID</DisplayName><QueryStringParam>user</QueryStringParam><DefaultValue></DefaultValue><InputFlags>A</InputFlags></InputItem>
<InputItem><DisplayName>Password</DisplayName><QueryStringParam>password</QueryStringParam><DefaultValue></DefaultValue><InputFlags>AP</InputFlags></InputItem>
</CiscoIPPhoneInput>{{else}}<CiscoIPPhoneText><Title>{{.Title}}</Title><Text>{{.Message}}</Text></CiscoIPPhoneText>{{end}}
{{else if .Snom}}<?xml version="1.0" encoding="UTF-8"?>
{{if .Menu}}<SnomIPPhoneMenu><Title>{{.Title}}</Title>
<MenuItem><Name>Log out</Name><URL>{{.Origin}}{{.Action}}/logout?mac={{.MAC}}&amp;t={{.LogoutT}}&amp;ui=snom</URL></MenuItem>
<MenuItem><Name>Log in</Name><URL>{{.Origin}}{{.Action}}?mac={{.MAC}}&amp;t={{.Token}}&amp;ui=snom&amp;form=1</URL></MenuItem>
</SnomIPPhoneMenu>{{else if .Form}}<SnomIPPhoneInput track="no">
<Title>{{.Title}}</Title>
<Url>{{.Origin}}{{.Action}}?mac={{.MAC}}&amp;t={{.LoginT}}&amp;ui=snom&amp;{{if .SnomUser}}user={{.SnomUser}}&amp;password=__hotdesk_input__{{else}}user=__hotdesk_input__{{end}}</Url>
<InputItem><DisplayName>{{if .SnomUser}}Password{{else}}User ID{{end}}</DisplayName><InputToken>__hotdesk_input__</InputToken><InputFlags>{{if .SnomUser}}p{{else}}a{{end}}</InputFlags><DefaultValue></DefaultValue></InputItem>
</SnomIPPhoneInput>{{else}}<SnomIPPhoneText><Title>{{.Title}}</Title><Text>{{.Message}}</Text></SnomIPPhoneText>{{end}}
{{else if .Yealink}}<?xml version="1.0" encoding="UTF-8"?>
{{if .Menu}}<YealinkIPPhoneTextMenu destroyOnExit="yes"><Title>{{.Title}}</Title>
<MenuItem><Prompt>Log out</Prompt><URI>{{.Origin}}{{.Action}}/logout?mac={{.MAC}}&amp;t={{.LogoutT}}&amp;ui=yealink</URI></MenuItem>
<MenuItem><Prompt>Log in</Prompt><URI>{{.Origin}}{{.Action}}?mac={{.MAC}}&amp;t={{.Token}}&amp;ui=yealink&amp;form=1</URI></MenuItem>
</YealinkIPPhoneTextMenu>{{else if .Form}}<YealinkIPPhoneInputScreen type="string" DisplayMode="normal" inputLanguage="English" destroyOnExit="yes">
<Title>{{.Title}}</Title>
<URL>{{.Origin}}{{.Action}}?mac={{.MAC}}&amp;t={{.LoginT}}&amp;ui=yealink</URL>
<InputField type="string" password="no"><Prompt>User ID</Prompt><Parameter>user</Parameter><Default></Default></InputField>
<InputField type="string" password="yes"><Prompt>Password</Prompt><Parameter>password</Parameter><Default></Default></InputField>
</YealinkIPPhoneInputScreen>{{else}}<YealinkIPPhoneTextScreen destroyOnExit="yes"><Title>{{.Title}}</Title><Text>{{.Message}}</Text></YealinkIPPhoneTextScreen>{{end}}
{{else}}<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>{{.Title}}</title></head><body>
<h1>{{.Title}}</h1>{{if .Message}}<p>{{.Message}}</p>{{end}}
{{if .Form}}<form method="post" action="{{.Action}}{{if .Password}}/password?mac={{.MAC}}&amp;t={{.PasswordT}}{{else}}?mac={{.MAC}}&amp;t={{.LoginT}}{{end}}">
<p>User ID<br/><input type="text" name="user" value="{{.User}}"/></p>
{{if .Password}}<p>Old password<br/><input type="password" name="old"/></p>
<p>New password<br/><input type="password" name="new"/></p>
<p>Confirm<br/><input type="password" name="confirm"/></p>
{{else}}<p>Password<br/><input type="password" name="password"/></p>{{end}}
<p><input type="submit" value="{{.Title}}"/></p></form>{{end}}
{{if .Logout}}<form method="post" action="{{.Action}}/logout?mac={{.MAC}}&amp;t={{.LogoutT}}"><p><input type="submit" value="Log out"/></p></form>{{end}}
<p><a href="{{.Action}}?mac={{.MAC}}&amp;t={{.Token}}">Log in</a> | <a href="{{.Action}}/password?mac={{.MAC}}&amp;t={{.Token}}">Change password</a></p>
</body></html>{{end}}
`))

// ServeHTTP routes GET/POST of the login page, /logout and /password. A
// GET needs the link's token and only shows the page; each POST needs the
// token its form carried, minted for that form and phone, not expired.
func (p *PhonePages) ServeHTTP(w http.ResponseWriter, r *http.Request, rest string) {
	ctx := r.Context()
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	mac, _ := prov.NormalizeMAC(r.URL.Query().Get("mac"))
	d, err := p.Store.GetDevice(ctx, mac)
	t := r.URL.Query().Get("t")
	// Yealink's XML browser and Cisco's XML services submit an input
	// screen as a GET of its URL with the fields appended; Snom's
	// minibrowser fetches the screen's Url with its InputToken replaced by
	// what was typed: the login form's token, not the link's.
	ui := r.URL.Query().Get("ui")
	xmlUI := ui == "yealink" || ui == "cisco" || ui == "snom"
	xmlSubmit := r.Method == http.MethodGet && rest == "" && xmlUI && r.URL.Query().Has("user")
	// An XML browser's menu item is a GET too: the logout.
	xmlLogout := r.Method == http.MethodGet && rest == "logout" && xmlUI
	var valid bool
	switch {
	case err != nil:
	case xmlSubmit:
		valid = files.CheckPhoneFormToken(d, files.PhoneFormLogin, t, now)
	case xmlLogout:
		valid = files.CheckPhoneFormToken(d, files.PhoneFormLogout, t, now)
	case r.Method != http.MethodPost:
		valid = files.CheckPhonePageToken(d, t)
	case rest == "":
		valid = files.CheckPhoneFormToken(d, files.PhoneFormLogin, t, now)
	case rest == "logout":
		valid = files.CheckPhoneFormToken(d, files.PhoneFormLogout, t, now)
	case rest == "password":
		valid = files.CheckPhoneFormToken(d, files.PhoneFormPassword, t, now)
	}
	if !valid {
		// The same answer for an unknown phone, a forged link, an expired
		// token and one minted for another form or phone.
		p.Logger.Debug("phone page: token refused", "mac", mac, "path", rest, "remote", remoteOf(r))
		http.NotFound(w, r)
		return
	}
	data := pageData{MAC: d.MAC, Token: files.PhonePageToken(d), Yealink: ui == "yealink", Cisco: ui == "cisco",
		Snom:      ui == "snom",
		Action:    strings.TrimSuffix(r.URL.Path, "/"+rest),
		LoginT:    files.PhoneFormToken(d, files.PhoneFormLogin, now),
		LogoutT:   files.PhoneFormToken(d, files.PhoneFormLogout, now),
		PasswordT: files.PhoneFormToken(d, files.PhoneFormPassword, now)}
	if rest != "" {
		data.Action = strings.TrimSuffix(data.Action, "/")
	}
	if data.Yealink || data.Cisco || data.Snom {
		data.Origin = "http://" + r.Host
		if r.TLS != nil {
			data.Origin = "https://" + r.Host
		}
	}
	if r.Method == http.MethodPost && r.ParseForm() != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	switch {
	case xmlSubmit && data.Snom && !r.URL.Query().Has("password"):
		// Snom's first screen gave the user ID: ask for the password,
		// without saying whether such a user exists.
		data.Title, data.Form = "Log in", true
		data.SnomUser = url.QueryEscape(r.URL.Query().Get("user"))
		if data.SnomUser == "" {
			data.SnomUser = "%20" // an empty ID still asks for a password, then fails
		}
	case xmlSubmit:
		q := r.URL.Query()
		data.Title = "Log in"
		_, err := p.Sessions.Login(ctx, prov.LoginRequest{MAC: d.MAC, Username: q.Get("user"),
			Secret: q.Get("password"), Door: prov.DoorBrowser, Remote: remoteOf(r), Actor: "user:" + q.Get("user")})
		// Snom's input screen cannot show why: its failure is a text
		// screen, and the key opens the door again.
		data.Message, data.Form = loginMessage(err), err != nil && !data.Snom
	case rest == "" && r.Method == http.MethodGet:
		// Looking at the page is not activity: it must not keep a session
		// alive past its idle logout.
		data.Title, data.Form = "Log in", true
		if _, ok, _ := p.Sessions.ActiveOn(ctx, d.ID); ok {
			data.Message, data.Logout = "A user is logged in on this phone.", true
			data.Menu = xmlUI && !r.URL.Query().Has("form")
		}
	case rest == "" && r.Method == http.MethodPost:
		data.Title = "Log in"
		_, err := p.Sessions.Login(ctx, prov.LoginRequest{MAC: d.MAC, Username: r.PostFormValue("user"),
			Secret: r.PostFormValue("password"), Door: prov.DoorBrowser, Remote: remoteOf(r),
			Actor: "user:" + r.PostFormValue("user")})
		data.Message, data.Form = loginMessage(err), err != nil
		if err == nil {
			data.Logout = true
		}
	case rest == "logout" && (r.Method == http.MethodPost || xmlLogout):
		data.Title = "Log out"
		data.Message = "Nobody is logged in on this phone."
		ended, err := p.Sessions.EndOnPhone(ctx, d.ID, remoteOf(r), "phone")
		switch {
		case errors.Is(err, prov.ErrDenied):
			http.Error(w, "log out on the phone itself", http.StatusForbidden)
			return
		case err != nil:
			p.Logger.Error("phone page logout", "mac", d.MAC, "err", err)
			http.Error(w, "logout failed", http.StatusInternalServerError)
			return
		case ended:
			data.Message = "Logged out. The phone is reloading."
		}
	case rest == "password" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		data.Title, data.Form, data.Password = "Change password", true, true
		if r.Method == http.MethodPost {
			data.Message = p.changePassword(ctx, d, r)
		}
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	ct := "application/xhtml+xml; charset=utf-8"
	if data.Yealink || data.Cisco || data.Snom {
		ct = "text/xml; charset=utf-8"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-store")
	if err := phoneTmpl.Execute(w, data); err != nil {
		p.Logger.Error("phone page", "err", err)
	}
}

// changePassword runs the page's change-password form and says what happened.
func (p *PhonePages) changePassword(ctx context.Context, d prov.Device, r *http.Request) string {
	u, err := p.Directory.ChangePassword(ctx, prov.PasswordChange{Username: r.PostFormValue("user"),
		Old: r.PostFormValue("old"), New: r.PostFormValue("new"), Confirm: r.PostFormValue("confirm"),
		Remote: r.RemoteAddr})
	var fe *prov.FieldError
	switch {
	case errors.As(err, &fe):
		return "Not changed: " + fe.Error()
	case err != nil:
		return "Not changed: user ID or old password is wrong."
	}
	p.Logger.Info("password changed from a phone", "user", u.Username, "mac", d.MAC)
	return "Password changed."
}

// loginMessage is what the phone shows; it never tells an unknown user
// from a wrong password.
func loginMessage(err error) string {
	switch {
	case err == nil:
		return "Logged in. The phone is loading your profile."
	case errors.Is(err, prov.ErrLocked):
		return "Too many attempts. Try again later."
	case errors.Is(err, prov.ErrDenied):
		return "Login is not allowed here: " + strings.TrimPrefix(err.Error(), prov.ErrDenied.Error()+": ")
	}
	return "User login failed."
}

func remoteOf(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().String()
	}
	return r.RemoteAddr
}
