package daemon

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"hotdesk/prov/portal"
	"hotdesk/sip"
)

// adminMux serves the admin listener: /api/v1, /metrics, /healthz (and
// pprof when asked for).
func (a *app) adminMux() (*http.ServeMux, error) {
	mux := http.NewServeMux()
	deps := portal.Deps{Links: a.svc.links,
		Store: a.store, Directory: a.svc.directory, Sessions: a.svc.sessions, Events: a.svc.events,
		Registrar: a.svc.registrar, Registrations: registrations{a.svc.sip}, Listeners: a.listeners,
		Effective: a.svc.files, CallControl: a.svc.callControl, Voicemails: a.svc.voicemails,
		Softphone: a.svc.softphone, SoftphoneSIP: a.softphoneSIP(), Recordings: a.svc.recordings,
		Version: a.version, Logger: a.logger.With("room", "api"), Registerer: a.reg, Now: time.Now,
		ShareLockout: a.shareLockout,
	}
	// One Manager serves the API, the portal and the feature codes, so
	// their rules and lockouts are the same object.
	deps.Manager = a.svc.manager
	api, err := portal.NewAPI(a.cfg.Admin.API, deps)
	if err != nil {
		return nil, err
	}
	mux.Handle("/api/v1/", api)
	deps.Logger = a.logger.With("room", "portal")
	web, err := portal.NewWeb(a.cfg.Admin.Web, a.cfg.Admin.API, deps)
	if err != nil {
		return nil, err
	}
	mux.Handle("/", web)
	// The user's own JSON routes live with the portal session (its cookie
	// and CSRF token), not with the admin API's credentials.
	mux.Handle("/api/v1/me/", web)
	if a.cfg.Admin.Metrics.Listen == "" {
		mux.Handle("GET /metrics", a.metricsHandler())
	}
	mux.HandleFunc("GET /healthz", a.healthz)
	if a.cfg.Admin.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	return mux, nil
}

// listeners reports the bound sockets for /api/v1/status.
func (a *app) listeners() []portal.Listener {
	out := []portal.Listener{{Name: "admin", Proto: "http", Addr: a.addrs.Admin}}
	add := func(name, proto, addr string) {
		if addr != "" {
			out = append(out, portal.Listener{Name: name, Proto: proto, Addr: addr})
		}
	}
	add("metrics", "http", a.addrs.Metrics)
	add("provisioning", "http", a.addrs.HTTP)
	add("provisioning", "https", a.addrs.HTTPS)
	add("provisioning", "tftp", a.addrs.TFTP)
	for _, s := range a.addrs.SIPUDP {
		add("sip", "udp", s)
	}
	for _, s := range a.addrs.SIPTCP {
		add("sip", "tcp", s)
	}
	for _, s := range a.addrs.SIPTLS {
		add("sip", "tls", s)
	}
	add("dhcp", "udp", a.addrs.DHCP)
	return out
}

// registrations adapts the registrar's bindings to the API's view.
type registrations struct{ srv *sip.Server }

func (r registrations) List(context.Context) []portal.Registration {
	if r.srv == nil {
		return nil
	}
	bs := r.srv.Bindings()
	out := make([]portal.Registration, 0, len(bs))
	for _, b := range bs {
		out = append(out, portal.Registration{AOR: b.AOR, Contact: b.Contact, Source: b.Source,
			Transport: b.Transport, UserAgent: b.UserAgent, Owner: provOwner(b.Owner),
			Since: b.Updated, Expires: b.Expires})
	}
	return out
}

// healthz answers 200 when the store answers, 503 otherwise.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	err := a.healthy(ctx)
	if err == nil && a.gate != nil && !a.gate.Ready() {
		// Not ready, though alive (the watchdog, which restarts a wedged
		// node, does not look at this): a balancer sends elsewhere.
		err = errors.New("cluster: events not resynchronised with the other nodes (REGISTERs and logins refused)")
	}
	if err != nil {
		a.logger.Warn("healthz failing", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "unhealthy", "error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
}

// metricsHandler is /metrics behind the configured credentials, if any.
func (a *app) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg})
	mc := a.cfg.Admin.Metrics
	if mc.BearerToken == "" && mc.Username == "" {
		return h
	}
	refused := promauto.With(a.reg).NewCounter(prometheus.CounterOpts{Name: "hotdesk_metrics_refused_total",
		Help: "Scrapes of /metrics refused for missing or wrong credentials."})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if metricsAuthorized(r, mc) {
			h.ServeHTTP(w, r)
			return
		}
		refused.Inc()
		a.logger.Info("metrics scrape refused", "component", "admin", "remote", r.RemoteAddr)
		if mc.Username != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="hotdesk metrics", charset="UTF-8"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hotdesk metrics"`)
		}
		http.Error(w, "metrics need credentials (admin.metrics)", http.StatusUnauthorized)
	})
}

// metricsAuthorized compares in constant time: a scrape must not learn
// the token a byte at a time.
func metricsAuthorized(r *http.Request, mc MetricsConfig) bool {
	eq := func(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }
	if mc.BearerToken != "" {
		if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok &&
			strings.EqualFold(scheme, "bearer") && eq(strings.TrimSpace(tok), mc.BearerToken) {
			return true
		}
	}
	if mc.Username != "" {
		if u, p, ok := r.BasicAuth(); ok && eq(u, mc.Username) && eq(p, mc.Password) {
			return true
		}
	}
	return false
}

// ApplyProfileRates turns on the mutex and block profiles when pprof is
// served, so /debug/pprof/mutex and /debug/pprof/block show where a busy
// daemon waits (a lock, the store's writer) rather than where it computes.
// Sampled (1 in 100 contentions, ~1 blocking event per 100 µs blocked),
// so their cost stays small. Process-wide, so the binary calls it.
func ApplyProfileRates(cfg Config) {
	if !cfg.Admin.Pprof {
		return
	}
	runtime.SetMutexProfileFraction(100)
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
}
