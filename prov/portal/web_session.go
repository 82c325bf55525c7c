package portal

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"sync"
	"time"

	provauth "hotdesk/prov/auth"
)

// Cookie names. The session cookie carries only a random ID; everything
// else stays on the server.
const (
	sessionCookie = "hotdesk_session"
	// preCookie holds the CSRF token of the sign-in form, before a session exists.
	preCookie = "hotdesk_pre"
	csrfField = "csrf"
)

// webSession is one signed-in browser. Sessions live in memory: a daemon
// restart signs everyone out, which is acceptable for an admin portal.
type webSession struct {
	ID      string
	CSRF    string
	Admin   bool
	Name    string
	Created time.Time
	Seen    time.Time
	// Flash is a one-shot message shown on the next page.
	Flash string
}

// sessionStore keeps sessions with idle and absolute expiry.
type sessionStore struct {
	cfg WebConfig
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*webSession
}

func newSessionStore(cfg WebConfig, now func() time.Time) *sessionStore {
	return &sessionStore{cfg: cfg, now: now, m: map[string]*webSession{}}
}

func (st *sessionStore) count() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}

func (st *sessionStore) expired(s *webSession, now time.Time) bool {
	return now.Sub(s.Seen) >= st.cfg.SessionIdle || now.Sub(s.Created) >= st.cfg.SessionMax
}

// start makes a fresh session (a new ID at every sign-in: no fixation).
func (st *sessionStore) start(admin bool, name string) *webSession {
	now := st.now()
	s := &webSession{ID: provauth.RandomSecret(24), CSRF: provauth.RandomSecret(24), Admin: admin, Name: name,
		Created: now, Seen: now}
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.m) >= st.cfg.MaxSessions {
		st.pruneLocked(now)
	}
	if len(st.m) >= st.cfg.MaxSessions {
		// Full of live sessions: drop the least recently seen.
		var old *webSession
		for _, o := range st.m {
			if old == nil || o.Seen.Before(old.Seen) {
				old = o
			}
		}
		delete(st.m, old.ID)
	}
	st.m[s.ID] = s
	return s
}

func (st *sessionStore) pruneLocked(now time.Time) {
	for id, s := range st.m {
		if st.expired(s, now) {
			delete(st.m, id)
		}
	}
}

// get returns the live session of the request's cookie and marks it seen;
// a copy, so handlers never race on it.
func (st *sessionStore) get(r *http.Request) *webSession {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil
	}
	now := st.now()
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[c.Value]
	if s == nil {
		return nil
	}
	if st.expired(s, now) {
		delete(st.m, s.ID)
		return nil
	}
	s.Seen = now
	cp := *s
	return &cp
}

// takeFlash returns and clears the session's one-shot message.
func (st *sessionStore) takeFlash(id string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	s := st.m[id]
	if s == nil {
		return ""
	}
	f := s.Flash
	s.Flash = ""
	return f
}

func (st *sessionStore) flash(id, msg string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if s := st.m[id]; s != nil {
		s.Flash = msg
	}
}

func (st *sessionStore) end(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

// endUser ends every portal session of a user (after a password change
// the other browsers must sign in again).
func (st *sessionStore) endUser(name, keep string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for id, s := range st.m {
		if !s.Admin && s.Name == name && id != keep {
			delete(st.m, id)
		}
	}
}

// secure reports whether cookies get the Secure attribute: always over
// TLS, and on plain HTTP when the config says a proxy terminates TLS.
func (w *web) secure(r *http.Request) bool { return r.TLS != nil || w.cfg.SecureCookies }

func (w *web) setCookie(rw http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(rw, &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: w.secure(r), SameSite: http.SameSiteStrictMode})
}

// checkCSRF compares the form's token with the session's in constant
// time; a missing or wrong token is 403.
func (w *web) checkCSRF(rw http.ResponseWriter, r *http.Request, s *webSession) bool {
	tok := r.PostFormValue(csrfField)
	if r.MultipartForm != nil && tok == "" {
		tok = firstValue(r.MultipartForm.Value[csrfField])
	}
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
		w.m.refused.WithLabelValues("csrf").Inc()
		w.forbidden(rw, r, s, http.StatusForbidden, "The form's security token is missing or out of date. Reload the page and try again.")
		return false
	}
	return true
}

func firstValue(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// rateLimiter counts attempts per key in fixed windows.
type rateLimiter struct {
	limit  int
	window time.Duration
	now    func() time.Time
	mu     sync.Mutex
	m      map[string]*rateWindow
}

type rateWindow struct {
	start time.Time
	n     int
}

func newRateLimiter(limit int, window time.Duration, now func() time.Time) *rateLimiter {
	return &rateLimiter{limit: limit, window: window, now: now, m: map[string]*rateWindow{}}
}

// allow counts one attempt for key and reports whether it is within the limit.
func (rl *rateLimiter) allow(key string) bool {
	now := rl.now()
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if len(rl.m) > 100000 {
		for k, v := range rl.m {
			if now.Sub(v.start) >= rl.window {
				delete(rl.m, k)
			}
		}
	}
	wnd := rl.m[key]
	if wnd == nil || now.Sub(wnd.start) >= rl.window {
		wnd = &rateWindow{start: now}
		rl.m[key] = wnd
	}
	wnd.n++
	return wnd.n <= rl.limit
}
