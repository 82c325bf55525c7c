package prov

import (
	"net"
	"strconv"
	"strings"
	"time"
)

// Access is a user's access level to one portal menu.
type Access string

// Portal access levels.
const (
	AccessNone  Access = "none"
	AccessRead  Access = "read"
	AccessWrite Access = "write"
)

// UserKind tells a person from a common-area profile (lobby, conference room).
type UserKind string

// User kinds.
const (
	KindPerson     UserKind = "person"
	KindCommonArea UserKind = "common_area"
)

// UserStatus is active or disabled; users are never deleted.
type UserStatus string

// User statuses.
const (
	StatusActive   UserStatus = "active"
	StatusDisabled UserStatus = "disabled"
)

// DeviceKind says whether hotdesk provisions the phone or only shows its settings.
type DeviceKind string

// Device kinds.
const (
	DeviceManaged    DeviceKind = "managed"
	DeviceThirdParty DeviceKind = "third_party"
)

// DeviceStatus follows what the phone does.
type DeviceStatus string

// Device statuses.
const (
	DeviceNotDeployed DeviceStatus = "not_deployed"
	DeviceDeployed    DeviceStatus = "deployed"
	DevicePending     DeviceStatus = "pending_approval"
	DeviceDenied      DeviceStatus = "denied"
)

// LoginPolicy is a site's hot-desking policy, rendered to phones as prov.login.*.
type LoginPolicy struct {
	Enabled bool `json:"enabled"`
	// Required locks a logged-out phone: it may call only authorized and emergency numbers.
	Required bool `json:"required"`
	// AutomaticLogout is the idle time in minutes after which a session ends; 0 = never.
	AutomaticLogout int    `json:"automatic_logout"`
	Persistent      bool   `json:"persistent"`
	DefaultUser     string `json:"default_user"`
	DefaultOnly     bool   `json:"default_only"`
	// OnePerUser is replace (default), deny or allow.
	OnePerUser string `json:"one_per_user"`
	// MaxSessionMinutes ends any session after this long; 0 = no limit.
	MaxSessionMinutes int `json:"max_session_minutes"`
	// DailyLogout is an "HH:MM" local time at which every session ends; "" = none.
	DailyLogout string `json:"daily_logout"`
}

// AuthorizedNumber is one of the (at most 5) numbers a locked phone may call.
type AuthorizedNumber struct {
	Description string `json:"description"`
	Number      string `json:"number"`
}

// MaxAuthorizedNumbers is the limit the phones' phoneLock.authorized.N.* allows.
const MaxAuthorizedNumbers = 5

// FeatureCodes are the codes dialled on a phone to log in and out.
type FeatureCodes struct {
	Login  string `json:"login"`
	Logout string `json:"logout"`
	// DND toggles the caller's do-not-disturb; Forward followed by a
	// target forwards all their calls there, alone it ends forwarding.
	// The phones' DND and forward keys dial them ("" for none).
	DND     string `json:"dnd,omitempty"`
	Forward string `json:"forward,omitempty"`
	// Voicemail dials the caller's own mailbox ("" for none).
	Voicemail string `json:"voicemail,omitempty"`
	// Park followed by a slot digit 1-9 parks the call on that slot (a
	// phone's blind transfer to it) or, when a call is parked there,
	// picks it up ("" for none). A BLF key on the code+slot shows it.
	Park string `json:"park,omitempty"`
}

// Trunk is a site's upstream SIP provider: the site's phones call numbers
// through it instead of the configured sip.proxy.trunk (Address "" : that
// one). Username and Password answer its challenges; hotdesk registers
// with the configured trunk only.
type Trunk struct {
	// Address is host[:port] (5060 when none), or a sip: URI of one.
	Address  string `json:"address"`
	Username string `json:"username"`
	Password string `json:"password"`
}

// HostPort is the trunk's address as host:port (5060 by default); ok is
// false for one that does not parse.
func (t Trunk) HostPort() (string, bool) {
	a := strings.TrimPrefix(strings.TrimSpace(t.Address), "sip:")
	if a == "" || strings.ContainsAny(a, " \t\r\n;?@/") {
		return "", false
	}
	if h, p, err := net.SplitHostPort(a); err == nil {
		if n, err := strconv.Atoi(p); err != nil || h == "" || n <= 0 || n > 65535 {
			return "", false
		}
		return a, true
	}
	if strings.Contains(strings.Trim(a, "[]"), ":") && !strings.HasPrefix(a, "[") {
		return "", false // a bare IPv6 address needs brackets
	}
	return net.JoinHostPort(strings.Trim(a, "[]"), "5060"), true
}

// Site is one office: domain, locale, login policy and call restrictions.
type Site struct {
	ID           int64              `json:"id"`
	Name         string             `json:"name"`
	Domain       string             `json:"domain"`
	TimeZone     string             `json:"time_zone"`
	Language     string             `json:"language"`
	Subnets      []string           `json:"subnets"`
	Login        LoginPolicy        `json:"login"`
	Authorized   []AuthorizedNumber `json:"authorized"`
	Emergency    []string           `json:"emergency"`
	FeatureCodes FeatureCodes       `json:"feature_codes"`
	Trunk        Trunk              `json:"trunk"`
	// Params are site-level config parameters (the "site" precedence layer).
	Params    map[string]string `json:"params"`
	UpdatedAt time.Time         `json:"updated_at"`
	// ProfileDirs are where the site's phones keep user profiles, contact
	// directories and call lists on the server ("" : the root).
	ProfileDirs ProfileDirs `json:"profile_dirs"`
}

// ProfileDirs are the master file's USER_PROFILES_DIRECTORY,
// CONTACTS_DIRECTORY and CALL_LISTS_DIRECTORY: a phone asks for
// <dir>/<user>.cfg, <dir>/<MAC>-directory.xml, <dir>/<MAC>-calls.xml.
type ProfileDirs struct {
	UserProfiles string `json:"user_profiles"`
	Contacts     string `json:"contacts"`
	CallLists    string `json:"call_lists"`
}

// PortalAccess is what a user may do in their own portal.
type PortalAccess struct {
	Enabled      bool   `json:"enabled"`
	Profile      Access `json:"profile"`
	CallHandling Access `json:"call_handling"`
	Directory    Access `json:"directory"`
	Buttons      Access `json:"buttons"`
	// Reporting is the historical call reporting: a summary of recent
	// calls by all users (None by default; Read shows it).
	Reporting Access `json:"reporting"`
	// CallOperations is what the admin allows the user to do with calls
	// from the portal: CallOpsNone ("" too), CallOpsControl (click-to-dial,
	// hold, transfer and hang up on their desk phone), CallOpsSoftphone (the
	// browser softphone) or CallOpsBoth.
	CallOperations string `json:"call_operations,omitempty"`
	// CallMode is the user's own pick among those ("": all allowed).
	CallMode string `json:"call_mode,omitempty"`
	// RecordCalls records the user's softphone calls (on the media bridge).
	RecordCalls bool `json:"record_calls,omitempty"`
	// Recordings is the access to their own recordings: Read replays,
	// Write also downloads. The next three widen it as seed 002 does:
	// recordings of users of the same site (the model's only group), of
	// calls of the numbers in RecordingsNumbers, and all recordings.
	Recordings       Access `json:"recordings,omitempty"`
	RecordingsGroup  Access `json:"recordings_group,omitempty"`
	RecordingsOthers Access `json:"recordings_others,omitempty"`
	// RecordingsNumbers is a comma-separated list (a string keeps the
	// struct comparable): a recording is theirs if its user has one of
	// these numbers or its other party is one.
	RecordingsNumbers string `json:"recordings_numbers,omitempty"`
	RecordingsAll     Access `json:"recordings_all,omitempty"`
	// Wizard runs the first-login wizard (password, language, phone
	// basics) at the user's next sign-ins until they finish it; off unless
	// the admin turns it on for the user (seed 002).
	Wizard bool `json:"wizard"`
	// WizardDone is set once the user finished the first-login wizard.
	WizardDone bool `json:"wizard_done"`
}

// CallHandling is a user's call routing, honoured by the proxy wherever they are logged in.
type CallHandling struct {
	DND             bool   `json:"dnd"`
	ForwardAlways   string `json:"forward_always"`
	ForwardBusy     string `json:"forward_busy"`
	ForwardNoAnswer string `json:"forward_no_answer"`
	NoAnswerSeconds int    `json:"no_answer_seconds"`
	Twinning        string `json:"twinning"`
	// VoicemailOff sends unanswered calls nowhere instead of to the
	// user's mailbox (voicemail is on by default).
	VoicemailOff bool `json:"voicemail_off,omitempty"`
}

// Voicemail is one message in a user's mailbox.
type Voicemail struct {
	ID       int64         `json:"id"`
	UserID   int64         `json:"user_id"`
	From     string        `json:"from"`
	Path     string        `json:"-"`
	Duration time.Duration `json:"duration"`
	Size     int64         `json:"size"`
	Created  time.Time     `json:"created"`
	// Heard is zero while the message is new.
	Heard time.Time `json:"heard"`
}

// ParkedCall is a call park slot occupied on some node of a cluster.
type ParkedCall struct {
	// Slot is the slot's name (ParkSlot's), unique across sites.
	Slot   string
	SiteID int64
	// Node parked the call; Addr is where its proxy takes a pickup
	// another node hands over.
	Node     string
	Addr     string
	ParkedAt time.Time
	// NodeSeen is Node's last heartbeat (GetParkSlot; zero if none).
	NodeSeen time.Time
}

// User is a person or a common-area profile.
type User struct {
	ID               int64      `json:"id"`
	Username         string     `json:"username"`
	FirstName        string     `json:"first_name"`
	LastName         string     `json:"last_name"`
	Email            string     `json:"email"`
	Language         string     `json:"language"`
	DirectoryScope   string     `json:"directory_scope"`
	Custom1          string     `json:"custom1"`
	Custom2          string     `json:"custom2"`
	Custom3          string     `json:"custom3"`
	Kind             UserKind   `json:"kind"`
	ResponsibleEmail string     `json:"responsible_email"`
	Status           UserStatus `json:"status"`
	SiteID           int64      `json:"site_id"`
	// PasswordHash is the argon2id PHC string of the login password.
	PasswordHash string `json:"-"`
	// LoginHA1 are digest HA1s of the login password, keyed by algorithm
	// ("MD5", "SHA-256"), for the doors that authenticate with HTTP digest.
	LoginHA1 map[string]string `json:"-"`
	// SIPPassword is the permanent SIP account's secret (softphones,
	// third-party phones); it must be shown to the user, so it is kept.
	SIPPassword  string            `json:"-"`
	Portal       PortalAccess      `json:"portal"`
	CallHandling CallHandling      `json:"call_handling"`
	Params       map[string]string `json:"params"`
	// Keys are the features on the user's phone keys (button programming),
	// after the keys of their lines.
	Keys      []FeatureKey `json:"keys"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

// Device is a handset, managed or third-party.
type Device struct {
	ID             int64        `json:"id"`
	MAC            string       `json:"mac"`
	Vendor         string       `json:"vendor"`
	Model          string       `json:"model"`
	Firmware       string       `json:"firmware"`
	SiteID         int64        `json:"site_id"`
	AssignedUserID int64        `json:"assigned_user_id"`
	Kind           DeviceKind   `json:"kind"`
	Status         DeviceStatus `json:"status"`
	DeploymentPIN  string       `json:"-"`
	SecurityPIN    string       `json:"-"`
	LastSeen       time.Time    `json:"last_seen"`
	LastIP         string       `json:"last_ip"`
	// ProvUser/ProvPassword are the device's HTTP digest credentials for provisioning.
	ProvUser     string `json:"-"`
	ProvPassword string `json:"-"`
	// SIPUser/SIPPassword are the device account registered while the phone is locked.
	SIPUser     string             `json:"sip_user"`
	SIPPassword string             `json:"-"`
	Authorized  []AuthorizedNumber `json:"authorized"`
	// Params are the admin's per-device overrides (the "web/device" layer).
	Params    map[string]string `json:"params"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// CredsDeliveredAt is when the provisioning credentials went out, the
	// one time they are handed out without authentication; from then on
	// the device's files need them (the secure bootstrap).
	CredsDeliveredAt time.Time `json:"creds_delivered_at"`
	// CredsAddr is where the credentials live: the address they went to,
	// then the last one that authenticated with them.
	CredsAddr string `json:"creds_addr,omitempty"`
	// CredsHeldFor is the user whose login, made away from the phone before
	// the credentials went out, waits until the phone is verified
	// (deployment-PIN claim or an admin): whoever fetched them first is not
	// known to be that phone.
	CredsHeldFor int64 `json:"creds_held_for_user,omitempty"`
	// Conflict is the last time a second device presented this MAC.
	Conflict IdentityConflict `json:"identity_conflict"`
}

// IdentityConflict is a request for a device's files that the device
// itself cannot have made: wrong provisioning credentials, or none from an
// address other than the phone's once it holds them.
type IdentityConflict struct {
	At     time.Time `json:"at"`
	From   string    `json:"from,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// Identity conflict reasons.
const (
	ConflictWrongCredentials = "wrong_credentials"
	ConflictNoCredentials    = "no_credentials_elsewhere"
)

// Session is one person logged in on one handset.
type Session struct {
	ID           string    `json:"id"`
	UserID       int64     `json:"user_id"`
	DeviceID     int64     `json:"device_id"`
	Door         Door      `json:"door"`
	StartedAt    time.Time `json:"started_at"`
	LastActivity time.Time `json:"last_activity"`
	Persistent   bool      `json:"persistent"`
	EndedAt      time.Time `json:"ended_at"`
	EndReason    EndReason `json:"end_reason"`
	// SIPUser/SIPPassword are the digest credentials minted for this session's line.
	SIPUser     string `json:"-"`
	SIPPassword string `json:"-"`
}

// Active reports whether the session has not ended.
func (s Session) Active() bool { return s.EndedAt.IsZero() }

// Binding is a registrar binding as stored; the sip room owns its semantics.
type Binding struct {
	AOR       string    `json:"aor"`
	Contact   string    `json:"contact"`
	Instance  string    `json:"instance"`
	RegID     string    `json:"reg_id"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	Expires   time.Time `json:"expires"`
	Q         float64   `json:"q"`
	Path      []string  `json:"path"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	UserAgent string    `json:"user_agent"`
	// Owner holds the credential that made the binding.
	Owner Owner  `json:"owner"`
	Node  string `json:"node"`
	// Holder is the cluster node (cluster.node) whose registrar holds the
	// binding and reaches the phone; "" on a single node.
	Holder    string    `json:"holder,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	// AuthUser is the digest username that created the binding, to answer
	// the phone's challenge to a NOTIFY.
	AuthUser string `json:"-"`
	// DeviceID is the handset the binding reaches, whichever credential
	// made it (0 when unknown: a softphone).
	DeviceID int64 `json:"device_id"`
	// LocalHost is the host the phone addressed, for the Via of a request
	// sent from a wildcard listener (not stored).
	LocalHost string `json:"-"`
}

// DeviceSignals is what the reboot-versus-logout decision remembers of a
// handset, kept in the store so that a restart decides the same.
type DeviceSignals struct {
	DeviceID int64
	// SyncAt is when the phone was last told to re-provision (a check-sync,
	// or the native login it is loading) and has not yet registered again
	// after re-fetching: a reboot or line change meanwhile is the phone
	// applying it, not the user leaving. Zero when none is pending.
	SyncAt time.Time
	// SyncFetchedAt is when the phone fetched its boot file for that
	// check-sync (zero: not yet).
	SyncFetchedAt time.Time
	// BootAt is a boot-file fetch not yet followed by a
	// registration, which will tell a reboot from a reload.
	BootAt time.Time
	// LineDownSession is a login session whose line the phone took down
	// itself at LineDownAt; the next signal decides between a reboot and
	// the user logging out on the phone.
	LineDownSession string
	LineDownAt      time.Time
	// Reach is the binding the phone removed, to reach it afterwards.
	Reach     *Binding
	UpdatedAt time.Time
	// HeldSync: some node holds a check-sync for the device (HeldSync),
	// read with the signals so that the registration that releases it
	// costs no read of its own. PutDeviceSignals ignores it.
	HeldSync bool
}

// HeldSync is a check-sync a node held while the phone applied the
// previous one, kept in the store so that the node the phone registers
// with next, or the node itself restarted, sends it.
type HeldSync struct {
	DeviceID int64
	// Node is the cluster node that held it.
	Node string
	// Due is when it goes out at the latest.
	Due time.Time
	// Targets are the lines logouts captured meanwhile, each with the
	// password its challenge takes; Secrets those passwords by digest
	// username.
	Targets []HeldTarget
	Secrets map[string]string
}

// HeldTarget is one captured line of a held check-sync.
type HeldTarget struct {
	Binding  Binding
	Password string
}

// BindingKey identifies a binding for deletion.
type BindingKey struct {
	AOR     string
	Contact string
	// Holder, when set, deletes the row only while that node holds it:
	// a node letting go of a binding must not delete one another node
	// has taken over since (the phone moved).
	Holder string
}

// Upload is one stored version of a file a phone wrote.
type Upload struct {
	// Owner is UserObject(username) or DeviceObject(mac), spelled.
	Owner     string    `json:"owner"`
	Name      string    `json:"name"`
	Version   int       `json:"version"`
	Data      []byte    `json:"-"`
	SHA256    string    `json:"sha256"`
	Size      int       `json:"size"`
	CreatedAt time.Time `json:"created_at"`
}

// Contact is one entry of a user's personal directory.
type Contact struct {
	UserID    int64  `json:"-"`
	Position  int    `json:"position"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Number    string `json:"number"`
	SpeedDial int    `json:"speed_dial"`
	Label     string `json:"label"`
	// Phone are the fields only a phone edits. The contacts table has no
	// columns for them: they come from the user's latest directory upload
	// (contactsWithPhoneFields), so the API and the portal neither show
	// nor take them.
	Phone ContactPhone `json:"-"`
}

// ContactPhone are a directory item's fields beyond name, number, speed
// dial and label, as the Polycom directory file spells them ("" when
// absent): what the phone does with calls from the contact.
type ContactPhone struct {
	// Protocol (pt): SIP, H323 or Unspecified.
	Protocol string
	// RingType (rt): the ring tone for the contact's calls.
	RingType string
	// DivertContact (dc): where AutoDivert sends the contact's calls.
	DivertContact string
	// AutoDivert (ad), AutoReject (ar): "1" diverts or rejects the contact's calls.
	AutoDivert string
	AutoReject string
	// BuddyWatch (bw): "1" watches the contact's presence; BuddyBlock (bb)
	// "1" keeps the contact from watching this user's.
	BuddyWatch string
	BuddyBlock string
}

// Lease is a DHCP lease as stored; the dhcp room owns its semantics.
type Lease struct {
	MAC         string    `json:"mac"`
	IP          string    `json:"ip"`
	Hostname    string    `json:"hostname"`
	VendorClass string    `json:"vendor_class"`
	Expires     time.Time `json:"expires"`
	State       string    `json:"state"`
}

// CallRecord is one call attempt through the proxy.
type CallRecord struct {
	ID        int64     `json:"id"`
	CallID    string    `json:"call_id"`
	Owner     Owner     `json:"owner"`
	UserID    int64     `json:"user_id"`
	DeviceID  int64     `json:"device_id"`
	SessionID string    `json:"session_id"`
	Locked    bool      `json:"locked"`
	From      string    `json:"from"`
	To        string    `json:"to"`
	Route     string    `json:"route"`
	Result    int       `json:"result"`
	Start     time.Time `json:"start"`
	Answer    time.Time `json:"answer"`
	End       time.Time `json:"end"`
}

// AuditEvent records one change: who, what, when, before/after, from where.
type AuditEvent struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Object string    `json:"object"`
	Before string    `json:"before,omitempty"`
	After  string    `json:"after,omitempty"`
	Remote string    `json:"remote,omitempty"`
}

// Admin is an administrator account.
type Admin struct {
	ID           int64     `json:"id"`
	Username     string    `json:"username"`
	PasswordHash string    `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	// UserColumns are the users-list columns the admin saved (nil: the defaults).
	UserColumns []string `json:"user_columns,omitempty"`
}

// APIToken is a bearer token for scripts; only its SHA-256 is stored.
type APIToken struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	AdminID int64  `json:"admin_id"`
	Hash    string `json:"-"`
	// Prefix is the secret's first characters, to tell tokens apart.
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt: the token is refused from then on (zero: never, only for
	// tokens a store holds from before expiry existed).
	ExpiresAt  time.Time `json:"expires_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	// RevokedAt: refused from then on (zero: not revoked).
	RevokedAt time.Time `json:"revoked_at"`
}

// Usable reports whether the token authenticates at now.
func (t APIToken) Usable(now time.Time) bool {
	return t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || now.Before(t.ExpiresAt))
}

// PasswordToken is a link that sets a user's password once (welcome,
// reset); only the SHA-256 of its secret is stored.
type PasswordToken struct {
	ID        int64
	UserID    int64
	Hash      string
	Purpose   string
	CreatedAt time.Time
	ExpiresAt time.Time
	// UsedAt: spent, refused from then on (zero: not yet).
	UsedAt time.Time
}
