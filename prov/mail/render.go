package mail

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	htmltpl "html/template"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"text/template"
	"time"
)

//go:embed templates/*.txt
var templateFS embed.FS

// Kinds of message.
const (
	KindWelcome = "welcome"
	KindReset   = "reset"
)

// Languages are the languages messages are written in; any other falls
// back to DefaultLanguage.
var Languages = []string{"en", "de", "fr", "es"}

// DefaultLanguage is used for a user without a language, or one no
// template is written in.
const DefaultLanguage = "en"

// Message is one message to send: what, to whom, in which language.
type Message struct {
	Kind     string
	To       string
	Language string
	Name     string
	Username string
	Link     string
	Expires  time.Time
}

// dateFormats shows the link's expiry the way each language writes dates.
var dateFormats = map[string]string{
	"en": "2 January 2006 15:04 MST", "de": "02.01.2006 15:04 MST", "fr": "02/01/2006 15:04 MST",
	"es": "02/01/2006 15:04 MST",
}

type templates map[string]*template.Template

func parseTemplates() (templates, error) {
	out := templates{}
	for _, l := range Languages {
		t, err := template.ParseFS(templateFS, "templates/"+l+".txt")
		if err != nil {
			return nil, fmt.Errorf("mail: templates %s: %w", l, err)
		}
		for _, k := range []string{KindWelcome, KindReset} {
			for _, part := range []string{".subject", ".body"} {
				if t.Lookup(k+part) == nil {
					return nil, fmt.Errorf("mail: templates %s: %s%s missing", l, k, part)
				}
			}
		}
		out[l] = t
	}
	return out, nil
}

// language maps a user's language ("de", "de-CH", "fr_FR") to a template's.
func language(l string) string {
	l = strings.ToLower(strings.TrimSpace(l))
	if i := strings.IndexAny(l, "-_"); i >= 0 {
		l = l[:i]
	}
	for _, x := range Languages {
		if x == l {
			return l
		}
	}
	return DefaultLanguage
}

var errInvalid = errors.New("invalid message")

var htmlPage = htmltpl.Must(htmltpl.New("html").Parse(`<!DOCTYPE html>
<html lang="{{.Lang}}"><head><meta charset="utf-8"><title>{{.Subject}}</title></head>
<body style="font-family:sans-serif;line-height:1.5">
{{range .Paras}}{{if eq . $.Link}}<p><a href="{{.}}" style="display:inline-block;padding:.5em 1em;background:#1f5fbf;color:#fff;text-decoration:none;border-radius:4px">{{$.Button}}</a><br><small>{{.}}</small></p>
{{else}}<p>{{.}}</p>
{{end}}{{end}}</body></html>
`))

// buttons is the HTML part's link label per language.
var buttons = map[string]string{"en": "Set password", "de": "Passwort festlegen", "fr": "Définir le mot de passe",
	"es": "Establecer contraseña"}

// render builds the whole RFC 5322 message: a text part and an HTML part.
func (t templates) render(m Message, from *mail.Address, now time.Time) (to *mail.Address, raw []byte, err error) {
	if m.Kind != KindWelcome && m.Kind != KindReset {
		return nil, nil, fmt.Errorf("%w: kind %q", errInvalid, m.Kind)
	}
	to, err = mail.ParseAddress(m.To)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: recipient %q: %v", errInvalid, m.To, err)
	}
	lang := language(m.Language)
	data := struct{ Name, Username, Link, Expires string }{Name: strings.TrimSpace(m.Name), Username: m.Username,
		Link: m.Link, Expires: m.Expires.Format(dateFormats[lang])}
	if data.Name == "" {
		data.Name = m.Username
	}
	var subj, body bytes.Buffer
	tp := t[lang]
	if err := tp.ExecuteTemplate(&subj, m.Kind+".subject", data); err != nil {
		return nil, nil, err
	}
	if err := tp.ExecuteTemplate(&body, m.Kind+".body", data); err != nil {
		return nil, nil, err
	}
	text := strings.TrimSpace(body.String()) + "\n"
	var paras []string
	for _, p := range strings.Split(text, "\n\n") {
		paras = append(paras, strings.TrimSpace(p))
	}
	var html bytes.Buffer
	if err := htmlPage.Execute(&html, map[string]any{"Lang": lang, "Subject": subj.String(), "Paras": paras,
		"Link": m.Link, "Button": buttons[lang]}); err != nil {
		return nil, nil, err
	}

	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	hdr := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	hdr("From", from.String())
	hdr("To", to.String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", subj.String()))
	hdr("Date", now.Format(time.RFC1123Z))
	hdr("Message-ID", "<"+randomID()+"@"+domainOf(from.Address)+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Language", lang)
	// Tells autoresponders not to answer (RFC 3834).
	hdr("Auto-Submitted", "auto-generated")
	hdr("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	b.WriteString("\r\n")
	for _, part := range []struct{ ctype, body string }{{"text/plain; charset=utf-8", text},
		{"text/html; charset=utf-8", html.String()}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {part.ctype},
			"Content-Transfer-Encoding": {"quoted-printable"}})
		if err != nil {
			return nil, nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write([]byte(strings.ReplaceAll(part.body, "\n", "\r\n"))); err != nil {
			return nil, nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, nil, err
	}
	return to, b.Bytes(), nil
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}
