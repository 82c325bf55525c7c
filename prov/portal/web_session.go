package portal

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"hotdesk/prov"
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

// webSession is one signed-in browser, as a request sees it. Sessions
// live in the store (prov.WebSession), so every node serves them and a
// sign-out on any node ends them everywhere; nothing of them is cached
// per node (one read by primary key per request).
type webSession struct {
	// ID is the cookie's secret value; the store keeps only Key, its SHA-256.
	ID      string
	Key     string
	CSRF    string
	Admin   bool
	Name    string
	Created time.Time
	Seen    time.Time
	// Flash is a one-shot message shown on the next page.
	Flash string
}

// seenEvery is how stale a session's stored "seen" may get: it is
// written at most this often, not on every request (idle expiry is
// accurate to it).
const seenEvery = time.Minute

// sessionKey is what the store keeps of a cookie's ID: a database reader
// cannot turn it back into a cookie.
func sessionKey(id string) string {
	h := sha256.Sum256([]byte("hotdesk-web-session\x00" + id))
	return hex.EncodeToString(h[:])
}

// sessionStore keeps sessions in the store with idle and absolute expiry.
type sessionStore struct {
	cfg WebConfig
	st  prov.WebSessionStore
	now func() time.Time
	log *slog.Logger
	// onEnd is told of every session that ends (sign-out, expiry, pruned,
	// replaced) with its deleted row: the softphone's credential goes with it.
	onEnd func(ctx context.Context, w prov.WebSession)
}

// ended reports ended sessions to onEnd.
func (st *sessionStore) ended(ctx context.Context, ws ...prov.WebSession) {
	if st.onEnd == nil {
		return
	}
	for _, w := range ws {
		st.onEnd(ctx, w)
	}
}

func newSessionStore(cfg WebConfig, st prov.WebSessionStore, now func() time.Time, log *slog.Logger) *sessionStore {
	return &sessionStore{cfg: cfg, st: st, now: now, log: log}
}

func (st *sessionStore) count() int {
	n, err := st.st.CountWebSessions(context.Background())
	if err != nil {
		st.log.Warn("portal sessions not counted", "err", err)
	}
	return n
}

func (st *sessionStore) expired(w prov.WebSession, now time.Time) bool {
	return now.Sub(w.Seen) >= st.cfg.SessionIdle || now.Sub(w.Created) >= st.cfg.SessionMax
}

// start makes a fresh session (a new ID at every sign-in: no fixation).
// Expired sessions are pruned first; beyond max_sessions the least
// recently seen goes.
func (st *sessionStore) start(ctx context.Context, admin bool, name string) (*webSession, error) {
	now := st.now()
	s := &webSession{ID: provauth.RandomSecret(24), CSRF: provauth.RandomSecret(24), Admin: admin, Name: name,
		Created: now, Seen: now}
	s.Key = sessionKey(s.ID)
	gone, err := st.st.PruneWebSessions(ctx, now.Add(-st.cfg.SessionIdle), now.Add(-st.cfg.SessionMax))
	if err != nil {
		return nil, fmt.Errorf("portal session: %w", err)
	}
	st.ended(ctx, gone...)
	// Bounded: each pass deletes one, and the table was at most a few
	// over the limit (sign-ins racing on several nodes).
	for range 16 {
		n, err := st.st.CountWebSessions(ctx)
		if err != nil {
			return nil, fmt.Errorf("portal session: %w", err)
		}
		if n < st.cfg.MaxSessions {
			break
		}
		old, err := st.st.DeleteOldestWebSession(ctx)
		if errors.Is(err, prov.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("portal session: %w", err)
		}
		st.ended(ctx, old)
	}
	w := prov.WebSession{Key: s.Key, CSRF: s.CSRF, Admin: admin, Name: name, Created: now, Seen: now}
	if err := st.st.CreateWebSession(ctx, &w); err != nil {
		return nil, fmt.Errorf("portal session: %w", err)
	}
	s.Created, s.Seen = w.Created, w.Seen
	return s, nil
}

// get returns the live session of the request's cookie and marks it seen
// (at most once a minute).
func (st *sessionStore) get(r *http.Request) *webSession {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil
	}
	ctx := r.Context()
	key := sessionKey(c.Value)
	w, err := st.st.GetWebSession(ctx, key)
	if err != nil {
		if !errors.Is(err, prov.ErrNotFound) {
			st.log.Error("portal session not read", "err", err)
		}
		return nil
	}
	now := st.now()
	if st.expired(w, now) {
		if gone, err := st.st.DeleteWebSession(ctx, key); err == nil {
			st.ended(ctx, gone)
		}
		return nil
	}
	if now.Sub(w.Seen) >= seenEvery {
		if err := st.st.TouchWebSession(ctx, key, now); err != nil {
			st.log.Warn("portal session not marked seen", "err", err)
		}
		w.Seen = now
	}
	return &webSession{ID: c.Value, Key: key, CSRF: w.CSRF, Admin: w.Admin, Name: w.Name, Created: w.Created,
		Seen: w.Seen, Flash: w.Flash}
}

// takeFlash returns and clears the session's one-shot message.
func (st *sessionStore) takeFlash(ctx context.Context, s *webSession) string {
	if s.Flash == "" {
		return ""
	}
	f := s.Flash
	s.Flash = ""
	ok, err := st.st.ClearWebSessionFlash(ctx, s.Key, f)
	if err != nil || !ok {
		return "" // shown by another request already
	}
	return f
}

func (st *sessionStore) flash(ctx context.Context, s *webSession, msg string) {
	if err := st.st.SetWebSessionFlash(ctx, s.Key, msg); err != nil {
		st.log.Warn("portal flash not kept", "err", err)
	}
}

// end ends one session (on every node: it is the store's row).
func (st *sessionStore) end(ctx context.Context, s *webSession) {
	w, err := st.st.DeleteWebSession(ctx, s.Key)
	if err != nil {
		if !errors.Is(err, prov.ErrNotFound) {
			st.log.Error("portal session not ended", "err", err)
		}
		return
	}
	st.ended(ctx, w)
}

// endUser ends every portal session of a user (after a password change
// the other browsers must sign in again); keep ("" for none) stays.
func (st *sessionStore) endUser(ctx context.Context, name string, keep *webSession) {
	k := ""
	if keep != nil {
		k = keep.Key
	}
	gone, err := st.st.DeleteUserWebSessions(ctx, name, k)
	if err != nil {
		st.log.Error("portal sessions of a user not ended", "user", name, "err", err)
		return
	}
	st.ended(ctx, gone...)
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
