package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sync/errgroup"
)

// ShutdownGrace bounds a graceful stop: in-flight requests get this long.
const ShutdownGrace = 4 * time.Second

// Options are the command line's choices that are not configuration.
type Options struct {
	// Demo seeds the demo site and moves unnamed listeners to unprivileged ports.
	Demo bool
	// ConfigPath is re-read on SIGHUP; empty means defaults only.
	ConfigPath string
	// Version is reported by hotdesk_build_info.
	Version string
	// Banner receives the demo's "what to try next" text.
	Banner io.Writer
	// LevelVar lets a reload change the log level.
	LevelVar *slog.LevelVar
	// OnReady, if set, is called with the bound addresses once serving.
	OnReady func(Addrs)
	// onBuilt lets this package's tests reach the running services.
	onBuilt func(*app)
	// sessionClock replaces time.Now for the login sessions (idle, maximum
	// and daily logout, the wait after a line goes down) in tests.
	sessionClock func() time.Time
}

// Addrs are the addresses the daemon actually bound (ports resolved).
type Addrs struct {
	Admin string
	// Metrics is /metrics's own listener ("": on the admin listener).
	Metrics string
	HTTP    string
	HTTPS   string
	TFTP    string
	SIPUDP  []string
	SIPTCP  []string
	SIPTLS  []string
	SIPWS   []string // ws:// and wss:// listeners
	// SIPPnP is where plug-and-play NOTIFYs leave from ("" when off).
	SIPPnP  string
	DHCP    string
	DataDir string
	// Voicemail is the voicemail server's SIP address ("" when off).
	Voicemail string
}

// Run runs the daemon until ctx is cancelled or SIGTERM/SIGINT arrives,
// then stops gracefully. Every socket is bound before READY is signalled,
// so a port conflict fails the start, not a later request.
func Run(ctx context.Context, cfg Config, opts Options, logger *slog.Logger) error {
	if opts.Demo {
		cfg = DemoConfig(cfg)
	}
	if opts.LevelVar == nil {
		opts.LevelVar = new(slog.LevelVar)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	start := time.Now()
	app, err := build(ctx, cfg, opts, logger)
	if err != nil {
		return err
	}
	defer app.close()

	g, gctx := errgroup.WithContext(ctx)
	app.serve(gctx, g)
	g.Go(func() error { return app.reloadLoop(gctx, opts) })
	g.Go(func() error { return app.watchdog(gctx) })
	g.Go(func() error { return returnMemory(gctx, 5*time.Second) })
	if app.gate != nil {
		// A cluster node serves REGISTERs and logins once it has read the
		// others' state; until then they are refused (clusterGate).
		select {
		case <-app.gate.synced:
		case <-gctx.Done():
		case <-time.After(30 * time.Second):
			logger.Warn("cluster events not resynchronised yet; REGISTERs and logins refused until they are", "component", "cluster")
		}
	}

	logger.Info("ready", "admin", app.addrs.Admin, "http", app.addrs.HTTP, "tftp", app.addrs.TFTP,
		"sip_udp", app.addrs.SIPUDP, "sip_tcp", app.addrs.SIPTCP, "data_dir", cfg.DataDir,
		"startup", time.Since(start).Round(time.Millisecond))
	// Start-up work (migrations, caches, a first argon2id hash) leaves
	// freed heap behind; hand it back so the idle footprint is the real one.
	debug.FreeOSMemory()
	notify(logger, sddaemon.SdNotifyReady)
	if opts.Demo && opts.Banner != nil {
		printBanner(opts.Banner, cfg, app.addrs)
	}
	if opts.onBuilt != nil {
		opts.onBuilt(app)
	}
	if opts.OnReady != nil {
		opts.OnReady(app.addrs)
	}

	<-gctx.Done()
	notify(logger, sddaemon.SdNotifyStopping)
	logger.Info("stopping")
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	app.shutdown(shutdownCtx)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err != nil {
		logger.Error("stopped with error", "err", err)
		return err
	}
	logger.Info("stopped")
	return nil
}

// returnMemory hands freed heap back to the OS every interval. After a boot
// storm the live heap is small but the runtime returns the peak's pages
// only slowly; an appliance's RSS should follow what it really holds. A
// forced collection of a heap of tens of MB takes milliseconds.
func returnMemory(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			debug.FreeOSMemory()
		}
	}
}

// notify tells systemd about a state change; outside systemd it is a no-op.
func notify(logger *slog.Logger, state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		logger.Warn("sd_notify failed", "state", state, "err", err)
	}
}

// reloadLoop re-reads the configuration on SIGHUP. What can change safely
// (the log level) changes; anything else is named in the log as needing a
// restart, and a bad file keeps the running configuration.
func (a *app) reloadLoop(ctx context.Context, opts Options) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hup:
		}
		notify(a.logger, sddaemon.SdNotifyReloading)
		a.reload(opts)
		notify(a.logger, sddaemon.SdNotifyReady)
	}
}

func (a *app) reload(opts Options) {
	next, _, err := LoadFile(opts.ConfigPath)
	if err == nil && opts.Demo {
		next = DemoConfig(next)
	}
	if err != nil {
		a.metrics.reloadOK.Set(0)
		a.logger.Error("reload failed, keeping the running configuration", "err", err)
		return
	}
	opts.LevelVar.Set(slogLevel(next.Log.Level))
	var restart []string
	for _, k := range changedKeys(a.cfg, next) {
		if k != "log" {
			restart = append(restart, k)
		}
	}
	a.metrics.reloadOK.Set(1)
	a.metrics.reloadTime.SetToCurrentTime()
	if len(restart) > 0 {
		a.logger.Warn("reloaded; these sections changed and take effect after a restart", "sections", restart)
	} else {
		a.logger.Info("reloaded", "log_level", next.Log.Level)
	}
	a.cfg.Log = next.Log
}

// watchdog pings systemd while the daemon is healthy. A wedged store (or a
// component whose health check fails) stops the pings, and systemd
// restarts the service.
func (a *app) watchdog(ctx context.Context) error {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return nil
	}
	t := time.NewTicker(interval / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, interval/3)
		err := a.healthy(hctx)
		cancel()
		if err != nil {
			a.logger.Error("health check failed, withholding watchdog ping", "err", err)
			continue
		}
		notify(a.logger, sddaemon.SdNotifyWatchdog)
	}
}
