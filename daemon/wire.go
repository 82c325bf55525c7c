package daemon

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"hotdesk/dhcp"
	"hotdesk/prov"
	"hotdesk/prov/auth"
	"hotdesk/prov/files"
	"hotdesk/prov/portal"
	"hotdesk/prov/render"
	"hotdesk/sip"
	"hotdesk/sip/media"
	"hotdesk/sip/media/vm"
)

// recordTap records the bridged calls of users whose calls are recorded.
func (a *app) recordTap(ctx context.Context, recs *prov.Recordings) func(media.CallInfo) media.Tap {
	ctx = context.WithoutCancel(ctx)
	return func(c media.CallInfo) media.Tap {
		var (
			u  prov.User
			ok bool
		)
		if c.Desk {
			// A call between phones: the recorded user's audio goes left,
			// as a softphone's does, and the peer is the other party.
			var incoming bool
			if u, incoming, ok = recs.RecordsCall(ctx, c.Owner, c.Peer); ok && incoming {
				c.Incoming, c.Peer = true, c.From
			}
		} else {
			u, ok = recs.Records(ctx, c.Owner, c.Peer)
		}
		if !ok {
			return nil
		}
		name, path := recs.NewFile(u)
		start := time.Now()
		w, err := media.NewWAVTap(path, recs.MaxBytes(), func(n int64, secs float64, err error) {
			if err != nil {
				a.logger.Error("recording failed", "room", "sip", "err", err)
			}
			rec := prov.Recording{UserID: u.ID, CallID: c.CallID, Peer: c.Peer, Incoming: c.Incoming, Start: start,
				DurationMS: int64(secs * 1000), Bytes: n, File: name}
			if err := recs.Finished(ctx, rec); err != nil {
				a.logger.Error("recording not kept", "room", "prov", "err", err)
			}
		})
		if err != nil {
			a.logger.Error("recording not started", "room", "sip", "err", err)
			return nil
		}
		if c.Desk && c.Incoming {
			return swappedTap{w}
		}
		return w
	}
}

// swappedTap puts a relayed call's callee (the recorded user) on the left.
type swappedTap struct{ media.Tap }

func (s swappedTap) FromBrowser(p []byte) { s.Tap.FromPhone(p) }
func (s swappedTap) FromPhone(p []byte)   { s.Tap.FromBrowser(p) }

// recordRule tells the proxy which calls between phones are recorded.
type recordRule struct{ recs *prov.Recordings }

func (r recordRule) RecordsCall(ctx context.Context, caller sip.Owner, dialled string) bool {
	_, _, ok := r.recs.RecordsCall(ctx, string(caller.Kind)+":"+caller.ID, dialled)
	return ok
}

// softphoneSIP tells the portal's softphone where to register: ws_url, or
// the first ws/wss listener on the host the portal was reached at (its
// bound port, so a ":0" in tests works).
func (a *app) softphoneSIP() portal.SoftphoneSIP {
	w := a.cfg.SIP.WebRTC
	out := portal.SoftphoneSIP{WSURL: w.WSURL, Domain: a.cfg.SIP.Domain}
	for _, s := range w.ICEServers {
		out.ICEServers = append(out.ICEServers, portal.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	scheme, _ := a.cfg.SIP.wsListener()
	if out.WSURL == "" && scheme != "" && len(a.addrs.SIPWS) > 0 {
		_, port, _ := net.SplitHostPort(a.addrs.SIPWS[0])
		out.WSURL = scheme + "://{host}:" + port
	}
	return out
}

// services are prov's domain services (prov.New), shared by every door,
// with the SIP server and the registrar adapter over it.
type services struct {
	events      *prov.Events
	credentials *prov.Credentials
	directory   *prov.Directory
	sessions    *prov.Sessions
	registrar   *registrar
	manager     *prov.Manager
	sip         *sip.Server
	callControl *prov.CallControl // click-to-dial
	softphone   *prov.Softphone   // the portal softphone's credentials
	bridge      *media.Bridge     // its media (nil without a ws:// listener)
	recordings  *prov.Recordings  // the bridge's call recordings (nil: none)
	// mediaSweeper keeps recording and voicemail files and rows in step
	// (nil: neither is on).
	mediaSweeper *prov.MediaSweeper
	files        *files.Files
	links        *prov.PasswordLinks
	voicemails   *prov.Voicemails // nil: voicemail off
}

// buildServices builds prov's services over the opened store once the SIP
// server and the renderer exist, and the daemon-side wiring around them:
// the sessions' sweeper, the proxy's call rules and the cluster relay.
func (a *app) buildServices(ctx context.Context, fc files.Config, rend files.Renderer) error {
	mailer, err := a.buildMailer()
	if err != nil {
		return err
	}
	// The rendered-files cache comes first: prov.New subscribes it among its
	// rules (before check-sync), and the namespace built after prov reads
	// through it and tells the desk services of fetches.
	cache := files.NewCache(fc.CacheTTL, time.Now)
	ps, err := prov.New(ctx, prov.Deps{Store: a.store, Credentials: a.svc.credentials, Registrar: a.svc.registrar,
		CallController: sipCallControl{a.svc.sip}, FileCache: cache,
		Links: linksConfig(a.cfg.Mail), Mailer: mailer, Params: render.Catalog{}, SyncEvent: render.SyncEvent,
		Ready: a.readyFunc(), Node: a.node, SIPRealm: a.cfg.SIP.Domain,
		Logger: a.logger.With("room", "prov"), AdminLogger: a.logger.With("room", "api"), Registerer: a.reg,
		Now: time.Now, SessionClock: a.sessionClock})
	if err != nil {
		return err
	}
	// Closed before the store: forgot-password requests still being worked
	// and the files' pending last-seen writes use it.
	a.closers = append(a.closers, ps.Close)
	fs, err := files.New(fc, files.Deps{Store: a.store, Events: ps.Events, Renderer: rend, Leases: a.book,
		Cache: cache, Desk: ps, Logger: a.logger.With("room", "prov"), Registerer: a.reg, Now: time.Now})
	if err != nil {
		return err
	}
	a.closers = append(a.closers, fs.Close)
	s := &a.svc
	s.events, s.directory, s.sessions, s.manager = ps.Events, ps.Directory, ps.Sessions, ps.Manager
	s.files, s.links, s.callControl, s.softphone = fs, ps.Links, ps.CallControl, ps.Softphone
	registerHasherMetrics(a.reg, s.directory.Hasher())
	a.shareLockout("users", ps.Lockout)
	a.shareLockout("claim", ps.Manager.ClaimLockout())
	a.components = append(a.components, component{name: "sessions", proto: "internal",
		serve: func(ctx context.Context) error {
			defer s.sessions.Close()
			return s.sessions.RunSweeper(ctx, 30*time.Second)
		}})
	vc := a.cfg.SIP.Voicemail
	rules := callRules{c: ps.Calls, voicemail: vc.Enabled, noAnswerSeconds: vc.NoAnswerSeconds}
	if a.cluster != nil {
		// Nodes sharing the store keep audio there too, so any node plays
		// what another recorded (see prov.SharedAudio).
		a.sharedAudio = prov.NewSharedAudio(a.store, a.logger.With("room", "prov"), a.reg, time.Now)
	}
	if scheme, _ := a.cfg.SIP.wsListener(); scheme != "" {
		w := a.cfg.SIP.WebRTC
		recs, err := prov.NewRecordings(prov.RecordingsConfig{Dir: filepath.Join(a.cfg.DataDir, "recordings"),
			Retention: w.RecordingRetention, MaxBytes: w.RecordingMaxBytes, Numbers: w.RecordNumbers,
			Shared: a.sharedAudio}, a.store, s.manager, a.logger.With("room", "prov"), time.Now)
		if err != nil {
			return err
		}
		s.recordings = recs
		b, err := media.New(media.Config{RTPAddress: w.RTPAddress, ICEServers: w.ICEServers, PublicIPs: w.PublicIPs,
			Loopback: w.Loopback, MaxSessions: w.MaxSessions, Tap: a.recordTap(ctx, recs)}, a.logger.With("room", "sip"), a.reg)
		if err != nil {
			return fmt.Errorf("sip.webrtc: %w", err)
		}
		s.bridge = b
		a.closers = append(a.closers, func() error { b.Close(); return nil })
	}
	deps := sip.ProxyDeps{Logger: a.logger.With("room", "sip"),
		Registerer: a.reg, Now: time.Now, Policy: rules, Handling: rules, Features: rules, Recorder: rules,
		Emergency: rules, Trunks: rules, Media: s.bridge}
	if s.recordings != nil {
		deps.Recording = recordRule{s.recordings}
	}
	if a.cluster != nil && a.cfg.Cluster.Secret != "" {
		deps.Handoff = sip.Handoff{Node: a.node, Secret: []byte(a.cfg.Cluster.Secret)}
	}
	if vc.Enabled {
		if err := a.buildVoicemail(ctx, &deps, rules); err != nil {
			return err
		}
	}
	if s.recordings != nil || s.voicemails != nil {
		// Files without rows and rows without files (a crash mid-write):
		// repaired before anything is served, then hourly. A cluster
		// node's files are on its own disk: a row without a file here
		// may be another node's, and is kept.
		m := prov.NewMediaSweeper(s.recordings, s.voicemails, 0, a.cluster != nil, a.logger.With("room", "prov"), a.reg)
		if err := m.Sweep(ctx); err != nil {
			a.logger.Error("media sweep at start-up failed", "room", "prov", "err", err)
		}
		s.mediaSweeper = m
		a.components = append(a.components, component{name: "media-sweep", proto: "internal",
			serve: func(ctx context.Context) error { return m.Run(ctx, time.Hour) }})
	}
	if err := s.sip.EnableProxy(ctx, a.cfg.SIP.Proxy, deps); err != nil {
		return fmt.Errorf("sip.proxy: %w", err)
	}
	if a.cluster != nil {
		// Subscribed after prov's rules: a change is applied here before it
		// is relayed.
		a.bus = newClusterBus(a.cluster, a.node, a)
		a.components = append(a.components, component{name: "cluster", proto: "internal", serve: a.bus.serve},
			component{name: "heartbeat", proto: "internal", serve: func(ctx context.Context) error {
				return heartbeat(ctx, a.store, a.node, time.Now, a.bus.failed.WithLabelValues("heartbeat"), a.logger)
			}})
	}
	return nil
}

// bindSIP builds the SIP server and binds its listeners. It comes before
// prov: the server needs only the credentials index (built here) and
// reaches the sessions through onSIPEvent once serving, so prov.New is
// given the finished registrar instead of having one set later.
func (a *app) bindSIP(ctx context.Context) error {
	// Provisioning resolves TFTP sources through the book before DHCP fills it.
	a.book = newAddrBook()
	creds, err := prov.NewCredentials(ctx, a.store)
	if err != nil {
		return err
	}
	a.svc.credentials = creds
	srv, err := sip.New(a.cfg.SIP.Config, sip.Deps{
		Logger: a.logger.With("room", "sip"), Registerer: a.reg, Now: time.Now,
		Credentials: sipCredentials{creds}, Bindings: sipBindings{st: a.store, cluster: a.cluster, node: a.node},
		OnEvent: a.onSIPEvent, Elsewhere: a.elsewhere(), Ready: a.readyFunc(), AuthRelay: a.sipAuthRelay(),
	})
	if err != nil {
		return err
	}
	ls, err := sip.Listen(a.cfg.SIP.Config)
	if err != nil {
		return fmt.Errorf("sip.listen: %w", err)
	}
	a.closers = append(a.closers, func() error { ls.Close(); return nil })
	for _, c := range ls.UDP {
		a.addrs.SIPUDP = append(a.addrs.SIPUDP, c.LocalAddr().String())
	}
	for _, l := range ls.TCP {
		a.addrs.SIPTCP = append(a.addrs.SIPTCP, l.Addr().String())
	}
	for _, l := range ls.TLS {
		a.addrs.SIPTLS = append(a.addrs.SIPTLS, l.Addr().String())
	}
	for _, l := range append(append([]net.Listener{}, ls.WS...), ls.WSS...) {
		a.addrs.SIPWS = append(a.addrs.SIPWS, l.Addr().String())
	}
	a.svc.sip = srv
	a.svc.registrar = &registrar{srv: srv, domain: a.cfg.SIP.Domain, logger: a.logger.With("room", "sip"),
		notifySlots: make(chan struct{}, 4096), ctx: ctx}
	a.components = append(a.components, component{name: "sip", proto: "sip",
		serve: func(ctx context.Context) error { return srv.Serve(ctx, ls) }})
	return nil
}

// sipAuthRelay hands SIP authentication results to the cluster bus (nil
// on one node). The bus is built after the registrar, before serving.
func (a *app) sipAuthRelay() func(username, srcIP string, failed bool) {
	if a.cluster == nil {
		return nil
	}
	return func(username, srcIP string, failed bool) {
		if a.bus != nil {
			a.bus.sipAuthResult(username, srcIP, failed)
		}
	}
}

// shareLockout makes a prov lockout count the other nodes' results too
// (no-op on one node); the bus replays theirs by name.
func (a *app) shareLockout(name string, l *auth.Lockout) {
	if a.cluster == nil || l == nil {
		return
	}
	if a.lockouts == nil {
		a.lockouts = map[string]*auth.Lockout{}
	}
	a.lockouts[name] = l
	l.SetRelay(func(key string, threshold int, failed bool) {
		if a.bus != nil {
			a.bus.tryQueue(busMsg{Kind: kindAuth, Lockout: name, Name: key, Thresh: threshold, Failed: failed})
		}
	})
}

// readyFunc is the cluster gate's Ready (nil on one node: always ready).
func (a *app) readyFunc() func() bool {
	if a.gate == nil {
		return nil
	}
	return a.gate.Ready
}

// elsewhere is the shared location on a cluster (nil on one node).
func (a *app) elsewhere() sip.Elsewhere {
	if a.cluster == nil {
		return nil
	}
	return clusterLocation{cs: a.cluster, node: a.node, now: time.Now, log: a.logger}
}

// onSIPEvent turns registrar events into session and device facts. It runs
// on the registrar's event goroutine, never on the SIP path.
func (a *app) onSIPEvent(ev sip.Event) {
	var change prov.BindingChange
	switch ev.Kind {
	case sip.Registered:
		change = prov.LineRegistered
		if a.bus != nil {
			a.bus.bindingTaken(ev.Binding)
		}
	case sip.Refreshed:
		change = prov.LineRefreshed
	case sip.Unregistered:
		change = prov.LineUnregistered
	case sip.Expired:
		change = prov.LineExpired
	default:
		return // Unbound: the logout that unbound it acts already
	}
	if err := a.svc.sessions.BindingChanged(context.Background(), change, provBinding(ev.Binding), ev.At); err != nil {
		a.logger.Warn("registration bookkeeping", "component", "sessions", "aor", ev.Binding.AOR, "err", err)
	}
}

// bindDHCP binds the DHCP socket when dhcp.mode is server or inform.
func (a *app) bindDHCP(ctx context.Context) error {
	leases, err := a.store.ListLeases(ctx)
	if err != nil {
		return fmt.Errorf("dhcp: leases: %w", err)
	}
	for _, l := range leases {
		if ip, err := netip.ParseAddr(l.IP); err == nil {
			a.book.put(ip, l.MAC, l.VendorClass)
		}
	}
	if a.cfg.DHCP.Mode == dhcp.ModeOff || a.cfg.DHCP.Mode == "" {
		return nil
	}
	logger := a.logger.With("room", "dhcp")
	srv, err := dhcp.New(a.cfg.DHCP, dhcp.Deps{
		Logger: logger, Registerer: a.reg, Now: time.Now,
		Leases: dhcpLeases{a.store}, Observer: dhcpObserver{book: a.book},
		BootServer: bootServer(a.cfg, a.addrs),
	})
	if err != nil {
		return err
	}
	conn, err := dhcp.Listen(a.cfg.DHCP)
	if err != nil {
		return fmt.Errorf("dhcp.listen: %w", err)
	}
	a.closers = append(a.closers, conn.Close)
	a.addrs.DHCP = conn.LocalAddr().String()
	a.components = append(a.components, component{name: "dhcp", proto: "dhcp",
		serve: func(ctx context.Context) error { return srv.Serve(ctx, conn) }})
	return nil
}

// buildVoicemail builds the mailboxes and binds the voicemail server that
// the proxy sends unanswered calls, the mailbox code and call park to.
func (a *app) buildVoicemail(ctx context.Context, deps *sip.ProxyDeps, rules callRules) error {
	vc := a.cfg.SIP.Voicemail
	dir := filepath.Join(a.cfg.DataDir, "voicemail")
	s := &a.svc
	s.voicemails = prov.NewVoicemails(a.store, s.credentials, prov.VoicemailConfig{Dir: dir,
		MaxUserBytes: vc.MaxMailboxMB << 20, MaxTotalBytes: vc.MaxTotalMB << 20,
		Retention: time.Duration(vc.RetentionDays) * 24 * time.Hour, Shared: a.sharedAudio,
		CheckGreeting: func(b []byte) error {
			if len(b) > vm.MaxWAVBytes {
				return fmt.Errorf("%d bytes: at most %d", len(b), vm.MaxWAVBytes)
			}
			_, err := vm.ReadWAV(bytes.NewReader(b))
			return err
		}}, s.sip, a.logger.With("room", "sip"), a.reg, time.Now)
	s.voicemails.Follow(s.events) // a disabled user's mailbox goes with them
	vdeps := vm.Deps{Logger: a.logger.With("room", "sip"), Registerer: a.reg, Mailbox: mailboxes{s.voicemails}}
	if a.cluster != nil {
		// Park slots are shared: this node's rows left from before its
		// (re)start name calls it lost.
		ps := parkSlots{st: a.store, node: a.node, addr: parkAddr(a.addrs.SIPUDP, vc.MediaAddress), now: time.Now,
			logger: a.logger.With("room", "sip", "component", "park")}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		if err := a.store.ReleaseNodeParkSlots(rctx, a.node); err != nil {
			a.logger.Error("park slots of this node left from before its start", "room", "sip", "err", err)
		}
		cancel()
		vdeps.Slots, deps.ParkHolders = ps, ps
	}
	srv, err := vm.New(vm.Config{Listen: vc.Listen, MediaAddr: netip.MustParseAddr(vc.MediaAddress), Dir: dir,
		MaxMessage: time.Duration(vc.MaxMessage) * time.Second}, vdeps)
	if err != nil {
		return fmt.Errorf("sip.voicemail: %w", err)
	}
	a.closers = append(a.closers, func() error { srv.Close(); return nil })
	a.addrs.Voicemail = srv.Addr()
	deps.Mailboxes, deps.VoicemailAddr = mailboxes{s.voicemails}, srv.Addr()
	deps.Parking = rules // park slots are the sites' codes
	a.components = append(a.components, component{name: "voicemail", proto: "sip", serve: srv.Serve},
		component{name: "voicemail-retention", proto: "internal",
			serve: func(ctx context.Context) error { return s.voicemails.RunSweeper(ctx, time.Hour) }})
	return nil
}
