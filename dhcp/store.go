package dhcp

import (
	"context"
	"errors"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Lease states as persisted.
const (
	// StateBound is an address acknowledged to a client until Expires.
	StateBound = "bound"
	// StateDeclined is an address a client DECLINEd (in use by someone else),
	// kept out of the pool until Expires.
	StateDeclined = "declined"
)

// Lease is one persisted lease. MAC is the canonical lower-case colon form.
type Lease struct {
	MAC         string
	IP          netip.Addr
	Hostname    string
	VendorClass string
	Expires     time.Time
	State       string
}

// LeaseStore persists leases so that a restart hands every client its address
// again. prov/store implements it for the daemon.
//
// The server calls SaveLease before it sends the DHCPACK that binds a lease
// (so it must be fast: implementations should group concurrent calls into one
// write), and DeleteLease on RELEASE. Calls come from several goroutines.
type LeaseStore interface {
	// LoadLeases returns every stored lease, expired ones included (a returning
	// client gets its old address back when it is still free).
	LoadLeases(ctx context.Context) ([]Lease, error)
	// SaveLease inserts or replaces the lease of l.MAC. It fails with an
	// error wrapping ErrAddressTaken when another client's unexpired lease
	// holds l.IP (another server sharing the lease table handed it out).
	SaveLease(ctx context.Context, l Lease) error
	// DeleteLease removes the lease of mac; deleting a missing lease is not an error.
	DeleteLease(ctx context.Context, mac string) error
}

// Message types reported in Seen.MsgType.
const (
	MsgDiscover = "discover"
	MsgRequest  = "request"
	MsgInform   = "inform"
)

// Seen is one client message reported to the Observer.
type Seen struct {
	MAC string
	// IP is the address the client was offered or acknowledged, or its ciaddr
	// for INFORM; invalid when the server gave it nothing.
	IP netip.Addr
	// Bound is true when this server has just acknowledged IP to MAC as a
	// lease. Only then does a Seen tie the address to the MAC: an INFORM's
	// ciaddr is whatever the sender wrote (any host can name a victim's
	// MAC), and an offer may never be taken.
	Bound       bool
	VendorClass string
	Hostname    string
	// MsgType is MsgDiscover, MsgRequest or MsgInform.
	MsgType string
	At      time.Time
}

// Observer learns about every DISCOVER, REQUEST and INFORM the server sees
// (in inform mode too), so the daemon can map TFTP source addresses to MACs
// (from Bound sightings only). Nothing in a DHCP packet is authenticated: a
// DISCOVER is no reboot signal, an INFORM no address record. Observe is
// called on the packet path: it must not block (queue and return).
type Observer interface {
	Observe(ctx context.Context, s Seen)
}

// MemoryStore is a LeaseStore kept in memory, for tests and for running
// without persistence. It is safe for concurrent use.
type MemoryStore struct {
	mu     sync.Mutex
	leases map[string]Lease
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{leases: map[string]Lease{}} }

// LoadLeases returns the stored leases ordered by MAC.
func (m *MemoryStore) LoadLeases(context.Context) ([]Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Lease, 0, len(m.leases))
	for _, l := range m.leases {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out, nil
}

// SaveLease upserts l by MAC.
func (m *MemoryStore) SaveLease(_ context.Context, l Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.leases[l.MAC] = l
	return nil
}

// DeleteLease removes the lease of mac.
func (m *MemoryStore) DeleteLease(_ context.Context, mac string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.leases, mac)
	return nil
}

// nopObserver is used when Deps.Observer is nil.
type nopObserver struct{}

func (nopObserver) Observe(context.Context, Seen) {}

// ErrAddressTaken: another client holds the address (SaveLease).
var ErrAddressTaken = errors.New("dhcp: address taken by another client")
