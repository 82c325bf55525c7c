package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/handset"
	"hotdesk/cmd/hotdesk-load/internal/sipua"
	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// runRegister is the REGISTER flood: like sipp's reg_auth scenario, each
// registration is a new Call-ID (REGISTER → 401 → REGISTER → 200) for the
// next user, cycling through the users, open loop at -rate.
func runRegister(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var users userSource
	n := fs.Int("n", 10000, "registrations to send")
	sipAddr := fs.String("sip", "127.0.0.1:5060", "registrar host:port")
	domain := fs.String("domain", "demo.hotdesk.lan", "AOR domain (and digest realm)")
	fs.StringVar(&users.csvPath, "users-csv", "", "users: CSV user[,password] or a sipp injection file")
	fs.StringVar(&users.list, "users", "", "users: comma list of user:password")
	fs.StringVar(&users.prefix, "user-prefix", "u", "users when no CSV: <prefix><index>")
	fs.IntVar(&users.start, "user-start", 100000, "first user index")
	fs.StringVar(&users.passFmt, "pass-fmt", "pw{n}x", "password when no CSV ({n} index, {user} name)")
	nUsers := fs.Int("user-count", 10000, "distinct users to cycle through (prefix scheme)")
	conc := fs.Int("concurrency", 256, "registrations in flight")
	sockets := fs.Int("sockets", 4, "UDP sockets to spread them over")
	rate := fs.Float64("rate", 0, "registrations started per second (0 = as fast as -concurrency allows)")
	expires := fs.Int("expires", 3600, "Expires")
	alg := fs.String("alg", "auto", "digest algorithm: auto, MD5, SHA-256")
	local := fs.String("local", "127.0.0.1", "local IP")
	capD := fs.Duration("duration-cap", 60*time.Second, "hard cap on the run")
	jsonPath := fs.String("json", "", "write the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *conc < 1 || *sockets < 1 || *nUsers < 1 {
		return usageErr("-n, -concurrency, -sockets and -user-count must be ≥ 1")
	}
	if err := users.load(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *capD)
	defer cancel()
	uas := make([]*sipua.UA, *sockets)
	for i := range uas {
		ua, err := sipua.New(sipua.Config{Local: net.JoinHostPort(*local, "0"), Server: *sipAddr,
			UserAgent: "hotdesk-load", Algorithm: *alg, Timeout: 5 * time.Second})
		if err != nil {
			return err
		}
		defer ua.Close()
		uas[i] = ua
	}
	rec := stats.New()
	var ok atomic.Int64
	start := time.Now()
	runN(ctx, *n, *conc, *rate, rec, func(i int) {
		name, pw := users.user(i % *nUsers)
		reg := sipua.NewRegistration(sipua.Account{User: name, Domain: *domain, AuthUser: name, Password: pw})
		t := time.Now()
		if _, err := uas[i%len(uas)].Register(ctx, reg, *expires); err != nil {
			rec.Error(handset.Kind(err))
			return
		}
		rec.Observe("register", time.Since(t))
		ok.Add(1)
	})
	wall := time.Since(start)
	s := rec.Summarize("register", wall)
	s.Counters["registrations_ok"] = float64(ok.Load())
	s.Counters["registrations_per_s"] = float64(ok.Load()) / wall.Seconds()
	s.Notes = append(s.Notes, fmt.Sprintf("%d sockets, %d in flight, target rate %.0f/s", *sockets, *conc, *rate))
	return finish(s, *jsonPath, stdout)
}
