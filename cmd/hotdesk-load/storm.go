package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"hotdesk/cmd/hotdesk-load/internal/handset"
	"hotdesk/cmd/hotdesk-load/internal/sipua"
	"hotdesk/cmd/hotdesk-load/internal/stats"
)

// stormConfig is the storm sub-command's flags.
type stormConfig struct {
	n            int
	target       string
	sipAddr      string
	domain       string
	admin        string
	adminUser    string
	adminPass    string
	loginShare   float64
	concurrency  int
	rate         float64
	macPrefix    string
	macStart     int
	users        userSource
	userAgent    string
	alg          string
	srcCIDR      string
	expires      int
	hold         time.Duration
	refreshEvery time.Duration
	notifyWait   time.Duration
	linger       time.Duration
	durationCap  time.Duration
	jsonPath     string
	verifyRelock bool
	// targetSet: -target was given, so a DHCP boot server does not replace it.
	targetSet bool
	dhcp      dhcpConfig
}

func stormFlags(fs *flag.FlagSet, c *stormConfig) {
	fs.IntVar(&c.n, "n", 100, "handsets to simulate")
	fs.StringVar(&c.target, "target", "http://127.0.0.1:8080", "provisioning base URL (with -dhcp and no -target: each handset's option 160, else 66, boot server)")
	fs.StringVar(&c.sipAddr, "sip", "", "registrar host:port (default: the server in the device files)")
	fs.StringVar(&c.domain, "domain", "", "AOR domain override (default: from reg.1.address, else reg.1.server.1.address, as a Polycom does)")
	fs.StringVar(&c.admin, "admin", "http://127.0.0.1:8081", "admin API base URL (for logins)")
	fs.StringVar(&c.adminUser, "admin-user", "admin", "admin user (Basic auth)")
	fs.StringVar(&c.adminPass, "admin-pass", "admin-demo", "admin password")
	fs.Float64Var(&c.loginShare, "login-share", 0, "share of handsets (0..1) on which a user logs in")
	fs.IntVar(&c.concurrency, "concurrency", 1000, "handsets in their boot flow (fetch + device REGISTER) at once")
	fs.Float64Var(&c.rate, "rate", 0, "handset arrivals per second (0 = all at once)")
	fs.StringVar(&c.macPrefix, "mac-prefix", "0004f3", "first 6 hex digits of the simulated MACs")
	fs.IntVar(&c.macStart, "mac-start", 1, "index of the first MAC")
	fs.StringVar(&c.users.csvPath, "users-csv", "", "CSV of users to log in (user[,password])")
	fs.StringVar(&c.users.list, "users", "", "users to log in: comma list (instead of a CSV)")
	fs.StringVar(&c.users.prefix, "user-prefix", "load", "user name prefix when no CSV: <prefix><index>")
	fs.IntVar(&c.users.start, "user-start", 1, "first user index")
	fs.StringVar(&c.userAgent, "user-agent", handset.DefaultUserAgent, "HTTP User-Agent ({mac} is replaced)")
	fs.StringVar(&c.alg, "alg", "auto", "digest algorithm to answer with: auto (prefer SHA-256), MD5, SHA-256")
	fs.StringVar(&c.srcCIDR, "src-cidr", "auto", "source addresses, one per handset: CIDR, auto (127.77.0.0/16 on loopback) or none; with -dhcp the leased address is used instead")
	fs.IntVar(&c.expires, "expires", 3600, "REGISTER expires")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "how long a logged-in user stays before logout")
	fs.DurationVar(&c.refreshEvery, "refresh-every", time.Second, "registration refresh interval during the hold")
	fs.DurationVar(&c.notifyWait, "notify-wait", 10*time.Second, "how long to wait for a check-sync NOTIFY")
	fs.DurationVar(&c.linger, "linger", 0, "keep every handset's socket open this long after its flow (answers NOTIFY)")
	fs.DurationVar(&c.durationCap, "duration-cap", 120*time.Second, "hard cap on the whole run")
	fs.StringVar(&c.jsonPath, "json", "", "write the summary as JSON to this file")
	fs.BoolVar(&c.verifyRelock, "relock", true, "after logout, re-fetch and re-register the device account")
	dhcpFlags(fs, &c.dhcp)
}

func (c *stormConfig) validate() error {
	switch {
	case c.n < 1 || c.n > 1<<20:
		return usageErr("-n must be 1..1048576")
	case c.concurrency < 1:
		return usageErr("-concurrency must be ≥ 1")
	case c.loginShare < 0 || c.loginShare > 1:
		return usageErr("-login-share must be 0..1")
	case !validMACPrefix(c.macPrefix):
		return usageErr("-mac-prefix must be 6 hex digits")
	case c.durationCap <= 0 || c.durationCap > 24*time.Hour:
		return usageErr("-duration-cap must be in (0, 24h]")
	case c.refreshEvery <= 0:
		return usageErr("-refresh-every must be > 0")
	}
	if c.sipAddr != "" {
		if _, _, err := net.SplitHostPort(c.sipAddr); err != nil {
			return usageErr("-sip: %v", err)
		}
	}
	if err := c.dhcp.validate(); err != nil {
		return err
	}
	return c.users.load()
}

func runStorm(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("storm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c stormConfig
	stormFlags(fs, &c)
	if err := fs.Parse(args); err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) { c.targetSet = c.targetSet || f.Name == "target" })
	if err := c.validate(); err != nil {
		return err
	}
	s, err := runStormCfg(ctx, c)
	if err != nil {
		return err
	}
	return finish(s, c.jsonPath, stdout)
}

// storm is one run's shared state.
type storm struct {
	cfg      stormConfig
	src      srcAddrs
	admin    *handset.Admin
	rec      *stats.Recorder
	start    time.Time
	devices  atomic.Int64
	users    atomic.Int64
	logins   atomic.Int64
	released chan struct{}
	dhcp     *stormDHCP // nil without -dhcp
}

func runStormCfg(ctx context.Context, c stormConfig) (stats.Summary, error) {
	src, err := newSrcAddrs(c.srcCIDR, c.target)
	if err != nil {
		return stats.Summary{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.durationCap)
	defer cancel()
	s := &storm{cfg: c, src: src, rec: stats.New(), released: make(chan struct{})}
	if c.dhcp.iface != "" {
		if s.dhcp, err = newStormDHCP(c.dhcp); err != nil {
			return stats.Summary{}, err
		}
		defer s.dhcp.close()
	}
	if c.loginShare > 0 {
		s.admin = handset.NewAdmin(c.admin, c.adminUser, c.adminPass)
	}
	s.start = time.Now()
	pace := newPacer(c.rate)
	sem := make(chan struct{}, c.concurrency)
	var wg sync.WaitGroup
	var flows sync.WaitGroup
	logins := 0
	for i := 0; i < c.n; i++ {
		if pace.wait(ctx, i) != nil {
			s.rec.Error("not_started_deadline")
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			s.rec.Error("not_started_deadline")
			continue
		}
		login := -1
		if chosen(i, c.loginShare) {
			login = logins
			logins++
		}
		wg.Add(1)
		flows.Add(1)
		go func(i, login int) {
			defer wg.Done()
			s.phone(ctx, i, login, func() { <-sem; flows.Done() })
		}(i, login)
	}
	flows.Wait()
	flowsDone := time.Since(s.start)
	if c.linger > 0 {
		select {
		case <-time.After(c.linger):
		case <-ctx.Done():
		}
	}
	close(s.released)
	wg.Wait()
	return s.summary(logins, flowsDone), nil
}

// summary adds the storm's counters and marks to the step table.
func (s *storm) summary(logins int, flowsDone time.Duration) stats.Summary {
	sum := s.rec.Summarize("storm", time.Since(s.start))
	sum.Counters["handsets"] = float64(s.cfg.n)
	sum.Counters["devices_registered"] = float64(s.devices.Load())
	sum.Counters["logins_planned"] = float64(logins)
	sum.Counters["user_lines_registered"] = float64(s.users.Load())
	sum.Counters["flows_done_s"] = flowsDone.Seconds()
	if m := sum.Marks["all_devices_registered"]; m > 0 {
		sum.Counters["device_registrations_per_s"] = float64(s.devices.Load()) / m
	}
	if s.dhcp != nil {
		s.dhcp.figures(sum.Counters)
	}
	if int(s.devices.Load()) < s.cfg.n {
		sum.Notes = append(sum.Notes, fmt.Sprintf("only %d of %d devices registered: all_devices_registered is the last of those", s.devices.Load(), s.cfg.n))
	}
	return sum
}

// phone runs one handset's life. done releases its concurrency slot as
// soon as the device is registered (or failed): -concurrency bounds the
// boot storm (DHCP included), not the hold or the login flow that follow.
func (s *storm) phone(ctx context.Context, i, login int, done func()) {
	mac := macFor(s.cfg.macPrefix, s.cfg.macStart+i)
	born := time.Now()
	local, base := s.src.addr(i), s.cfg.target
	if s.dhcp != nil {
		var err error
		if local, base, err = s.lease(ctx, mac); err != nil {
			done()
			s.rec.Error(handset.Kind(err))
			return
		}
	}
	h := handset.New(handset.Config{MAC: mac, LocalIP: local, ProvBase: base,
		SIPServer: s.cfg.sipAddr, Domain: s.cfg.domain, UserAgent: s.cfg.userAgent, Algorithm: s.cfg.alg,
		Expires: s.cfg.expires})
	defer h.Close()
	ua, acct, dev, err := s.boot(ctx, h, born)
	done()
	if err == nil {
		if login < 0 {
			err = s.holdRefresh(ctx, ua, dev)
		} else {
			err = s.loginFlow(ctx, h, ua, acct, login)
		}
	}
	if err != nil {
		s.rec.Error(handset.Kind(err))
		return
	}
	select {
	case <-s.released:
	case <-ctx.Done():
	}
}

// step times f as the named step.
func (s *storm) step(name string, f func() error) error {
	t := time.Now()
	err := f()
	if err == nil {
		s.rec.Observe(name, time.Since(t))
	}
	return err
}

// boot fetches the files and registers the device account; born is when
// the handset started (before its DHCP step, if any).
func (s *storm) boot(ctx context.Context, h *handset.Handset, born time.Time) (*sipua.UA, sipua.Account, *sipua.Registration, error) {
	if err := s.step("boot_fetch", func() error { _, err := h.Boot(ctx); return err }); err != nil {
		return nil, sipua.Account{}, nil, err
	}
	acct, server, err := h.Account(1)
	if err != nil {
		return nil, acct, nil, err
	}
	ua, err := h.UA(server)
	if err != nil {
		return nil, acct, nil, err
	}
	dev := sipua.NewRegistration(acct)
	if err := s.step("device_register", func() error { _, err := ua.Register(ctx, dev, s.cfg.expires); return err }); err != nil {
		return nil, acct, nil, fmt.Errorf("device register: %w", err)
	}
	s.rec.Observe("boot_to_registered", time.Since(born))
	s.rec.Mark("all_devices_registered", time.Since(s.start))
	s.devices.Add(1)
	return ua, acct, dev, nil
}

// holdRefresh holds reg for the hold time, refreshing it every refresh
// interval (a hold shorter than one interval just waits).
func (s *storm) holdRefresh(ctx context.Context, ua *sipua.UA, reg *sipua.Registration) error {
	n := int(s.cfg.hold / s.cfg.refreshEvery)
	wait := s.cfg.refreshEvery
	if n == 0 {
		wait = s.cfg.hold
	}
	for k := 0; k < max(n, 1); k++ {
		if err := sleep(ctx, wait); err != nil {
			return &handset.Error{Kind: "deadline", Err: err}
		}
		if n == 0 {
			return nil
		}
		if err := s.step("refresh", func() error { _, err := ua.Register(ctx, reg, s.cfg.expires); return err }); err != nil {
			return fmt.Errorf("refresh: %w", err)
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errStillAccepted = &handset.Error{Kind: "user_cred_still_accepted", Err: errors.New("REGISTER with the logged-out session's credentials got 200")}

// loginFlow logs user number login in, follows the check-sync, registers
// the user line, holds, logs out and checks the line is refused.
func (s *storm) loginFlow(ctx context.Context, h *handset.Handset, ua *sipua.UA, devAcct sipua.Account, login int) error {
	user, _ := s.cfg.users.user(login)
	ua.DrainEvents()
	t0 := time.Now()
	var id string
	if err := s.step("login_api", func() (err error) { id, err = s.admin.Login(ctx, h.MAC(), user); return err }); err != nil {
		return err
	}
	s.logins.Add(1)
	if err := s.waitNotify(ctx, ua, "login_to_notify", t0); err != nil {
		return err
	}
	if err := s.step("login_refetch", func() error { _, err := h.Reboot(ctx); return err }); err != nil {
		return err
	}
	uacct, _, err := h.Account(1)
	if err != nil {
		return err
	}
	if uacct.AuthUser == devAcct.AuthUser && uacct.User == devAcct.User {
		return &handset.Error{Kind: "user_line_not_rendered", Err: errors.New("reg.1 still carries the device account after login")}
	}
	ureg := sipua.NewRegistration(uacct)
	if err := s.step("user_register", func() error { _, err := ua.Register(ctx, ureg, s.cfg.expires); return err }); err != nil {
		return fmt.Errorf("user register: %w", err)
	}
	s.rec.Observe("login_to_user_registered", time.Since(t0))
	s.rec.Mark("all_users_registered", time.Since(s.start))
	s.users.Add(1)
	if err := s.holdRefresh(ctx, ua, ureg); err != nil {
		return err
	}
	ua.DrainEvents()
	t1 := time.Now()
	if err := s.step("logout_api", func() error { return s.admin.Logout(ctx, id) }); err != nil {
		return err
	}
	if err := s.waitNotify(ctx, ua, "logout_to_notify", t1); err != nil {
		return err
	}
	if s.cfg.verifyRelock {
		if err := s.relock(ctx, h, ua, devAcct); err != nil {
			return err
		}
	}
	return s.step("verify_refused", func() error {
		_, err := ua.Register(ctx, sipua.NewRegistration(uacct), s.cfg.expires)
		if err == nil {
			return errStillAccepted
		}
		if sipua.Refused(err) {
			return nil
		}
		return fmt.Errorf("verify refused: %w", err)
	})
}

func (s *storm) waitNotify(ctx context.Context, ua *sipua.UA, step string, since time.Time) error {
	wctx, cancel := context.WithTimeout(ctx, s.cfg.notifyWait)
	defer cancel()
	if _, err := ua.WaitEvent(wctx, "NOTIFY", "check-sync"); err != nil {
		return &handset.Error{Kind: step + "_timeout", Err: err}
	}
	s.rec.Observe(step, time.Since(since))
	return nil
}

// relock re-fetches after the logout check-sync and registers the device
// account again, as the phone does when its locked profile comes back.
func (s *storm) relock(ctx context.Context, h *handset.Handset, ua *sipua.UA, devAcct sipua.Account) error {
	if err := s.step("logout_refetch", func() error { _, err := h.Reboot(ctx); return err }); err != nil {
		return err
	}
	acct, _, err := h.Account(1)
	if err != nil {
		return err
	}
	if acct.AuthUser != devAcct.AuthUser {
		return &handset.Error{Kind: "user_line_still_rendered", Err: errors.New("reg.1 is not the device account after logout")}
	}
	return s.step("relock_register", func() error {
		_, err := ua.Register(ctx, sipua.NewRegistration(acct), s.cfg.expires)
		return err
	})
}
