package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"hotdesk/prov"
)

// Write stores an upload at req.Path as a new version. Errors:
// ErrBadName, ErrNotFound (not an upload name, or not this device's or
// logged-in user's), ErrAuth, ErrTooLarge, ErrInvalid (wrapping
// ErrMalformed). A refused upload leaves the previous version as it was.
// A .cfg upload is stored with the parameters the phone owns; the others
// are left out, each logged and counted, not a reason to lose the rest.
func (f *Files) Write(ctx context.Context, req Request, body io.Reader) error {
	pn, err := f.checkUpload(ctx, req)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(body, f.cfg.MaxUploadBytes+1))
	if err != nil {
		f.m.refused.WithLabelValues("read").Inc()
		return fmt.Errorf("write %s: read body: %w", pn.name, err)
	}
	f.m.bytes.WithLabelValues(string(req.Proto), "received").Add(float64(len(data)))
	if int64(len(data)) > f.cfg.MaxUploadBytes {
		f.m.refused.WithLabelValues("too_large").Inc()
		return fmt.Errorf("write %s: %w", pn.name, ErrTooLarge)
	}
	owner, v, err := f.uploadOwner(ctx, req, pn)
	if err != nil {
		f.m.refused.WithLabelValues("identity").Inc()
		return err
	}
	data, contacts, newPassword, err := f.validateUpload(pn, owner, data)
	if err != nil {
		f.m.refused.WithLabelValues("malformed").Inc()
		f.log.Debug("upload refused", "name", pn.name, "err", err)
		return fmt.Errorf("write %s: %w", pn.name, &prov.FieldError{Field: pn.name, Msg: err.Error()})
	}
	if pn.kind == KindDirectory && ownerOf(owner).Kind == prov.ObjectUser {
		var n int
		if contacts, n = dropCompanyItems(v, contacts); n > 0 {
			f.log.Debug("company entries left out of the uploaded directory", "name", pn.name, "owner", owner, "count", n)
		}
	}
	if newPassword != "" && ownerOf(owner).Kind != prov.ObjectUser {
		// A device's own file has no user whose password it could be.
		f.log.Warn("password in a device's upload ignored: no user logged in", "component", "files", "name", pn.name)
		newPassword = ""
	}
	if newPassword != "" && !passwordAuthority(req, owner) {
		// Only the user's own login (native digest) may change their
		// password: the phone's provisioning credentials are in every
		// config file it fetches, so they prove nothing about the user.
		f.m.refused.WithLabelValues("password_authority").Inc()
		f.log.Warn("password change in an upload ignored: not authenticated as the user", "component", "files",
			"name", pn.name)
		newPassword = ""
	}
	if err := f.storeUpload(ctx, owner, pn, data, contacts, v); errors.Is(err, ErrQuota) {
		f.m.refused.WithLabelValues("quota").Inc()
		f.log.Warn("upload refused: over the upload quota", "component", "files", "name", pn.name, "owner", owner,
			"err", err)
		return err
	} else if err != nil {
		f.m.refused.WithLabelValues("store").Inc()
		return err
	}
	f.m.uploads.WithLabelValues(string(pn.kind)).Inc()
	if newPassword != "" && f.onPassword != nil {
		user := ownerOf(owner).ID
		if err := f.onPassword(ctx, user, newPassword); err != nil {
			f.log.Warn("password from the phone not applied", "user", user, "err", err)
		}
	}
	return nil
}

// CheckUpload refuses an upload before its body is read: a name that is
// not an upload, or a transport that cannot authenticate. TFTP carries no
// authentication at all, so it is read-only: anyone on the LAN could
// otherwise write any phone's settings or a logged-in user's directory.
func (f *Files) CheckUpload(ctx context.Context, req Request) error {
	_, err := f.checkUpload(ctx, req)
	return err
}

func (f *Files) checkUpload(ctx context.Context, req Request) (parsedName, error) {
	pn, err := parseName(req.Path)
	if err != nil {
		f.m.refused.WithLabelValues("bad_name").Inc()
		return pn, err
	}
	pn = f.resolveName(ctx, req, pn)
	if !pn.writable() {
		f.m.refused.WithLabelValues("not_writable").Inc()
		return pn, fmt.Errorf("write %s: not an upload name: %w", pn.name, prov.ErrNotFound)
	}
	if req.Proto == ProtoTFTP {
		f.m.refused.WithLabelValues("tftp").Inc()
		f.log.Warn("upload over TFTP refused: uploads need HTTP(S)", "component", "files", "name", pn.name,
			"remote", req.Remote.String())
		return pn, fmt.Errorf("write %s: TFTP is read-only, upload over HTTP(S): %w", pn.name, prov.ErrAuth)
	}
	return pn, nil
}

// passwordAuthority reports whether an upload was authenticated well
// enough to change the owner's login password.
func passwordAuthority(req Request, owner string) bool {
	// A default login's password is in every phone of the site: it proves
	// nothing about the user either.
	return req.Proto != ProtoTFTP && req.LoginUser != "" && !req.DefaultLogin &&
		req.LoginUser == ownerOf(owner).ID
}

// uploadOwner decides whose file an upload is: the device's, or the user's
// when the name is the user's or a session opened by a door the phone does
// not know about is active (the phone then writes <MAC>- names for them).
func (f *Files) uploadOwner(ctx context.Context, req Request, pn parsedName) (string, *prov.View, error) {
	if req.DeviceMAC != "" && pn.mac != "" && pn.mac != req.DeviceMAC {
		return "", nil, fmt.Errorf("write %s: not this device's file: %w", pn.name, prov.ErrNotFound)
	}
	mac := f.identityMAC(req, pn.mac)
	if mac == "" {
		return "", nil, fmt.Errorf("write %s: device unknown: %w", pn.name, prov.ErrNotFound)
	}
	d, err := f.device(ctx, mac, req, false)
	if err != nil {
		return "", nil, fmt.Errorf("write %s: %w", pn.name, err)
	}
	if err := f.checkDir(ctx, d, pn); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", pn.path(), err)
	}
	if err := f.authorize(ctx, req, d, pn); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", pn.name, err)
	}
	if !(req.DeviceAuthenticated && req.DeviceMAC == d.MAC) && req.LoginUser == "" {
		// An upload is merged into what the phone (and its user) get: only
		// the device, or the user's own login, may write one.
		return "", nil, fmt.Errorf("write %s: not authenticated as the device: %w", pn.name, prov.ErrAuth)
	}
	v, err := f.view(ctx, d, false, req, nil)
	if err != nil {
		return "", nil, fmt.Errorf("write %s: %w", pn.name, err)
	}
	if heldBack(d, v) {
		// Lines held for verification are the user's no more than their
		// files: the phone writes its own.
		v = lockedView(v)
	}
	if pn.user != "" {
		if v.User == nil || v.User.Username != pn.user || (req.LoginUser != "" && req.LoginUser != pn.user) {
			return "", nil, fmt.Errorf("write %s: no session of that user here: %w", pn.name, prov.ErrNotFound)
		}
		return prov.UserObject(pn.user).String(), v, nil
	}
	if v.UserInDevice && v.User != nil && pn.kind != KindLog && pn.suffix != "web.cfg" {
		return prov.UserObject(v.User.Username).String(), v, nil
	}
	return prov.DeviceObject(d.MAC).String(), v, nil
}

// validateUpload checks the body against its kind and returns what to
// store: a .cfg without the parameters the phone may not set nor the login
// password its user changed on the handset (returned apart, never stored);
// directories also yield the contacts they become.
func (f *Files) validateUpload(pn parsedName, owner string, data []byte) ([]byte, []prov.Contact, string, error) {
	switch {
	case pn.vendor != "" && pn.suffix == KVUploadName:
		up, err := SplitKVUpload(data)
		if err != nil {
			return nil, nil, "", err
		}
		f.reportRefused(pn, owner, up.Refused)
		return up.Data, nil, "", nil
	case pn.vendor != "" && pn.kind == KindOverride:
		// Another vendor's own file (Yealink's <mac>-contact.xml): kept
		// as the phone wrote it, for the phone to read back.
		return data, nil, "", checkWellFormed(data, "")
	}
	switch pn.kind {
	case KindOverride:
		up, err := SplitConfigUpload(data, f.cfg.UploadNamespaces)
		if err != nil {
			return nil, nil, "", err
		}
		f.reportRefused(pn, owner, up.Refused)
		return up.Data, nil, up.LocalPassword, nil
	case KindDirectory:
		cs, err := ParseDirectory(data)
		return data, cs, "", err
	case KindCalls:
		return data, nil, "", checkWellFormed(data, "")
	}
	return data, nil, "", nil
}

// maxRefusedLogged bounds the names one log line lists: a hostile file
// may carry thousands.
const maxRefusedLogged = 32

// reportRefused counts every parameter left out of an upload and names
// them in one log line.
func (f *Files) reportRefused(pn parsedName, owner string, refused []RefusedParam) {
	if len(refused) == 0 {
		return
	}
	names := make([]string, 0, min(len(refused), maxRefusedLogged))
	for i, r := range refused {
		f.m.paramsRefused.WithLabelValues(r.Reason).Inc()
		if i < maxRefusedLogged {
			names = append(names, r.Name+" ("+r.Reason+")")
		}
	}
	if len(refused) > maxRefusedLogged {
		names = append(names, fmt.Sprintf("and %d more", len(refused)-maxRefusedLogged))
	}
	f.log.Warn("upload parameters refused: a phone may not set them; the rest of the file is kept",
		"component", "files", "name", pn.name, "owner", owner, "count", len(refused),
		"params", strings.Join(names, ", "))
}

// storeUpload writes the version and, for a user's directory, its contacts
// in one transaction, then drops rendered files and tells the other rooms.
func (f *Files) storeUpload(ctx context.Context, owner string, pn parsedName, data []byte, contacts []prov.Contact, v *prov.View) error {
	sum := sha256.Sum256(data)
	u := prov.Upload{Owner: owner, Name: pn.suffix, Data: data, SHA256: hex.EncodeToString(sum[:]),
		Size: len(data), CreatedAt: f.now()}
	userOwned := ownerOf(owner).Kind == prov.ObjectUser && v.User != nil
	var version int
	err := f.store.WithTx(ctx, func(tx prov.Store) error {
		n, err := tx.PutUpload(ctx, u, f.cfg.UploadVersions)
		if err != nil {
			return err
		}
		version = n
		// Counted with the new version in and the oldest out, inside the
		// transaction: over budget, neither happens.
		mine, all, err := tx.UploadBytes(ctx, owner)
		if err != nil {
			return err
		}
		f.m.uploadBytes.Set(float64(all))
		if mine > f.cfg.UploadQuota {
			return fmt.Errorf("%s would keep %d bytes of uploads, over %d: %w", owner, mine, f.cfg.UploadQuota, ErrQuota)
		}
		if all > f.cfg.UploadTotal {
			return fmt.Errorf("uploads would take %d bytes, over %d: %w", all, f.cfg.UploadTotal, ErrQuota)
		}
		if pn.kind == KindDirectory && userOwned {
			for i := range contacts {
				contacts[i].UserID = v.User.ID
			}
			return tx.ReplaceContacts(ctx, v.User.ID, contacts)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("write %s: store: %w", pn.name, err)
	}
	f.log.Info("upload stored", "name", pn.name, "owner", owner, "version", version, "bytes", len(data))
	if pn.kind == KindLog {
		return nil
	}
	f.cache.invalidate()
	// The uploading phone already has what it wrote, so a device's own
	// upload needs no check-sync; a user's may matter to their other phones.
	if userOwned {
		f.events.Publish(ctx, prov.Event{Kind: prov.EventUserChanged, UserID: v.User.ID, Reason: "upload"})
	}
	return nil
}

// dropCompanyItems removes from an uploaded directory the company entries
// coming back (see above) and numbers the rest anew; it returns how many
// it dropped.
func dropCompanyItems(v *prov.View, up []prov.Contact) ([]prov.Contact, int) {
	if v == nil || len(v.Company) == 0 {
		return up, 0
	}
	company := map[string]bool{}
	self := v.CompanySelf()
	for _, e := range v.Company {
		if e.Username == self {
			continue
		}
		for _, n := range e.Numbers {
			company[n] = true
		}
	}
	for _, c := range v.Contacts {
		delete(company, c.Number) // the user's own contact: rendered as theirs
	}
	out := up[:0]
	for _, c := range up {
		if company[c.Number] && c.SpeedDial == 0 && c.Label == "" && c.Phone == (prov.ContactPhone{}) {
			continue
		}
		c.Position = len(out) + 1
		out = append(out, c)
	}
	return out, len(up) - len(out)
}

// ownerOf reads an upload's owner back: a user (by name) or a device (by
// MAC), spelled as prov.Object.
func ownerOf(owner string) prov.Object {
	k, id, _ := strings.Cut(owner, ":")
	return prov.Object{Kind: prov.ObjectKind(k), ID: id}
}
