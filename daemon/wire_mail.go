package daemon

import (
	"context"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/mail"
)

// buildLinks builds the password-link service and, when mail.host is set,
// the outbox that sends its messages, run as a component so that it stops
// with the daemon. With mail off links are refused; ones sent before work.
func (a *app) buildLinks() (*prov.PasswordLinks, error) {
	c := a.cfg.Mail
	deps := prov.PasswordLinksDeps{Store: a.store, Directory: a.svc.directory, Events: a.svc.events,
		Manager: a.svc.manager, Logger: a.logger.With("room", "prov"), Registerer: a.reg, Now: time.Now}
	if c.Enabled() {
		o, err := mail.New(c, mail.Deps{Logger: a.logger.With("room", "mail"), Registerer: a.reg, Now: time.Now})
		if err != nil {
			return nil, err
		}
		deps.Mailer = mailer{o}
		a.components = append(a.components, component{name: "mail-outbox", proto: "internal",
			serve: func(ctx context.Context) error { return o.Run(ctx) }})
	}
	links := prov.NewPasswordLinks(prov.LinksConfig{BaseURL: c.BaseURL, WelcomeTTL: c.WelcomeLinkTTL,
		ResetTTL: c.ResetLinkTTL, ImportRate: c.ImportRate}, deps)
	// Closed before the store: forgot-password requests still being
	// worked use it.
	a.closers = append(a.closers, links.Close)
	a.svc.links = links
	return links, nil
}

// mailer adapts the outbox to prov's Mailer.
type mailer struct{ o *mail.Outbox }

func (m mailer) Enqueue(x prov.Mail) bool {
	return m.o.Enqueue(mail.Message{Kind: x.Kind, To: x.To, Language: x.Language, Name: x.Name,
		Username: x.Username, Link: x.Link, Expires: x.Expires})
}

func (m mailer) EnqueueWait(ctx context.Context, x prov.Mail) error {
	return m.o.EnqueueWait(ctx, mail.Message{Kind: x.Kind, To: x.To, Language: x.Language, Name: x.Name,
		Username: x.Username, Link: x.Link, Expires: x.Expires})
}
