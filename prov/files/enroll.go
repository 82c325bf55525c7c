package files

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"hotdesk/prov"
	"hotdesk/prov/auth"
)

// AddrResolver maps a source address to the MAC that holds its DHCP lease.
// TFTP and Polycom's 000000000000.cfg carry no MAC; the daemon fills this
// from the dhcp room's observations (leases it gave or saw).
type AddrResolver interface {
	AddrToMAC(ip netip.Addr) (mac string, ok bool)
}

// reasonEnrolled is the Reason of the EventDeviceChanged a new device makes.
const reasonEnrolled = prov.ReasonEnrolled

// Enrollment policies for unknown devices.
const (
	EnrollAuto    = "auto"
	EnrollApprove = "approve"
	EnrollDeny    = "deny"
)

// identity resolves the device a request comes from: the authenticated
// device, the MAC in the file name, the User-Agent, then the DHCP lease of
// the source address. mac is "" when none says.
func (f *Files) identityMAC(req Request, nameMAC string) string {
	if req.DeviceMAC != "" {
		return req.DeviceMAC
	}
	if nameMAC != "" {
		return nameMAC
	}
	if mac, ok := prov.MACFromUserAgent(req.UserAgent); ok {
		return mac
	}
	if f.leases != nil && req.Remote.IsValid() {
		if mac, ok := f.leases.AddrToMAC(req.Remote.Addr().Unmap()); ok {
			if m, ok := prov.NormalizeMAC(mac); ok {
				return m
			}
		}
	}
	return ""
}

// device returns the device with mac, enrolling it according to the policy
// when enroll is true and it is unknown. Devices pending approval or denied
// are ErrNotFound, like unknown ones.
func (f *Files) device(ctx context.Context, mac string, req Request, enroll bool) (prov.Device, error) {
	d, ok := f.cache.device(mac)
	if !ok {
		gen := f.cache.generation()
		var err error
		d, err = f.store.GetDevice(ctx, mac)
		created := false
		if errors.Is(err, prov.ErrNotFound) && enroll {
			d, created, err = f.enroll(ctx, mac, req)
		}
		if err != nil {
			return prov.Device{}, err
		}
		f.cache.putDevice(d, gen)
		if created {
			f.primeEnrolled(d, gen)
		}
	}
	if d.Status == prov.DevicePending || d.Status == prov.DeviceDenied {
		return prov.Device{}, fmt.Errorf("device %s is %s: %w", mac, d.Status, prov.ErrNotFound)
	}
	f.touch(d, req)
	return d, nil
}

// Device is GetDevice through the render cache, which events about the
// device (a credential reset, a status change) clear: provhttp checks every
// digest-authenticated fetch with it, and a store read per fetch was a
// fifth of the daemon's CPU serving 1,000 phones.
func (f *Files) Device(ctx context.Context, mac string) (prov.Device, error) {
	if d, ok := f.cache.device(mac); ok {
		return d, nil
	}
	gen := f.cache.generation()
	d, err := f.store.GetDevice(ctx, mac)
	if err != nil {
		return prov.Device{}, err
	}
	f.cache.putDevice(d, gen)
	return d, nil
}

// enroll creates an unknown device: status not_deployed (or
// pending_approval), site by subnet, vendor from the User-Agent or OUI,
// with a generated device SIP account and provisioning credentials.
// created is false when another request enrolled it meanwhile (d is then
// the stored row).
func (f *Files) enroll(ctx context.Context, mac string, req Request) (d prov.Device, created bool, err error) {
	switch f.cfg.Enroll {
	case EnrollAuto, EnrollApprove:
	default:
		f.m.enrolled.WithLabelValues("denied").Inc()
		return prov.Device{}, false, fmt.Errorf("enroll %s: policy deny: %w", mac, prov.ErrNotFound)
	}
	// Detection: User-Agent, DHCP option 60, the file name asked for, and
	// the MAC prefix last (OUI lists rot as vendors buy new blocks).
	vendor, model, fw := prov.VendorFromUserAgent(req.UserAgent)
	if vendor == "" {
		vendor = f.classVendor(req)
	}
	if vendor == "" {
		vendor = req.vendorHint
	}
	if vendor == "" {
		vendor = prov.VendorFromMAC(mac)
	}
	d = prov.Device{
		MAC: mac, Vendor: vendor, Model: model, Firmware: fw,
		Kind: prov.DeviceManaged, Status: prov.DeviceNotDeployed,
		ProvUser: mac, ProvPassword: auth.RandomSecret(12),
		SIPUser: "dev" + mac, SIPPassword: auth.RandomSecret(12),
		CreatedAt: f.now(), UpdatedAt: f.now(), LastSeen: f.now(),
	}
	if f.cfg.Enroll == EnrollApprove {
		d.Status = prov.DevicePending
	} else if f.enrollLimits != nil && req.Remote.IsValid() &&
		!f.enrollLimits.Allow(req.Remote.Addr().Unmap().String(), f.now()) {
		// One host enrolling many MACs is inventing them: held for an
		// admin instead of minting accounts for each.
		d.Status = prov.DevicePending
		f.m.enrollCapped.Inc()
		f.log.Warn("enrolment over the per-source limit: held for approval", "component", "files", "mac", mac,
			"remote", req.Remote.Addr().String())
	}
	if req.Remote.IsValid() {
		d.LastIP = req.Remote.Addr().Unmap().String()
		d.SiteID = f.siteFor(ctx, req.Remote.Addr().Unmap())
	}
	orig := d
	if err := f.enrolls.do(ctx, func(ctx context.Context, st prov.Store) error {
		d = orig // afresh: a failed batch runs each write again on its own
		return st.CreateDevice(ctx, &d)
	}); err != nil {
		if errors.Is(err, prov.ErrConflict) { // enrolled concurrently
			d, err = f.store.GetDevice(ctx, mac)
			return d, false, err
		}
		return prov.Device{}, false, fmt.Errorf("enroll %s: %w", mac, err)
	}
	f.seen.note(d.MAC, d.LastSeen, d.LastIP)
	f.m.enrolled.WithLabelValues(string(d.Status)).Inc()
	f.log.Info("device enrolled", "mac", mac, "vendor", vendor, "status", d.Status, "site_id", d.SiteID)
	f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceChanged, DeviceID: d.ID, Reason: reasonEnrolled, Device: &d})
	return d, true, nil
}

// primeEnrolled caches what a device this request just created has: no
// session and no uploads (nothing can name a row that did not exist, and
// devices are never deleted, so its ID is new). Every phone of a boot
// storm is new, and read both once (two of its ~12 statements). gen is
// the generation noted before the device was looked up: a session
// started on it since is not hidden.
func (f *Files) primeEnrolled(d prov.Device, gen uint64) {
	f.cache.putActive(d.ID, nil, gen)
	f.cache.putUploadsNone(deviceUploadsKey(d.MAC), gen)
}

// siteFor picks the site whose subnets contain addr, the most specific
// prefix winning; 0 when none does.
func (f *Files) siteFor(ctx context.Context, addr netip.Addr) int64 {
	sites, ok := f.cache.allSites()
	if !ok {
		gen := f.cache.generation()
		var err error
		if sites, err = f.store.ListSites(ctx); err != nil {
			f.log.Warn("list sites for enrollment", "err", err)
			return 0
		}
		// Read-only from here on: every enrolling phone shares the list.
		f.cache.putAllSites(sites, gen)
	}
	var best int64
	bits := -1
	for _, s := range sites {
		for _, sn := range s.Subnets {
			p, err := netip.ParsePrefix(strings.TrimSpace(sn))
			if err != nil || !p.Contains(addr) {
				continue
			}
			if p.Bits() > bits {
				best, bits = s.ID, p.Bits()
			}
		}
	}
	return best
}
