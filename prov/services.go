package prov

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Deps are the collaborators prov's services are built over. Everything
// is given at construction: no service is wired later by a setter.
type Deps struct {
	Store Store
	// Credentials is the SIP credentials index (NewCredentials). The
	// caller builds it first because the SIP server authenticates against
	// it; the SIP server is then built before prov, so Registrar below is
	// the finished registrar and nothing in prov is set after construction.
	Credentials *Credentials
	// Registrar removes bindings and sends check-syncs (the SIP side).
	Registrar Registrar
	// CallController places click-to-dial calls (nil: no call control).
	CallController CallController
	// Renderer renders the device and user files; FilesConfig and Leases
	// configure the provisioning namespace.
	Renderer    Renderer
	FilesConfig FilesConfig
	Leases      AddrResolver
	// Links configures password links; Mailer sends them (nil: mail off).
	Links  LinksConfig
	Mailer Mailer
	// Params checks raw "<vendor>:<name>" overrides (nil: syntax only).
	Params ParamCatalog
	// SyncEvent names a vendor's check-sync NOTIFY event (nil: Polycom's).
	SyncEvent func(vendor string, reboot bool) string
	// Ready reports whether logins may be served (nil: always); see
	// SessionsDeps.Ready.
	Ready func() bool
	// Logger logs the desk services; AdminLogger the administration
	// rules (nil: Logger).
	Logger      *slog.Logger
	AdminLogger *slog.Logger
	Registerer  prometheus.Registerer
	// Now is the wall clock; SessionClock the login sessions' (tests move
	// it; nil: Now).
	Now          func() time.Time
	SessionClock func() time.Time
}

// Services are prov's domain services, built together so that each gets
// its collaborators as constructor arguments and the rules between them
// (rules.go) are subscribed in one stated order.
type Services struct {
	Events      *Events
	Credentials *Credentials
	Directory   *Directory
	Lockout     *Lockout
	Sessions    *Sessions
	Manager     *Manager
	Files       *Files
	Links       *PasswordLinks
	Calls       *Calls
	// CallControl is nil without a CallController.
	CallControl *CallControl
	logger      *slog.Logger
}

// New builds the domain services over d and subscribes their rules.
func New(ctx context.Context, d Deps) (*Services, error) {
	if d.Store == nil || d.Credentials == nil {
		return nil, errors.New("prov: store and credentials are required")
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.AdminLogger == nil {
		d.AdminLogger = d.Logger
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.SessionClock == nil {
		d.SessionClock = d.Now
	}
	s := &Services{Events: &Events{}, Credentials: d.Credentials, logger: d.Logger}
	s.Directory = NewDirectory(d.Store, s.Events, d.Now)
	s.Directory.params = d.Params
	// One lockout for logins and password changes, so guesses at either
	// door count together.
	s.Lockout = NewLockout(LockoutConfig{}, d.Now)
	s.Directory.lockout = s.Lockout
	var err error
	s.Sessions, err = NewSessions(ctx, SessionsDeps{Store: d.Store, Credentials: d.Credentials, Events: s.Events,
		Registrar: d.Registrar, Logger: d.Logger, Registerer: d.Registerer, Now: d.SessionClock, Lockout: s.Lockout,
		Hasher: s.Directory.Hasher(), SyncEvent: d.SyncEvent, Ready: d.Ready})
	if err != nil {
		return nil, err
	}
	s.Manager = NewManager(ManagerDeps{Store: d.Store, Directory: s.Directory, Sessions: s.Sessions,
		Events: s.Events, Registrar: d.Registrar, Logger: d.AdminLogger, Now: d.Now, Params: d.Params})
	if d.Renderer != nil {
		s.Files, err = newFiles(d.FilesConfig, FilesDeps{Store: d.Store, Events: s.Events, Renderer: d.Renderer,
			Leases: d.Leases, Logger: d.Logger, Registerer: d.Registerer, Now: d.Now,
			OnFetch: s.fetched, OnPassword: s.handsetPassword})
		if err != nil {
			return nil, err
		}
	}
	s.Calls = NewCalls(d.Store, d.Credentials, s.Sessions, s.Manager, d.Logger)
	if d.CallController != nil {
		s.CallControl = NewCallControl(d.Store, d.Registrar, d.CallController, s.Manager, d.Logger)
	}
	s.Links = NewPasswordLinks(d.Links, PasswordLinksDeps{Store: d.Store, Directory: s.Directory, Events: s.Events,
		Mailer: d.Mailer, Manager: s.Manager, Logger: d.Logger, Registerer: d.Registerer, Now: d.Now})
	s.subscribeRules(d.Store)
	return s, nil
}

// Close stops the background work of the services, in reverse order of
// construction: password links, then the files' pending writes. The
// sessions' timers stop with their sweeper (Sessions.Close).
func (s *Services) Close() error {
	err := s.Links.Close()
	if s.Files != nil {
		err = errors.Join(err, s.Files.Close())
	}
	return err
}

// fetched is told of every authorized read of an identified device's
// file: a digest-authenticated one shows the phone holds its credentials,
// a boot-file fetch is a reboot (or re-sync) signal.
func (s *Services) fetched(ctx context.Context, d Device, kind FileKind, req Request) {
	var err error
	if req.DeviceAuthenticated && d.Status == DeviceNotDeployed {
		err = s.Sessions.DeviceAuthenticated(ctx, d, req.Remote.String())
	}
	if kind == KindMaster && err == nil {
		remote := ""
		if req.Remote.IsValid() {
			remote = req.Remote.Addr().Unmap().String()
		}
		err = s.Sessions.BootFetched(ctx, d, time.Now(), remote, req.DeviceAuthenticated)
	}
	if err != nil {
		s.logger.Warn("boot-file fetch bookkeeping", "component", "files", "mac", d.MAC, "err", err)
	}
}

// handsetPassword applies a login password the user changed on the
// handset: the phone's session authenticated the upload as the user.
func (s *Services) handsetPassword(ctx context.Context, user, pw string) error {
	_, err := s.Directory.ChangePassword(ctx, PasswordChange{Username: user, New: pw, Confirm: pw, SkipOld: true})
	return err
}
