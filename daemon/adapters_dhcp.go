package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"hotdesk/dhcp"
	"hotdesk/prov"
)

// dhcpLeases persists the DHCP server's leases in prov's store.
type dhcpLeases struct{ st prov.Store }

func (a dhcpLeases) LoadLeases(ctx context.Context) ([]dhcp.Lease, error) {
	ls, err := a.st.ListLeases(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]dhcp.Lease, 0, len(ls))
	for _, l := range ls {
		ip, err := netip.ParseAddr(l.IP)
		if err != nil {
			continue
		}
		out = append(out, dhcp.Lease{MAC: l.MAC, IP: ip, Hostname: l.Hostname, VendorClass: l.VendorClass,
			Expires: l.Expires, State: l.State})
	}
	return out, nil
}

func (a dhcpLeases) SaveLease(ctx context.Context, l dhcp.Lease) error {
	err := a.st.PutLease(ctx, prov.Lease{MAC: l.MAC, IP: l.IP.String(), Hostname: l.Hostname,
		VendorClass: l.VendorClass, Expires: l.Expires, State: l.State})
	if errors.Is(err, prov.ErrConflict) {
		return fmt.Errorf("%w: %w", dhcp.ErrAddressTaken, err)
	}
	return err
}

func (a dhcpLeases) DeleteLease(ctx context.Context, mac string) error {
	return a.st.DeleteLease(ctx, mac)
}

// addrBook maps source addresses to MACs from what DHCP saw, so a TFTP
// request (which carries no MAC) can be tied to its handset. It is filled
// by the DHCP observer and, at start, from the stored leases.
type addrBook struct {
	mu   sync.RWMutex
	byIP map[netip.Addr]bookEntry
	// limit bounds byIP.
	limit int
}

// bookEntry is a lease's MAC and the DHCP option 60 it was asked with,
// which tells the phone's vendor (files.VendorClassResolver).
type bookEntry struct{ mac, class string }

func newAddrBook() *addrBook { return &addrBook{byIP: map[netip.Addr]bookEntry{}, limit: 1 << 16} }

func (b *addrBook) AddrToMAC(ip netip.Addr) (string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, ok := b.byIP[ip.Unmap()]
	return e.mac, ok
}

// AddrToVendorClass implements files.VendorClassResolver.
func (b *addrBook) AddrToVendorClass(ip netip.Addr) (string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	e, ok := b.byIP[ip.Unmap()]
	return e.class, ok && e.class != ""
}

func (b *addrBook) put(ip netip.Addr, mac, class string) {
	mac, ok := prov.NormalizeMAC(mac)
	if !ok || !ip.IsValid() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.byIP) >= b.limit {
		clear(b.byIP) // a flood of fake MACs must not grow memory without bound
	}
	b.byIP[ip.Unmap()] = bookEntry{mac: mac, class: class}
}

// dhcpObserver feeds the address book with the leases the DHCP server
// acknowledged. Nothing else in a DHCP packet is believed: an INFORM's
// ciaddr would let any host claim a victim's MAC for its own address, and a
// DISCOVER (anyone can send one with any MAC) is no reboot signal — a reboot
// shows in the boot-file fetch and the registrations that follow.
type dhcpObserver struct {
	book *addrBook
}

func (o dhcpObserver) Observe(_ context.Context, s dhcp.Seen) {
	if s.Bound {
		o.book.put(s.IP, s.MAC, s.VendorClass)
	}
}
