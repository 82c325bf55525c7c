package prov

import (
	"context"
	"sync"
)

// EventKind names a change other rooms react to.
type EventKind string

// Event kinds.
const (
	// EventDeviceChanged: what the device would render changed; Sessions sends check-sync (rules.go).
	EventDeviceChanged EventKind = "device_changed"
	// EventSessionStarted and EventSessionEnded frame a login session.
	EventSessionStarted EventKind = "session_started"
	EventSessionEnded   EventKind = "session_ended"
	// EventUserChanged: a user's profile, numbers or call handling changed.
	EventUserChanged EventKind = "user_changed"
	// EventCredentialsChanged: SIP credentials were minted or revoked.
	EventCredentialsChanged EventKind = "credentials_changed"
	// EventDeviceStatus: a device's status or address changed (it
	// registered); caches drop it, but nothing is sent to the phone.
	EventDeviceStatus EventKind = "device_status"
	// EventSiteChanged: a site was created or changed (its subnets place
	// enrolling phones; its policy is rendered to its phones).
	EventSiteChanged EventKind = "site_changed"
	// EventUploadStored: a phone or a user stored an upload (a saved
	// setting, a directory): rendered files and views are dropped on
	// every node, and nothing is sent to the phone, which has it already.
	EventUploadStored EventKind = "upload_stored"
)

// ReasonEnrolled is an EventDeviceChanged's Reason for a device the phone's
// own first fetch created: it is fetching its files, and holds no
// registration to tell.
const ReasonEnrolled = "enrolled"

// Event is one change. Only the IDs the kind needs are set.
type Event struct {
	Kind      EventKind
	DeviceID  int64
	UserID    int64
	SessionID string
	Reason    string
	// Reboot asks the phone to reboot rather than only re-read its files.
	Reboot bool
	// Device, when set, is the device's row as just written: subscribers
	// use it instead of reading it again (every enrolling phone of a boot
	// storm would otherwise be read back once per subscriber).
	Device *Device
	// Remote: another node made the change (relayed over the shared
	// store). Caches follow it; work that must happen once (a login, a
	// check-sync) was done by that node.
	Remote bool
}

// Events fans changes out to subscribers synchronously, in subscription
// order. Subscribers must not block: the SIP side queues its NOTIFYs.
type Events struct {
	mu   sync.RWMutex
	subs []func(context.Context, Event)
}

// Subscribe adds fn to every future Publish.
func (e *Events) Subscribe(fn func(context.Context, Event)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.subs = append(e.subs, fn)
}

// Publish delivers ev to every subscriber.
func (e *Events) Publish(ctx context.Context, ev Event) {
	if e == nil {
		return
	}
	e.mu.RLock()
	subs := e.subs
	e.mu.RUnlock()
	for _, fn := range subs {
		fn(ctx, ev)
	}
}
