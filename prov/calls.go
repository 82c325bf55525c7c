package prov

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Calls holds the call rules the SIP proxy asks about: what a locked phone
// may dial, a user's call handling, the login/logout feature codes and the
// call records that feed the idle timer.
type Calls struct {
	store    Store
	creds    *Credentials
	sessions *Sessions
	manager  *Manager
	logger   *slog.Logger
}

// NewCalls returns the call rules; manager may be nil (no PIN claims).
func NewCalls(st Store, creds *Credentials, sessions *Sessions, manager *Manager, logger *slog.Logger) *Calls {
	return &Calls{store: st, creds: creds, sessions: sessions, manager: manager, logger: logger}
}

// CallVerdict is the policy's answer for one call.
type CallVerdict struct {
	Allow  bool
	Reason string
	Locked bool
}

// LockedReason is what a locked phone shows when a number is refused.
const LockedReason = "Log in to call"

// Authorize decides whether caller (the credential's owner) may call
// target. A device credential is a locked phone when its site requires
// login and no session is active there: it may reach only the authorized
// numbers (the device's own list, else the site's) and emergency numbers.
func (c *Calls) Authorize(ctx context.Context, caller Owner, target string) (CallVerdict, error) {
	id := caller.ID
	if caller.Kind != OwnerDevice {
		return CallVerdict{Allow: true}, nil
	}
	devID, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return CallVerdict{}, fmt.Errorf("authorize: device %q: %w", id, ErrInvalid)
	}
	d, err := c.store.GetDeviceByID(ctx, devID)
	if err != nil {
		return CallVerdict{}, fmt.Errorf("authorize: %w", err)
	}
	site, err := c.store.GetSite(ctx, d.SiteID)
	if err != nil {
		return CallVerdict{}, fmt.Errorf("authorize: %w", err)
	}
	if !site.Login.Required {
		return CallVerdict{Allow: true}, nil
	}
	if _, active, err := c.sessions.ActiveOn(ctx, d.ID); err != nil {
		return CallVerdict{}, err
	} else if active {
		return CallVerdict{Allow: true}, nil
	}
	allowed := d.Authorized
	if len(allowed) == 0 {
		allowed = site.Authorized
	}
	want := c.routeKey(target)
	for _, a := range allowed {
		if a.Number != "" && c.routeKey(a.Number) == want {
			return CallVerdict{Allow: true, Locked: true}, nil
		}
	}
	if slices.Contains(site.Emergency, target) {
		return CallVerdict{Allow: true, Locked: true}, nil
	}
	return CallVerdict{Allow: false, Reason: LockedReason, Locked: true}, nil
}

// CallerTrunk is the trunk caller's calls to numbers leave through: the
// site trunk of the phone it calls from (a device or session credential),
// or of the user (a permanent account); ok is false when that site names
// none, or the caller is not found, and the configured trunk is used.
func (c *Calls) CallerTrunk(ctx context.Context, caller Owner) (Trunk, bool) {
	var siteID int64
	switch caller.Kind {
	case OwnerDevice, OwnerSession:
		d, ok := c.deviceOf(ctx, caller.Kind, caller.ID)
		if !ok {
			return Trunk{}, false
		}
		siteID = d.SiteID
	case OwnerUser:
		id, err := strconv.ParseInt(caller.ID, 10, 64)
		if err != nil {
			return Trunk{}, false
		}
		u, err := c.store.GetUserByID(ctx, id)
		if err != nil {
			return Trunk{}, false
		}
		siteID = u.SiteID
	default:
		return Trunk{}, false
	}
	if siteID == 0 {
		return Trunk{}, false
	}
	site, err := c.store.GetSite(ctx, siteID)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			c.logger.Warn("site trunk unavailable", "component", "calls", "site", siteID, "err", err)
		}
		return Trunk{}, false
	}
	hp, ok := site.Trunk.HostPort()
	if !ok {
		return Trunk{}, false
	}
	t := site.Trunk
	t.Address = hp
	return t, true
}

// IsEmergency reports whether dialled is an emergency number of any site:
// the SIP proxy routes such a call even from a source or account that is
// locked out after failed authentications. It is asked only then, so
// listing the sites costs nothing on the normal path.
func (c *Calls) IsEmergency(ctx context.Context, dialled string) bool {
	sites, err := c.store.ListSites(ctx)
	if err != nil {
		c.logger.Warn("emergency numbers unavailable", "component", "calls", "err", err)
		return false
	}
	for _, s := range sites {
		if slices.Contains(s.Emergency, dialled) {
			return true
		}
	}
	return false
}

// routeKey is where the SIP proxy sends a dialled string, so the policy
// judges what will be rung, not what was typed: a user by the same lookup
// the proxy routes users with (Credentials.Canonical, which ignores a
// leading '+'), any other number exactly as the trunk receives it —
// "+4930123" and "4930123" are different numbers to the carrier, so an
// authorized one does not let a locked phone dial the other.
func (c *Calls) routeKey(s string) routeKey {
	if v, ok := c.creds.Canonical(s); ok {
		return routeKey{user: true, to: v}
	}
	return routeKey{to: s}
}

// routeKey is where a dialled string goes: a user's canonical number, or
// a number as the trunk receives it.
type routeKey struct {
	user bool
	to   string
}

// Handling returns the call handling of the user whose canonical number is
// user; a number of no user has none.
func (c *Calls) Handling(ctx context.Context, user string) (CallHandling, error) {
	u, err := c.store.UserByNumber(ctx, user)
	if errors.Is(err, ErrNotFound) {
		return CallHandling{}, nil
	}
	if err != nil {
		return CallHandling{}, err
	}
	return u.CallHandling, nil
}

// FeatureCode runs the login (code + "<user>*<password>", or code +
// "<deployment PIN>" to claim a new phone) and logout codes dialled from a
// phone. It answers with a final SIP status and a reason the phone shows;
// handled is false when dialled is no feature code.
func (c *Calls) FeatureCode(ctx context.Context, caller Owner, dialled, remote string) (int, string, bool) {
	kind, id := caller.Kind, caller.ID
	d, ok := c.deviceOf(ctx, kind, id)
	if !ok {
		return 0, "", false
	}
	site, err := c.store.GetSite(ctx, d.SiteID)
	if err != nil {
		return 0, "", false
	}
	codes := site.FeatureCodes
	switch {
	case codes.Logout != "" && dialled == codes.Logout:
		s, active, err := c.sessions.ActiveOn(ctx, d.ID)
		if err != nil {
			return 500, "Logout failed", true
		}
		if !active {
			return 480, "Nobody is logged in", true
		}
		if err := c.sessions.End(ctx, s.ID, EndLogout, PhoneActor("")); err != nil {
			return 500, "Logout failed", true
		}
		return 480, "Logged out", true
	case codes.Login != "" && strings.HasPrefix(dialled, codes.Login):
		rest := strings.TrimPrefix(dialled, codes.Login)
		user, secret, found := strings.Cut(rest, "*")
		if c.manager != nil && c.isClaim(ctx, user, secret, found) {
			if _, err := c.manager.ClaimByPIN(ctx, d.MAC, user, secret, remote); err != nil {
				return 403, "Claim failed", true
			}
			return 480, "Phone claimed", true
		}
		_, err := c.sessions.Login(ctx, LoginRequest{MAC: d.MAC, Username: user, Secret: secret,
			Door: DoorFeatureCode, AtDevice: true, Remote: remote, Actor: PhoneActor("")})
		switch {
		case err == nil:
			return 480, "Logged in as " + user, true
		case errors.Is(err, ErrLocked):
			return 403, "Too many attempts", true
		case errors.Is(err, ErrDenied):
			return 403, "Login not allowed here", true
		}
		return 403, "User login failed", true
	case codes.DND != "" && dialled == codes.DND,
		codes.Forward != "" && strings.HasPrefix(dialled, codes.Forward):
		return c.handlingCode(ctx, kind, id, codes, dialled, remote)
	}
	return 0, "", false
}

// ParkSlot is whether dialled is the caller's site's park code followed
// by a slot digit 1-9, and then the slot's name, unique across sites.
func (c *Calls) ParkSlot(ctx context.Context, kind OwnerKind, id, dialled string) (string, bool) {
	var siteID int64
	if d, ok := c.deviceOf(ctx, kind, id); ok {
		siteID = d.SiteID
	} else if kind == OwnerUser {
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return "", false
		}
		u, err := c.store.GetUserByID(ctx, n)
		if err != nil {
			return "", false
		}
		siteID = u.SiteID
	} else {
		return "", false
	}
	site, err := c.store.GetSite(ctx, siteID)
	if err != nil || site.FeatureCodes.Park == "" {
		return "", false
	}
	rest, ok := strings.CutPrefix(dialled, site.FeatureCodes.Park)
	if !ok || len(rest) != 1 || rest[0] < '1' || rest[0] > '9' {
		return "", false
	}
	return "s" + strconv.FormatInt(siteID, 10) + "p" + rest, true
}

// ParkSlotSite is the site of a slot name ParkSlot returned.
func ParkSlotSite(slot string) (int64, bool) {
	rest, ok := strings.CutPrefix(slot, "s")
	if !ok {
		return 0, false
	}
	id, digit, ok := strings.Cut(rest, "p")
	n, err := strconv.ParseInt(id, 10, 64)
	if !ok || err != nil || n <= 0 || len(digit) != 1 {
		return 0, false
	}
	return n, true
}

// handlingCode runs the DND and forward codes (the phones' DND and forward
// keys) for the user logged in on the phone: DND toggles, forward followed
// by a target forwards all calls there, alone it ends forwarding. The
// change is the user's call handling, which the proxy honours wherever
// they are, checked as the portal checks it.
func (c *Calls) handlingCode(ctx context.Context, kind OwnerKind, id string, codes FeatureCodes, dialled, remote string) (int, string, bool) {
	if c.manager == nil || kind != OwnerSession {
		return 480, "Nobody is logged in", true
	}
	s, err := c.store.GetSession(ctx, id)
	if err != nil {
		return 480, "Nobody is logged in", true
	}
	u, err := c.store.GetUserByID(ctx, s.UserID)
	if err != nil {
		return 500, "Not changed", true
	}
	ch := u.CallHandling
	reason := ""
	if codes.DND != "" && dialled == codes.DND {
		ch.DND = !ch.DND
		reason = map[bool]string{true: "Do not disturb on", false: "Do not disturb off"}[ch.DND]
	} else {
		ch.ForwardAlways = strings.TrimPrefix(dialled, codes.Forward)
		reason = "Forwarding off"
		if ch.ForwardAlways != "" {
			reason = "Forwarding to " + ch.ForwardAlways
		}
	}
	if _, err := c.manager.SetCallHandling(ctx, u.Username, ch, UserActor(u.Username, remote)); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return 403, "Forward target refused", true
		}
		c.logger.Warn("call handling code failed", "user", u.Username, "err", err)
		return 500, "Not changed", true
	}
	// 480 with the reason: the phone shows it and places no call.
	return 480, reason, true
}

// isClaim tells a claim (code + deployment PIN, or code + deployment PIN
// + "*" + the phone's security PIN to take over another user's phone) from
// a login (code + user + "*" + password). Both PINs are PINLength digits;
// a first part that is some user's name or number is a login, which a
// colliding PIN cannot take away from that user.
func (c *Calls) isClaim(ctx context.Context, first, second string, found bool) bool {
	isPIN := func(s string) bool { return len(s) == PINLength && ValidNumber(s) && s[0] != '+' }
	if !isPIN(first) {
		return false
	}
	if !found {
		return true
	}
	if !isPIN(second) {
		return false
	}
	for _, f := range plusForms(first) {
		if _, err := c.store.UserByNumber(ctx, f); !errors.Is(err, ErrNotFound) {
			return false
		}
	}
	_, err := c.store.GetUser(ctx, first)
	return errors.Is(err, ErrNotFound)
}

// deviceOf finds the phone a device or session credential belongs to.
func (c *Calls) deviceOf(ctx context.Context, kind OwnerKind, id string) (Device, bool) {
	var devID int64
	switch kind {
	case OwnerDevice:
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return Device{}, false
		}
		devID = n
	case OwnerSession:
		s, err := c.store.GetSession(ctx, id)
		if err != nil {
			return Device{}, false
		}
		devID = s.DeviceID
	default:
		return Device{}, false
	}
	d, err := c.store.GetDeviceByID(ctx, devID)
	return d, err == nil
}

// Record stores a finished call and counts a call made or answered on a
// session's line as that session's activity (the idle timer).
func (c *Calls) Record(ctx context.Context, r CallRecord, callerKind OwnerKind, callerID string, calleeKind OwnerKind, calleeID string, ended bool) {
	for _, o := range [][2]string{{string(callerKind), callerID}, {string(calleeKind), calleeID}} {
		if OwnerKind(o[0]) == OwnerSession && o[1] != "" {
			if err := c.sessions.Touch(ctx, o[1]); err != nil && !errors.Is(err, ErrNotFound) {
				c.logger.Warn("session activity not recorded", "session", o[1], "err", err)
			}
		}
	}
	if !ended {
		return
	}
	if callerKind == OwnerSession {
		r.SessionID = callerID
		if s, err := c.store.GetSession(ctx, callerID); err == nil {
			r.UserID, r.DeviceID = s.UserID, s.DeviceID
		}
	}
	if callerKind == OwnerDevice {
		r.DeviceID, _ = strconv.ParseInt(callerID, 10, 64)
	}
	if callerKind == OwnerUser {
		r.UserID, _ = strconv.ParseInt(callerID, 10, 64)
	}
	if callerKind == OwnerBrowser {
		r.UserID = browserUserID(callerID)
	}
	if n := c.callerNumber(ctx, r.UserID); n != "" {
		// The caller's own number, not the line's credential (a session's
		// minted user name means nothing to whoever reads the history).
		r.From = n
	}
	if r.End.IsZero() {
		r.End = time.Now()
	}
	if err := c.store.AddCallRecord(ctx, &r); err != nil {
		c.logger.Error("call record not stored", "call_id", r.CallID, "err", err)
	}
}

// callerNumber is what a history shows for a user's call: their first
// number, else their user name; "" for no user.
func (c *Calls) callerNumber(ctx context.Context, userID int64) string {
	if userID == 0 {
		return ""
	}
	if nums, err := c.store.NumbersOf(ctx, userID); err == nil && len(nums) > 0 {
		return nums[0]
	}
	if u, err := c.store.GetUserByID(ctx, userID); err == nil {
		return u.Username
	}
	return ""
}
