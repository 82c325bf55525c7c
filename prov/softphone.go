package prov

import (
	"context"
	"crypto/md5" //nolint:gosec // SIP digest's MD5 HA1 (RFC 3261), not a security primitive here
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"hotdesk/prov/auth"
)

// OwnerBrowser owns the SIP credential minted for one portal session's
// softphone (BrowserOwner), so revoking it unbinds that browser only,
// never the user's desk phones or permanent account.
const OwnerBrowser OwnerKind = "browser"

// EventSoftphoneChanged: a portal session's softphone credential was
// minted, replaced or ended (SessionID is the session's WebSession.Key).
// Every node re-reads the session's row: the index follows it, and the
// registrations of a credential it dropped are unbound wherever they are.
const EventSoftphoneChanged EventKind = "softphone_changed"

// SoftphoneLine is what the portal's softphone registers with: the user's
// number as AOR, a digest account that lives as long as the portal session.
type SoftphoneLine struct {
	Username string    `json:"username"`
	Password string    `json:"password"`
	Number   string    `json:"number"`
	Expires  time.Time `json:"expires"`
}

// SoftphoneDeps are the softphone service's collaborators.
type SoftphoneDeps struct {
	Credentials *Credentials
	Registrar   Registrar // nil: nothing to unbind
	Store       Store
	Events      *Events
	Manager     *Manager // the audit; may be nil
	// Realm is the SIP digest realm (the SIP domain) the stored HA1s are for.
	Realm  string
	Logger *slog.Logger
	Now    func() time.Time
}

// Softphone mints and revokes the browser softphone's credentials. A
// credential is kept in the portal session's row as digest HA1s for the
// realm, never the password, so any node authenticates it.
type Softphone struct {
	creds  *Credentials
	reg    Registrar
	st     Store
	events *Events
	mgr    *Manager
	realm  string
	log    *slog.Logger
	now    func() time.Time
}

// NewSoftphone builds the service over the credentials index, whose
// browser credentials then expire by d.Now.
func NewSoftphone(d SoftphoneDeps) *Softphone {
	d.Credentials.mu.Lock()
	d.Credentials.now = d.Now
	d.Credentials.mu.Unlock()
	return &Softphone{creds: d.Credentials, reg: d.Registrar, st: d.Store, events: d.Events, mgr: d.Manager,
		realm: d.Realm, log: d.Logger.With("component", "softphone"), now: d.Now}
}

// HA1s are the digest HA1s (MD5, SHA-256) of username:realm:password.
func HA1s(username, realm, password string) (md5hex, sha256hex string) {
	in := []byte(username + ":" + realm + ":" + password)
	m := md5.Sum(in) //nolint:gosec // see import
	s := sha256.Sum256(in)
	return hex.EncodeToString(m[:]), hex.EncodeToString(s[:])
}

// Mint gives u's portal session (key: its WebSession.Key) a credential
// for its softphone, valid until expires; a second Mint for the same
// session replaces the first and unbinds what it registered. Audited.
func (s *Softphone) Mint(ctx context.Context, u User, key string, expires time.Time, a Actor) (SoftphoneLine, error) {
	if !CanSoftphone(u) {
		return SoftphoneLine{}, fmt.Errorf("softphone: %w", ErrDenied)
	}
	if u.Status != StatusActive {
		return SoftphoneLine{}, fmt.Errorf("softphone: user %s is not active: %w", u.Username, ErrDenied)
	}
	nums := s.creds.AORsOf(u.ID)
	if len(nums) == 0 {
		return SoftphoneLine{}, Invalid("number", "the user has no number to register")
	}
	line := SoftphoneLine{Username: "web-" + strings.ToLower(auth.RandomSecret(9)), Password: auth.RandomSecret(18),
		Number: nums[0], Expires: expires}
	sp := WebSoftphone{Username: line.Username, UserID: u.ID, Number: line.Number, Expires: expires}
	sp.HA1MD5, sp.HA1SHA256 = HA1s(line.Username, s.realm, line.Password)
	if err := s.st.SetWebSoftphone(ctx, key, sp); err != nil {
		if errors.Is(err, ErrNotFound) { // signed out meanwhile (on another node)
			return SoftphoneLine{}, fmt.Errorf("softphone: the portal session has ended: %w", ErrDenied)
		}
		return SoftphoneLine{}, fmt.Errorf("softphone: %w", err)
	}
	// The page was reloaded: its old registration goes with the old credential.
	s.unbind(ctx, s.creds.SetBrowser(WebSession{Key: key, Softphone: sp}))
	s.events.Publish(ctx, Event{Kind: EventSoftphoneChanged, UserID: u.ID, SessionID: key})
	if s.mgr != nil {
		s.mgr.Audit(ctx, a, "softphone.credential", UserObject(u.Username), nil,
			map[string]any{"sip_user": line.Username, "expires": expires.UTC().Format(time.RFC3339)})
	}
	return line, nil
}

// Ended revokes the softphone credential of a portal session that ended
// (sign-out, expiry; w is its deleted row) and unbinds what it
// registered, here and, through the event, on every node.
func (s *Softphone) Ended(ctx context.Context, w WebSession) {
	gone := s.creds.DropBrowser(w.Key)
	s.unbind(ctx, gone)
	if w.Softphone.Username != "" || len(gone) > 0 {
		s.events.Publish(ctx, Event{Kind: EventSoftphoneChanged, UserID: w.Softphone.UserID, SessionID: w.Key})
	}
}

func (s *Softphone) unbind(ctx context.Context, owners []Owner) {
	if s.reg == nil {
		return
	}
	for _, o := range owners {
		if _, err := s.reg.Unbind(ctx, o); err != nil {
			s.log.Warn("softphone unbind failed", "owner", o, "err", err)
		}
	}
}

// onEvent follows another node's softphone changes (re-reading the
// session's row) and unbinds at once the softphones of a user whose
// browser credentials the index dropped (disabled, or the softphone taken
// away): without it their registration would ring on until it expired.
// It runs after the credentials rule (subscription order).
func (s *Softphone) onEvent(ctx context.Context, ev Event) {
	switch {
	case ev.Kind == EventSoftphoneChanged && ev.Remote && ev.SessionID != "":
		w, err := s.st.GetWebSession(ctx, ev.SessionID)
		switch {
		case errors.Is(err, ErrNotFound):
			s.unbind(ctx, s.creds.DropBrowser(ev.SessionID))
		case err != nil:
			// Keeping a credential that may be revoked is worse than
			// dropping one that is not: the page re-mints.
			s.log.Error("softphone change not read; its credential dropped", "err", err)
			s.unbind(ctx, s.creds.DropBrowser(ev.SessionID))
		default:
			s.unbind(ctx, s.creds.SetBrowser(w))
		}
	case ev.Kind == EventUserChanged && ev.UserID != 0:
		gone := s.creds.TakeDroppedBrowser(ev.UserID)
		s.unbind(ctx, gone)
		if len(gone) > 0 && !ev.Remote {
			// Not to be read back at a node's next reload.
			if _, err := s.st.ClearWebSoftphones(ctx, ev.UserID); err != nil {
				s.log.Error("softphone credentials of a disabled user not cleared", "user", ev.UserID, "err", err)
			}
		}
	}
}

// browserUserID is the user behind a browser credential's owner ID.
func browserUserID(ownerID string) int64 {
	id, _, _ := strings.Cut(ownerID, ".")
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}
