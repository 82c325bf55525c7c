package main

import (
	"fmt"
	"strconv"
	"strings"

	"hotdesk/cmd/hotdesk-load/internal/handset"
)

// maxVendorWeight bounds one vendor's weight in -vendor (the mix's cycle
// is the sum of the weights).
const maxVendorWeight = 100

// vendorMix is the storm's -vendor flag: handset i is cycle[i % len],
// so every prefix of the storm keeps the mix's proportions.
type vendorMix struct {
	spec  string
	cycle []*handset.Vendor
	names []string // in the order given
}

// parseVendorMix reads "polycom,yealink:2,cisco" (weight 1 when absent).
func parseVendorMix(spec string) (vendorMix, error) {
	m := vendorMix{spec: spec}
	seen := map[string]bool{}
	for _, part := range strings.Split(spec, ",") {
		name, w, hasW := strings.Cut(strings.TrimSpace(part), ":")
		v, ok := handset.VendorByName(strings.TrimSpace(name))
		if !ok {
			return vendorMix{}, usageErr("-vendor: unknown vendor %q (known: %s)", name, vendorNames())
		}
		if seen[v.Name] {
			return vendorMix{}, usageErr("-vendor: %s given twice", v.Name)
		}
		seen[v.Name] = true
		weight := 1
		if hasW {
			n, err := strconv.Atoi(strings.TrimSpace(w))
			if err != nil || n < 1 || n > maxVendorWeight {
				return vendorMix{}, usageErr("-vendor: weight of %s must be 1..%d, not %q", v.Name, maxVendorWeight, w)
			}
			weight = n
		}
		m.names = append(m.names, v.Name)
		for range weight {
			m.cycle = append(m.cycle, v)
		}
	}
	return m, nil
}

func vendorNames() string {
	var out []string
	for _, v := range handset.Vendors {
		out = append(out, v.Name)
	}
	return strings.Join(out, ", ")
}

// of is handset i's vendor.
func (m vendorMix) of(i int) *handset.Vendor { return m.cycle[i%len(m.cycle)] }

// macPrefix is the MAC prefix of vendor v's handsets: -mac-prefix when
// given, else the vendor's OUI; Polycom keeps the flag's default (0004f3)
// so Polycom-only storms keep their MACs.
func (c *stormConfig) macPrefixOf(v *handset.Vendor) string {
	if c.macPrefixSet || v == handset.Polycom {
		return c.macPrefix
	}
	return v.OUI
}

func (m vendorMix) String() string { return fmt.Sprint(m.names) }
