package portal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"hotdesk/prov"
	provauth "hotdesk/prov/auth"
)

// Config is the daemon's `portal:` section.
type Config struct {
	// MaxBodyBytes bounds a JSON request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxImportBytes bounds a CSV import body.
	MaxImportBytes int64 `yaml:"max_import_bytes"`
	// DefaultPageSize and MaxPageSize bound list pages (?limit=).
	DefaultPageSize int `yaml:"default_page_size"`
	MaxPageSize     int `yaml:"max_page_size"`
	// CustomFields are the deployment's names of custom1..custom3.
	CustomFields []string `yaml:"custom_fields"`
	// AuthCacheTTL is how long a verified Basic credential is remembered,
	// so that a script does not pay argon2id on every request.
	AuthCacheTTL time.Duration `yaml:"auth_cache_ttl"`
	// LockoutThreshold failures per source or per admin name lock it out
	// for LockoutBase, doubling on each further lock.
	LockoutThreshold int           `yaml:"lockout_threshold"`
	LockoutBase      time.Duration `yaml:"lockout_base"`
	// TokenTTL is how long a new API token lasts unless its creator says
	// otherwise; TokenMaxTTL bounds what a creator may ask for.
	TokenTTL    time.Duration `yaml:"token_ttl"`
	TokenMaxTTL time.Duration `yaml:"token_max_ttl"`
	// ThirdParty are the SIP settings shown for third-party desk phones.
	ThirdParty ThirdPartyConfig `yaml:"third_party"`
}

// ThirdPartyConfig is what a person types into a third-party phone.
type ThirdPartyConfig struct {
	// Server is the SIP server address; "" shows the site's domain, or
	// the host the API was reached at.
	Server string `yaml:"server"`
	// Transport ("" : udp if SIP listens on UDP, else tcp, else tls) picks
	// the SIP listener whose port is shown; Port (0: that listener's)
	// overrides it where phones reach SIP through a port forward.
	Port      int    `yaml:"port"`
	Transport string `yaml:"transport"`
	// CACertFile is the PEM certificate phones must trust for SIP over TLS.
	CACertFile string `yaml:"ca_cert_file"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBodyBytes: 1 << 20, MaxImportBytes: 32 << 20, DefaultPageSize: 100, MaxPageSize: 1000,
		AuthCacheTTL: time.Minute, LockoutThreshold: 5, LockoutBase: time.Minute,
		TokenTTL: 90 * 24 * time.Hour, TokenMaxTTL: 366 * 24 * time.Hour,
	}
}

// Validate names the offending key relative to the portal section.
func (c Config) Validate() error {
	switch {
	case c.MaxBodyBytes <= 0:
		return errors.New("max_body_bytes: must be positive")
	case c.MaxImportBytes <= 0:
		return errors.New("max_import_bytes: must be positive")
	case c.DefaultPageSize <= 0 || c.DefaultPageSize > c.MaxPageSize:
		return errors.New("default_page_size: must be between 1 and max_page_size")
	case len(c.CustomFields) > 3:
		return errors.New("custom_fields: at most 3 names")
	case c.AuthCacheTTL < 0:
		return errors.New("auth_cache_ttl: must not be negative")
	case c.LockoutThreshold <= 0:
		return errors.New("lockout_threshold: must be positive")
	case c.LockoutBase <= 0:
		return errors.New("lockout_base: must be positive")
	case c.TokenTTL <= 0:
		return errors.New("token_ttl: must be positive")
	case c.TokenMaxTTL < c.TokenTTL:
		return errors.New("token_max_ttl: must be at least token_ttl")
	case c.ThirdParty.Port < 0 || c.ThirdParty.Port > 65535:
		return fmt.Errorf("third_party.port: %d is not a port", c.ThirdParty.Port)
	}
	switch c.ThirdParty.Transport {
	case "", "udp", "tcp", "tls":
	default:
		return fmt.Errorf("third_party.transport: %q is not udp, tcp or tls", c.ThirdParty.Transport)
	}
	return nil
}

// Registration is one live registrar binding as the API shows it.
type Registration struct {
	AOR       string `json:"aor"`
	Contact   string `json:"contact"`
	Source    string `json:"source"`
	Transport string `json:"transport"`
	UserAgent string `json:"user_agent"`
	// Owner is who made the binding; JSON "<kind>:<id>".
	Owner   prov.Owner `json:"owner"`
	Since   time.Time  `json:"since"`
	Expires time.Time  `json:"expires"`
}

// Registrations is the registrar's live view; daemon adapts the sip room.
type Registrations interface {
	// List returns every live binding; it must not block on the network.
	List(ctx context.Context) []Registration
}

// EffectiveConfig is the provisioning namespace's merge view; files.Files
// implements it.
type EffectiveConfig interface {
	EffectiveConfig(ctx context.Context, mac string) ([]prov.Param, error)
}

// Listener is one bound socket, shown by /api/v1/status.
type Listener struct {
	Name  string `json:"name"`
	Proto string `json:"proto"`
	Addr  string `json:"addr"`
}

// Deps are the API's collaborators. Manager may be nil: NewAPI then builds
// one over Store, Directory, Sessions, Events and Registrar.
type Deps struct {
	Store     prov.Store
	Directory *prov.Directory
	Sessions  *prov.Sessions
	Events    *prov.Events
	Manager   *prov.Manager
	// Links sends password set/reset links by e-mail; nil or without a
	// mailer: mail is off.
	Links         *prov.PasswordLinks
	Registrar     prov.Registrar
	Registrations Registrations
	// CallControl is click-to-dial from the user portal; may be nil (off).
	CallControl *prov.CallControl
	// Voicemails are the users' mailboxes; nil: voicemail is off.
	Voicemails *prov.Voicemails
	// Softphone mints the browser softphone's SIP credentials; nil: off.
	Softphone *prov.Softphone
	// SoftphoneSIP tells the browser softphone where to register.
	SoftphoneSIP SoftphoneSIP
	// Recordings replays and downloads call recordings; nil: none.
	Recordings *prov.Recordings
	// Effective explains a device's merged configuration; may be nil.
	Effective EffectiveConfig
	// Listeners reports the daemon's bound sockets for /status; may be nil.
	Listeners  func() []Listener
	Version    string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	// ShareLockout (nil: one node) is given the API's and the portal's
	// password lockouts by name, to count the other nodes' failures too.
	ShareLockout func(name string, l *provauth.Lockout)
}

// api is the /api/v1 handler.
type api struct {
	cfg    Config
	d      Deps
	mgr    *prov.Manager
	log    *slog.Logger
	now    func() time.Time
	mux    *http.ServeMux
	auth   *authenticator
	routes []route
	// registered are the mux patterns, recorded as they are registered,
	// so a test can compare them with the OpenAPI document.
	registered []string
	m          apiMetrics
}

type apiMetrics struct {
	requests *prometheus.CounterVec
	authFail *prometheus.CounterVec
	dropped  *prometheus.CounterVec
}

// NewAPI returns the /api/v1 handler; mount it at /api/v1/.
func NewAPI(cfg Config, d Deps) (http.Handler, error) {
	return newAPI(cfg, d)
}

func newAPI(cfg Config, d Deps) (*api, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("portal: config: %w", err)
	}
	d, err := d.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &api{cfg: cfg, d: d, mgr: d.Manager, log: d.Logger, now: d.Now, mux: http.NewServeMux()}
	f := promauto.With(d.Registerer)
	a.m = apiMetrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_portal_api_requests_total",
			Help: "API requests by route pattern and status class."}, []string{"route", "code"}),
		authFail: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_portal_api_auth_failures_total",
			Help: "Refused API authentications by reason."}, []string{"reason"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_portal_api_dropped_total",
			Help: "Requests refused before a handler ran, by reason."}, []string{"reason"}),
	}
	a.auth = newAuthenticator(cfg, d.Store, d.Now, d.Directory.Hasher())
	if d.ShareLockout != nil {
		d.ShareLockout("api", a.auth.lock)
	}
	a.routes = a.routeTable()
	for _, rt := range a.routes {
		pattern := rt.Method + " " + rt.Path
		a.mux.Handle(pattern, a.wrap(rt))
		a.registered = append(a.registered, pattern)
	}
	return a, nil
}

// withDefaults checks the required services and fills the optional ones:
// the clock, a discarding logger, a private registry and a Manager over
// the other services. The API and the web portal share it.
func (d Deps) withDefaults() (Deps, error) {
	if d.Store == nil || d.Directory == nil || d.Events == nil {
		return d, errors.New("portal: Store, Directory and Events are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	if d.Manager == nil {
		d.Manager = prov.NewManager(prov.ManagerDeps{Store: d.Store, Directory: d.Directory, Sessions: d.Sessions,
			Events: d.Events, Registrar: d.Registrar, Logger: d.Logger, Now: d.Now})
	}
	return d, nil
}

// ServeHTTP routes to the table; unmatched requests get a JSON 404/405.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		rec := &statusRecorder{header: http.Header{}}
		a.mux.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		code := rec.code
		if code != http.StatusMethodNotAllowed {
			code = http.StatusNotFound
		}
		a.m.dropped.WithLabelValues(map[int]string{404: "no_route", 405: "method"}[code]).Inc()
		writeError(w, code, http.StatusText(code), "")
		return
	}
	a.mux.ServeHTTP(w, r)
}

// statusRecorder captures what the mux's own 404/405 would have written.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.code = code }

// wrap adds authentication, panic safety and metrics to a route.
func (a *api) wrap(rt route) http.Handler {
	pattern := rt.Method + " " + rt.Path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := &codeWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			if p := recover(); p != nil {
				a.log.Error("api handler panic", "route", pattern, "panic", fmt.Sprint(p))
				if !cw.wrote {
					writeError(cw, http.StatusInternalServerError, "internal error", "")
				}
			}
			a.m.requests.WithLabelValues(pattern, fmt.Sprintf("%dxx", cw.code/100)).Inc()
		}()
		// A person waits on every API call: its reads skip the queue the
		// phones' provisioning reads form in a boot storm.
		r = r.WithContext(prov.Interactive(r.Context()))
		p, ok := a.authenticate(cw, r, rt.Auth)
		if !ok {
			return
		}
		rt.Handler(cw, r, p)
	})
}

type codeWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (c *codeWriter) WriteHeader(code int) {
	if !c.wrote {
		c.code, c.wrote = code, true
	}
	c.ResponseWriter.WriteHeader(code)
}

func (c *codeWriter) Write(b []byte) (int, error) {
	c.wrote = true
	return c.ResponseWriter.Write(b)
}
