package main

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"hotdesk/dhcp"
)

// TestFileStoreRoundTrip: what is saved and deleted is what a reopened file
// loads, the last line of a MAC winning, commas and newlines in client
// strings made spaces.
func TestFileStoreRoundTrip(t *testing.T) {
	for _, fsync := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "leases.csv")
		s, err := openFileStore(path, fsync)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		exp := time.Unix(1_800_000_000, 0)
		a := dhcp.Lease{MAC: "00:04:f2:00:00:01", IP: netip.MustParseAddr("10.66.1.0"), Expires: exp, State: dhcp.StateBound,
			Hostname: "vvx,1", VendorClass: "Polycom\nVVX"}
		b := dhcp.Lease{MAC: "00:04:f2:00:00:02", IP: netip.MustParseAddr("10.66.1.1"), Expires: exp, State: dhcp.StateBound}
		for _, err := range []error{s.SaveLease(ctx, b), s.SaveLease(ctx, a), s.DeleteLease(ctx, b.MAC)} {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s, err = openFileStore(path, fsync)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.LoadLeases(ctx)
		_ = s.Close()
		a.Hostname, a.VendorClass = "vvx 1", "Polycom VVX"
		if err != nil || len(got) != 1 || got[0] != a {
			t.Errorf("fsync=%v: loaded %+v, %v; want [%+v]", fsync, got, err, a)
		}
	}
}
