package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"hotdesk/prov"
	"hotdesk/prov/auth"
)

// component is one thing the daemon serves: a listener's loop and its stop.
type component struct {
	name     string
	proto    string
	serve    func(ctx context.Context) error
	shutdown func(ctx context.Context)
}

// app is the running daemon: configuration, store, components.
type app struct {
	cfg        Config
	version    string
	logger     *slog.Logger
	reg        *prometheus.Registry
	metrics    *daemonMetrics
	store      prov.Store
	closeStore func() error
	addrs      Addrs
	svc        services
	book       *addrBook
	components []component
	// closers release bound sockets if the start fails half-way.
	closers []func() error
	// node is this node's name; cluster is the store shared with other
	// nodes (nil on one node), bus relays changes between them.
	node    string
	cluster prov.ClusterStore
	bus     *clusterBus
	// lockouts are the prov lockouts shared with the other nodes, by the
	// name their results travel under (filled while wiring).
	lockouts map[string]*auth.Lockout
	gate     *clusterGate // nil on one node
	// sharedAudio keeps voicemail and recordings in the shared store (nil
	// on one node).
	sharedAudio *prov.SharedAudio
	// sessionClock is the login sessions' clock (tests move it).
	sessionClock func() time.Time
}

// build opens the store, seeds what must exist and binds every socket.
func build(ctx context.Context, cfg Config, opts Options, logger *slog.Logger) (_ *app, err error) {
	a := &app{cfg: cfg, logger: logger, reg: prometheus.NewRegistry(), version: opts.Version, sessionClock: opts.sessionClock}
	if a.sessionClock == nil {
		a.sessionClock = time.Now
	}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	a.metrics = newDaemonMetrics(a.reg, opts.Version)
	// 0700 outside systemd too: the database, uploads and keys are the
	// daemon user's alone.
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	a.addrs.DataDir = cfg.DataDir
	st, closeStore, err := openStore(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	a.store, a.closeStore = st, closeStore
	a.node = cfg.Cluster.nodeName()
	if cs, ok := st.(prov.ClusterStore); ok && cs.Clustered() {
		a.cluster = cs
		a.gate = newClusterGate(a.reg)
		logger.Info("cluster node", "component", "cluster", "node", a.node)
	}
	if err := bootstrapAdmin(ctx, st, cfg.Admin, cfg.DataDir, logger); err != nil {
		return nil, err
	}
	if opts.Demo {
		if err := seedDemo(ctx, st, cfg, logger); err != nil {
			return nil, fmt.Errorf("demo: %w", err)
		}
	}
	// SIP first (it needs only the credentials index), then provisioning,
	// which builds prov's services over the SIP registrar (wire.go).
	if err := a.bindSIP(ctx); err != nil {
		return nil, err
	}
	if err := a.bindProvisioning(ctx); err != nil {
		return nil, err
	}
	if err := a.bindPnP(); err != nil {
		return nil, err
	}
	if err := a.bindDHCP(ctx); err != nil {
		return nil, err
	}
	if err := a.bindAdmin(); err != nil {
		return nil, err
	}
	return a, nil
}

// bindAdmin binds the admin listener: portal, API, /metrics, /healthz.
func (a *app) bindAdmin() error {
	ln, err := net.Listen("tcp", a.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	a.closers = append(a.closers, ln.Close)
	a.addrs.Admin = ln.Addr().String()
	mux, err := a.adminMux()
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		// Bounded so idle or trickling clients cannot hold connections;
		// long enough for a CSV import of thousands of users.
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: 10 * time.Minute,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     httpErrorLog(a.logger),
	}
	var tlsCfg *tls.Config
	if a.cfg.Admin.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(a.cfg.Admin.TLSCert, a.cfg.Admin.TLSKey)
		if err != nil {
			return fmt.Errorf("admin.tls_cert: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	a.addHTTP("admin", ln, srv, tlsCfg)
	if a.cfg.Admin.Metrics.Listen != "" {
		return a.bindMetrics()
	}
	return nil
}

// bindMetrics binds /metrics on a listener of its own (admin.metrics.listen).
func (a *app) bindMetrics() error {
	ln, err := net.Listen("tcp", a.cfg.Admin.Metrics.Listen)
	if err != nil {
		return fmt.Errorf("admin.metrics.listen: %w", err)
	}
	a.closers = append(a.closers, ln.Close)
	a.addrs.Metrics = ln.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metricsHandler())
	a.addHTTP("metrics", ln, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute,
		ErrorLog: httpErrorLog(a.logger)}, nil)
	return nil
}

// httpErrorLog routes net/http's own log: a recovered handler panic is an
// error; the rest (TLS handshakes of scanners, broken connections) is debug.
func httpErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(httpLogWriter{logger}, "", 0)
}

type httpLogWriter struct{ logger *slog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "panic") {
		w.logger.Error("http handler panic", "err", msg)
	} else {
		w.logger.Debug("http server", "msg", msg)
	}
	return len(p), nil
}

// withTLS wraps ln in TLS when tlsCfg is set, and names the protocol.
func withTLS(ln net.Listener, tlsCfg *tls.Config) (net.Listener, string) {
	if tlsCfg == nil {
		return ln, "http"
	}
	return tls.NewListener(ln, tlsCfg), "https"
}

// addHTTP registers an HTTP(S) server on a bound listener as a component.
func (a *app) addHTTP(name string, ln net.Listener, srv *http.Server, tlsCfg *tls.Config) {
	ln, proto := withTLS(ln, tlsCfg)
	a.components = append(a.components, component{
		name: name, proto: proto,
		serve: func(context.Context) error {
			err := srv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		},
		shutdown: func(ctx context.Context) {
			if err := srv.Shutdown(ctx); err != nil {
				a.logger.Warn("http shutdown", "name", name, "err", err)
				_ = srv.Close()
			}
		},
	})
}

// serve starts every component under the errgroup.
func (a *app) serve(ctx context.Context, g *errgroup.Group) {
	for _, c := range a.components {
		up := a.metrics.listenerUp.WithLabelValues(c.name, c.proto)
		up.Set(1)
		g.Go(func() error {
			err := c.serve(ctx)
			up.Set(0)
			if err != nil && ctx.Err() == nil {
				a.metrics.listenerErrors.WithLabelValues(c.name).Inc()
				return fmt.Errorf("%s: %w", c.name, err)
			}
			return nil
		})
	}
}

// shutdown stops every component within ctx's deadline.
func (a *app) shutdown(ctx context.Context) {
	for _, c := range a.components {
		if c.shutdown != nil {
			c.shutdown(ctx)
		}
	}
}

// close releases the store and any socket still open.
func (a *app) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		_ = a.closers[i]()
	}
	a.closers = nil
	if a.closeStore != nil {
		if err := a.closeStore(); err != nil {
			a.logger.Error("closing store", "err", err)
		}
		a.closeStore = nil
	}
}
