package main

import (
	"context"
	"flag"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/handset"
	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// runSeed creates users <prefix><i> through POST /api/v1/users, each with
// one number, so storm -login-share has people to log in.
func runSeed(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.String("admin", "http://127.0.0.1:8081", "admin API base URL")
	adminUser := fs.String("admin-user", "admin", "admin user")
	adminPass := fs.String("admin-pass", "admin-demo", "admin password")
	n := fs.Int("n", 100, "users to create")
	prefix := fs.String("user-prefix", "load", "user name prefix")
	start := fs.Int("user-start", 1, "first index")
	passFmt := fs.String("pass-fmt", "", "login password ({n} index, {user} name); empty: none (admin logins need none, and hashing costs)")
	siteID := fs.Int64("site-id", 0, "site of the users (0: the daemon's default)")
	numStart := fs.Int("number-start", 200000, "first extension number")
	conc := fs.Int("c", 8, "requests in flight")
	capD := fs.Duration("duration-cap", 120*time.Second, "hard cap on the run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *conc < 1 {
		return usageErr("-n and -c must be ≥ 1")
	}
	ctx, cancel := context.WithTimeout(ctx, *capD)
	defer cancel()
	api := handset.NewAdmin(*admin, *adminUser, *adminPass)
	us := userSource{prefix: *prefix, start: *start, passFmt: *passFmt}
	rec := stats.New()
	var next atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= *n || ctx.Err() != nil {
					return
				}
				name, pw := us.user(k)
				t := time.Now()
				if err := api.CreateUser(ctx, name, pw, strconv.Itoa(*numStart+*start+k), *siteID); err != nil {
					rec.Error(handset.Kind(err))
					continue
				}
				rec.Observe("create_user", time.Since(t))
			}
		}()
	}
	wg.Wait()
	return finish(rec.Summarize("seed", time.Since(t0)), "", stdout)
}
