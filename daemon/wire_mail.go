package daemon

import (
	"context"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/mail"
)

// buildMailer builds, when mail.host is set, the outbox that sends the
// password links' messages, run as a component so that it stops with the
// daemon. With mail off (nil) links are refused; ones sent before work.
func (a *app) buildMailer() (prov.Mailer, error) {
	c := a.cfg.Mail
	if !c.Enabled() {
		return nil, nil
	}
	o, err := mail.New(c, mail.Deps{Logger: a.logger.With("room", "mail"), Registerer: a.reg, Now: time.Now})
	if err != nil {
		return nil, err
	}
	a.components = append(a.components, component{name: "mail-outbox", proto: "internal",
		serve: func(ctx context.Context) error { return o.Run(ctx) }})
	return mailer{o}, nil
}

// linksConfig is the password links' part of the mail: section.
func linksConfig(c MailConfig) prov.LinksConfig {
	return prov.LinksConfig{BaseURL: c.BaseURL, WelcomeTTL: c.WelcomeLinkTTL, ResetTTL: c.ResetLinkTTL,
		ImportRate: c.ImportRate}
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
