package prov_test

import (
	"testing"

	"hotdesk/prov"
)

func TestParkSlotSite(t *testing.T) {
	for _, tc := range []struct {
		slot string
		site int64
		ok   bool
	}{
		{"s1p1", 1, true},
		{"s42p9", 42, true},
		{"", 0, false},
		{"p1", 0, false},
		{"s1", 0, false},
		{"s0p1", 0, false},
		{"sxp1", 0, false},
		{"s1p12", 0, false},
		{"s-3p1", 0, false},
	} {
		site, ok := prov.ParkSlotSite(tc.slot)
		if site != tc.site || ok != tc.ok {
			t.Errorf("ParkSlotSite(%q) = %d, %v; want %d, %v", tc.slot, site, ok, tc.site, tc.ok)
		}
	}
}
