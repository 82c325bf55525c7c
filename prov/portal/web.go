package portal

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// WebConfig is the daemon's `portal.web:` section: the browser portal.
type WebConfig struct {
	// SessionIdle ends a portal session after this long without a request.
	SessionIdle time.Duration `yaml:"session_idle"`
	// SessionMax ends a portal session this long after sign-in, whatever.
	SessionMax time.Duration `yaml:"session_max"`
	// SecureCookies marks cookies Secure even on plain HTTP requests (the
	// portal behind a TLS-terminating proxy). Requests that arrive over TLS
	// (r.TLS set) always get Secure cookies.
	SecureCookies bool `yaml:"secure_cookies"`
	// LoginRate is how many sign-in attempts one source may make per minute.
	LoginRate int `yaml:"login_rate"`
	// LockoutThreshold failed sign-ins per name or source lock it for
	// LockoutBase, doubling on each further lock.
	LockoutThreshold int           `yaml:"lockout_threshold"`
	LockoutBase      time.Duration `yaml:"lockout_base"`
	// Languages are the choices offered to users (language tags).
	Languages []string `yaml:"languages"`
	// MaxSessions bounds the stored sessions (the whole cluster's); beyond
	// it the least recently seen is signed out.
	MaxSessions int `yaml:"max_sessions"`
	// ForgotRate is how many "forgot password" requests one source may
	// make per hour.
	ForgotRate int `yaml:"forgot_rate"`
}

// DefaultWebConfig returns the defaults.
func DefaultWebConfig() WebConfig {
	return WebConfig{SessionIdle: 30 * time.Minute, SessionMax: 12 * time.Hour, LoginRate: 20,
		LockoutThreshold: 5, LockoutBase: time.Minute, Languages: []string{"en", "de", "fr", "es", "it", "nl"},
		MaxSessions: 10000, ForgotRate: 5}
}

// Validate names the offending key relative to the portal.web section.
func (c WebConfig) Validate() error {
	switch {
	case c.SessionIdle <= 0:
		return errors.New("session_idle: must be positive")
	case c.SessionMax < c.SessionIdle:
		return errors.New("session_max: must be at least session_idle")
	case c.LoginRate <= 0:
		return errors.New("login_rate: must be positive")
	case c.LockoutThreshold <= 0:
		return errors.New("lockout_threshold: must be positive")
	case c.LockoutBase <= 0:
		return errors.New("lockout_base: must be positive")
	case len(c.Languages) == 0:
		return errors.New("languages: at least one")
	case c.MaxSessions <= 0:
		return errors.New("max_sessions: must be positive")
	case c.ForgotRate <= 0:
		return errors.New("forgot_rate: must be positive")
	}
	for i, l := range c.Languages {
		if l == "" || len(l) > 16 {
			return fmt.Errorf("languages[%d]: %q is not a language tag", i, l)
		}
	}
	return nil
}

// web is the browser portal.
type web struct {
	cfg   WebConfig
	api   Config
	d     Deps
	mgr   *prov.Manager
	log   *slog.Logger
	now   func() time.Time
	mux   *http.ServeMux
	pages map[string]*template.Template
	sess  *sessionStore
	lock  *provauth.Lockout
	rate  *rateLimiter
	// forgot limits "forgot password" requests per source.
	forgotRate *rateLimiter
	hasher     *provauth.Hasher
	m          webMetrics
	// meRegistered are the /api/v1/me patterns as registered, so a test
	// can compare them with the OpenAPI document.
	meRegistered []string
}

type webMetrics struct {
	requests *prometheus.CounterVec
	logins   *prometheus.CounterVec
	refused  *prometheus.CounterVec
}

// NewWeb returns the browser portal: sign-in at /, the admin side under
// /admin/, the user portal under /me/, assets under /static/. Mount it at
// "/" beside /api/v1/. shared is the API's Config (custom field names,
// third-party SIP settings); d are the same services the API uses.
func NewWeb(cfg WebConfig, shared Config, d Deps) (http.Handler, error) {
	return newWeb(cfg, shared, d)
}

func newWeb(cfg WebConfig, shared Config, d Deps) (*web, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("portal: web config: %w", err)
	}
	if err := shared.Validate(); err != nil {
		return nil, fmt.Errorf("portal: config: %w", err)
	}
	d, err := d.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &web{cfg: cfg, api: shared, d: d, mgr: d.Manager, log: d.Logger, now: d.Now, mux: http.NewServeMux(),
		sess: newSessionStore(cfg, d.Store, d.Now, d.Logger.With("component", "portal")), rate: newRateLimiter(cfg.LoginRate, time.Minute, d.Now),
		forgotRate: newRateLimiter(cfg.ForgotRate, time.Hour, d.Now),
		lock:       provauth.NewLockout(provauth.LockoutConfig{Threshold: cfg.LockoutThreshold, Base: cfg.LockoutBase}, d.Now)}
	w.hasher = d.Directory.Hasher()
	if d.ShareLockout != nil {
		d.ShareLockout("web", w.lock)
	}
	if w.pages, err = parsePages(); err != nil {
		return nil, err
	}
	f := promauto.With(d.Registerer)
	w.m = webMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_portal_web_requests_total",
			Help: "Portal page requests by area and status class."}, []string{"area", "code"}),
		logins: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_portal_web_logins_total",
			Help: "Portal sign-ins by result."}, []string{"result"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_portal_web_refused_total",
			Help: "Portal requests refused before a handler ran, by reason."}, []string{"reason"}),
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{Name: "hotdesk_portal_web_sessions",
		Help: "Portal sessions in the store (every node's, expired ones not yet pruned included)."}, func() float64 { return float64(w.sess.count()) })
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	w.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	w.routes()
	return w, nil
}

// ServeHTTP adds security headers, panic safety and metrics to every page.
func (w *web) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	cw := &codeWriter{ResponseWriter: rw, code: http.StatusOK}
	area := "public"
	switch {
	case strings.HasPrefix(r.URL.Path, "/admin"):
		area = "admin"
	case strings.HasPrefix(r.URL.Path, "/me"):
		area = "user"
	case strings.HasPrefix(r.URL.Path, "/static/"):
		area = "static"
	}
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("portal handler panic", "path", r.URL.Path, "panic", fmt.Sprint(p))
			if !cw.wrote {
				http.Error(cw, "internal error", http.StatusInternalServerError)
			}
		}
		w.m.requests.WithLabelValues(area, fmt.Sprintf("%dxx", cw.code/100)).Inc()
	}()
	h := cw.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	if area != "static" {
		h.Set("Cache-Control", "no-store")
	}
	w.mux.ServeHTTP(cw, r)
}

// role says who may open a page.
type role int

const (
	roleAdmin role = iota
	roleUser
)

// menu is a user-portal menu with a per-user access level.
type menu string

const (
	menuNone         menu = ""
	menuProfile      menu = "profile"
	menuCallHandling menu = "call_handling"
	menuDirectory    menu = "directory"
	menuButtons      menu = "buttons"
	menuReporting    menu = "reporting"
	// menuCalls is call control: Write when the admin allows Call Control.
	menuCalls menu = "call_control"
	// menuSoftphone is the browser softphone: Write in the Softphone mode.
	menuSoftphone menu = "softphone"
	// menuRecordings are the call recordings the user may replay (own,
	// site, listed numbers, all).
	menuRecordings menu = "recordings"
)

// access returns the user's level for m; menus without a level are write.
func access(u prov.User, m menu) prov.Access {
	var a prov.Access
	switch m {
	case menuProfile:
		a = u.Portal.Profile
	case menuCallHandling:
		a = u.Portal.CallHandling
	case menuDirectory:
		a = u.Portal.Directory
	case menuButtons:
		a = u.Portal.Buttons
	case menuReporting:
		a = u.Portal.Reporting
	case menuRecordings:
		a = prov.RecordingsAccess(u)
	case menuCalls:
		a = prov.AccessNone
		if prov.CanControl(u) {
			a = prov.AccessWrite
		}
	case menuSoftphone:
		a = prov.AccessNone
		if prov.CanSoftphone(u) {
			a = prov.AccessWrite
		}
	default:
		return prov.AccessWrite
	}
	if a == "" {
		return prov.AccessNone
	}
	return a
}

// handlerFunc is a page handler once the session, role and CSRF are checked.
type handlerFunc func(http.ResponseWriter, *http.Request, *request)

// request is what a checked page handler gets.
type request struct {
	s *webSession
	// user is the signed-in user, reloaded per request (roleUser only), so
	// a disable or an access change applies at once.
	user prov.User
	// acc is the user's level for the page's menu.
	acc prov.Access
}

func (q *request) actor(r *http.Request) prov.Actor {
	if q.s.Admin {
		return prov.AdminActor(q.s.Name, remoteHost(r))
	}
	return prov.UserActor(q.s.Name, remoteHost(r))
}

// handle registers pattern for role; a POST also checks the CSRF token,
// and a user page checks the menu's access level (None → 403 for every
// method, Read → 403 for a POST).
func (w *web) handle(pattern string, ro role, m menu, fn handlerFunc) {
	post := strings.HasPrefix(pattern, "POST ")
	w.mux.HandleFunc(pattern, func(rw http.ResponseWriter, r *http.Request) {
		s := w.sess.get(r)
		if s == nil {
			w.m.refused.WithLabelValues("no_session").Inc()
			if post {
				w.forbidden(rw, r, nil, http.StatusUnauthorized, "Your session has ended. Please sign in again.")
				return
			}
			http.Redirect(rw, r, "/?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if (ro == roleAdmin) != s.Admin {
			w.m.refused.WithLabelValues("role").Inc()
			w.forbidden(rw, r, s, http.StatusForbidden, "This page is not available to your account.")
			return
		}
		if post {
			limit := w.api.MaxBodyBytes
			if strings.HasSuffix(pattern, "/import") {
				limit = w.api.MaxImportBytes
			}
			r.Body = http.MaxBytesReader(rw, r.Body, limit)
		}
		if post && !w.checkCSRF(rw, r, s) {
			return
		}
		q := &request{s: s, acc: prov.AccessWrite}
		if ro == roleUser {
			u, err := w.d.Store.GetUser(r.Context(), s.Name)
			if err != nil || u.Status != prov.StatusActive || !u.Portal.Enabled {
				w.sess.end(r.Context(), s)
				w.m.refused.WithLabelValues("account").Inc()
				w.forbidden(rw, r, nil, http.StatusForbidden, "Your portal access has been withdrawn.")
				return
			}
			q.user, q.acc = u, access(u, m)
			if q.acc == prov.AccessNone || (post && q.acc != prov.AccessWrite) {
				w.m.refused.WithLabelValues("menu_access").Inc()
				w.forbidden(rw, r, s, http.StatusForbidden, "You do not have permission to change this.")
				return
			}
		}
		fn(rw, r, q)
	})
}

func (w *web) forbidden(rw http.ResponseWriter, r *http.Request, s *webSession, code int, msg string) {
	w.render(rw, r, code, "error.html", &page{Title: http.StatusText(code), S: s, Message: msg})
}
