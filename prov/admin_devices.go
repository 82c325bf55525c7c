package prov

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"

	"hotdesk/prov/auth"
)

// DoorClaim names the zero-touch claim in lockout keys and audit records.
const DoorClaim Door = "claim"

// PINLength is the number of digits of generated deployment and security PINs.
const PINLength = 8

// DeviceInput is what an admin gives to add a device before it boots.
type DeviceInput struct {
	MAC    string
	Vendor string
	Model  string
	SiteID int64
	Kind   DeviceKind
}

// CreateDevice adds a device with its generated device SIP account and
// provisioning credentials, as auto-enrollment would.
func (m *Manager) CreateDevice(ctx context.Context, in DeviceInput, a Actor) (Device, error) {
	mac, ok := NormalizeMAC(in.MAC)
	if !ok {
		return Device{}, Invalid("mac", "is not a MAC address (12 hex digits)")
	}
	if in.Kind == "" {
		in.Kind = DeviceManaged
	}
	if in.Kind != DeviceManaged && in.Kind != DeviceThirdParty {
		return Device{}, Invalid("kind", "is managed or third_party")
	}
	if err := m.checkSite(ctx, in.SiteID); err != nil {
		return Device{}, err
	}
	d := m.newDevice(mac, in.Kind, in.SiteID, in.Vendor)
	d.Model = in.Model
	if err := m.store.CreateDevice(ctx, &d); errors.Is(err, ErrConflict) {
		return Device{}, &ConflictError{Field: "mac", Msg: "device already exists"}
	} else if err != nil {
		return Device{}, err
	}
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reason: "created"})
	m.Audit(ctx, a, "device.create", DeviceObject(mac), nil, d)
	return d, nil
}

// newDevice is a device not yet stored, with its generated device SIP
// account and provisioning credentials.
func (m *Manager) newDevice(mac string, kind DeviceKind, siteID int64, vendor string) Device {
	if vendor == "" {
		vendor = VendorFromMAC(mac)
	}
	now := m.now()
	return Device{MAC: mac, Vendor: strings.ToLower(vendor), SiteID: siteID, Kind: kind,
		Status: DeviceNotDeployed, ProvUser: mac, ProvPassword: auth.RandomSecret(12),
		SIPUser: "dev" + mac, SIPPassword: auth.RandomSecret(12), CreatedAt: now, UpdatedAt: now}
}

func (m *Manager) checkSite(ctx context.Context, id int64) error {
	if id == 0 {
		return nil
	}
	if _, err := m.store.GetSite(ctx, id); errors.Is(err, ErrNotFound) {
		return Invalid("site_id", "no such site")
	} else if err != nil {
		return err
	}
	return nil
}

// DevicePatch is a partial device update; nil fields are left as they are.
type DevicePatch struct {
	Vendor     *string
	Model      *string
	SiteID     *int64
	Authorized *[]AuthorizedNumber
	Params     *map[string]string
	// Status may move a pending device to not_deployed (approve) or denied.
	Status *DeviceStatus
}

// UpdateDevice applies p and re-provisions the phone.
func (m *Manager) UpdateDevice(ctx context.Context, mac string, p DevicePatch, a Actor) (Device, error) {
	d, err := m.Device(ctx, mac)
	if err != nil {
		return Device{}, err
	}
	before := d
	if p.Vendor != nil {
		d.Vendor = strings.ToLower(strings.TrimSpace(*p.Vendor))
	}
	if p.Model != nil {
		d.Model = strings.TrimSpace(*p.Model)
	}
	if p.SiteID != nil {
		if err := m.checkSite(ctx, *p.SiteID); err != nil {
			return Device{}, err
		}
		d.SiteID = *p.SiteID
	}
	if p.Authorized != nil {
		if err := validateAuthorized("authorized", *p.Authorized); err != nil {
			return Device{}, err
		}
		d.Authorized = *p.Authorized
	}
	if p.Params != nil {
		if err := CheckVendorParams(m.params, "params", *p.Params); err != nil {
			return Device{}, err
		}
		if err := ValidateParams("params", *p.Params, false); err != nil {
			return Device{}, err
		}
		d.Params = *p.Params
	}
	if p.Status != nil && *p.Status != d.Status {
		switch {
		case *p.Status == DeviceNotDeployed && d.Status == DeviceDeployed:
			// Deployed is the phone's word, not the admin's (the store
			// keeps it over this write): reset its credentials instead.
			return Device{}, Invalid("status", "the phone is deployed; reset its credentials to provision it again")
		case *p.Status == DeviceNotDeployed, *p.Status == DeviceDenied:
			d.Status = *p.Status
		default:
			return Device{}, Invalid("status", "may be set to not_deployed (approve) or denied")
		}
	}
	if err := m.store.UpdateDevice(ctx, &d); err != nil {
		return Device{}, err
	}
	if cur, err := m.store.GetDeviceByID(ctx, d.ID); err == nil {
		d = cur // with what the phone wrote since it was read
	}
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reason: "updated"})
	m.Audit(ctx, a, "device.update", DeviceObject(d.MAC), before, d)
	return d, nil
}

// Device returns the device with mac in any notation the API accepts.
func (m *Manager) Device(ctx context.Context, mac string) (Device, error) {
	n, ok := NormalizeMAC(mac)
	if !ok {
		return Device{}, fmt.Errorf("device %q: %w", mac, ErrNotFound)
	}
	return m.store.GetDevice(ctx, n)
}

// Assignment is the result of assigning a desk phone. The PINs of a
// managed phone are shown here once; the third-party account is the user's
// permanent SIP account, whose password is shown only by SIPAccount.
type Assignment struct {
	Device        Device
	User          User
	DeploymentPIN string
	SecurityPIN   string
	// Numbers are the user's numbers; the third-party phone's user ID is
	// the first without "+".
	Numbers []string
}

// AssignInput is an assignment of a desk phone: the phone, its user, its
// kind and optionally a number given to the user in the same step.
type AssignInput struct {
	MAC      string
	Username string
	Kind     DeviceKind
	// Number, when set, becomes the user's (if it is not already) in the
	// transaction that assigns the phone: both happen or neither does.
	Number string
}

// AssignDevice makes the phone in.MAC the desk phone of in.Username. A
// managed phone gets a fresh deployment PIN (its zero-touch claim code) and
// security PIN; a third-party phone must be set up with the user's SIP
// account. A device not yet known is created. The number, the device and
// the assignment are written in one transaction.
func (m *Manager) AssignDevice(ctx context.Context, in AssignInput, a Actor) (Assignment, error) {
	n, ok := NormalizeMAC(in.MAC)
	if !ok {
		return Assignment{}, Invalid("mac", "is not a MAC address (12 hex digits)")
	}
	kind := in.Kind
	if kind == "" {
		kind = DeviceManaged
	}
	if kind != DeviceManaged && kind != DeviceThirdParty {
		return Assignment{}, Invalid("kind", "is managed or third_party")
	}
	number := strings.TrimSpace(in.Number)
	if number != "" && !ValidNumber(number) {
		return Assignment{}, Invalid("number", "is not an extension or E.164 number")
	}
	var (
		u                  User
		d, before          Device
		nums, numsBefore   []string
		created, numberNew bool
	)
	err := m.store.WithTx(ctx, func(tx Store) error {
		var err error
		u, err = tx.GetUser(ctx, in.Username)
		if errors.Is(err, ErrNotFound) {
			return Invalid("user", "no such user")
		} else if err != nil {
			return err
		}
		if u.Status != StatusActive {
			return Invalid("user", "is disabled")
		}
		if numsBefore, err = tx.NumbersOf(ctx, u.ID); err != nil {
			return err
		}
		if number != "" && !slices.Contains(numsBefore, number) {
			if err := CheckNamespace(ctx, tx, u.ID, u.Username, []string{number}); err != nil {
				var ce *ConflictError
				if errors.As(err, &ce) {
					return &ConflictError{Field: "number", Msg: ce.Msg}
				}
				return err
			}
			if err := tx.AssignNumber(ctx, number, u.ID); errors.Is(err, ErrConflict) {
				return &ConflictError{Field: "number", Msg: number + " belongs to another user"}
			} else if err != nil {
				return err
			}
			numberNew = true
		}
		if nums, err = tx.NumbersOf(ctx, u.ID); err != nil {
			return err
		}
		if kind == DeviceThirdParty && len(nums) == 0 {
			return Invalid("user", "has no number: a third-party phone registers with the user's number (give one in number)")
		}
		d, err = tx.GetDevice(ctx, n)
		if errors.Is(err, ErrNotFound) {
			d = m.newDevice(n, kind, u.SiteID, "")
			if err := tx.CreateDevice(ctx, &d); err != nil {
				return err
			}
			created = true
		} else if err != nil {
			return err
		}
		if d.AssignedUserID != 0 && d.AssignedUserID != u.ID {
			return &ConflictError{Field: "mac", Msg: "the phone is assigned to another user; unassign it first"}
		}
		before = d
		d.AssignedUserID, d.Kind = u.ID, kind
		d.DeploymentPIN, d.SecurityPIN = "", ""
		if kind == DeviceManaged {
			if d.DeploymentPIN, err = uniquePIN(ctx, tx); err != nil {
				return err
			}
			d.SecurityPIN = auth.RandomDigits(PINLength)
		}
		if d.SiteID == 0 {
			d.SiteID = u.SiteID
		}
		return tx.UpdateDevice(ctx, &d)
	})
	if err != nil {
		return Assignment{}, err
	}
	if created {
		m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reason: "created"})
		m.Audit(ctx, a, "device.create", DeviceObject(d.MAC), nil, before)
	}
	if numberNew {
		m.afterNumbersChanged(ctx, u)
		m.Audit(ctx, a, "user.numbers.assign", UserObject(u.Username), map[string]any{"numbers": numsBefore},
			map[string]any{"numbers": nums})
	}
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, UserID: u.ID, Reason: "assigned"})
	m.Audit(ctx, a, "device.assign", DeviceObject(d.MAC), before,
		map[string]any{"user": u.Username, "kind": kind, "pins_generated": kind == DeviceManaged, "number": number})
	return Assignment{Device: d, User: u, DeploymentPIN: d.DeploymentPIN, SecurityPIN: d.SecurityPIN, Numbers: nums}, nil
}

// uniquePIN returns a deployment PIN no other device holds, so a claim
// names exactly one assignment.
func uniquePIN(ctx context.Context, st Store) (string, error) {
	all, _, err := st.ListDevices(ctx, DeviceQuery{})
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, d := range all {
		taken[d.DeploymentPIN] = true
	}
	for {
		if p := auth.RandomDigits(PINLength); !taken[p] {
			return p, nil
		}
	}
}

func clearAssignment(d *Device) {
	d.AssignedUserID, d.DeploymentPIN, d.SecurityPIN = 0, "", ""
}

// UnassignDevice takes the phone away from its user: any session on it
// ends (reason unassigned: its bindings go and it is told to re-provision),
// the bindings of the user's permanent account are dropped, and the phone
// re-renders its locked profile. The user keeps their numbers.
//
// The registrar can only unbind by owner, so a softphone on the user's
// permanent account loses its binding too and registers again at its next
// refresh. A third-party phone, which hotdesk cannot re-provision, is
// stopped by a new password for the user's SIP account (the softphone
// needs it too).
func (m *Manager) UnassignDevice(ctx context.Context, mac string, a Actor) (Device, error) {
	d, err := m.Device(ctx, mac)
	if err != nil {
		return Device{}, err
	}
	if d.AssignedUserID == 0 {
		return d, nil
	}
	uid := d.AssignedUserID
	before := d
	clearAssignment(&d)
	if err := m.store.UpdateDevice(ctx, &d); err != nil {
		return Device{}, err
	}
	if m.sessions != nil {
		if s, ok, err := m.sessions.ActiveOn(ctx, d.ID); err == nil && ok {
			if err := m.sessions.End(ctx, s.ID, EndUnassigned, a); err != nil {
				m.logger.Error("unassign: ending session", "session", s.ID, "err", err)
			}
		}
	}
	rotated := false
	if before.Kind == DeviceThirdParty {
		// hotdesk cannot re-provision a third-party phone, so the account
		// typed into it stops working: a new SIP password, shown to the
		// user (SIPAccountOf) only once a phone is assigned again.
		if err := m.rotateSIPPassword(ctx, uid); err != nil {
			return Device{}, err
		}
		rotated = true
	}
	m.unbind(ctx, UserOwner(uid))
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, UserID: uid, Reason: string(EndUnassigned)})
	m.Audit(ctx, a, "device.unassign", DeviceObject(d.MAC), before,
		map[string]any{"device": d, "sip_password_rotated": rotated})
	return d, nil
}

// rotateSIPPassword gives the user's permanent SIP account a new password;
// the credential index drops the old one before this returns.
func (m *Manager) rotateSIPPassword(ctx context.Context, userID int64) error {
	u, err := m.store.GetUserByID(ctx, userID)
	if err != nil {
		return err
	}
	u.SIPPassword, u.UpdatedAt = auth.RandomSecret(10), m.now()
	if err := m.store.UpdateUser(ctx, &u); err != nil {
		return err
	}
	m.events.Publish(ctx, Event{Kind: EventCredentialsChanged, UserID: userID, Reason: "sip_password_rotated"})
	return nil
}

// ClaimByPIN is the zero-touch claim a login door calls when someone types
// a deployment PIN on a phone: the managed assignment holding that PIN moves
// to the phone mac, which becomes the user's desk phone. The PIN works
// once. A phone that is already another user's desk phone is taken over
// only with securityPIN, that phone's security PIN, which its user knows
// (seed 003: the security PIN secures the self-service claim); the other
// user then has no desk phone. Failures are ErrAuth (wrong PIN or security
// PIN, unknown phone) or ErrLocked after repeated failures per phone and
// per source; ErrDenied if the phone belongs to someone else and no
// security PIN was given.
func (m *Manager) ClaimByPIN(ctx context.Context, mac, pin, securityPIN, remote string) (Device, error) {
	now := m.now()
	n, _ := NormalizeMAC(mac)
	devKey, srcKey := "claim-device:"+n, "claim-source:"+remote
	// Attempts in flight count against the limits (Try), so parallel
	// guesses cannot all be checked before the first failure is recorded;
	// per source, as a fake phone costs an attacker nothing.
	doneDev, okDev := m.claimLock.Try(devKey, now)
	doneSrc, okSrc := func(bool) {}, true
	if remote != "" {
		doneSrc, okSrc = m.claimLock.Try(srcKey, now)
	}
	defer func() { doneDev(false); doneSrc(false) }()
	if !okDev || !okSrc {
		return Device{}, ErrLocked
	}
	// And all sources together: a guess spread over many hosts is bounded.
	if !m.claimRate.AllowN(now, 1) {
		m.logger.Warn("deployment-PIN claims over the global rate: refused", "component", "manager", "remote", remote)
		return Device{}, ErrLocked
	}
	fail := func() (Device, error) {
		doneDev(true)
		doneSrc(true)
		return Device{}, ErrAuth
	}
	phone, err := m.store.GetDevice(ctx, n)
	if errors.Is(err, ErrNotFound) || len(pin) != PINLength {
		return fail()
	} else if err != nil {
		return Device{}, err
	}
	all, _, err := m.store.ListDevices(ctx, DeviceQuery{})
	if err != nil {
		return Device{}, err
	}
	var held Device
	for _, d := range all {
		if d.Kind == DeviceManaged && d.AssignedUserID != 0 && d.DeploymentPIN != "" &&
			subtle.ConstantTimeCompare([]byte(d.DeploymentPIN), []byte(pin)) == 1 {
			held = d
		}
	}
	if held.ID == 0 {
		return fail()
	}
	prev := int64(0)
	if phone.AssignedUserID != 0 && phone.AssignedUserID != held.AssignedUserID {
		if securityPIN == "" {
			return Device{}, fmt.Errorf("%w: the phone is assigned to another user: their security PIN is needed", ErrDenied)
		}
		if phone.SecurityPIN == "" || subtle.ConstantTimeCompare([]byte(phone.SecurityPIN), []byte(securityPIN)) != 1 {
			return fail()
		}
		prev = phone.AssignedUserID
	}
	m.claimLock.Succeed(devKey)
	if prev != 0 && m.sessions != nil {
		// The former user's login there ends first: once the claim
		// verifies the phone, a fetch must not find their line on it.
		if s, ok, err := m.sessions.ActiveOn(ctx, phone.ID); err != nil {
			return Device{}, err
		} else if ok && s.UserID == prev {
			if err := m.sessions.End(ctx, s.ID, EndClaimed, PhoneActor("")); err != nil {
				return Device{}, err
			}
		}
	}
	d, err := m.moveAssignment(ctx, held, phone, remote)
	if err == nil && prev != 0 {
		// The phone's former user's permanent account goes with it, as on
		// an unassignment; their session there was replaced by the login.
		m.unbind(ctx, UserOwner(prev))
		m.Audit(ctx, PhoneActor(remote), "device.claim.takeover", DeviceObject(d.MAC),
			map[string]any{"user_id": prev}, map[string]any{"user_id": d.AssignedUserID, "security_pin": "verified"})
	}
	return d, err
}

// moveAssignment makes phone the desk phone held holds, in one transaction.
func (m *Manager) moveAssignment(ctx context.Context, held, phone Device, remote string) (Device, error) {
	uid := held.AssignedUserID
	err := m.store.WithTx(ctx, func(tx Store) error {
		// The rows again, in the transaction: the phone is registering
		// while its user types the PIN, and a status or last-seen written
		// since they were read must not be undone by these whole-row writes.
		var err error
		if phone, err = tx.GetDeviceByID(ctx, phone.ID); err != nil {
			return err
		}
		if held.ID != phone.ID {
			if held, err = tx.GetDeviceByID(ctx, held.ID); err != nil {
				return err
			}
		} else {
			held = phone
		}
		if held.AssignedUserID != uid {
			return ErrAuth // reassigned meanwhile: the PIN names nothing now
		}
		if held.ID != phone.ID {
			clearAssignment(&held)
			if err := tx.UpdateDevice(ctx, &held); err != nil {
				return err
			}
			phone.SecurityPIN = auth.RandomDigits(PINLength)
			if phone.SiteID == 0 {
				phone.SiteID = held.SiteID
			}
		} else {
			phone.SecurityPIN = held.SecurityPIN
		}
		phone.AssignedUserID, phone.Kind, phone.DeploymentPIN = uid, DeviceManaged, ""
		if phone.Status == DevicePending {
			phone.Status = DeviceNotDeployed
		}
		if err := tx.UpdateDevice(ctx, &phone); err != nil {
			return err
		}
		// The PIN was typed on this phone: it is the user's, whoever
		// fetched its credentials first.
		return tx.VerifyDevice(ctx, phone.ID)
	})
	if err != nil {
		return Device{}, err
	}
	if held.ID != phone.ID {
		m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: held.ID, Reason: string(DoorClaim)})
	}
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: phone.ID, UserID: uid, Reason: string(DoorClaim)})
	m.Audit(ctx, PhoneActor(remote), "device.claim", DeviceObject(phone.MAC),
		map[string]any{"assigned_device": held.MAC}, map[string]any{"assigned_device": phone.MAC, "user_id": uid})
	if err := m.moveLogin(ctx, uid, held, phone); err != nil {
		return phone, err
	}
	return phone, nil
}

// moveLogin moves the permanent login with a claimed assignment: the old
// phone is relocked (unbound and told), the new one logs its user in.
func (m *Manager) moveLogin(ctx context.Context, userID int64, held, phone Device) error {
	if m.sessions == nil {
		return nil
	}
	if held.ID != phone.ID {
		if s, ok, err := m.sessions.ActiveOn(ctx, held.ID); err != nil {
			return err
		} else if ok && s.UserID == userID {
			if err := m.sessions.End(ctx, s.ID, EndClaimed, PhoneActor("")); err != nil {
				return err
			}
		}
	}
	u, err := m.store.GetUserByID(ctx, userID)
	if err != nil {
		return err
	}
	_, err = m.sessions.Login(ctx, LoginRequest{MAC: phone.MAC, Username: u.Username, Door: DoorAssigned,
		Verified: true, Actor: PhoneActor("")})
	return err
}

// SIPAccount is the user's permanent SIP account, typed into a
// third-party phone or a softphone.
type SIPAccount struct {
	// UserID is the digest user name: the user's first number without "+".
	UserID   string
	Password string
	Numbers  []string
}

// SIPAccountOf returns the SIP account of the user the phone mac is
// assigned to. The password is included only when reveal is set, and every
// reveal is audited.
func (m *Manager) SIPAccountOf(ctx context.Context, mac string, reveal bool, a Actor) (SIPAccount, User, error) {
	d, err := m.Device(ctx, mac)
	if err != nil {
		return SIPAccount{}, User{}, err
	}
	if d.AssignedUserID == 0 {
		return SIPAccount{}, User{}, Invalid("mac", "the phone is not assigned to a user")
	}
	u, err := m.store.GetUserByID(ctx, d.AssignedUserID)
	if err != nil {
		return SIPAccount{}, User{}, err
	}
	nums, err := m.store.NumbersOf(ctx, u.ID)
	if err != nil {
		return SIPAccount{}, User{}, err
	}
	acc := SIPAccount{Numbers: nums}
	if len(nums) > 0 {
		acc.UserID = strings.TrimPrefix(nums[0], "+")
	}
	if reveal {
		acc.Password = u.SIPPassword
		m.Audit(ctx, a, "user.sip_password.reveal", UserObject(u.Username), nil, map[string]string{"device": d.MAC})
	}
	return acc, u, nil
}

// VerifyDevice records the admin's word that the phone holding mac's
// provisioning credentials is the real one (its address, shown as
// creds_addr, is the phone's on the desk): a login held back for it goes
// out, and the identity conflict is cleared.
func (m *Manager) VerifyDevice(ctx context.Context, mac string, a Actor) (Device, error) {
	d, err := m.Device(ctx, mac)
	if err != nil {
		return Device{}, err
	}
	if err := m.store.VerifyDevice(ctx, d.ID); err != nil {
		return Device{}, err
	}
	before := trustRecord(d)
	if d, err = m.store.GetDevice(ctx, d.MAC); err != nil {
		return Device{}, err
	}
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reason: "verified"})
	m.Audit(ctx, a, "device.verify", DeviceObject(d.MAC), before, trustRecord(d))
	return d, nil
}

// ResetDeviceCredentials gives the device new provisioning credentials,
// and device account, handed out once more to the next unauthenticated
// fetch: for a phone that lost them (factory reset), or to shut out
// whoever took them first. The holder of the old ones gets 401 and loses
// its registrations.
func (m *Manager) ResetDeviceCredentials(ctx context.Context, mac string, a Actor) (Device, error) {
	d, err := m.Device(ctx, mac)
	if err != nil {
		return Device{}, err
	}
	before := trustRecord(d)
	if err := m.store.ResetDeviceCredentials(ctx, d.ID, auth.RandomSecret(12), auth.RandomSecret(12), m.now()); err != nil {
		return Device{}, err
	}
	// Whoever holds the old device account is unregistered too.
	m.unbind(ctx, DeviceOwner(d.ID))
	if d, err = m.store.GetDevice(ctx, d.MAC); err != nil {
		return Device{}, err
	}
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reason: "credentials_reset"})
	m.Audit(ctx, a, "device.reset_credentials", DeviceObject(d.MAC), before, trustRecord(d))
	return d, nil
}

// trustRecord is what the audit log keeps of a device's bootstrap state.
func trustRecord(d Device) map[string]any {
	return map[string]any{"creds_delivered_at": d.CredsDeliveredAt, "creds_addr": d.CredsAddr,
		"held_user": d.CredsHeldFor, "conflict": d.Conflict}
}

// CheckSync asks the phone to re-provision (or reboot).
func (m *Manager) CheckSync(ctx context.Context, mac string, reboot bool, a Actor) (Device, error) {
	d, err := m.Device(ctx, mac)
	if err != nil {
		return Device{}, err
	}
	m.events.Publish(ctx, Event{Kind: EventDeviceChanged, DeviceID: d.ID, Reboot: reboot, Reason: "check_sync"})
	m.Audit(ctx, a, "device.check_sync", DeviceObject(d.MAC), nil, map[string]bool{"reboot": reboot})
	return d, nil
}
