package prov

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/prov/auth"
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
	// FileCache drops the rendered provisioning files a change makes
	// stale (prov/files' Cache; nil: no file namespace).
	FileCache FileCache
	// Links configures password links; Mailer sends them (nil: mail off).
	Links  LinksConfig
	Mailer Mailer
	// Params checks raw "<vendor>:<name>" overrides (nil: syntax only).
	Params ParamCatalog
	// SyncEvent names a vendor's check-sync NOTIFY event (nil: Polycom's).
	SyncEvent func(vendor string, reboot bool) string
	// SIPRealm is the SIP domain: the digest realm of the browser
	// softphone's stored HA1s.
	SIPRealm string
	// Ready reports whether logins may be served (nil: always); see
	// SessionsDeps.Ready.
	Ready func() bool
	// Node is this node's name (cluster.node); see SessionsDeps.Node.
	Node string
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
	Lockout     *auth.Lockout
	Sessions    *Sessions
	Manager     *Manager
	Links       *PasswordLinks
	Calls       *Calls
	// CallControl is nil without a CallController.
	CallControl *CallControl
	// Softphone mints the portal softphone's credentials.
	Softphone *Softphone
	fileCache FileCache
	logger    *slog.Logger
}

// FileCache is the provisioning namespace's cache of rendered files, as
// the rules see it: told of every change, in the rules' order (rules.go),
// it drops what a device would now render differently.
type FileCache interface {
	OnEvent(ctx context.Context, ev Event)
}

// Fetch is an authorized read of an identified device's provisioning
// file, as the file namespace (prov/files) reports it to Fetched.
type Fetch struct {
	// Boot: the vendor's boot file, a reboot (or re-sync) signal.
	Boot bool
	// DeviceAuthenticated: the device presented its digest credentials.
	DeviceAuthenticated bool
	// EMSignedOut: a phone that signs users in itself (Cisco MPP
	// Extension Mobility) fetched its boot file with its own credentials
	// and no session token: it has signed the user out.
	EMSignedOut bool
	Remote      netip.AddrPort
	// Active, when set, is the device's active session as the fetch reads
	// it (ActiveOn's answer), read once and shared with the file namespace's
	// own uses; nil reads it from the store.
	Active func(context.Context) (Session, bool, error)
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
	s := &Services{Events: &Events{}, Credentials: d.Credentials, fileCache: d.FileCache, logger: d.Logger}
	s.Directory = NewDirectory(d.Store, s.Events, d.Now)
	s.Directory.params = d.Params
	// One lockout for logins and password changes, so guesses at either
	// door count together.
	s.Lockout = auth.NewLockout(auth.LockoutConfig{}, d.Now)
	s.Directory.lockout = s.Lockout
	var err error
	ac, _ := d.FileCache.(ActiveCache)
	s.Sessions, err = NewSessions(ctx, SessionsDeps{ActiveCache: ac, Store: d.Store, Credentials: d.Credentials, Events: s.Events,
		Registrar: d.Registrar, Logger: d.Logger, Registerer: d.Registerer, Now: d.SessionClock, Wall: d.Now, Lockout: s.Lockout,
		Hasher: s.Directory.Hasher(), SyncEvent: d.SyncEvent, Ready: d.Ready, Node: d.Node})
	if err != nil {
		return nil, err
	}
	s.Manager = NewManager(ManagerDeps{Store: d.Store, Directory: s.Directory, Sessions: s.Sessions,
		Events: s.Events, Registrar: d.Registrar, Logger: d.AdminLogger, Now: d.Now, Params: d.Params})
	s.Calls = NewCalls(d.Store, d.Credentials, s.Sessions, s.Manager, d.Logger)
	if d.CallController != nil {
		s.CallControl = NewCallControl(d.Store, d.Registrar, d.CallController, s.Manager, d.Logger)
	}
	s.Softphone = NewSoftphone(SoftphoneDeps{Credentials: d.Credentials, Registrar: d.Registrar, Store: d.Store,
		Events: s.Events, Manager: s.Manager, Realm: d.SIPRealm, Logger: d.Logger, Now: d.Now})
	s.Links = NewPasswordLinks(d.Links, PasswordLinksDeps{Store: d.Store, Directory: s.Directory, Events: s.Events,
		Mailer: d.Mailer, Manager: s.Manager, Logger: d.Logger, Registerer: d.Registerer, Now: d.Now})
	s.subscribeRules(d.Store)
	return s, nil
}

// Close stops the background work of the services: the password links'.
// The sessions' timers stop with their sweeper (Sessions.Close); the file
// namespace is closed by whoever built it.
func (s *Services) Close() error {
	return s.Links.Close()
}

// Fetched is told of every authorized read of an identified device's
// file (prov/files calls it on the request path): a digest-authenticated
// one shows the phone holds its credentials, a boot-file fetch is a reboot
// (or re-sync) signal.
func (s *Services) Fetched(ctx context.Context, d Device, f Fetch) {
	active := f.Active
	if active == nil {
		active = func(ctx context.Context) (Session, bool, error) { return s.Sessions.ActiveOn(ctx, d.ID) }
	}
	var err error
	if f.DeviceAuthenticated && d.Status == DeviceNotDeployed {
		err = s.Sessions.DeviceAuthenticated(ctx, d, f.Remote.String())
	}
	if err == nil && f.EMSignedOut {
		// A Cisco MPP signed in through Extension Mobility fetches its
		// profile with the user's login; with its own credentials it has
		// signed out.
		err = s.Sessions.emSignedOut(ctx, d, active)
	}
	if f.Boot && err == nil {
		remote := ""
		if f.Remote.IsValid() {
			remote = f.Remote.Addr().Unmap().String()
		}
		err = s.Sessions.bootFetched(ctx, d, s.Sessions.wall(), remote, f.DeviceAuthenticated, active)
	}
	if err != nil {
		s.logger.Warn("boot-file fetch bookkeeping", "component", "files", "mac", d.MAC, "err", err)
	}
}

// HandsetPassword applies a login password the user changed on the
// handset: the phone's session authenticated the upload as the user.
func (s *Services) HandsetPassword(ctx context.Context, user, pw string) error {
	_, err := s.Directory.ChangePassword(ctx, PasswordChange{Username: user, New: pw, Confirm: pw, SkipOld: true})
	return err
}
