package files_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// TestEnrollDiscovered: a phone found by SIP plug-and-play is enrolled by
// the same policy as a file fetch, and a denied one is refused.
func TestEnrollDiscovered(t *testing.T) {
	ctx := context.Background()
	const ua = "Yealink SIP-T46U 108.86.0.20 00:15:65:aa:bb:cc"
	src := netip.MustParseAddr("10.1.2.9")
	for _, tc := range []struct {
		policy string
		status prov.DeviceStatus
		err    error
	}{
		{files.EnrollAuto, prov.DeviceNotDeployed, nil},
		{files.EnrollApprove, prov.DevicePending, nil},
		{files.EnrollDeny, "", files.ErrDiscoveryRefused},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			f := newFilesFixture(t, files.Config{Enroll: tc.policy})
			d, err := f.files.EnrollDiscovered(ctx, "001565AABBCC", ua, src)
			if !errors.Is(err, tc.err) || d.Status != tc.status {
				t.Fatalf("got %+v, %v; want status %q, err %v", d, err, tc.status, tc.err)
			}
			if tc.err != nil {
				return
			}
			if d.MAC != "001565aabbcc" || d.Vendor == "" || d.LastIP != src.String() {
				t.Errorf("enrolled %+v", d)
			}
			// Asked again (the phone retries): the same device, no error.
			again, err := f.files.EnrollDiscovered(ctx, "001565aabbcc", ua, src)
			if err != nil || again.ID != d.ID {
				t.Fatalf("again: %+v, %v", again, err)
			}
		})
	}
	f := newFilesFixture(t, files.Config{})
	if _, err := f.files.EnrollDiscovered(ctx, "zz", ua, src); err == nil {
		t.Error("a bad MAC was enrolled")
	}
}
