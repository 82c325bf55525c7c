package files

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"hotdesk/prov"
)

// view gathers what the renderer needs for device d.
// What it reads from the store is cached per device (shared read-only)
// until an event about the device or a global one.
func (f *Files) view(ctx context.Context, d prov.Device, secrets bool, req Request) (*prov.View, error) {
	if cv, ok := f.cache.view(d); ok {
		cv.Device, cv.Secrets, cv.Server = d, secrets, f.server(req)
		return &cv, nil
	}
	gen := f.cache.generation()
	v := &prov.View{Device: d, Secrets: secrets, Server: f.server(req)}
	if d.SiteID != 0 {
		s, err := f.site(ctx, d.SiteID)
		if err != nil && !errors.Is(err, prov.ErrNotFound) {
			return nil, fmt.Errorf("view: site: %w", err)
		}
		v.Site = s
		if l := s.Login; l.Enabled && l.DefaultUser != "" {
			if u, err := f.store.GetUser(ctx, l.DefaultUser); err == nil && u.Status == prov.StatusActive {
				v.DefaultLoginSecret = prov.DefaultLoginSecret(u, d.SiteID)
			}
		}
	}
	ss, err := f.store.ListSessions(ctx, prov.SessionQuery{DeviceID: d.ID, ActiveOnly: true, Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("view: sessions: %w", err)
	}
	failed := false
	if len(ss) > 0 && ss[0].Active() {
		if err := f.addUser(ctx, v, ss[0], &failed); err != nil {
			return nil, err
		}
	}
	v.DeviceWeb = f.uploadParams(ctx, "device:"+d.MAC, "web.cfg", &failed)
	v.DevicePhone = f.uploadParams(ctx, "device:"+d.MAC, "phone.cfg", &failed)
	if !polycomFamily(d.Vendor) {
		v.DeviceLocal = f.uploadParams(ctx, "device:"+d.MAC, KVUploadName, &failed)
		if v.User != nil {
			v.UserLocal = f.uploadParams(ctx, "user:"+v.User.Username, KVUploadName, &failed)
		}
	}
	if d.ID != 0 && !failed {
		f.cache.putView(*v, gen)
	}
	return v, nil
}

// site is GetSite through the cache: every device of a site renders it.
func (f *Files) site(ctx context.Context, id int64) (prov.Site, error) {
	if e, ok := f.cache.site(id); ok {
		return e.s, e.err
	}
	gen := f.cache.generation()
	s, err := f.store.GetSite(ctx, id)
	if err == nil || errors.Is(err, prov.ErrNotFound) {
		f.cache.putSite(id, s, err, gen)
	}
	return s, err
}

// addUser adds the session's user, numbers, contacts and <user>-phone.cfg.
func (f *Files) addUser(ctx context.Context, v *prov.View, s prov.Session, failed *bool) error {
	u, err := f.store.GetUserByID(ctx, s.UserID)
	if err != nil {
		return fmt.Errorf("view: session user: %w", err)
	}
	nums, err := f.store.NumbersOf(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("view: numbers: %w", err)
	}
	cs, err := f.store.ListContacts(ctx, u.ID)
	if err != nil {
		return fmt.Errorf("view: contacts: %w", err)
	}
	cs = f.contactsWithPhoneFields(ctx, "user:"+u.Username, cs, failed)
	co, err := prov.CompanyDirectory(ctx, f.store, u, "")
	if err != nil {
		*failed = true
		f.log.Warn("company directory", "user", u.Username, "err", err)
	}
	co = slices.DeleteFunc(co, func(e prov.CompanyEntry) bool { return e.Username == u.Username })
	v.User, v.Session, v.Numbers, v.Contacts, v.Company = &u, &s, nums, cs, co
	v.UserInDevice = s.Door != prov.DoorNative
	v.UserPhone = f.uploadParams(ctx, "user:"+u.Username, "phone.cfg", failed)
	return nil
}

// contactsWithPhoneFields adds to the stored contacts the fields only a
// phone edits (ring type, auto divert/reject, buddy watch…), which the
// contacts table has no columns for, from the owner's latest directory
// upload. A contact takes the fields of the uploaded item with its number
// (the next one, when several have it), so an edit in the portal keeps
// them and a contact whose number changed loses them.
func (f *Files) contactsWithPhoneFields(ctx context.Context, owner string, cs []prov.Contact, failed *bool) []prov.Contact {
	if len(cs) == 0 {
		return cs
	}
	u, err := f.store.LatestUpload(ctx, owner, "directory.xml")
	if err != nil {
		if !errors.Is(err, prov.ErrNotFound) {
			*failed = true
			f.log.Warn("read upload", "owner", owner, "name", "directory.xml", "err", err)
		}
		return cs
	}
	up, err := ParseDirectory(u.Data)
	if err != nil {
		f.log.Warn("stored upload does not parse", "owner", owner, "name", "directory.xml", "err", err)
		return cs
	}
	byNumber := map[string][]prov.ContactPhone{}
	for _, c := range up {
		byNumber[c.Number] = append(byNumber[c.Number], c.Phone)
	}
	out := make([]prov.Contact, len(cs))
	for i, c := range cs {
		if q := byNumber[c.Number]; len(q) > 0 {
			c.Phone, byNumber[c.Number] = q[0], q[1:]
		}
		out[i] = c
	}
	return out
}

// uploadParams parses the newest stored .cfg upload; nil when there is none
// or it no longer parses (it was validated when stored). A failed read is
// logged and reported in *failed, so that the View is not cached.
func (f *Files) uploadParams(ctx context.Context, owner, name string, failed *bool) *prov.UploadParams {
	u, err := f.store.LatestUpload(ctx, owner, name)
	if err != nil {
		if !errors.Is(err, prov.ErrNotFound) {
			*failed = true
			f.log.Warn("read upload", "owner", owner, "name", name, "err", err)
		}
		return nil
	}
	parse := ParseConfigParams
	if name == KVUploadName {
		parse = ParseKVConfig
	}
	p, err := parse(u.Data)
	if err != nil {
		f.log.Warn("stored upload does not parse", "owner", owner, "name", name, "err", err)
		return nil
	}
	return &prov.UploadParams{Name: u.Name, Version: u.Version, Params: p}
}

// EffectiveConfig is the merged configuration of the device with mac (and
// of the user logged in on it), each parameter with its value and the layer
// it came from; secrets are masked. It serves
// GET /api/v1/devices/{mac}/effective-config.
func (f *Files) EffectiveConfig(ctx context.Context, mac string) ([]prov.Param, error) {
	m, ok := prov.NormalizeMAC(mac)
	if !ok {
		return nil, prov.Invalid("mac", "not a MAC address")
	}
	d, err := f.store.GetDevice(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("effective config %s: %w", m, err)
	}
	v, err := f.view(ctx, d, true, Request{Proto: ProtoHTTP})
	if err != nil {
		return nil, fmt.Errorf("effective config %s: %w", m, err)
	}
	ps, err := f.rend.Effective(v)
	if err != nil {
		return nil, fmt.Errorf("effective config %s: %w", m, err)
	}
	for i := range ps {
		if prov.SecretParam(ps[i].Name) && ps[i].Value != "" {
			ps[i].Value = "********"
		}
	}
	return ps, nil
}

// DefaultLoginSecretFor is the default-login password of u on the phone
// req comes from: "" unless u is the default user of that phone's site.
func (f *Files) DefaultLoginSecretFor(ctx context.Context, req Request, u prov.User) string {
	d, err := f.Identify(ctx, req)
	if err != nil || d.SiteID == 0 || u.Status != prov.StatusActive {
		return ""
	}
	s, err := f.site(ctx, d.SiteID)
	if err != nil || !s.Login.Enabled || !strings.EqualFold(s.Login.DefaultUser, u.Username) {
		return ""
	}
	return prov.DefaultLoginSecret(u, d.SiteID)
}

// checkDir allows a file asked for in a profile directory only in the one
// d's site configured for its kind; at the root it is always served.
func (f *Files) checkDir(ctx context.Context, d prov.Device, pn parsedName) error {
	if pn.dir == "" {
		return nil
	}
	s, err := f.site(ctx, d.SiteID)
	if err != nil && !errors.Is(err, prov.ErrNotFound) {
		return err
	}
	if want, _ := pn.profileDir(s.ProfileDirs); want == "" || want != pn.dir {
		return errNotSiteDir
	}
	return nil
}

// errNotSiteDir is a file asked for in a directory its site does not use:
// as if it did not exist (and no login door either).
var errNotSiteDir = fmt.Errorf("not this site's profile directory: %w", prov.ErrNotFound)
