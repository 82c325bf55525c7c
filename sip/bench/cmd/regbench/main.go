// Command regbench runs hotdesk's registrar alone, with N in-memory users
// u100000.. (passwords pwNNNNNx, realm/domain hotdesk.test), the same
// accounts as /work/shared/bench/sip/sip_common.sh gives Kamailio, so
// sip/bench/register_vs_kamailio.sh compares like with like.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"hotdesk/sip"
)

type users struct{ n int }

func (u users) index(name string) (int, bool) {
	var i int
	if !strings.HasPrefix(name, "u") {
		return 0, false
	}
	if _, err := fmt.Sscanf(name[1:], "%d", &i); err != nil || i < 100000 || i >= 100000+u.n {
		return 0, false
	}
	return i - 100000, fmt.Sprintf("u%d", i) == name
}

func (u users) Credential(_ context.Context, name string) (sip.Credential, error) {
	i, ok := u.index(name)
	if !ok {
		return sip.Credential{}, sip.ErrUnknownUser
	}
	return sip.Credential{Username: name, Password: fmt.Sprintf("pw%05dx", i),
		Owner: sip.Owner{Kind: sip.OwnerUser, ID: name}, AORs: []string{name}}, nil
}

func (u users) CanonicalUser(_ context.Context, name string) (string, bool) {
	_, ok := u.index(name)
	return name, ok
}

func main() {
	listen := flag.String("listen", "udp://127.0.0.1:5080", "listen address")
	n := flag.Int("users", 10000, "number of users")
	domain := flag.String("domain", "hotdesk.test", "domain and realm")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	cfg := benchConfig(*listen, *domain)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := sip.New(cfg, sip.Deps{Logger: log, Credentials: users{*n}})
	if err != nil {
		log.Error("new", "err", err)
		os.Exit(1)
	}
	ls, err := sip.Listen(cfg)
	if err != nil {
		log.Error("listen", "err", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Serve(ctx, ls); err != nil {
		log.Error("serve", "err", err)
		return
	}
	log.Info("stopped", "bindings", srv.BindingCount())
}

// benchConfig is the registrar's configuration for the side-by-side run:
// the defaults, with Kamailio's max_expires.
func benchConfig(listen, domain string) sip.Config {
	cfg := sip.DefaultConfig()
	cfg.Listen = []string{listen}
	cfg.Domain = domain
	cfg.MaxExpires = 7200 // as the Kamailio config
	// A TCP phone's connection must outlast its longest registration.
	cfg.TCPIdleTimeout = time.Duration(cfg.MaxExpires)*time.Second + 5*time.Minute
	return cfg
}
