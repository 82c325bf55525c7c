package prov

import (
	"context"
	"errors"
	"strings"
)

// WelcomeImported schedules welcome messages for users a CSV import
// created (the admin opted in for that import). They wait in a bounded
// backlog and are sent at LinksConfig.ImportRate, each waiting for room in
// the mail queue, so that a big import's messages are neither dropped by
// a full queue nor sent in a burst a relay refuses. It returns how many
// were scheduled; ErrMailOff when mail is off. Users beyond the backlog's
// room are dropped, logged and counted.
func (p *PasswordLinks) WelcomeImported(usernames []string, a Actor) (int, error) {
	if !p.Enabled() {
		return 0, ErrMailOff
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("password links: shutting down")
	}
	n := 0
	for _, u := range usernames {
		if len(p.backlog) >= maxWelcomeBacklog {
			dropped := len(usernames) - n
			p.mImport.WithLabelValues(WelcomeDropped).Add(float64(dropped))
			p.logger.Warn("import welcome backlog full; messages dropped", "dropped", dropped,
				"backlog", len(p.backlog))
			break
		}
		p.backlog = append(p.backlog, welcomeJob{username: u, actor: a})
		n++
	}
	p.mBacklog.Set(float64(len(p.backlog)))
	if n > 0 && !p.welcoming {
		p.welcoming = true
		p.wg.Add(1)
		go p.welcomeWorker()
	}
	return n, nil
}

// welcomeWorker sends the backlog at pace and ends when it is empty or
// Close stops it (what is left is dropped and counted: an admin can send
// those users a password link).
func (p *PasswordLinks) welcomeWorker() {
	defer p.wg.Done()
	ctx := p.stopCtx
	for {
		p.mu.Lock()
		if len(p.backlog) == 0 || ctx.Err() != nil {
			left := len(p.backlog)
			p.backlog, p.welcoming = nil, false
			p.mBacklog.Set(0)
			p.mu.Unlock()
			if left > 0 {
				p.mImport.WithLabelValues(WelcomeDropped).Add(float64(left))
				p.logger.Warn("import welcome messages not sent: shutting down", "dropped", left)
			}
			return
		}
		j := p.backlog[0]
		p.backlog[0] = welcomeJob{}
		p.backlog = p.backlog[1:]
		p.mBacklog.Set(float64(len(p.backlog)))
		p.mu.Unlock()
		if err := p.pace.Wait(ctx); err != nil {
			p.mImport.WithLabelValues(WelcomeDropped).Inc()
			continue // the loop's check ends it
		}
		p.mImport.WithLabelValues(p.welcomeOne(ctx, j)).Inc()
	}
}

func (p *PasswordLinks) welcomeOne(ctx context.Context, j welcomeJob) string {
	u, err := p.store.GetUser(ctx, j.username)
	switch {
	case errors.Is(err, ErrNotFound):
		return WelcomeSkipped
	case err != nil:
		p.logger.Error("import welcome: lookup failed", "user", j.username, "err", err)
		return WelcomeFailed
	case u.Status != StatusActive || strings.TrimSpace(u.Email) == "":
		return WelcomeSkipped
	}
	if err := p.sendMode(ctx, u, LinkWelcome, j.actor, true); err != nil {
		if ctx.Err() != nil {
			return WelcomeDropped
		}
		p.logger.Warn("import welcome message not queued", "user", u.Username, "err", err)
		return WelcomeFailed
	}
	return WelcomeQueued
}
