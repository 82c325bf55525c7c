package files

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"hotdesk/prov"
)

// ErrDiscoveryRefused is returned by EnrollDiscovered for a device the
// enrolment policy or an admin denied.
var ErrDiscoveryRefused = errors.New("device refused by the enrolment policy")

// EnrollDiscovered enrols the device a SIP plug-and-play SUBSCRIBE
// announced (its MAC, User-Agent and source address) by the provisioning
// policy, exactly as its first file fetch would: auto enrols it (held for
// approval past the per-source limit), approve holds it pending, deny
// refuses it. A known or pending device is returned (a pending one is told
// where to fetch and gets its files once approved); a denied one is
// ErrDiscoveryRefused.
func (f *Files) EnrollDiscovered(ctx context.Context, mac, userAgent string, remote netip.Addr) (prov.Device, error) {
	m, ok := prov.NormalizeMAC(mac)
	if !ok {
		return prov.Device{}, prov.Invalid("mac", "not a MAC address")
	}
	req := Request{Proto: ProtoHTTP, Remote: netip.AddrPortFrom(remote, 5060), UserAgent: userAgent}
	d, err := f.device(ctx, m, req, true)
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, prov.ErrNotFound) {
		return prov.Device{}, err
	}
	if d, gerr := f.store.GetDevice(ctx, m); gerr == nil && d.Status == prov.DevicePending {
		return d, nil
	}
	return prov.Device{}, fmt.Errorf("discovered device %s: %w", m, ErrDiscoveryRefused)
}
