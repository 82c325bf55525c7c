package sip

import (
	"context"
	"time"
)

// OwnerTrunk is the caller owner of a call that arrived from a trusted
// upstream (ProxyConfig.TrustedSources): it carries no digest credential.
const OwnerTrunk OwnerKind = "trunk"

// Decision is CallPolicy's answer for one call attempt.
type Decision struct {
	// Allow lets the call be routed; false answers 403 with Reason.
	Allow bool
	// Reason is the 403 reason phrase the phone shows ("Log in to call").
	// CR/LF are stripped; "" means "Log in to call" when Locked, else "Forbidden".
	Reason string
	// Locked says the caller is a device credential with nobody logged in
	// on a site that requires login; it is copied into the call record and
	// a denial counts as a locked-call denial.
	Locked bool
}

// CallPolicy is implemented by prov: it decides who may call what. It is
// asked once per authenticated INVITE that is not a feature code, before
// routing, so it must answer from memory.
type CallPolicy interface {
	// Authorize decides whether caller may call target, the dialled user
	// part of the Request-URI as sent ("112", "+4930123", "1002", "bob").
	// A device credential while nobody is logged in there (and the site
	// requires login) may reach only its ≤5 authorized numbers and the
	// site's emergency numbers; session and user credentials call freely.
	// An error answers 500.
	Authorize(ctx context.Context, caller Owner, target string) (Decision, error)
}

// Trunks is implemented by prov: the trunk a caller's calls to numbers
// leave through, its site's (a multi-site office has one provider per
// site). ok false (or an empty Address) leaves ProxyConfig.Trunk. Only the
// address, transport, domain and credentials are used: the proxy registers
// with ProxyConfig.Trunk alone.
type Trunks interface {
	CallerTrunk(ctx context.Context, caller Owner) (t TrunkConfig, ok bool)
}

// Handling is one user's call handling, read at call time so a change
// applies to the next call at once.
type Handling struct {
	// DND rejects calls with 486 "Do Not Disturb", or forwards them to
	// ForwardBusy when that is set (DND behaves like busy).
	DND bool
	// ForwardAlways sends every call to this number or user instead.
	ForwardAlways string
	// ForwardBusy takes calls that every phone of the user refused busy
	// (486/600/603) or while DND is on.
	ForwardBusy string
	// ForwardNoAnswer takes calls not answered within NoAnswerAfter, and
	// calls to a user with no reachable phone (404/408/480).
	ForwardNoAnswer string
	// NoAnswerAfter is how long the user's phones ring before
	// ForwardNoAnswer; 0 means ring until the caller gives up (Timer C).
	NoAnswerAfter time.Duration
	// Twin is a mobile number rung through the trunk in parallel with the
	// user's phones ("" = none; ignored without a trunk).
	Twin string
	// Voicemail sends calls that no forward takes — busy, DND, not
	// answered within NoAnswerAfter, no reachable phone — to the user's
	// mailbox (ProxyDeps.VoicemailAddr).
	Voicemail bool
}

// CallHandling is implemented by prov: the call handling of a user.
type CallHandling interface {
	// CallHandling returns the handling of a canonical user ("1001"). An
	// error is logged and the call proceeds with no handling.
	CallHandling(ctx context.Context, user string) (Handling, error)
}

// FeatureCodes is implemented by prov (the SIP feature-code login door).
// An INVITE whose Request-URI user starts with '*' or '#' is offered to it
// before policy and routing, so a locked phone can always dial the login
// and logout codes.
type FeatureCodes interface {
	// FeatureCode runs the code dialled by caller ("*77alice*secret",
	// "*78"). handled=false means "not a feature code": the call is routed
	// normally. Otherwise the INVITE is answered with code and reason
	// (CR/LF stripped, cut to 100 bytes); code must be a final non-2xx
	// response (300-699) so no call is set up — phones show the reason
	// phrase of a 4xx/6xx. Other codes are sent as 403. The dialled string
	// may hold a password: never log it. source is the address the INVITE
	// came from, for limits per source (a PIN claim).
	FeatureCode(ctx context.Context, caller Owner, dialled, source string) (code int, reason string, handled bool)
}

// EmergencyNumbers is implemented by prov: the emergency numbers of every
// site. A call to one is routed even from a source or account that is
// locked out after failed authentications (with the right credentials;
// the locked-phone policy allows it too).
type EmergencyNumbers interface {
	// IsEmergency reports whether dialled ("911", "112") is an emergency
	// number of any site. It is asked only while a lockout applies.
	IsEmergency(ctx context.Context, dialled string) bool
}

// Parking is implemented by prov: the call park codes.
type Parking interface {
	// ParkSlot reports whether dialled (a code the caller dialled, or a
	// BLF key's target) is a park slot of the caller's site, and the
	// slot's name.
	ParkSlot(ctx context.Context, caller Owner, dialled string) (slot string, ok bool)
}

// ParkHolders is implemented by the daemon on a cluster: the park slots
// occupied on every node.
type ParkHolders interface {
	// ParkedElsewhere reports whether another node parked a call on slot,
	// and the address where its proxy takes the pickup handed over.
	ParkedElsewhere(ctx context.Context, slot string) (addr string, ok bool)
}

// Mailboxes is implemented by prov: whose mailbox a caller reaches with
// the mailbox code, may watch with a message-summary SUBSCRIBE (RFC 3842),
// and what it holds.
type Mailboxes interface {
	// ListenCode reports whether dialled is the caller's mailbox code and
	// then the caller's own mailbox (canonical user), "" for none.
	ListenCode(ctx context.Context, caller Owner, dialled string) (mailbox string, isCode bool)
	// MailboxOf is the mailbox at target (a Request-URI user) if it is
	// the caller's own; ok=false refuses the subscription.
	MailboxOf(ctx context.Context, caller Owner, target string) (mailbox string, ok bool)
	// MessageSummary counts a mailbox's new and old messages.
	MessageSummary(ctx context.Context, mailbox string) (newMsgs, oldMsgs int, err error)
}
