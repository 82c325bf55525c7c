package storetest

import (
	"testing"
	"time"

	"hotdesk/prov"
)

// testDeviceTrust covers the secure bootstrap's columns: one delivery
// wins, the conflict kept is rate-limited, verify and reset clear them.
func testDeviceTrust(t *testing.T, s prov.Store) {
	d := prov.Device{MAC: "0004f2aa0e01", Kind: prov.DeviceManaged, Status: prov.DeviceDeployed, ProvUser: "0004f2aa0e01",
		ProvPassword: "old", SIPUser: "dev0004f2aa0e01", SIPPassword: "oldsip"}
	must(t, s.CreateDevice(ctx(t), &d))
	ok, err := s.MarkCredsDelivered(ctx(t), d.ID, T0, "10.0.0.5", 42)
	must(t, err)
	again, err := s.MarkCredsDelivered(ctx(t), d.ID, T0.Add(time.Second), "10.0.0.6", 0)
	must(t, err)
	got, _ := s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "delivered once", []any{ok, again, got.CredsDeliveredAt, got.CredsAddr, got.CredsHeldFor},
		[]any{true, false, T0, "10.0.0.5", int64(42)})
	must(t, s.SetCredsAddr(ctx(t), d.ID, "10.0.0.7"))
	c := prov.IdentityConflict{At: T0, From: "10.0.0.66", Reason: prov.ConflictWrongCredentials}
	kept, err := s.RecordConflict(ctx(t), d.ID, c, T0.Add(-time.Minute))
	must(t, err)
	c2 := prov.IdentityConflict{At: T0.Add(time.Second), From: "10.0.0.67", Reason: prov.ConflictNoCredentials}
	kept2, err := s.RecordConflict(ctx(t), d.ID, c2, T0.Add(time.Second-time.Minute))
	must(t, err)
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "conflict", []any{kept, kept2, got.Conflict, got.CredsAddr}, []any{true, false, c, "10.0.0.7"})
	must(t, s.VerifyDevice(ctx(t), d.ID))
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "verified", []any{got.CredsHeldFor, got.Conflict.At.IsZero(), got.CredsDeliveredAt}, []any{int64(0), true, T0})
	must(t, s.ResetDeviceCredentials(ctx(t), d.ID, "new", "newsip", T0.Add(time.Hour)))
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "reset", []any{got.ProvPassword, got.SIPPassword, got.CredsDeliveredAt.IsZero(), got.CredsAddr, got.Status},
		[]any{"new", "newsip", true, "", prov.DeviceNotDeployed})
	// An admin's edit of the device leaves the bootstrap columns alone.
	ok, err = s.MarkCredsDelivered(ctx(t), d.ID, T0, "10.0.0.8", 0)
	must(t, err)
	stale := got
	stale.Model = "VVX 450"
	must(t, s.UpdateDevice(ctx(t), &stale))
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "update keeps the delivery", []any{ok, got.CredsDeliveredAt, got.CredsAddr}, []any{true, T0, "10.0.0.8"})
	wantErr(t, s.VerifyDevice(ctx(t), 999999), prov.ErrNotFound)
}

// testDeviceStaleUpdate: an admin's edit, or an assignment made on another
// node, writes back a row read before the phone registered and before its
// credentials were reset; what those wrote meanwhile stays.
func testDeviceStaleUpdate(t *testing.T, s prov.Store) {
	d := prov.Device{MAC: "0004f2aa0f01", Kind: prov.DeviceManaged, Status: prov.DeviceNotDeployed,
		ProvUser: "0004f2aa0f01", ProvPassword: "old", SIPUser: "dev0004f2aa0f01", SIPPassword: "oldsip"}
	must(t, s.CreateDevice(ctx(t), &d))
	stale, err := s.GetDeviceByID(ctx(t), d.ID)
	must(t, err)
	_, err = s.MarkDeployed(ctx(t), d.ID, T0, "10.0.0.5")
	must(t, err)
	stale.Model = "VVX 450"
	must(t, s.UpdateDevice(ctx(t), &stale))
	got, _ := s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "an edit from before the registration", []any{got.Model, got.Status, got.LastSeen, got.LastIP},
		[]any{"VVX 450", prov.DeviceDeployed, T0, "10.0.0.5"})

	stale = got
	must(t, s.ResetDeviceCredentials(ctx(t), d.ID, "new", "newsip", T0.Add(time.Minute)))
	stale.Model = "VVX 411"
	must(t, s.UpdateDevice(ctx(t), &stale))
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "an edit from before the reset", []any{got.Model, got.Status, got.ProvPassword, got.SIPPassword},
		[]any{"VVX 411", prov.DeviceNotDeployed, "new", "newsip"})

	// A later sighting is never replaced by an earlier one (nodes write
	// theirs in batches, in any order); the same moment from a new address is.
	must(t, s.NoteDeviceSeen(ctx(t), d.MAC, T0.Add(2*time.Minute), "10.0.0.6"))
	must(t, s.NoteDeviceSeen(ctx(t), d.MAC, T0.Add(time.Minute), "10.0.0.7"))
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "seen", []any{got.LastSeen, got.LastIP}, []any{T0.Add(2 * time.Minute), "10.0.0.6"})
	must(t, s.NoteDeviceSeen(ctx(t), d.MAC, T0.Add(2*time.Minute), "10.0.0.8"))
	must(t, s.NoteDeviceSeen(ctx(t), "0004f2aa0fff", T0, "10.0.0.9")) // no such device: nothing to note
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "seen again", []any{got.LastSeen, got.LastIP, got.Model}, []any{T0.Add(2 * time.Minute), "10.0.0.8", "VVX 411"})

	// Approving or denying still moves the status, and approving a denied
	// device brings it back.
	stale = got
	stale.Status = prov.DeviceDenied
	must(t, s.UpdateDevice(ctx(t), &stale))
	stale.Status = prov.DeviceNotDeployed
	must(t, s.UpdateDevice(ctx(t), &stale))
	got, _ = s.GetDeviceByID(ctx(t), d.ID)
	equal(t, "denied, then approved", got.Status, prov.DeviceNotDeployed)
}

// testUploadBytes: what an owner's kept versions take, and all owners'.
func testUploadBytes(t *testing.T, s prov.Store) {
	for _, u := range []prov.Upload{{Owner: "device:a", Name: "phone.cfg", Data: make([]byte, 100)},
		{Owner: "device:a", Name: "phone.cfg", Data: make([]byte, 50)}, {Owner: "user:b", Name: "f", Data: make([]byte, 7)}} {
		_, err := s.PutUpload(ctx(t), u, 5)
		must(t, err)
	}
	mine, all, err := s.UploadBytes(ctx(t), "device:a")
	must(t, err)
	none, _, err := s.UploadBytes(ctx(t), "device:nobody")
	must(t, err)
	equal(t, "upload bytes", []any{mine, all, none}, []any{int64(150), int64(157), int64(0)})
}
