package files

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"hotdesk/prov"
)

// The secure bootstrap. A MAC is printed on the box and guessed from a
// vendor prefix, so a request naming it proves nothing: a device that has
// not authenticated gets only its locked profile (device account, whose
// calls the proxy limits to authorized and emergency numbers), and its
// provisioning credentials exactly once. From then on its files need
// those credentials; a user's lines and files go only to a request that
// authenticated as the device, or to the user's own native login. A
// request that cannot be the phone — wrong credentials, or none from
// another address once the phone holds them — is an identity conflict: a
// metric, a warning, an audit record and a mark on the device for the
// admin, who can hand out fresh credentials (ResetCredentials) when it was
// the phone after a factory reset.

// conflictQuiet is how long a device's kept conflict stands before another
// one replaces it (and is audited): a scan sends many requests.
const conflictQuiet = time.Minute

// secretsOver reports whether files sent over p may carry passwords.
func (f *Files) secretsOver(p Proto) bool {
	switch p {
	case ProtoTFTP:
		return f.cfg.TFTPSecrets
	case ProtoHTTP:
		return !f.cfg.SecretsHTTPSOnly
	}
	return true
}

// deliver records the one unauthenticated hand-out of d's credentials; it
// is ErrAuth when they went out before (to a request racing this one, here
// or on another node).
func (f *Files) deliver(ctx context.Context, d prov.Device, req Request, act *activeRead) error {
	if d.ProvPassword == "" || !d.CredsDeliveredAt.IsZero() {
		return nil
	}
	var held int64
	sess, ok, err := act.get(ctx)
	if err != nil {
		return fmt.Errorf("deliver credentials: %w", err)
	}
	if ok && sess.Active() && remoteDoor(sess.Door) {
		held = sess.UserID
	}
	at, addr := f.now(), hostOf(req)
	err = f.marks.do(ctx, func(ctx context.Context, st prov.Store) (err error) {
		ok, err = st.MarkCredsDelivered(ctx, d.ID, at, addr, held)
		return err
	})
	if err != nil {
		return fmt.Errorf("deliver credentials: %w", err)
	}
	if !ok {
		f.conflict(ctx, d, req, prov.ConflictNoCredentials)
		return prov.ErrAuth
	}
	f.m.delivered.Inc()
	f.log.Info("provisioning credentials handed out", "component", "files", "mac", d.MAC, "remote", hostOf(req),
		"held_user", held)
	if f.events != nil {
		f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID})
	}
	return nil
}

// remoteDoor reports a login made away from the phone: nobody at the
// phone proved anything for it.
func remoteDoor(door prov.Door) bool {
	switch door {
	case prov.DoorNative, prov.DoorBrowser, prov.DoorFeatureCode:
		return false
	}
	return true
}

// heldBack reports a user's lines that wait for the phone's verification.
func heldBack(d prov.Device, v *prov.View) bool {
	return d.CredsHeldFor != 0 && v.User != nil && v.Session != nil && v.User.ID == d.CredsHeldFor &&
		remoteDoor(v.Session.Door)
}

// lockedView is v without the user: the locked profile.
func lockedView(v *prov.View) *prov.View {
	if v.User == nil && v.Session == nil {
		return v
	}
	c := *v
	c.User, c.Session, c.Numbers, c.Contacts, c.UserPhone, c.UserInDevice = nil, nil, nil, nil, nil, false
	c.UserLocal = nil
	return &c
}

// bootGraceFor is how long after the hand-out the phone that got the
// credentials may fetch the rest of its first boot without them: a phone
// may apply provisioning credentials only after the reboot its first files
// cause, and the override, directory and call-list files it asks for on
// the way carry no secret (nor, to an unauthenticated fetch, a user's data).
const bootGraceFor = 2 * time.Minute

// bootGrace reports such a fetch.
func (f *Files) bootGrace(d prov.Device, req Request, pn parsedName) bool {
	switch pn.kind {
	case KindOverride, KindDirectory, KindCalls:
	default:
		return false
	}
	return pn.user == "" && d.CredsAddr != "" && hostOf(req) == d.CredsAddr &&
		!d.CredsDeliveredAt.IsZero() && f.now().Sub(d.CredsDeliveredAt) < bootGraceFor
}

// noteCredsAddr keeps the address d last authenticated from.
func (f *Files) noteCredsAddr(ctx context.Context, d prov.Device, req Request) {
	if !req.Remote.IsValid() || sameHost(req, d.CredsAddr) {
		return
	}
	if h := hostOf(req); h != d.CredsAddr {
		if err := f.store.SetCredsAddr(ctx, d.ID, h); err != nil {
			f.log.Warn("keep device address", "component", "files", "mac", d.MAC, "err", err)
		} else if f.events != nil {
			f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID})
		}
	}
}

// unauthenticated takes a request without d's credentials once they are
// required. The phone itself sends one before every challenge, from the
// address it holds them at (or one its DHCP lease moved it to); from any
// other address it is a second device presenting the MAC.
func (f *Files) unauthenticated(ctx context.Context, d prov.Device, req Request) {
	h := hostOf(req)
	if h == "" || d.CredsAddr == "" || h == d.CredsAddr {
		return
	}
	if f.leases != nil {
		if mac, ok := f.leases.AddrToMAC(req.Remote.Addr().Unmap()); ok {
			if m, _ := prov.NormalizeMAC(mac); m == d.MAC {
				return
			}
		}
	}
	f.conflict(ctx, d, req, prov.ConflictNoCredentials)
}

// WrongCredentials takes a digest that named the device's provisioning
// user with a wrong password: the device's own credentials would verify.
func (f *Files) WrongCredentials(ctx context.Context, d prov.Device, req Request) {
	f.conflict(ctx, d, req, prov.ConflictWrongCredentials)
}

// conflict counts an identity conflict and keeps it on the device.
func (f *Files) conflict(ctx context.Context, d prov.Device, req Request, reason string) {
	f.m.conflicts.WithLabelValues(reason).Inc()
	now := f.now()
	c := prov.IdentityConflict{At: now, From: hostOf(req), Reason: reason}
	kept, err := f.store.RecordConflict(ctx, d.ID, c, now.Add(-conflictQuiet))
	if err != nil {
		f.log.Error("record identity conflict", "component", "files", "mac", d.MAC, "err", err)
		return
	}
	if !kept {
		return
	}
	f.log.Warn("identity conflict: a request for the device's files that the device cannot have made",
		"component", "files", "mac", d.MAC, "remote", c.From, "reason", reason, "user_agent", req.UserAgent)
	e := prov.NewAuditEvent(now, prov.PhoneActor(c.From), "device.identity_conflict", prov.DeviceObject(d.MAC), nil, c)
	if err := f.store.AddAudit(ctx, e); err != nil {
		f.log.Error("audit write failed", "component", "files", "action", e.Action, "err", err)
	}
	if f.events != nil {
		f.events.Publish(ctx, prov.Event{Kind: prov.EventDeviceStatus, DeviceID: d.ID})
	}
}

// sameHost reports whether req comes from the address host, without
// formatting it (it is checked on every authenticated fetch).
func sameHost(req Request, host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && req.Remote.IsValid() && a == req.Remote.Addr().Unmap()
}

func hostOf(req Request) string {
	if !req.Remote.IsValid() {
		return ""
	}
	return req.Remote.Addr().Unmap().String()
}
