package prov

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// Identities: who holds a SIP credential (Owner), who makes a change
// (Actor) and what an audit event is about (Object). Each is a kind and an
// ID; the "<kind>:<id>" text is only their stored and logged spelling,
// built and parsed here and nowhere else.

// OwnerKind says who a SIP credential belongs to.
type OwnerKind string

// Credential owners: a locked phone's device account, a login session, or a
// user's permanent SIP account (softphones, third-party phones).
const (
	OwnerDevice  OwnerKind = "device"
	OwnerSession OwnerKind = "session"
	OwnerUser    OwnerKind = "user"
)

// Owner is who holds a SIP credential and so who made a binding or placed
// a call. It has the shape of sip.Owner; daemon converts between the two.
type Owner struct {
	Kind OwnerKind
	// ID is the device ID, session ID or user ID as text.
	ID string
}

// DeviceOwner is the owner of a device's own account.
func DeviceOwner(id int64) Owner { return Owner{OwnerDevice, strconv.FormatInt(id, 10)} }

// SessionOwner is the owner of a login session's line.
func SessionOwner(id string) Owner { return Owner{OwnerSession, id} }

// UserOwner is the owner of a user's permanent account.
func UserOwner(id int64) Owner { return Owner{OwnerUser, strconv.FormatInt(id, 10)} }

// IsZero reports whether o names nobody.
func (o Owner) IsZero() bool { return o.Kind == "" }

// String is the stored spelling, "<kind>:<id>" ("" for nobody).
func (o Owner) String() string {
	if o.IsZero() {
		return ""
	}
	return string(o.Kind) + ":" + o.ID
}

// ParseOwner reads the stored spelling back; ok is false for text that is
// not "<kind>:<id>" (the zero Owner is returned, as for "").
func ParseOwner(s string) (o Owner, ok bool) {
	k, id, ok := strings.Cut(s, ":")
	if !ok || k == "" {
		return Owner{}, s == ""
	}
	return Owner{OwnerKind(k), id}, true
}

// MarshalText keeps the JSON spelling "<kind>:<id>".
func (o Owner) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// UnmarshalText reads "<kind>:<id>".
func (o *Owner) UnmarshalText(b []byte) error {
	*o, _ = ParseOwner(string(b))
	return nil
}

// ActorKind says what kind of principal made a change.
type ActorKind string

// Actors: the daemon itself, a phone (claim, identity conflict), an
// administrator, an API token, a user, and someone not signed in.
const (
	ActorSystem    ActorKind = "system"
	ActorPhone     ActorKind = "phone"
	ActorAdmin     ActorKind = "admin"
	ActorToken     ActorKind = "token"
	ActorUser      ActorKind = "user"
	ActorAnonymous ActorKind = "anonymous"
)

// Actor is who makes a change and from where, for the audit log. The zero
// Actor is the system.
type Actor struct {
	Kind ActorKind
	// Name is the admin's, token's or user's name ("" for the system, a
	// phone or an anonymous caller).
	Name   string
	Remote string
}

// AdminActor is an administrator acting from remote.
func AdminActor(name, remote string) Actor { return Actor{ActorAdmin, name, remote} }

// UserActor is a user acting from remote.
func UserActor(username, remote string) Actor { return Actor{ActorUser, username, remote} }

// TokenActor is a script using the named API token.
func TokenActor(name, remote string) Actor { return Actor{ActorToken, name, remote} }

// PhoneActor is a phone acting from remote.
func PhoneActor(remote string) Actor { return Actor{Kind: ActorPhone, Remote: remote} }

// String is the audit log's spelling: "admin:<name>", "token:<name>",
// "user:<name>", "phone", "anonymous" or "system".
func (a Actor) String() string {
	switch {
	case a.Kind == "":
		return string(ActorSystem)
	case a.Name == "":
		return string(a.Kind)
	}
	return string(a.Kind) + ":" + a.Name
}

// ObjectKind says what an audit event is about.
type ObjectKind string

// Audited objects.
const (
	ObjectUser    ObjectKind = "user"
	ObjectDevice  ObjectKind = "device"
	ObjectSession ObjectKind = "session"
	ObjectSite    ObjectKind = "site"
	ObjectToken   ObjectKind = "token"
	// ObjectPortal is a portal account name signing in (known or not).
	ObjectPortal ObjectKind = "portal"
	// ObjectUsers is the user list as a whole (an import); it has no ID.
	ObjectUsers ObjectKind = "users"
)

// Object is what an audit event is about.
type Object struct {
	Kind ObjectKind
	ID   string
}

// UserObject is a user, by user name.
func UserObject(username string) Object { return Object{ObjectUser, username} }

// DeviceObject is a device, by MAC.
func DeviceObject(mac string) Object { return Object{ObjectDevice, mac} }

// SessionObject is a login session.
func SessionObject(id string) Object { return Object{ObjectSession, id} }

// SiteObject is a site.
func SiteObject(id int64) Object { return Object{ObjectSite, strconv.FormatInt(id, 10)} }

// TokenObject is an API token, by name.
func TokenObject(name string) Object { return Object{ObjectToken, name} }

// PortalObject is a portal account name signing in.
func PortalObject(name string) Object { return Object{ObjectPortal, name} }

// String is the audit log's spelling, "<kind>:<id>" ("<kind>" without ID).
func (o Object) String() string {
	if o.ID == "" {
		return string(o.Kind)
	}
	return string(o.Kind) + ":" + o.ID
}

// NewAuditEvent is the one way an audit event is made: before and after
// are marshalled to JSON (nil leaves them empty), whatever writes it.
func NewAuditEvent(at time.Time, a Actor, action string, o Object, before, after any) *AuditEvent {
	return &AuditEvent{At: at, Actor: a.String(), Action: action, Object: o.String(), Remote: a.Remote,
		Before: auditJSON(before), After: auditJSON(after)}
}

// auditJSON marshals an audit event's before or after; a value that does
// not marshal is recorded as {"error": …}, never dropped silently.
func auditJSON(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	return string(b)
}
