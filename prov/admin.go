package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"hotdesk/prov/auth"
)

// ConflictError names the field whose unique value (user name, number,
// MAC) is taken; errors.Is(err, ErrConflict) holds for it.
type ConflictError struct {
	Field string
	Msg   string
}

func (e *ConflictError) Error() string { return e.Field + ": " + e.Msg }

// Unwrap lets errors.Is(err, ErrConflict) hold.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// Manager holds the administration rules that change several objects at
// once: disabling a user, numbers, desk-phone assignment, zero-touch claim,
// sites. Every change it makes is written to the audit log.
type Manager struct {
	params   ParamCatalog
	store    Store
	dir      *Directory
	sessions *Sessions
	events   *Events
	logger   *slog.Logger
	now      func() time.Time
	// claimLock refuses a device or source that guesses deployment PINs;
	// claimRate bounds the guesses of all sources together.
	claimLock *auth.Lockout
	claimRate *rate.Limiter
	// reg removes bindings; nil without a SIP side (tests).
	reg Registrar
}

// ManagerDeps are the Manager's collaborators. Registrar may be nil (no
// SIP side: nothing to unbind).
type ManagerDeps struct {
	Store     Store
	Directory *Directory
	Sessions  *Sessions
	Events    *Events
	Registrar Registrar
	Logger    *slog.Logger
	Now       func() time.Time
	// Params checks raw overrides for one vendor (nil: syntax only).
	Params ParamCatalog
}

// NewManager returns the administration service.
func NewManager(d ManagerDeps) *Manager {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{store: d.Store, dir: d.Directory, sessions: d.Sessions, events: d.Events, logger: d.Logger,
		now: d.Now, reg: d.Registrar, params: d.Params, claimLock: auth.NewLockout(auth.LockoutConfig{}, d.Now),
		claimRate: rate.NewLimiter(claimRate, claimBurst)}
}

// ClaimLockout is the lockout of deployment-PIN guesses (a cluster
// shares its counts between the nodes).
func (m *Manager) ClaimLockout() *auth.Lockout { return m.claimLock }

// unbind removes the bindings of owner when a registrar is wired.
func (m *Manager) unbind(ctx context.Context, owner Owner) {
	if m.reg == nil {
		return
	}
	if _, err := m.reg.Unbind(ctx, owner); err != nil {
		m.logger.Error("unbind failed", "owner", owner.String(), "err", err)
	}
}

// Audit writes one audit event (NewAuditEvent). A failed write is logged:
// the change is done.
func (m *Manager) Audit(ctx context.Context, a Actor, action string, o Object, before, after any) {
	if err := m.store.AddAudit(ctx, NewAuditEvent(m.now(), a, action, o, before, after)); err != nil {
		m.logger.Error("audit write failed", "action", action, "err", err)
	}
}

// userRecord is what the audit log keeps of a user: no secrets.
type userRecord struct {
	User
	Numbers []string `json:"numbers,omitempty"`
}

// CreateUser validates the directory scope and site, creates the user with
// their numbers all or nothing, and audits it.
func (m *Manager) CreateUser(ctx context.Context, in UserInput, a Actor) (User, error) {
	if err := m.checkRefs(ctx, in.SiteID, &in.DirectoryScope); err != nil {
		return User{}, err
	}
	if _, err := m.store.GetUser(ctx, strings.TrimSpace(orDefault(in.Username, in.Email))); err == nil {
		return User{}, &ConflictError{Field: "username", Msg: "is taken"}
	}
	for _, n := range in.Numbers {
		if _, err := m.store.UserByNumber(ctx, n); err == nil {
			return User{}, &ConflictError{Field: "numbers", Msg: fmt.Sprintf("%s belongs to another user", n)}
		}
	}
	u, err := m.dir.CreateUser(ctx, in)
	if err != nil {
		return User{}, conflictField(err)
	}
	m.Audit(ctx, a, "user.create", UserObject(u.Username), nil, userRecord{u, in.Numbers})
	return u, nil
}

// conflictField turns Directory.Store's wrapped conflicts into a ConflictError.
func conflictField(err error) error {
	if !errors.Is(err, ErrConflict) {
		return err
	}
	if ce := (*ConflictError)(nil); errors.As(err, &ce) {
		return ce
	}
	if strings.HasPrefix(err.Error(), "number ") {
		return &ConflictError{Field: "numbers", Msg: "a number belongs to another user"}
	}
	return &ConflictError{Field: "username", Msg: "is taken"}
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

// checkRefs checks that the site exists and normalises the directory
// scope: "" or "all" is everyone, otherwise the name of an existing site.
func (m *Manager) checkRefs(ctx context.Context, siteID int64, scope *string) error {
	if err := m.checkSite(ctx, siteID); err != nil {
		return err
	}
	*scope = strings.TrimSpace(*scope)
	if *scope == "" || strings.EqualFold(*scope, "all") {
		*scope = "all"
		return nil
	}
	if _, err := m.store.SiteByName(ctx, *scope); errors.Is(err, ErrNotFound) {
		return Invalid("directory_scope", "is \"all\" or the name of a site")
	} else if err != nil {
		return err
	}
	return nil
}

// UserPatch is a partial update; nil fields are left as they are.
type UserPatch struct {
	FirstName        *string
	LastName         *string
	Email            *string
	Language         *string
	DirectoryScope   *string
	Custom1          *string
	Custom2          *string
	Custom3          *string
	Kind             *UserKind
	ResponsibleEmail *string
	SiteID           *int64
	Password         *string
	Portal           *PortalAccess
	CallHandling     *CallHandling
	// Params replaces the user's profile parameters (the "user" layer of
	// <user>.cfg, e.g. reg.2.address).
	Params *map[string]string
}

// UpdateUser applies p to the user, validates the result and audits the
// change with the before and after records.
func (m *Manager) UpdateUser(ctx context.Context, username string, p UserPatch, a Actor) (User, error) {
	u, err := m.store.GetUser(ctx, username)
	if err != nil {
		return User{}, err
	}
	before := u
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&u.FirstName, p.FirstName)
	set(&u.LastName, p.LastName)
	set(&u.Email, p.Email)
	set(&u.Language, p.Language)
	set(&u.DirectoryScope, p.DirectoryScope)
	set(&u.Custom1, p.Custom1)
	set(&u.Custom2, p.Custom2)
	set(&u.Custom3, p.Custom3)
	set(&u.ResponsibleEmail, p.ResponsibleEmail)
	if p.Kind != nil {
		u.Kind = *p.Kind
	}
	if p.SiteID != nil {
		u.SiteID = *p.SiteID
	}
	if p.Portal != nil {
		u.Portal = *p.Portal
	}
	if p.CallHandling != nil {
		u.CallHandling = *p.CallHandling
	}
	if p.Params != nil {
		if err := ValidateParams("params", *p.Params, true); err != nil {
			return User{}, err
		}
		if err := CheckVendorParams(m.params, "params", *p.Params); err != nil {
			return User{}, err
		}
		u.Params = *p.Params
	}
	if err := validateUser(u); err != nil {
		return User{}, err
	}
	if err := m.checkRefs(ctx, u.SiteID, &u.DirectoryScope); err != nil {
		return User{}, err
	}
	if p.CallHandling != nil {
		if err := m.checkHandlingTargets(ctx, m.store, u, &u.CallHandling); err != nil {
			return User{}, err
		}
	}
	if p.Password != nil {
		if err := CheckPasswordPolicy(*p.Password); err != nil {
			return User{}, err
		}
		if u.PasswordHash, err = m.dir.hasher.Hash(*p.Password); err != nil {
			return User{}, err
		}
		u.LoginHA1 = LoginHA1s(u.Username, *p.Password)
	}
	if err := m.store.UpdateUser(ctx, &u); err != nil {
		return User{}, err
	}
	after := any(u)
	if p.Password != nil {
		after = struct {
			User
			PasswordChanged bool `json:"password_changed"`
		}{u, true}
	}
	m.Audit(ctx, a, "user.update", UserObject(u.Username), before, after)
	m.events.Publish(ctx, Event{Kind: EventUserChanged, UserID: u.ID})
	return u, nil
}

// validateUser checks what Directory.Prepare checks on creation, for an
// update (without hashing anything).
func validateUser(u User) error {
	switch {
	case u.FirstName == "":
		return Invalid("first_name", "is required")
	case u.LastName == "":
		return Invalid("last_name", "is required")
	case u.Email == "":
		return Invalid("email", "is required")
	}
	if a, err := mail.ParseAddress(u.Email); err != nil || a.Address != u.Email {
		return Invalid("email", "is not a valid address")
	}
	if u.Kind != KindPerson && u.Kind != KindCommonArea {
		return Invalid("kind", "is person or common_area")
	}
	if u.Kind == KindCommonArea && u.ResponsibleEmail == "" {
		return Invalid("responsible_email", "is required for a common-area profile")
	}
	for _, acc := range []Access{u.Portal.Profile, u.Portal.CallHandling, u.Portal.Directory, u.Portal.Buttons, u.Portal.Reporting, u.Portal.Recordings,
		u.Portal.RecordingsGroup, u.Portal.RecordingsOthers, u.Portal.RecordingsAll} {
		if acc != AccessNone && acc != AccessRead && acc != AccessWrite && acc != "" {
			return Invalid("portal", "access levels are none, read or write")
		}
	}
	if !ValidCallOperations(u.Portal.CallOperations) {
		return Invalid("call_operations", "is none, call_control, softphone or both")
	}
	if !ValidCallOperations(u.Portal.CallMode) {
		return Invalid("call_mode", "is none, call_control, softphone or both")
	}
	nums := RecordingNumbers(u.Portal)
	if len(nums) > MaxRecordingNumbers {
		return Invalid("recordings_numbers", fmt.Sprintf("are at most %d numbers", MaxRecordingNumbers))
	}
	for _, n := range nums {
		if len(n) > 32 || strings.Trim(n, "0123456789+*#") != "" {
			return Invalid("recordings_numbers", "are phone numbers (digits, +, *, #) separated by commas")
		}
	}
	return nil
}

// Deployment-PIN claims from all sources together: a few a second, with a
// burst for a morning of desk moves. With 10^8 PINs and a handful assigned,
// a guess at this rate takes years.
const (
	claimRate  = rate.Limit(2)
	claimBurst = 20
)
