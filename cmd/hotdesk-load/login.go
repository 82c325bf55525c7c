package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/handset"
	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// runLogin runs login/logout cycles through the admin API: worker w owns
// device w and user w (so workers never replace each other's sessions)
// and repeats POST /api/v1/sessions, DELETE /api/v1/sessions/{id}.
func runLogin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("login", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var users userSource
	admin := fs.String("admin", "http://127.0.0.1:8081", "admin API base URL")
	adminUser := fs.String("admin-user", "admin", "admin user")
	adminPass := fs.String("admin-pass", "admin-demo", "admin password")
	n := fs.Int("n", 100, "login/logout cycles")
	conc := fs.Int("c", 2, "workers (each with its own device and user)")
	macPrefix := fs.String("mac-prefix", "0004f2", "device MAC prefix")
	macStart := fs.Int("mac-start", 1, "first device index")
	fs.StringVar(&users.csvPath, "users-csv", "", "users CSV")
	fs.StringVar(&users.list, "users", "alice,bob,carol", "users: comma list")
	fs.StringVar(&users.prefix, "user-prefix", "load", "users when -users is empty and no CSV")
	fs.IntVar(&users.start, "user-start", 1, "first user index")
	capD := fs.Duration("duration-cap", 60*time.Second, "hard cap on the run")
	jsonPath := fs.String("json", "", "write the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *conc < 1 || !validMACPrefix(*macPrefix) {
		return usageErr("-n, -c ≥ 1 and a 6-hex-digit -mac-prefix are required")
	}
	if err := users.load(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *capD)
	defer cancel()
	api := handset.NewAdmin(*admin, *adminUser, *adminPass)
	rec := stats.New()
	var next, ok atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			user, _ := users.user(w)
			for int(next.Add(1)) <= *n && ctx.Err() == nil {
				if cycle(ctx, api, rec, macFor(*macPrefix, *macStart+w), user) {
					ok.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	wall := time.Since(start)
	s := rec.Summarize("login", wall)
	s.Counters["cycles_ok"] = float64(ok.Load())
	s.Counters["cycles_per_s"] = float64(ok.Load()) / wall.Seconds()
	s.Notes = append(s.Notes, fmt.Sprintf("%d workers, devices %s…", *conc, macFor(*macPrefix, *macStart)))
	return finish(s, *jsonPath, stdout)
}

// cycle logs user in on mac and out again, timing both.
func cycle(ctx context.Context, api *handset.Admin, rec *stats.Recorder, mac, user string) bool {
	t := time.Now()
	id, err := api.Login(ctx, mac, user)
	if err != nil {
		rec.Error(handset.Kind(err))
		return false
	}
	rec.Observe("login", time.Since(t))
	t = time.Now()
	if err := api.Logout(ctx, id); err != nil {
		rec.Error(handset.Kind(err))
		return false
	}
	rec.Observe("logout", time.Since(t))
	return true
}
