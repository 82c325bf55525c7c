package portal

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov"
	"hotdesk/prov/mail"
	"hotdesk/prov/mail/mailpittest"
)

// outboxMailer is daemon's adapter, repeated: the portal tests send
// through the real outbox to a real SMTP server.
type outboxMailer struct{ o *mail.Outbox }

func (m outboxMailer) Enqueue(x prov.Mail) bool {
	return m.o.Enqueue(mail.Message{Kind: x.Kind, To: x.To, Language: x.Language, Name: x.Name,
		Username: x.Username, Link: x.Link, Expires: x.Expires})
}

func (m outboxMailer) EnqueueWait(ctx context.Context, x prov.Mail) error {
	return m.o.EnqueueWait(ctx, mail.Message{Kind: x.Kind, To: x.To, Language: x.Language, Name: x.Name,
		Username: x.Username, Link: x.Link, Expires: x.Expires})
}

// TestBrowserForgotPassword: in Chromium, "Forgot your password?" on the
// sign-in page sends a link (in the user's language, through mailpit) that
// opens the set-password page; the new password then signs in.
func TestBrowserForgotPassword(t *testing.T) {
	mp := mailpittest.Start(t)
	e := newEnv(t)
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)

	mc := mail.DefaultConfig()
	mc.Host, mc.Port, mc.TLS, mc.From, mc.BaseURL = mp.Host, mp.Port, mail.TLSNone, "hotdesk@example.test", srv.URL
	o, err := mail.New(mc, mail.Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = o.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	dir := prov.NewDirectory(e.st, e.ev, time.Now)
	links := prov.NewPasswordLinks(prov.LinksConfig{BaseURL: srv.URL}, prov.PasswordLinksDeps{Store: e.st,
		Directory: dir, Events: e.ev, Mailer: outboxMailer{o}})
	w, err := newWeb(DefaultWebConfig(), DefaultConfig(), Deps{Store: e.st, Directory: dir, Sessions: e.sess,
		Events: e.ev, Registrar: e.reg, Registrations: e.regs, Links: links,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	h = w
	u, err := dir.CreateUser(context.Background(), prov.UserInput{Username: "amelie", FirstName: "Amélie",
		LastName: "Poulain", Email: "amelie@example.test", Language: "fr", Kind: prov.KindPerson, SiteID: e.site.ID,
		Portal: &prov.PortalAccess{Enabled: true, Profile: prov.AccessWrite, WizardDone: true}})
	if err != nil {
		t.Fatal(err)
	}

	c := newChrome(t, srv.URL)
	var answer string
	c.step("forgot password",
		chromedp.Navigate(srv.URL+"/"),
		chromedp.Click(`#forgot`, chromedp.ByQuery),
		chromedp.WaitVisible(`#f-login`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-login`, u.Email+kb.Enter, chromedp.ByQuery),
		chromedp.WaitVisible(`.flash`, chromedp.ByQuery),
		chromedp.Text(`.flash`, &answer, chromedp.ByQuery))
	if !strings.Contains(answer, "on its way") {
		t.Fatalf("answer %q", answer)
	}
	m := mp.Wait(t, u.Email, 1)
	link := regexp.MustCompile(`http://\S+/password\?token=\S+`).FindString(m.Text)
	if m.Subject != "Définir un nouveau mot de passe" || link == "" {
		t.Fatalf("message %q:\n%s", m.Subject, m.Text)
	}
	var who, flash string
	c.step("set password",
		chromedp.Navigate(link),
		chromedp.WaitVisible(`#f-password`, chromedp.ByQuery),
		chromedp.Text(`#pw-user`, &who, chromedp.ByQuery),
		chromedp.SendKeys(`#f-password`, "amelie-new-1", chromedp.ByQuery),
		chromedp.SendKeys(`#f-confirm`, "amelie-new-1", chromedp.ByQuery))
	c.shot("set-password")
	c.step("submit", chromedp.SendKeys(`#f-confirm`, kb.Enter, chromedp.ByQuery),
		chromedp.WaitVisible(`#f-username`, chromedp.ByQuery),
		chromedp.Text(`.flash`, &flash, chromedp.ByQuery))
	if who != "amelie" || !strings.Contains(flash, "Your password is set") {
		t.Fatalf("page for %q, then %q", who, flash)
	}
	c.signIn("amelie", "amelie-new-1", `.signout button`)
}
