package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"strings"
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
	// relockNotifyWait bounds logout → check-sync NOTIFY, relockWait
	// logout → device account registered again.
	relockNotifyWait time.Duration
	relockWait       time.Duration
	splitShare       float64
	rebootShare      float64
	linger           time.Duration
	durationCap      time.Duration
	jsonPath         string
	cpuProfile       string
	// targetSet: -target was given, so a DHCP boot server does not replace it.
	targetSet bool
	// vendors is -vendor; macPrefixSet: -mac-prefix was given (every
	// vendor uses it), vendorClassSet: -dhcp-vendor-class was given.
	vendorSpec                   string
	vendors                      vendorMix
	macPrefixSet, vendorClassSet bool
	dhcp                         dhcpConfig
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
	fs.StringVar(&c.macPrefix, "mac-prefix", "0004f3", "first 6 hex digits of the simulated MACs (default: 0004f3 for Polycom, the vendor's OUI for the others)")
	fs.StringVar(&c.vendorSpec, "vendor", "polycom", "handset vendors, a mix with optional weights: polycom, yealink, cisco, e.g. \"polycom:2,yealink:1,cisco:1\" (handset i is the i-th of the repeating cycle)")
	fs.IntVar(&c.macStart, "mac-start", 1, "index of the first MAC")
	fs.StringVar(&c.users.csvPath, "users-csv", "", "CSV of users to log in (user[,password])")
	fs.StringVar(&c.users.list, "users", "", "users to log in: comma list (instead of a CSV)")
	fs.StringVar(&c.users.prefix, "user-prefix", "load", "user name prefix when no CSV: <prefix><index>")
	fs.IntVar(&c.users.start, "user-start", 1, "first user index")
	fs.StringVar(&c.userAgent, "user-agent", "", "HTTP User-Agent for every handset ({mac} is replaced; default: each vendor's own)")
	fs.StringVar(&c.alg, "alg", "auto", "digest algorithm to answer with: auto (prefer SHA-256), MD5, SHA-256")
	fs.StringVar(&c.srcCIDR, "src-cidr", "auto", "source addresses, one per handset: CIDR, auto (127.77.0.0/16 on loopback) or none; with -dhcp the leased address is used instead")
	fs.IntVar(&c.expires, "expires", 3600, "REGISTER expires")
	fs.DurationVar(&c.hold, "hold", 2*time.Second, "how long a logged-in user stays before logout")
	fs.DurationVar(&c.refreshEvery, "refresh-every", time.Second, "registration refresh interval during the hold")
	fs.DurationVar(&c.notifyWait, "notify-wait", 10*time.Second, "how long to wait for the login's check-sync NOTIFY")
	fs.DurationVar(&c.relockNotifyWait, "relock-notify-wait", 5*time.Second, "bound on logout → check-sync NOTIFY accepted (else relock_no_notify)")
	fs.DurationVar(&c.relockWait, "relock-wait", 15*time.Second, "bound on logout → phone registered with only its device account (else relock_timeout); also NOTIFY → user line registered at login")
	fs.Float64Var(&c.splitShare, "split-port-share", 0.1, "share of handsets (0..1) that send REGISTER from a UDP port other than their Contact port")
	fs.Float64Var(&c.rebootShare, "reboot-share", 0, "share of handsets (0..1) that reboot on every check-sync (Yealink sip.notify_reboot_enable=1) instead of applying the line diff")
	fs.DurationVar(&c.linger, "linger", 0, "keep every handset's socket open this long after its flow (answers NOTIFY)")
	fs.DurationVar(&c.durationCap, "duration-cap", 120*time.Second, "hard cap on the whole run")
	fs.StringVar(&c.jsonPath, "json", "", "write the summary as JSON to this file")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write the load tool's own CPU profile (pprof) over the storm to this file: it shares the machine with the daemon")
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
	case c.splitShare < 0 || c.splitShare > 1 || c.rebootShare < 0 || c.rebootShare > 1:
		return usageErr("-split-port-share and -reboot-share must be 0..1")
	case c.notifyWait <= 0 || c.relockNotifyWait <= 0 || c.relockWait < c.relockNotifyWait:
		return usageErr("-notify-wait and -relock-notify-wait must be > 0 and -relock-wait ≥ -relock-notify-wait")
	}
	if c.sipAddr != "" {
		if _, _, err := net.SplitHostPort(c.sipAddr); err != nil {
			return usageErr("-sip: %v", err)
		}
	}
	if err := c.dhcp.validate(); err != nil {
		return err
	}
	var err error
	if c.vendors, err = parseVendorMix(c.vendorSpec); err != nil {
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
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "target":
			c.targetSet = true
		case "mac-prefix":
			c.macPrefixSet = true
		case "dhcp-vendor-class":
			c.vendorClassSet = true
		}
	})
	if err := c.validate(); err != nil {
		return err
	}
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
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
	relocked atomic.Int64
	// sums of the handsets' own counters
	split, reboot, unregs, unregRefused, challenged, refused, misdirected atomic.Int64
	released                                                              chan struct{}
	// perVendor counts each vendor's handsets, devices and user lines
	// registered (its map is filled before the first handset starts).
	perVendor map[string]*vendorCounts
	dhcp      *stormDHCP // nil without -dhcp
}

func runStormCfg(ctx context.Context, c stormConfig) (stats.Summary, error) {
	src, err := newSrcAddrs(c.srcCIDR, c.target)
	if err != nil {
		return stats.Summary{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.durationCap)
	defer cancel()
	s := &storm{cfg: c, src: src, rec: stats.New(), released: make(chan struct{}), perVendor: map[string]*vendorCounts{}}
	for _, name := range c.vendors.names {
		s.perVendor[name] = &vendorCounts{}
	}
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
	logins, others := 0, 0
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
		// The split-port and reboot shares are spread over the login
		// handsets and the others alike.
		p := plan{login: -1}
		k := others
		if chosen(i, c.loginShare) {
			p.login, k = logins, logins
			logins++
		} else {
			others++
		}
		p.split, p.reboot = chosen(k, c.splitShare), chosen(k, c.rebootShare)
		wg.Add(1)
		flows.Add(1)
		go func(i int, p plan) {
			defer wg.Done()
			s.phone(ctx, i, p, func() { <-sem; flows.Done() })
		}(i, p)
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
	sum.Counters["logins_done"] = float64(s.logins.Load())
	sum.Counters["relocked"] = float64(s.relocked.Load())
	left := s.logins.Load() - s.relocked.Load()
	sum.Counters["phones_left_unlocked"] = float64(left)
	sum.Counters["split_port_handsets"] = float64(s.split.Load())
	sum.Counters["reboot_on_check_sync_handsets"] = float64(s.reboot.Load())
	sum.Counters["unregisters"] = float64(s.unregs.Load())
	sum.Counters["unregisters_refused_401_403"] = float64(s.unregRefused.Load())
	sum.Counters["notify_challenged"] = float64(s.challenged.Load())
	sum.Counters["notify_refused_bad_digest"] = float64(s.refused.Load())
	sum.Counters["requests_to_send_port_lost"] = float64(s.misdirected.Load())
	sum.Counters["flows_done_s"] = flowsDone.Seconds()
	if m := sum.Marks["all_devices_registered"]; m > 0 {
		sum.Counters["device_registrations_per_s"] = float64(s.devices.Load()) / m
	}
	if s.dhcp != nil {
		s.dhcp.figures(sum.Counters)
	}
	if len(s.cfg.vendors.names) > 1 {
		for name, vc := range s.perVendor {
			sum.Counters["handsets_"+name] = float64(vc.handsets.Load())
			sum.Counters["devices_registered_"+name] = float64(vc.devices.Load())
			sum.Counters["user_lines_registered_"+name] = float64(vc.users.Load())
		}
	}
	if left > 0 {
		sum.Notes = append(sum.Notes, fmt.Sprintf("%d of %d logged-in phones were not relocked after logout (must be 0)", left, s.logins.Load()))
	}
	if int(s.devices.Load()) < s.cfg.n {
		sum.Notes = append(sum.Notes, fmt.Sprintf("only %d of %d devices registered: all_devices_registered is the last of those", s.devices.Load(), s.cfg.n))
	}
	return sum
}

// vendorCounts are one vendor's figures.
type vendorCounts struct{ handsets, devices, users atomic.Int64 }

// plan is what one handset does: log in user number login (-1: none),
// send from a split port, reboot on check-sync.
type plan struct {
	login         int
	split, reboot bool
}

// phone runs one handset's life. done releases its concurrency slot as
// soon as the device is registered (or failed): -concurrency bounds the
// boot storm (DHCP included), not the hold or the login flow that follow.
func (s *storm) phone(ctx context.Context, i int, p plan, done func()) {
	v := s.cfg.vendors.of(i)
	mac := macFor(s.cfg.macPrefixOf(v), s.cfg.macStart+i)
	born := time.Now()
	local, base := s.src.addr(i), s.cfg.target
	s.perVendor[v.Name].handsets.Add(1)
	if s.dhcp != nil {
		class := v.VendorClass
		if s.cfg.vendorClassSet {
			class = s.cfg.dhcp.vendorClass
		}
		var err error
		if local, base, err = s.lease(ctx, mac, class); err != nil {
			done()
			s.rec.Error(handset.Kind(err))
			return
		}
	}
	h := handset.New(handset.Config{MAC: mac, Vendor: v, LocalIP: local, ProvBase: base,
		SIPServer: s.cfg.sipAddr, Domain: s.cfg.domain, UserAgent: s.cfg.userAgent, Algorithm: s.cfg.alg,
		Expires: s.cfg.expires, RebootOnCheckSync: p.reboot, SplitPorts: p.split})
	defer h.Close()
	if p.split {
		s.split.Add(1)
	}
	if p.reboot {
		s.reboot.Add(1)
	}
	defer s.addStats(h)
	dev, err := s.boot(ctx, h, born)
	done()
	if err == nil {
		if p.login < 0 {
			err = s.holdRefresh(ctx, h)
		} else {
			err = s.loginFlow(ctx, h, dev, p.login)
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

func (s *storm) addStats(h *handset.Handset) {
	st := h.Stats()
	s.unregs.Add(st.Unregisters)
	s.unregRefused.Add(st.UnregRefused)
	s.challenged.Add(st.SIP.Challenged)
	s.refused.Add(st.SIP.Refused)
	s.misdirected.Add(st.SIP.Misdirected)
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

// boot starts the handset (files, then every configured line registered)
// and returns its device account (reg.1); born is when the handset
// started (before its DHCP step, if any).
func (s *storm) boot(ctx context.Context, h *handset.Handset, born time.Time) (sipua.Account, error) {
	ev, err := h.Start(ctx)
	if ev.Fetch > 0 {
		s.rec.Observe("boot_fetch", ev.Fetch)
	}
	if err != nil {
		if ev.Fetch > 0 {
			return sipua.Account{}, fmt.Errorf("device register: %w", err)
		}
		return sipua.Account{}, err
	}
	dev, _, err := h.Account(1)
	if err != nil {
		return dev, err
	}
	s.rec.Observe("device_register", ev.Register)
	s.rec.Observe("boot_to_registered", time.Since(born))
	s.rec.Mark("all_devices_registered", time.Since(s.start))
	s.devices.Add(1)
	s.perVendor[h.Vendor().Name].devices.Add(1)
	return dev, nil
}

// holdRefresh holds for the hold time, refreshing the handset's lines
// every refresh interval (a hold shorter than one interval just waits).
func (s *storm) holdRefresh(ctx context.Context, h *handset.Handset) error {
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
		if err := s.step("refresh", func() error { return h.Refresh(ctx) }); err != nil {
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

// loginFlow logs user number login in, follows the handset through the
// check-sync to its user line, holds, logs out, checks the handset is
// relocked (NOTIFY, re-fetch, only the device account registered) and
// that the session's credentials are refused.
func (s *storm) loginFlow(ctx context.Context, h *handset.Handset, dev sipua.Account, login int) error {
	user, _ := s.cfg.users.user(login)
	h.DrainEvents()
	t0 := time.Now()
	var id string
	if err := s.step("login_api", func() (err error) { id, err = s.admin.Login(ctx, h.MAC(), user); return err }); err != nil {
		return err
	}
	s.logins.Add(1)
	f := follow(ctx, h, t0.Add(s.cfg.notifyWait), func(n handset.Event) time.Time { return n.At.Add(s.cfg.relockWait) })
	if err := f.err("login_to_notify_timeout", "login_notify_refused", "login_apply_timeout"); err != nil {
		return err
	}
	s.rec.Observe("login_to_notify", f.notify.At.Sub(t0))
	s.rec.Observe("login_refetch", f.applied.Fetch)
	if f.applied.Err != nil {
		return f.applied.Err
	}
	s.rec.Observe("user_register", f.applied.Register)
	lines := f.applied.Lines
	if len(lines) == 0 || lines[0].Index != 1 || sameAccount(lines[0].Acct, dev) {
		return &handset.Error{Kind: "user_line_not_rendered", Err: errors.New("reg.1 still carries the device account after login")}
	}
	uacct := lines[0].Acct
	s.rec.Observe("login_to_user_registered", f.applied.At.Sub(t0))
	s.rec.Mark("all_users_registered", time.Since(s.start))
	s.users.Add(1)
	s.perVendor[h.Vendor().Name].users.Add(1)
	if err := s.holdRefresh(ctx, h); err != nil {
		return err
	}
	h.DrainEvents()
	t1 := time.Now()
	if err := s.step("logout_api", func() error { return s.admin.Logout(ctx, id) }); err != nil {
		return err
	}
	if err := s.relock(ctx, h, dev, t1); err != nil {
		return err
	}
	return s.step("verify_refused", func() error {
		_, err := h.UA().Register(ctx, sipua.NewRegistration(uacct), s.cfg.expires)
		if err == nil {
			return errStillAccepted
		}
		if sipua.Refused(err) {
			return nil
		}
		return fmt.Errorf("verify refused: %w", err)
	})
}

// relock checks what a logout must do to the phone: within
// -relock-notify-wait it accepts a check-sync NOTIFY (challenged and
// answered with the credentials of the line it was addressed to), and
// within -relock-wait it has re-fetched its files and is registered with
// only its device account again.
func (s *storm) relock(ctx context.Context, h *handset.Handset, dev sipua.Account, t1 time.Time) error {
	f := follow(ctx, h, t1.Add(s.cfg.relockNotifyWait), func(handset.Event) time.Time { return t1.Add(s.cfg.relockWait) })
	if err := f.err("relock_no_notify", "relock_notify_refused", "relock_timeout"); err != nil {
		return err
	}
	s.rec.Observe("logout_to_notify", f.notify.At.Sub(t1))
	s.rec.Observe("logout_refetch", f.applied.Fetch)
	if err := f.applied.Err; err != nil {
		return &handset.Error{Kind: "relock_" + handset.Kind(err), Err: err}
	}
	s.rec.Observe("relock_register", f.applied.Register)
	lines := f.applied.Lines
	if len(lines) != 1 || lines[0].Index != 1 || !sameAccount(lines[0].Acct, dev) || !lines[0].Registered {
		return &handset.Error{Kind: "relock_not_locked", Err: fmt.Errorf("after logout the phone has lines %s, want only the device account %s", describe(lines), dev.User)}
	}
	s.rec.Observe("logout_to_relocked", f.applied.At.Sub(t1))
	s.relocked.Add(1)
	return nil
}

func sameAccount(a, b sipua.Account) bool { return a.User == b.User && a.AuthUser == b.AuthUser }

func describe(lines []handset.Line) string {
	var b strings.Builder
	b.WriteString("[")
	for i, l := range lines {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%d:%s", l.Index, l.Acct.User)
		if !l.Registered {
			b.WriteString("(unregistered)")
		}
	}
	b.WriteString("]")
	return b.String()
}

// followed is what a handset did after an action: the check-sync NOTIFY
// it accepted and the re-fetch that followed.
type followed struct {
	notify, applied       handset.Event
	gotNotify, gotApplied bool
	refused               bool
}

// follow waits for the handset's next accepted check-sync NOTIFY until
// notifyBy, then for the end of its re-fetch until appliedBy(notify).
func follow(ctx context.Context, h *handset.Handset, notifyBy time.Time, appliedBy func(handset.Event) time.Time) followed {
	var f followed
	wait := func(by time.Time, want handset.EventKind) (handset.Event, bool) {
		wctx, cancel := context.WithDeadline(ctx, by)
		defer cancel()
		for {
			select {
			case ev := <-h.Events():
				if ev.Kind == handset.EvNotifyRefused {
					f.refused = true
				}
				if ev.Kind == want {
					return ev, true
				}
			case <-wctx.Done():
				return handset.Event{}, false
			}
		}
	}
	if f.notify, f.gotNotify = wait(notifyBy, handset.EvNotify); f.gotNotify {
		f.applied, f.gotApplied = wait(appliedBy(f.notify), handset.EvApplied)
	}
	return f
}

// err names what is missing: no NOTIFY (or only refused ones), or no end
// of the re-fetch.
func (f followed) err(noNotify, refused, noApply string) error {
	switch {
	case !f.gotNotify && f.refused:
		return &handset.Error{Kind: refused, Err: errors.New("the phone refused the NOTIFY's digest credentials")}
	case !f.gotNotify:
		return &handset.Error{Kind: noNotify, Err: errors.New("no check-sync NOTIFY reached the phone")}
	case !f.gotApplied:
		return &handset.Error{Kind: noApply, Err: errors.New("the phone's re-fetch after check-sync did not end in time")}
	}
	return nil
}
