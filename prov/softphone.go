package prov

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"hotdesk/prov/auth"
)

// OwnerBrowser owns the SIP credential minted for one portal session's
// softphone: "<user id>.<session tag>", so revoking it unbinds that browser
// only, never the user's desk phones or permanent account.
const OwnerBrowser OwnerKind = "browser"

// SoftphoneLine is what the portal's softphone registers with: the user's
// number as AOR, a digest account that lives as long as the portal session.
type SoftphoneLine struct {
	Username string    `json:"username"`
	Password string    `json:"password"`
	Number   string    `json:"number"`
	Expires  time.Time `json:"expires"`
}

// Softphone mints and revokes the browser softphone's credentials.
type Softphone struct {
	creds *Credentials
	reg   Registrar
	mgr   *Manager
	log   *slog.Logger
	now   func() time.Time

	mu sync.Mutex
	// owners maps a portal session's tag to the owner of its credential.
	owners map[string]Owner
}

// NewSoftphone builds the service over the credentials index, whose
// browser credentials then expire by now. mgr (the audit) may be nil.
func NewSoftphone(creds *Credentials, reg Registrar, mgr *Manager, logger *slog.Logger, now func() time.Time) *Softphone {
	creds.mu.Lock()
	creds.now = now
	creds.mu.Unlock()
	return &Softphone{creds: creds, reg: reg, mgr: mgr, log: logger, now: now, owners: map[string]Owner{}}
}

// sessionTag names a portal session without keeping its cookie value.
func sessionTag(portalSession string) string {
	h := sha256.Sum256([]byte("softphone\x00" + portalSession))
	return hex.EncodeToString(h[:8])
}

// Mint gives u's portal session (its ID, never shown) a credential for
// its softphone, valid until expires; a second Mint for the same session
// replaces the first. Audited.
func (s *Softphone) Mint(ctx context.Context, u User, portalSession string, expires time.Time, a Actor) (SoftphoneLine, error) {
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
	tag := sessionTag(portalSession)
	owner := Owner{OwnerBrowser, strconv.FormatInt(u.ID, 10) + "." + tag}
	line := SoftphoneLine{Username: "web-" + strings.ToLower(auth.RandomSecret(9)), Password: auth.RandomSecret(18),
		Number: nums[0], Expires: expires}
	s.mu.Lock()
	prev := s.owners[tag]
	s.owners[tag] = owner
	s.mu.Unlock()
	if !prev.IsZero() { // the page was reloaded: its old registration goes with the old credential
		s.creds.Revoke(prev)
		if s.reg != nil {
			if _, err := s.reg.Unbind(ctx, prev); err != nil {
				s.log.Warn("softphone unbind failed", "owner", prev, "err", err)
			}
		}
	}
	s.creds.putBrowser(SIPCredential{Username: line.Username, Password: line.Password, Kind: OwnerBrowser,
		OwnerID: owner.ID, AORs: []string{line.Number}, UserID: u.ID}, expires)
	if s.mgr != nil {
		s.mgr.Audit(ctx, a, "softphone.credential", UserObject(u.Username), nil,
			map[string]any{"sip_user": line.Username, "expires": expires.UTC().Format(time.RFC3339)})
	}
	return line, nil
}

// Revoke ends the softphone credential of a portal session (sign-out,
// expiry) and unbinds what it registered. Safe for a session without one.
func (s *Softphone) Revoke(ctx context.Context, portalSession string) {
	tag := sessionTag(portalSession)
	s.mu.Lock()
	owner := s.owners[tag]
	delete(s.owners, tag)
	s.mu.Unlock()
	if owner.IsZero() {
		return
	}
	s.creds.Revoke(owner)
	if s.reg != nil {
		if _, err := s.reg.Unbind(ctx, owner); err != nil {
			s.log.Warn("softphone unbind failed", "owner", owner, "err", err)
		}
	}
}

// onUserChanged unbinds at once the softphones of a user whose browser
// credentials the index dropped (disabled, or the softphone taken away):
// without it their registration would ring on until it expired. It runs
// after the credentials rule (subscription order).
func (s *Softphone) onUserChanged(ctx context.Context, ev Event) {
	if ev.Kind != EventUserChanged || ev.UserID == 0 {
		return
	}
	var gone []Owner
	s.mu.Lock()
	for tag, o := range s.owners {
		if browserUserID(o.ID) == ev.UserID && !s.creds.hasBrowser(o) {
			gone = append(gone, o)
			delete(s.owners, tag)
		}
	}
	s.mu.Unlock()
	for _, o := range gone {
		if s.reg == nil {
			continue
		}
		if _, err := s.reg.Unbind(ctx, o); err != nil {
			s.log.Warn("softphone unbind failed", "component", "softphone", "owner", o, "err", err)
		}
	}
}

// browserUserID is the user behind a browser credential's owner ID.
func browserUserID(ownerID string) int64 {
	id, _, _ := strings.Cut(ownerID, ".")
	n, _ := strconv.ParseInt(id, 10, 64)
	return n
}
