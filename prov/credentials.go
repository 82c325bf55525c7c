package prov

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SIPCredential is one digest account the registrar and proxy accept.
type SIPCredential struct {
	Username string
	Password string
	// HA1 maps "MD5"/"SHA-256" to H(username:realm:password) for the SIP
	// domain, for a credential whose password is not kept (a browser
	// softphone's).
	HA1  map[string]string
	Kind OwnerKind
	// OwnerID is the device ID, session ID or user ID as text.
	OwnerID string
	// AORs are the canonical user parts this credential may register.
	AORs []string
	// UserID is the user the line belongs to (0 for a device account).
	UserID   int64
	DeviceID int64
}

// Owner is who holds the credential.
func (c SIPCredential) Owner() Owner { return Owner{c.Kind, c.OwnerID} }

// Credentials is the in-memory index of every live SIP credential, built
// from the store at start and kept current by Refresh calls. The registrar
// asks it on every authenticated request, so it never touches the store on
// that path; a revoked credential disappears from it at once.
type Credentials struct {
	store  Store
	mu     sync.RWMutex
	byUser map[string]SIPCredential
	// canonical maps every number (and user name) to the user's canonical
	// AOR user part, their first number.
	canonical map[string]string
	// keysOf remembers which digest usernames an owner holds, for revocation.
	keysOf map[Owner][]string
	// aliasesOf remembers which canonical entries a user put in, for refresh.
	aliasesOf map[int64][]string
	// phoneOf is the third-party phone a user is assigned to: the handset
	// their permanent account's bindings reach.
	phoneOf map[int64]int64
	// browser are the softphone credentials of portal sessions, by digest
	// username: read from the store (their HA1s only) at Reload and on
	// every node's softphone_changed event.
	browser map[string]browserCred
	// droppedBrowser are the owners of browser credentials RefreshUser
	// dropped (a disabled user), for the softphone to unbind.
	droppedBrowser map[int64][]Owner
	now            func() time.Time
}

type browserCred struct {
	cr      SIPCredential
	expires time.Time
	// key is the portal session's (WebSession.Key).
	key string
}

// NewCredentials builds the index from the store.
func NewCredentials(ctx context.Context, st Store) (*Credentials, error) {
	c := &Credentials{store: st, browser: map[string]browserCred{}, droppedBrowser: map[int64][]Owner{}, now: time.Now}
	if err := c.Reload(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Reload rebuilds the whole index from the store.
func (c *Credentials) Reload(ctx context.Context) error {
	users, _, err := c.store.ListUsers(ctx, UserQuery{})
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	nums, err := c.store.AllNumbers(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	devices, _, err := c.store.ListDevices(ctx, DeviceQuery{})
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	sessions, err := c.store.ListSessions(ctx, SessionQuery{ActiveOnly: true})
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	c.mu.RLock()
	now := c.now()
	c.mu.RUnlock()
	webs, err := c.store.ListWebSoftphones(ctx, now)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	numsOf := map[int64][]string{}
	for n, uid := range nums {
		numsOf[uid] = append(numsOf[uid], n)
	}
	byID := make(map[int64]User, len(users))
	for _, u := range users {
		byID[u.ID] = u
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byUser, c.canonical = map[string]SIPCredential{}, map[string]string{}
	c.keysOf, c.aliasesOf, c.phoneOf = map[Owner][]string{}, map[int64][]string{}, map[int64]int64{}
	for _, d := range devices {
		if d.Kind == DeviceThirdParty && d.AssignedUserID != 0 {
			c.phoneOf[d.AssignedUserID] = d.ID
		}
	}
	for _, u := range users {
		c.putUserLocked(u, numsOf[u.ID])
	}
	for _, d := range devices {
		c.putDeviceLocked(d)
	}
	for _, s := range sessions {
		if u, ok := byID[s.UserID]; ok {
			c.putSessionLocked(s, u)
		}
	}
	c.browser = map[string]browserCred{}
	for _, w := range webs {
		if u, ok := byID[w.Softphone.UserID]; ok && u.Status == StatusActive && CanSoftphone(u) {
			c.putBrowserLocked(w)
		}
	}
	return nil
}

// Lookup returns the credential for a digest username.
func (c *Credentials) Lookup(username string) (SIPCredential, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if cr, ok := c.byUser[username]; ok {
		return cr, true
	}
	if b, ok := c.browser[username]; ok && c.now().Before(b.expires) {
		return b.cr, true
	}
	return SIPCredential{}, false
}

// BrowserOwner is the owner of a portal session's softphone credential:
// "<user id>.<session key prefix>.<digest username>", so revoking it
// unbinds that browser's registration only (never the user's desk phones
// or permanent account), and a re-minted credential is a new owner (an
// old one's late revocation on another node leaves the new one bound).
func BrowserOwner(w WebSession) Owner {
	tag := w.Key
	if len(tag) > 16 {
		tag = tag[:16]
	}
	return Owner{OwnerBrowser, strconv.FormatInt(w.Softphone.UserID, 10) + "." + tag + "." + w.Softphone.Username}
}

// SetBrowser makes w's softphone credential the one of its portal session
// (none when w has none), and returns the owners of the ones it replaced.
func (c *Credentials) SetBrowser(w WebSession) []Owner {
	c.mu.Lock()
	defer c.mu.Unlock()
	gone := c.dropBrowserLocked(w.Key, w.Softphone.Username)
	if w.Softphone.Username != "" && c.now().Before(w.Softphone.Expires) {
		c.putBrowserLocked(w)
	}
	return gone
}

// DropBrowser removes the softphone credential of a portal session
// (key) and returns its owners.
func (c *Credentials) DropBrowser(key string) []Owner {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropBrowserLocked(key, "")
}

// dropBrowserLocked removes key's credentials but keep's, and the
// expired ones of every session (bounded by the live portal sessions).
func (c *Credentials) dropBrowserLocked(key, keep string) []Owner {
	var gone []Owner
	now := c.now()
	for k, b := range c.browser {
		if b.key == key && k != keep {
			gone = append(gone, b.cr.Owner())
			delete(c.browser, k)
		} else if !now.Before(b.expires) {
			delete(c.browser, k)
		}
	}
	return gone
}

func (c *Credentials) putBrowserLocked(w WebSession) {
	sp := w.Softphone
	cr := SIPCredential{Username: sp.Username, Kind: OwnerBrowser, OwnerID: BrowserOwner(w).ID, AORs: []string{sp.Number},
		UserID: sp.UserID, HA1: map[string]string{"MD5": sp.HA1MD5, "SHA-256": sp.HA1SHA256}}
	c.browser[sp.Username] = browserCred{cr: cr, expires: sp.Expires, key: w.Key}
}

// TakeDroppedBrowser returns (and forgets) the owners of the user's
// browser credentials RefreshUser dropped.
func (c *Credentials) TakeDroppedBrowser(userID int64) []Owner {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.droppedBrowser[userID]
	delete(c.droppedBrowser, userID)
	return o
}

// Canonical maps a number or user name to the user's canonical AOR user
// part; other user parts (device accounts) are their own canonical form.
func (c *Credentials) Canonical(userPart string) (string, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if v, ok := c.canonical[userPart]; ok {
		return v, true
	}
	if v, ok := c.canonical[strings.TrimPrefix(userPart, "+")]; ok {
		return v, true
	}
	if cr, ok := c.byUser[userPart]; ok && cr.Kind == OwnerDevice {
		return userPart, true
	}
	return "", false
}

// RefreshUser re-reads one user (after a change of numbers, password, status).
func (c *Credentials) RefreshUser(ctx context.Context, userID int64) error {
	u, err := c.store.GetUserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("credentials: user %d: %w", userID, err)
	}
	nums, err := c.store.NumbersOf(ctx, userID)
	if err != nil {
		return fmt.Errorf("credentials: user %d: %w", userID, err)
	}
	sessions, err := c.store.ListSessions(ctx, SessionQuery{UserID: userID, ActiveOnly: true})
	if err != nil {
		return fmt.Errorf("credentials: user %d: %w", userID, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropUserLocked(userID)
	c.putUserLocked(u, nums)
	if u.Status != StatusActive || !CanSoftphone(u) { // disabled, or the softphone taken away
		for k, b := range c.browser {
			if b.cr.UserID == userID {
				c.droppedBrowser[userID] = append(c.droppedBrowser[userID], b.cr.Owner())
				delete(c.browser, k)
			}
		}
	}
	for _, s := range sessions {
		c.dropLocked(SessionOwner(s.ID))
		c.putSessionLocked(s, u)
	}
	return nil
}

// RefreshDevice re-reads one device's account.
func (c *Credentials) RefreshDevice(ctx context.Context, deviceID int64) error {
	d, err := c.store.GetDeviceByID(ctx, deviceID)
	if err != nil {
		return fmt.Errorf("credentials: device %d: %w", deviceID, err)
	}
	c.PutDevice(d)
	return nil
}

// PutDevice indexes d as it is now (its row was just written).
func (c *Credentials) PutDevice(d Device) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(DeviceOwner(d.ID))
	c.putDeviceLocked(d)
	for uid, id := range c.phoneOf {
		if id == d.ID && (d.AssignedUserID != uid || d.Kind != DeviceThirdParty) {
			delete(c.phoneOf, uid)
			c.setUserDeviceLocked(uid, 0)
		}
	}
	if d.Kind == DeviceThirdParty && d.AssignedUserID != 0 {
		c.phoneOf[d.AssignedUserID] = d.ID
		c.setUserDeviceLocked(d.AssignedUserID, d.ID)
	}
}

// setUserDeviceLocked points a user's permanent account at a handset.
func (c *Credentials) setUserDeviceLocked(userID, deviceID int64) {
	for _, k := range c.keysOf[UserOwner(userID)] {
		if cr, ok := c.byUser[k]; ok && cr.Kind == OwnerUser {
			cr.DeviceID = deviceID
			c.byUser[k] = cr
		}
	}
}

// AddSession indexes a new session's minted credentials.
func (c *Credentials) AddSession(s Session, u User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putSessionLocked(s, u)
}

// Revoke removes every credential owner holds at once.
func (c *Credentials) Revoke(owner Owner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dropLocked(owner)
	for k, b := range c.browser {
		if b.cr.Owner() == owner {
			delete(c.browser, k)
		}
	}
}

// HasBrowser reports whether owner's browser credential is in the index.
func (c *Credentials) HasBrowser(owner Owner) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, b := range c.browser {
		if b.cr.Owner() == owner {
			return true
		}
	}
	return false
}

// AORsOf returns a user's canonical AOR user part and aliases.
func (c *Credentials) AORsOf(userID int64) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]string(nil), c.aliasesOf[userID]...)
}

func (c *Credentials) putUserLocked(u User, nums []string) {
	if u.Status != StatusActive || len(nums) == 0 {
		return
	}
	sort.Strings(nums)
	canon := nums[0]
	aliases := append([]string{canon}, u.Username)
	for _, n := range nums {
		c.canonical[n] = canon
		c.canonical[strings.TrimPrefix(n, "+")] = canon
		if n != canon {
			aliases = append(aliases, n)
		}
	}
	c.canonical[u.Username] = canon
	c.aliasesOf[u.ID] = aliases
	if u.SIPPassword == "" {
		return
	}
	// The permanent account's digest user ID is the number without "+".
	cred := SIPCredential{Password: u.SIPPassword, Kind: OwnerUser, OwnerID: strconv.FormatInt(u.ID, 10),
		AORs: []string{canon}, UserID: u.ID, DeviceID: c.phoneOf[u.ID]}
	for _, n := range nums {
		cred.Username = strings.TrimPrefix(n, "+")
		c.putLocked(cred)
	}
}

func (c *Credentials) putDeviceLocked(d Device) {
	if d.SIPUser == "" || d.SIPPassword == "" || d.Status == DeviceDenied {
		return
	}
	c.putLocked(SIPCredential{Username: d.SIPUser, Password: d.SIPPassword, Kind: OwnerDevice,
		OwnerID: strconv.FormatInt(d.ID, 10), AORs: []string{d.SIPUser}, DeviceID: d.ID})
}

func (c *Credentials) putSessionLocked(s Session, u User) {
	if !s.Active() || s.SIPUser == "" || u.Status != StatusActive {
		return
	}
	al := c.aliasesOf[u.ID]
	if len(al) == 0 {
		return
	}
	c.putLocked(SIPCredential{Username: s.SIPUser, Password: s.SIPPassword, Kind: OwnerSession, OwnerID: s.ID,
		AORs: []string{al[0]}, UserID: u.ID, DeviceID: s.DeviceID})
}

func (c *Credentials) putLocked(cr SIPCredential) {
	c.byUser[cr.Username] = cr
	o := cr.Owner()
	c.keysOf[o] = append(c.keysOf[o], cr.Username)
}

func (c *Credentials) dropLocked(owner Owner) {
	for _, k := range c.keysOf[owner] {
		if c.byUser[k].Owner() == owner {
			delete(c.byUser, k)
		}
	}
	delete(c.keysOf, owner)
}

func (c *Credentials) dropUserLocked(userID int64) {
	c.dropLocked(UserOwner(userID))
	for _, a := range c.aliasesOf[userID] {
		delete(c.canonical, a)
		delete(c.canonical, strings.TrimPrefix(a, "+"))
	}
	delete(c.aliasesOf, userID)
}
