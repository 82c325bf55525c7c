package daemon

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"hotdesk/dhcp"
	"hotdesk/prov"
	"hotdesk/prov/render"
	"hotdesk/sip"
)

// services are prov's domain services, shared by every door.
type services struct {
	events      *prov.Events
	credentials *prov.Credentials
	directory   *prov.Directory
	sessions    *prov.Sessions
	registrar   *registrar
	manager     *prov.Manager
	sip         *sip.Server
	callControl *prov.CallControl // click-to-dial; nil without SIP
	files       *prov.Files
	links       *prov.PasswordLinks
}

// buildServices builds prov's services over the opened store.
func (a *app) buildServices(ctx context.Context) error {
	s := &a.svc
	s.events = &prov.Events{}
	// Provisioning resolves TFTP sources through the book before DHCP fills it.
	a.book = newAddrBook()
	var err error
	if s.credentials, err = prov.NewCredentials(ctx, a.store); err != nil {
		return err
	}
	s.directory = prov.NewDirectory(a.store, s.events, time.Now)
	s.directory.SetParamCatalog(render.Catalog{})
	registerHasherMetrics(a.reg, s.directory.Hasher())
	lockout := prov.NewLockout(prov.LockoutConfig{}, time.Now)
	s.directory.SetLockout(lockout)
	s.sessions, err = prov.NewSessions(ctx, prov.SessionsDeps{
		Store: a.store, Credentials: s.credentials, Events: s.events, Logger: a.logger.With("room", "prov"),
		Registerer: a.reg, Now: a.sessionClock, Lockout: lockout, Hasher: s.directory.Hasher(),
		SyncEvent: render.SyncEvent,
	})
	if err != nil {
		return err
	}
	// Keep the credential index current whatever changed a user or device.
	s.events.Subscribe(func(ctx context.Context, ev prov.Event) {
		var err error
		switch ev.Kind {
		case prov.EventUserChanged, prov.EventCredentialsChanged:
			if ev.UserID != 0 {
				err = s.credentials.RefreshUser(ctx, ev.UserID)
			}
		case prov.EventDeviceChanged:
			switch {
			case ev.Device != nil:
				s.credentials.PutDevice(*ev.Device)
			case ev.DeviceID != 0:
				err = s.credentials.RefreshDevice(ctx, ev.DeviceID)
			}
		}
		if err != nil {
			a.logger.Error("credential index refresh failed", "kind", ev.Kind, "err", err)
		}
	})
	// An assigned managed desk phone logs its user in permanently, and gets
	// them back when a guest who logged in there logs out.
	assignedLogin := func(ctx context.Context, deviceID, userID int64) {
		d, err := a.store.GetDeviceByID(ctx, deviceID)
		if err != nil || d.Kind != prov.DeviceManaged || d.AssignedUserID != userID {
			return
		}
		u, err := a.store.GetUserByID(ctx, userID)
		if err == nil {
			_, err = s.sessions.Login(ctx, prov.LoginRequest{MAC: d.MAC, Username: u.Username, Door: prov.DoorAssigned,
				Verified: true, Actor: "system"})
		}
		if err != nil {
			a.logger.Warn("assigned phone: permanent login failed", "mac", d.MAC, "err", err)
		}
	}
	s.events.Subscribe(func(ctx context.Context, ev prov.Event) {
		switch {
		case ev.Remote:
			return // the node where it happened logs the user in
		case ev.Kind == prov.EventDeviceChanged && ev.Reason == "assigned" && ev.UserID != 0:
			assignedLogin(ctx, ev.DeviceID, ev.UserID)
		case ev.Kind == prov.EventSessionEnded && ev.Reason != prov.EndReplaced && ev.Reason != prov.EndUnassigned:
			d, err := a.store.GetDeviceByID(ctx, ev.DeviceID)
			if err != nil || d.AssignedUserID == 0 || d.AssignedUserID == ev.UserID {
				return
			}
			// Published under the sessions' lock: log in from outside it.
			go assignedLogin(context.WithoutCancel(ctx), d.ID, d.AssignedUserID)
		}
	})
	a.components = append(a.components, component{name: "sessions", proto: "internal",
		serve: func(ctx context.Context) error {
			defer s.sessions.Close()
			return s.sessions.RunSweeper(ctx, 30*time.Second)
		}})
	return nil
}

// bindSIP binds the SIP listeners and wires the registrar to the sessions.
func (a *app) bindSIP(ctx context.Context) error {
	srv, err := sip.New(a.cfg.SIP.Config, sip.Deps{
		Logger: a.logger.With("room", "sip"), Registerer: a.reg, Now: time.Now,
		Credentials: sipCredentials{a.svc.credentials}, Bindings: sipBindings{st: a.store, cluster: a.cluster, node: a.node},
		OnEvent: a.onSIPEvent, Elsewhere: a.elsewhere(),
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
	a.svc.sip = srv
	a.svc.registrar = &registrar{srv: srv, domain: a.cfg.SIP.Domain, logger: a.logger.With("room", "sip"),
		notifySlots: make(chan struct{}, 4096), ctx: ctx}
	a.svc.sessions.SetRegistrar(a.svc.registrar)
	a.svc.manager = prov.NewManager(prov.ManagerDeps{Store: a.store, Directory: a.svc.directory,
		Sessions: a.svc.sessions, Events: a.svc.events, Registrar: a.svc.registrar,
		Logger: a.logger.With("room", "api"), Now: time.Now, Params: render.Catalog{}})
	rules := callRules{prov.NewCalls(a.store, a.svc.credentials, a.svc.sessions, a.svc.manager, a.logger.With("room", "prov"))}
	if err := srv.EnableProxy(ctx, a.cfg.SIP.Proxy, sip.ProxyDeps{Logger: a.logger.With("room", "sip"),
		Registerer: a.reg, Now: time.Now, Policy: rules, Handling: rules, Features: rules, Recorder: rules,
		Emergency: rules}); err != nil {
		return fmt.Errorf("sip.proxy: %w", err)
	}
	a.svc.callControl = prov.NewCallControl(a.store, a.svc.registrar, sipCallControl{srv}, a.svc.manager,
		a.logger.With("room", "prov"))
	a.components = append(a.components, component{name: "sip", proto: "sip",
		serve: func(ctx context.Context) error { return srv.Serve(ctx, ls) }})
	if a.cluster != nil {
		a.bus = newClusterBus(a.cluster, a.node, a)
		a.components = append(a.components, component{name: "cluster", proto: "internal", serve: a.bus.serve})
	}
	return nil
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

// subscribeSync tells a phone of every change to its device: subscribed
// after the file namespace, so the rendered files it would fetch are
// dropped before the NOTIFY goes out, not after (a fast phone fetched the
// old file).
func (a *app) subscribeSync() {
	a.svc.events.Subscribe(func(ctx context.Context, ev prov.Event) {
		if ev.Kind != prov.EventDeviceChanged || ev.DeviceID == 0 {
			return
		}
		var d prov.Device
		var err error
		if ev.Device != nil {
			d = *ev.Device
		} else {
			d, err = a.store.GetDeviceByID(ctx, ev.DeviceID)
		}
		if err != nil {
			a.logger.Debug("check-sync after change not sent", "device", ev.DeviceID, "err", err)
			return
		}
		a.svc.sessions.SyncDevice(ctx, d, ev.Reboot)
	})
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
