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
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	memprofileAt := flag.Duration("memprofile-at", 0, "also write the heap profile this long after start "+
		"(to -memprofile with .at appended): the heap under load, not after it drained")
	maxCalls := flag.Int("max-calls", sip.DefaultProxyConfig().MaxCalls, "sip.proxy.max_calls")
	stats := flag.Duration("stats", 0, "log the runtime's memory and goroutines at this interval (0: never)")
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
	reg := prometheus.NewRegistry()
	if err := srv.EnableProxy(ctx, pcfg, sip.ProxyDeps{Logger: log, Registerer: reg}); err != nil {
		log.Error("proxy", "err", err)
		os.Exit(1)
	}
	ls, err := sip.Listen(cfg)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	if *memprofile != "" && *memprofileAt > 0 {
		t := time.AfterFunc(*memprofileAt, func() { writeHeap(*memprofile+".at", log) })
		defer t.Stop()
	}
	if *stats > 0 {
		go logStats(ctx, *stats, log, reg)
	}
	if err := srv.Serve(ctx, ls); err != nil {
		log.Error("serve", "err", err)
	}
	// After Serve, before exiting: written from a goroutine it was cut short.
	if *memprofile != "" {
		writeHeap(*memprofile, log)
	}
}

// writeHeap writes the heap profile (in use and allocated since start) to path.
func writeHeap(path string, log *slog.Logger) {
	f, err := os.Create(path)
	if err != nil {
		log.Error("heap profile", "err", err)
		return
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		log.Error("heap profile", "err", err)
	}
}

// logStats logs where the process's memory is (live heap, its goal,
// goroutine stacks, all the runtime mapped) and the goroutines, every
// interval: what a burst grows shows here before the peak RSS does.
func logStats(ctx context.Context, every time.Duration, log *slog.Logger, reg prometheus.Gatherer) {
	names := []string{"/memory/classes/heap/objects:bytes", "/gc/heap/goal:bytes",
		"/memory/classes/heap/stacks:bytes", "/memory/classes/total:bytes", "/sched/goroutines:goroutines"}
	samples := make([]metrics.Sample, len(names))
	for i, n := range names {
		samples[i].Name = n
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(samples)
		mb := func(i int) uint64 { return samples[i].Value.Uint64() >> 20 }
		attrs := []any{"heap_mb", mb(0), "goal_mb", mb(1), "stacks_mb", mb(2), "total_mb", mb(3),
			"goroutines", samples[4].Value.Uint64()}
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			switch mf.GetName() {
			case "hotdesk_sip_proxy_shed_total":
				for _, m := range mf.GetMetric() {
					attrs = append(attrs, "shed_"+m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
				}
			case "hotdesk_sip_proxy_calls_held":
				attrs = append(attrs, "held", mf.GetMetric()[0].GetGauge().GetValue())
			}
		}
		log.Info("stats", attrs...)
	}
}
