package main

import (
	"context"
	"flag"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/handset"
	"hotdesk/cmd/hotdesk-load/internal/sipua"
	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// runCalls registers two accounts (the callee answers every INVITE) and
// places N calls A→B through the proxy: INVITE → 200 → ACK, hold, BYE.
func runCalls(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("calls", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sipAddr := fs.String("sip", "127.0.0.1:5060", "proxy/registrar host:port")
	domain := fs.String("domain", "demo.hotdesk.lan", "domain")
	a := fs.String("a", "1001:1001:alice-sip", "caller user:authuser:password")
	b := fs.String("b", "1002:1002:bob-sip", "callee user:authuser:password")
	n := fs.Int("n", 10, "calls")
	conc := fs.Int("c", 1, "calls in flight")
	hold := fs.Duration("hold", 100*time.Millisecond, "call duration")
	alg := fs.String("alg", "auto", "digest algorithm")
	local := fs.String("local", "127.0.0.1", "local IP")
	capD := fs.Duration("duration-cap", 60*time.Second, "hard cap on the run")
	jsonPath := fs.String("json", "", "write the summary as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	caller, err := parseAccount(*a, *domain)
	if err != nil {
		return err
	}
	callee, err := parseAccount(*b, *domain)
	if err != nil {
		return err
	}
	if *n < 1 || *conc < 1 {
		return usageErr("-n and -c must be ≥ 1")
	}
	ctx, cancel := context.WithTimeout(ctx, *capD)
	defer cancel()
	rec := stats.New()
	s, err := placeCalls(ctx, rec, callPlan{sip: *sipAddr, local: *local, alg: *alg, caller: caller, callee: callee,
		n: *n, conc: *conc, hold: *hold})
	if err != nil {
		return err
	}
	return finish(s, *jsonPath, stdout)
}

type callPlan struct {
	sip, local, alg string
	caller, callee  sipua.Account
	n, conc         int
	hold            time.Duration
}

func placeCalls(ctx context.Context, rec *stats.Recorder, p callPlan) (stats.Summary, error) {
	mk := func(accept bool) (*sipua.UA, error) {
		return sipua.New(sipua.Config{Local: net.JoinHostPort(p.local, "0"), Server: p.sip,
			UserAgent: "PolycomVVX-VVX_400-UA/6.4.0.0000", Algorithm: p.alg, AcceptCalls: accept})
	}
	uaA, err := mk(false)
	if err != nil {
		return stats.Summary{}, err
	}
	defer uaA.Close()
	uaB, err := mk(true)
	if err != nil {
		return stats.Summary{}, err
	}
	defer uaB.Close()
	start := time.Now()
	for _, x := range []struct {
		ua   *sipua.UA
		acct sipua.Account
	}{{uaA, p.caller}, {uaB, p.callee}} {
		if _, err := x.ua.Register(ctx, sipua.NewRegistration(x.acct), 300); err != nil {
			rec.Error("register_" + handset.Kind(err))
			s := rec.Summarize("calls", time.Since(start))
			s.Notes = append(s.Notes, "could not register both accounts; no call placed")
			return s, nil
		}
	}
	sem := make(chan struct{}, p.conc)
	var wg sync.WaitGroup
	for i := 0; i < p.n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := uaA.Call(ctx, p.caller, p.callee.User, p.hold)
			if err != nil {
				rec.Error("call_" + handset.Kind(err))
				return
			}
			rec.Observe("setup", r.Setup)
			rec.Observe("teardown", r.Teardown)
		}()
	}
	wg.Wait()
	return rec.Summarize("calls", time.Since(start)), nil
}

func parseAccount(s, domain string) (sipua.Account, error) {
	p := strings.SplitN(s, ":", 3)
	if len(p) != 3 || p[0] == "" {
		return sipua.Account{}, usageErr("account %q: want user:authuser:password", s)
	}
	return sipua.Account{User: p[0], AuthUser: p[1], Password: p[2], Domain: domain}, nil
}
