package sip

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// ErrUnknownUser is returned by Credentials.Credential for a digest username
// that does not exist (or whose credential was revoked).
var ErrUnknownUser = errors.New("sip: unknown digest user")

// OwnerKind says what a credential belongs to.
type OwnerKind string

// The three kinds of credential owners (README "How it works").
const (
	OwnerDevice  OwnerKind = "device"  // a handset's own account: a locked phone
	OwnerSession OwnerKind = "session" // a login session's minted credential
	OwnerUser    OwnerKind = "user"    // a user's permanent SIP account
)

// Owner identifies who created a binding, so Unbind can remove exactly its
// bindings. It has the shape of prov.Owner; daemon converts between the two.
type Owner struct {
	Kind OwnerKind
	ID   string
}

// String is "<kind>:<id>" ("" for nobody), for logs and indexes.
func (o Owner) String() string {
	if o.Kind == "" {
		return ""
	}
	return string(o.Kind) + ":" + o.ID
}

// Credential is one digest account. Either Password (cleartext) or the HA1s
// for the realms hotdesk serves are set; HA1 maps "MD5"/"SHA-256" to the
// hex HA1 = H(username:realm:password) for the realm of Config.Domain.
type Credential struct {
	Username string
	Password string
	HA1      map[string]string
	Owner    Owner
	// AORs are the canonical user parts (extensions) the owner may register.
	AORs []string
	// Device names the handset this credential's bindings reach ("" when
	// none is known, e.g. a softphone): the device account, a login
	// session's line on that handset, or the permanent account of a
	// third-party phone. The registrar copies it onto each binding so the
	// phone can be found whichever line it keeps registered.
	Device string
}

// Credentials is implemented by prov. It is asked on every authenticated
// request, so implementations keep it in memory; a revoked credential must
// fail from the next call on (sip caches nothing but HA1s derived from a
// password, keyed by username and password).
type Credentials interface {
	// Credential returns the account for a digest username, or an error
	// wrapping ErrUnknownUser.
	Credential(ctx context.Context, username string) (Credential, error)
	// CanonicalUser maps an AOR user part ("alice" or "1001") to the
	// canonical one ("1001"); ok is false when no user has that name.
	CanonicalUser(ctx context.Context, userPart string) (canonical string, ok bool)
}

// Binding is one registered contact of an address of record.
type Binding struct {
	AOR       string // canonical "sip:<user>@<domain>"
	Contact   string // the contact URI as the phone sent it
	Instance  string // +sip.instance without quotes, "" if none
	RegID     string // RFC 5626 reg-id, "" if none
	CallID    string
	CSeq      uint32
	Expires   time.Time
	Q         string // "" or the q-value as sent ("0.5")
	Path      []string
	Source    string // ip:port the REGISTER came from
	Transport string // "UDP", "TCP", "TLS"
	Local     string // ip:port of the listener that received it
	LocalHost string // host the phone addressed (Request-URI host), for Via when Local is a wildcard
	UserAgent string
	Owner     Owner
	AuthUser  string // digest username that created it (to answer a phone's challenge to NOTIFY)
	Device    string // the handset it reaches (Credential.Device), "" if unknown
	Updated   time.Time
	// Handoff is set on a binding another cluster node holds and only it
	// reaches (TCP/TLS, NAT): the address requests are handed to. Never
	// stored.
	Handoff string
}

// Target is the address requests to the binding go to. Over UDP a phone
// that is not behind NAT (its Contact host is the address it sent from)
// listens on its Contact's port, which need not be the port it sent the
// REGISTER from; behind NAT only the source address reaches it. Over a
// connection (TCP, TLS) the phone's own connection is reused.
func (b Binding) Target() string {
	if b.Source == "" {
		return ""
	}
	if t := strings.ToUpper(b.Transport); t != "" && t != "UDP" {
		return b.Source
	}
	var u sip.Uri
	if sip.ParseUri(b.Contact, &u) != nil || u.Host == "" {
		return b.Source
	}
	host, _, err := net.SplitHostPort(b.Source)
	if err != nil {
		return b.Source
	}
	ch := strings.Trim(u.Host, "[]")
	if ch != host {
		return b.Source
	}
	port := u.Port
	if port == 0 {
		port = 5060
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// Key is the identity a BindingStore persists a binding under.
func (b Binding) Key() BindingKey { return BindingKey{AOR: b.AOR, Contact: b.Contact} }

// BindingKey identifies a stored binding.
type BindingKey struct {
	AOR     string
	Contact string
}

// BindingStore persists bindings so they survive a restart. sip loads them
// once in Serve and then writes behind in batches; SaveBindings applies
// upserts and deletes in one transaction.
type BindingStore interface {
	LoadBindings(ctx context.Context) ([]Binding, error)
	SaveBindings(ctx context.Context, upserts []Binding, deletes []BindingKey) error
}

// EventKind says what happened to a binding.
type EventKind int

// Binding events sent to Deps.OnEvent.
const (
	Registered   EventKind = iota + 1 // a new binding
	Refreshed                         // an existing binding re-registered (or replaced by its instance)
	Unregistered                      // removed by the phone (expires=0 or Contact: *)
	Expired                           // removed by the sweeper
	Unbound                           // removed by Server.Unbind
)

func (k EventKind) String() string {
	switch k {
	case Registered:
		return "registered"
	case Refreshed:
		return "refreshed"
	case Unregistered:
		return "unregistered"
	case Expired:
		return "expired"
	case Unbound:
		return "unbound"
	}
	return "unknown"
}

// Event tells prov about a binding change. Events are delivered in order on
// one goroutine, never on the SIP path.
type Event struct {
	Kind    EventKind
	Binding Binding
	// At is when the registrar made the change: events reach prov later,
	// and it orders them against its other signals by this time.
	At time.Time
}
