package files

import (
	"context"
	"net/netip"
	"strings"

	"hotdesk/prov"
)

// Vendors other than Polycom (issue 15). The namespace knows Polycom's
// names itself (parseName); every other vendor's renderer declares the
// names its phones request, and what each is, through VendorNames. A name
// two vendors both use (<mac>.cfg is Polycom's boot file and Yealink's
// device file) is read as the requesting phone's vendor reads it: its
// User-Agent, its DHCP option 60, then its device record.

// VendorFile is one vendor's reading of a requested name.
type VendorFile struct {
	// Vendor is the vendor key (Device.Vendor) whose phones ask for it.
	Vendor string
	// Kind is what the namespace does with it: KindMaster is a common
	// file without secrets (any phone of the vendor, a MAC-less request
	// gets the generic one); KindDeviceConfig is the device's own file
	// (account, provisioning credentials the one time they go out, the
	// user's lines); KindDirectory, KindOverride and KindCalls are uploads
	// the phone makes and reads back.
	Kind FileKind
	// MAC is the device named in the file (lowercase), "" when the name
	// names none (the device is then the request's: User-Agent, lease).
	MAC string
	// Suffix names the stored upload (KindOverride, KindDirectory, KindCalls).
	Suffix string
	// Boot marks the first file a phone of this vendor asks for when it
	// boots or re-syncs: an unknown device asking for it is enrolled, and
	// its fetch is the boot signal Polycom's <MAC>.cfg is (Desk.Fetched is
	// told it is the boot file).
	Boot bool
	// Enroll: an unknown device asking for it is enrolled too (a file
	// with the MAC in its name, for a phone whose Boot file said nothing).
	Enroll bool
}

// VendorNames is implemented by a Renderer that serves vendors besides
// Polycom's names.
type VendorNames interface {
	// VendorFiles returns every vendor's reading of a clean, top-level name.
	VendorFiles(name string) []VendorFile
}

// VendorClassResolver maps a source address to the DHCP option 60 (vendor
// class identifier) its lease was asked with; the daemon's address book
// implements it next to AddrResolver.
type VendorClassResolver interface {
	AddrToVendorClass(ip netip.Addr) (string, bool)
}

// VendorFromClass returns the vendor a DHCP option 60 names ("" when none):
// Yealink phones send "yealink", Cisco MPP "Cisco Systems, Inc. IP Phone
// CP-8851-3PCC", Snom "snom<model>", Polycom "Polycom-VVX400".
func VendorFromClass(class string) string {
	l := strings.ToLower(class)
	switch {
	case strings.Contains(l, "yealink"):
		return "yealink"
	case strings.HasPrefix(l, "cisco"):
		return "cisco"
	case strings.HasPrefix(l, "snom"):
		return "snom"
	case strings.Contains(l, "grandstream"):
		return "grandstream"
	case strings.Contains(l, "fanvil"):
		return "fanvil"
	case strings.Contains(l, "spectralink"):
		return "spectralink"
	case strings.Contains(l, "polycom"):
		return "polycom"
	}
	return ""
}

// polycomFamily reports a vendor that reads the namespace's own (Polycom)
// names: Polycom, Spectralink, and a device whose vendor is not known.
func polycomFamily(vendor string) bool {
	return vendor == "" || vendor == "polycom" || vendor == "spectralink"
}

// vendorName picks the reading of pn's name for a request from vendor
// ("" unknown): that vendor's own reading when it has one; else the
// namespace's (Polycom) reading, unless the phone is unknown and that
// reading is a user's file; else, when only one vendor knows the name at
// all, that vendor's (a request that said nothing about itself).
func vendorName(pn parsedName, vendor string, cands []VendorFile) (parsedName, bool) {
	if pn.dir != "" || len(cands) == 0 {
		return pn, false
	}
	pick := -1
	for i, c := range cands {
		if c.Vendor == vendor {
			pick = i
			break
		}
	}
	if pick < 0 {
		// An unknown phone asking for a name only another vendor uses gets
		// that vendor's file, not a user profile of that name (as a user
		// named like a MAC, such a user cannot be served by name).
		if pn.kind != KindStatic && polycomFamily(vendor) && !(vendor == "" && pn.user != "") {
			return pn, false
		}
		if vendor != "" && !polycomFamily(vendor) {
			return pn, false // a vendor that does not ask for this name
		}
		for _, c := range cands[1:] {
			if c.Vendor != cands[0].Vendor {
				return pn, false
			}
		}
		pick = 0
	}
	c := cands[pick]
	out := parsedName{name: pn.name, kind: c.Kind, mac: c.MAC, suffix: c.Suffix, vendor: c.Vendor, boot: c.Boot,
		enroll: c.Boot || c.Enroll}
	return out, true
}

// resolveName reads pn as the requesting phone's vendor does (see
// vendorName); pn is unchanged when no vendor besides Polycom knows it.
func (f *Files) resolveName(ctx context.Context, req Request, pn parsedName) parsedName {
	vn, ok := f.rend.(VendorNames)
	if !ok || pn.dir != "" || strings.Contains(pn.name, "/") {
		return pn
	}
	cands := vn.VendorFiles(pn.name)
	if len(cands) == 0 {
		return pn
	}
	nameMAC := pn.mac
	if nameMAC == "" {
		nameMAC = cands[0].MAC
	}
	out, _ := vendorName(pn, f.requestVendor(ctx, req, nameMAC), cands)
	return out
}

// requestVendor detects the requesting phone's vendor: its User-Agent,
// its lease's DHCP option 60, then the record of the device it is.
func (f *Files) requestVendor(ctx context.Context, req Request, nameMAC string) string {
	if v, _, _ := prov.VendorFromUserAgent(req.UserAgent); v != "" {
		return v
	}
	if v := f.classVendor(req); v != "" {
		return v
	}
	mac := f.identityMAC(req, nameMAC)
	if mac == "" {
		return ""
	}
	d, ok := f.cache.device(mac)
	if !ok {
		var err error
		if d, err = f.store.GetDevice(ctx, mac); err != nil {
			return ""
		}
	}
	return d.Vendor
}

// classVendor is the vendor the DHCP option 60 of the source's lease names.
func (f *Files) classVendor(req Request) string {
	vc, ok := f.leases.(VendorClassResolver)
	if !ok || !req.Remote.IsValid() {
		return ""
	}
	class, ok := vc.AddrToVendorClass(req.Remote.Addr().Unmap())
	if !ok {
		return ""
	}
	return VendorFromClass(class)
}
