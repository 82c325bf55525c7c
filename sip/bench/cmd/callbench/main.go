// Command callbench runs hotdesk's registrar + stateful proxy alone for
// sip/bench/calls_vs_kamailio.sh: user 1002 has one binding, the sipp UAS
// at -callee, loaded from a binding store as after a restart; callers from
// -trusted are not challenged (the Kamailio config does no auth either),
// so both servers do the same work: lookup, Record-Route, stateful relay.
package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"hotdesk/sip"
)

type creds struct{}

func (creds) Credential(context.Context, string) (sip.Credential, error) {
	return sip.Credential{}, sip.ErrUnknownUser
}

func (creds) CanonicalUser(_ context.Context, name string) (string, bool) {
	if name == "1002" || name == "bob" {
		return "1002", true
	}
	return "", false
}

// store hands the registrar the callee's binding at start.
type store struct{ b sip.Binding }

func (s store) LoadBindings(context.Context) ([]sip.Binding, error) { return []sip.Binding{s.b}, nil }
func (store) SaveBindings(context.Context, []sip.Binding, []sip.BindingKey) error {
	return nil
}

func main() {
	listen := flag.String("listen", "udp://127.0.0.1:5090", "listen address")
	callee := flag.String("callee", "127.0.0.1:5062", "address of the sipp UAS bound to user 1002")
	trusted := flag.String("trusted", "127.0.0.1", "source whose INVITEs are not challenged")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	memprofile := flag.String("memprofile", "", "write a heap profile to this file on exit")
	maxCalls := flag.Int("max-calls", sip.DefaultProxyConfig().MaxCalls, "sip.proxy.max_calls")
	procs := flag.Int("procs", 0, "GOMAXPROCS, as the daemon's max_procs (0: every core)")
	flag.Parse()
	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := sip.DefaultConfig()
	cfg.Listen = []string{*listen}
	cfg.Domain = "hotdesk.test"
	b := sip.Binding{AOR: "sip:1002@hotdesk.test", Contact: "sip:1002@" + *callee, Source: *callee,
		Transport: "UDP", Expires: time.Now().Add(24 * time.Hour), Owner: sip.Owner{Kind: sip.OwnerUser, ID: "bob"}}
	srv, err := sip.New(cfg, sip.Deps{Logger: log, Credentials: creds{}, Bindings: store{b}})
	if err != nil {
		log.Error("new", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pcfg := sip.DefaultProxyConfig()
	pcfg.TrustedSources = []string{*trusted}
	pcfg.MaxCalls = *maxCalls
	if err := srv.EnableProxy(ctx, pcfg, sip.ProxyDeps{Logger: log}); err != nil {
		log.Error("proxy", "err", err)
		os.Exit(1)
	}
	ls, err := sip.Listen(cfg)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	if err := srv.Serve(ctx, ls); err != nil {
		log.Error("serve", "err", err)
	}
	// After Serve, before exiting: written from a goroutine it was cut short.
	if *memprofile != "" {
		if f, err := os.Create(*memprofile); err == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
}
