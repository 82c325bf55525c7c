package prov

import (
	"context"
	"io"
	"time"
)

// Store is the persistence prov needs. prov/store implements it for SQLite
// and PostgreSQL; nothing outside prov/store writes SQL.
//
// Getters return ErrNotFound for a missing object; creators return
// ErrConflict for a taken unique key. Creators fill in the ID.
type Store interface {
	// Ping checks that the database answers (used by /healthz).
	Ping(ctx context.Context) error
	// Close flushes and closes the database.
	Close() error
	// WithTx runs fn with a Store bound to one transaction: all or nothing.
	WithTx(ctx context.Context, fn func(tx Store) error) error
	// Backup writes a consistent copy of the database to path while serving.
	Backup(ctx context.Context, path string) error

	SiteStore
	UserStore
	DeviceStore
	SessionStore
	BindingStore
	UploadStore
	LeaseStore
	HistoryStore
	AdminStore
	PasswordTokenStore
	VoicemailStore
	WebSessionStore
	ParkStore
	MediaStore
}

// SiteStore keeps sites.
type SiteStore interface {
	CreateSite(ctx context.Context, s *Site) error
	UpdateSite(ctx context.Context, s *Site) error
	GetSite(ctx context.Context, id int64) (Site, error)
	SiteByName(ctx context.Context, name string) (Site, error)
	ListSites(ctx context.Context) ([]Site, error)
}

// UserQuery selects users for a list view.
type UserQuery struct {
	// Search matches user name, first/last name and email (substring, case-insensitive).
	Search string
	Status UserStatus
	Offset int
	Limit  int
}

// UserStore keeps users and their numbers.
type UserStore interface {
	CreateUser(ctx context.Context, u *User) error
	UpdateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, username string) (User, error)
	GetUserByID(ctx context.Context, id int64) (User, error)
	// ListUsers returns one page and the total that matches.
	ListUsers(ctx context.Context, q UserQuery) ([]User, int, error)
	CountUsers(ctx context.Context) (int, error)

	// AssignNumber gives number to user; ErrConflict if another user has it.
	AssignNumber(ctx context.Context, number string, userID int64) error
	UnassignNumber(ctx context.Context, number string) error
	NumbersOf(ctx context.Context, userID int64) ([]string, error)
	UserByNumber(ctx context.Context, number string) (User, error)
	// AllNumbers maps every assigned number to its user ID (registrar and proxy caches).
	AllNumbers(ctx context.Context) (map[string]int64, error)

	ListContacts(ctx context.Context, userID int64) ([]Contact, error)
	// ReplaceContacts swaps a user's whole directory in one transaction.
	ReplaceContacts(ctx context.Context, userID int64, cs []Contact) error
}

// DeviceQuery selects devices for a list view.
type DeviceQuery struct {
	Search string
	Offset int
	Limit  int
}

// DeviceStore keeps handsets.
type DeviceStore interface {
	CreateDevice(ctx context.Context, d *Device) error
	// UpdateDevice writes what an admin or an assignment owns; it leaves
	// the last sighting, the passwords and a deployed/not-deployed status
	// as their own statements wrote them (it may set pending or denied, and
	// move a device out of those).
	UpdateDevice(ctx context.Context, d *Device) error
	GetDevice(ctx context.Context, mac string) (Device, error)
	GetDeviceByID(ctx context.Context, id int64) (Device, error)
	ListDevices(ctx context.Context, q DeviceQuery) ([]Device, int, error)
	// NoteDeviceSeen records the device's last sighting (time and address)
	// unless a later one is recorded; a missing device is no error.
	NoteDeviceSeen(ctx context.Context, mac string, at time.Time, ip string) error
	// MarkDeployed sets a not-yet-deployed (or deployed) device deployed,
	// with its last-seen time and address, touching no other column.
	MarkDeployed(ctx context.Context, id int64, at time.Time, ip string) (bool, error)
	// MarkCredsDelivered records the one unauthenticated delivery of the
	// device's provisioning credentials, and the user whose remote login
	// on it waits for verification (0: none); false if they went out before.
	MarkCredsDelivered(ctx context.Context, id int64, at time.Time, addr string, heldFor int64) (bool, error)
	// VerifyDevice clears the held user and the last conflict.
	VerifyDevice(ctx context.Context, id int64) error
	// SetCredsAddr records the address the device last authenticated from.
	SetCredsAddr(ctx context.Context, id int64, addr string) error
	// RecordConflict keeps c as the device's last identity conflict unless
	// one was kept after since; it reports whether it did.
	RecordConflict(ctx context.Context, id int64, c IdentityConflict, since time.Time) (bool, error)
	// ResetDeviceCredentials sets new provisioning credentials and device
	// account password to hand out once more, clearing the delivery and the
	// last conflict.
	ResetDeviceCredentials(ctx context.Context, id int64, provPassword, sipPassword string, at time.Time) error
	CountDevices(ctx context.Context) (int, error)
}

// SessionQuery selects sessions; zero fields match everything.
type SessionQuery struct {
	UserID     int64
	DeviceID   int64
	ActiveOnly bool
	Limit      int
}

// SessionStore keeps login sessions, active and ended.
type SessionStore interface {
	CreateSession(ctx context.Context, s *Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	// EndSession records the end once; ending an ended session returns ErrNotFound.
	EndSession(ctx context.Context, id string, at time.Time, reason EndReason) error
	TouchSession(ctx context.Context, id string, at time.Time) error
	ListSessions(ctx context.Context, q SessionQuery) ([]Session, error)

	// DeviceSignals returns what the reboot-versus-logout decision
	// remembers of a device; ErrNotFound when nothing is.
	DeviceSignals(ctx context.Context, deviceID int64) (DeviceSignals, error)
	// PutDeviceSignals replaces them.
	PutDeviceSignals(ctx context.Context, s DeviceSignals) error
	// MarkDeviceSync sets only SyncAt and SyncFetchedAt, keeping the rest.
	MarkDeviceSync(ctx context.Context, deviceID int64, syncAt, fetchedAt time.Time) error
	// LoginState reads the user and the active sessions of the user or on
	// the device, newest first.
	LoginState(ctx context.Context, userID, deviceID, siteID int64) (LoginState, error)
	// StartSession creates the session and adds its audit event in one
	// transaction.
	StartSession(ctx context.Context, s *Session, audit *AuditEvent) error

	// PutNativeLogout records that user's native session on the device
	// ended at at (the refusal window's start), replacing an earlier one.
	PutNativeLogout(ctx context.Context, deviceID, userID int64, at time.Time) error
	// NativeLogoutAt returns when; ErrNotFound when none is kept.
	NativeLogoutAt(ctx context.Context, deviceID, userID int64) (time.Time, error)
	// ClearNativeLogouts forgets the device's native logouts. It reads
	// first and writes only when there is one: a signed-out phone's every
	// boot fetch asks.
	ClearNativeLogouts(ctx context.Context, deviceID int64) error
	// PruneNativeLogouts forgets those before t.
	PruneNativeLogouts(ctx context.Context, t time.Time) error
	// HoldSync keeps h, replacing what its node held for its device.
	HoldSync(ctx context.Context, h HeldSync) error
	// TakeHeldSyncs removes and returns the device's held check-syncs,
	// node's alone or, with node "", every node's: each goes out once.
	TakeHeldSyncs(ctx context.Context, deviceID int64, node string) ([]HeldSync, error)
	// HeldSyncsOf lists the check-syncs node holds (the node starting).
	HeldSyncsOf(ctx context.Context, node string) ([]HeldSync, error)
	// PruneHeldSyncs forgets those due before t.
	PruneHeldSyncs(ctx context.Context, t time.Time) error
}

// LoginState is what a login decides on, read under its locks.
type LoginState struct {
	User     User
	Sessions []Session
	// Site is the phone's (zero when it has none).
	Site Site
}

// BindingStore keeps registrar bindings so they survive a restart.
type BindingStore interface {
	ListBindings(ctx context.Context) ([]Binding, error)
	// SaveBindings upserts and deletes in one transaction (write-behind batches).
	SaveBindings(ctx context.Context, upserts []Binding, deletes []BindingKey) error
}

// ClusterStore is what several hotdeskd nodes sharing one store need
// beyond Store. Both drivers implement it; on SQLite, which
// serves one node, locks and notifications are no-ops.
type ClusterStore interface {
	// Clustered reports a store several nodes may share (PostgreSQL).
	Clustered() bool
	// Lock takes named cluster-wide locks and returns their release.
	Lock(ctx context.Context, names ...string) (func(), error)
	// LockLoginState takes the locks, then reads LoginState (in one round
	// trip where the store can).
	LockLoginState(ctx context.Context, names []string, userID, deviceID, siteID int64) (func(), LoginState, error)
	// Notify sends a payload to every node's Listen.
	Notify(ctx context.Context, payload string) error
	// Listen delivers payloads until ctx ends, calling resync after every
	// (re)connection, since notifications sent meanwhile are lost, and
	// lost whenever the connection is lost or cannot be made.
	Listen(ctx context.Context, fn func(payload string), resync func(ctx context.Context) error, lost func(error)) error
	// HeldBindings are the bindings one node holds.
	HeldBindings(ctx context.Context, holder string) ([]Binding, error)
	// AORBindings are the live bindings of an AOR, whichever node holds them.
	AORBindings(ctx context.Context, aor string, now time.Time) ([]Binding, error)
	// LiveDeviceBindings are the live bindings of a device, whichever node holds them.
	LiveDeviceBindings(ctx context.Context, deviceID int64, now time.Time) ([]Binding, error)
}

// MaxLatestUploads bounds the names of one LatestUploads call.
const MaxLatestUploads = 4

// UploadStore keeps versions of files phones wrote.
type UploadStore interface {
	// PutUpload stores u as the next version of (Owner, Name), keeps the
	// newest keep versions and returns the version number.
	PutUpload(ctx context.Context, u Upload, keep int) (int, error)
	LatestUpload(ctx context.Context, owner, name string) (Upload, error)
	// LatestUploads returns the newest version of each of owner's files
	// named in names (at most MaxLatestUploads), by name: one query where a
	// view needs several.
	LatestUploads(ctx context.Context, owner string, names ...string) ([]Upload, error)
	ListUploads(ctx context.Context, owner string) ([]Upload, error)
	// UploadBytes returns the bytes every kept version of owner's files
	// takes, and those of all owners together.
	UploadBytes(ctx context.Context, owner string) (ownerBytes, total int64, err error)
}

// LeaseStore keeps DHCP leases.
type LeaseStore interface {
	ListLeases(ctx context.Context) ([]Lease, error)
	PutLease(ctx context.Context, l Lease) error
	DeleteLease(ctx context.Context, mac string) error
}

// AuditQuery filters the audit log; zero fields match everything.
type AuditQuery struct {
	Actor  string
	Action string
	Object string
	Since  time.Time
	Limit  int
}

// HistoryStore keeps what history needs: call records and the audit log.
type HistoryStore interface {
	AddCallRecord(ctx context.Context, c *CallRecord) error
	ListCallRecords(ctx context.Context, userID int64, limit int) ([]CallRecord, error)
	AddAudit(ctx context.Context, e *AuditEvent) error
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, error)
	// AddRecording stores a call recording's metadata and sets its ID.
	AddRecording(ctx context.Context, r *Recording) error
	// ListRecordings returns the user's recordings (every one when userID
	// is 0), newest first. Limit 0 means no limit.
	ListRecordings(ctx context.Context, userID int64, limit int) ([]Recording, error)
	GetRecording(ctx context.Context, id int64) (Recording, error)
	DeleteRecording(ctx context.Context, id int64) error
	// ListRecordingsIn returns one page of the recordings in scope, newest
	// first, each with what the rights need of its user, in one query.
	ListRecordingsIn(ctx context.Context, sc RecordingScope) ([]ScopedRecording, error)
}

// AdminStore keeps administrator accounts and API tokens.
type AdminStore interface {
	CreateAdmin(ctx context.Context, a *Admin) error
	UpdateAdmin(ctx context.Context, a *Admin) error
	GetAdmin(ctx context.Context, username string) (Admin, error)
	// SetAdminUserColumns keeps the users-list columns the admin chose.
	SetAdminUserColumns(ctx context.Context, id int64, cols []string) error
	CountAdmins(ctx context.Context) (int, error)
	CreateToken(ctx context.Context, t *APIToken) error
	TokenByHash(ctx context.Context, hash string) (APIToken, error)
	ListTokens(ctx context.Context) ([]APIToken, error)
	RevokeToken(ctx context.Context, id int64, at time.Time) error
	TouchToken(ctx context.Context, id int64, at time.Time) error
}

// PasswordTokenStore keeps the password links sent by e-mail.
type PasswordTokenStore interface {
	// CreatePasswordToken inserts t and sets its ID; links long expired
	// may be deleted on the way.
	CreatePasswordToken(ctx context.Context, t *PasswordToken) error
	// PasswordTokenByHash returns the link, spent and expired ones included.
	PasswordTokenByHash(ctx context.Context, hash string) (PasswordToken, error)
	// UsePasswordToken spends the link once; ErrNotFound when it is
	// missing, spent or expired at at.
	UsePasswordToken(ctx context.Context, id int64, at time.Time) error
	// SpendPasswordTokens spends every unspent link of the user.
	SpendPasswordTokens(ctx context.Context, userID int64, at time.Time) error
}

// VoicemailStore keeps voicemail messages' metadata (the audio is a file, and
// on nodes sharing the store a MediaStore object too).
type VoicemailStore interface {
	// AddVoicemail inserts v and sets its ID; CreatedAt defaults to now.
	AddVoicemail(ctx context.Context, v *Voicemail) error
	GetVoicemail(ctx context.Context, id int64) (Voicemail, error)
	// ListVoicemails returns the user's messages, newest first.
	ListVoicemails(ctx context.Context, userID int64) ([]Voicemail, error)
	// MarkVoicemailHeard sets HeardAt once; ErrNotFound for no message.
	MarkVoicemailHeard(ctx context.Context, id int64, at time.Time) error
	DeleteVoicemail(ctx context.Context, id int64) error
	// VoicemailBytes is what the user's messages take, and all users'.
	VoicemailBytes(ctx context.Context, userID int64) (user, total int64, err error)
	// VoicemailsBefore are the messages created before t, oldest first,
	// at most limit (retention).
	VoicemailsBefore(ctx context.Context, t time.Time, limit int) ([]Voicemail, error)
}

// ParkStore keeps the call park slots occupied on every node.
type ParkStore interface {
	// ClaimParkSlot records p's slot as occupied by p.Node: a conditional
	// insert, ErrConflict while another node holds it since staleBefore
	// (a row older is a dead node's, taken over) and that node was seen
	// (TouchNode) since deadBefore (a node silent since is dead; one never
	// seen is judged by staleBefore alone). The same node may claim again
	// (its own calls are guarded in its memory).
	ClaimParkSlot(ctx context.Context, p ParkedCall, staleBefore, deadBefore time.Time) error
	// GetParkSlot returns the slot's row, with when its node was last seen
	// (zero if never); ErrNotFound when free.
	GetParkSlot(ctx context.Context, slot string) (ParkedCall, error)
	// TouchNode records that node is alive at at (its heartbeat).
	TouchNode(ctx context.Context, node string, at time.Time) error
	// ReleaseParkSlot frees the slot if node holds it.
	ReleaseParkSlot(ctx context.Context, slot, node string) error
	// ReleaseNodeParkSlots frees every slot node holds (it restarted and
	// lost its calls).
	ReleaseNodeParkSlots(ctx context.Context, node string) error
}

// MediaObject is audio kept in the store (see MediaStore).
type MediaObject struct {
	Kind, Name string
	Size       int64
	// Chunks is how many parts of at most MediaChunkBytes hold it.
	Chunks  int
	Created time.Time
}

// MediaChunkBytes is the size of a stored media object's parts: small
// enough that serving one holds little memory, large enough that a
// ten-minute message is ten rows.
const MediaChunkBytes = 256 << 10

// MediaStore keeps audio (voicemail messages, greetings, recordings) for
// nodes sharing the store: named by kind and name, written whole in one
// transaction, read a chunk at a time.
type MediaStore interface {
	// PutMedia stores what r holds under (kind, name), replacing what was
	// there; readers see the old object or the whole new one.
	PutMedia(ctx context.Context, kind, name string, r io.Reader, at time.Time) (MediaObject, error)
	// GetMedia returns an object's header; ErrNotFound when none.
	GetMedia(ctx context.Context, kind, name string) (MediaObject, error)
	// MediaChunk returns part seq (from 0) of an object; ErrNotFound when
	// it is missing.
	MediaChunk(ctx context.Context, kind, name string, seq int) ([]byte, error)
	// DeleteMedia removes an object and its chunks; none is no error.
	DeleteMedia(ctx context.Context, kind, name string) error
	// ListMedia returns up to limit objects of kind created before t,
	// oldest first.
	ListMedia(ctx context.Context, kind string, before time.Time, limit int) ([]MediaObject, error)
}

// interactiveKey marks a context as a person's request.
type interactiveKey struct{}

// Interactive marks ctx as a person waiting on the answer (an API login, an
// admin page): a store that can serves its reads from connections the
// phones' traffic never takes, so a boot storm's thousands of provisioning
// reads do not queue in front of a login's twenty.
func Interactive(ctx context.Context) context.Context {
	return context.WithValue(ctx, interactiveKey{}, true)
}

// IsInteractive reports whether ctx was marked by Interactive.
func IsInteractive(ctx context.Context) bool {
	v, _ := ctx.Value(interactiveKey{}).(bool)
	return v
}
