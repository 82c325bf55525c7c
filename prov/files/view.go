package files

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"hotdesk/prov"
)

// view gathers what the renderer needs for device d.
// What it reads from the store is cached per device (shared read-only)
// until an event about the device or a global one.
// act is the fetch's read of the device's session (nil: read here).
func (f *Files) view(ctx context.Context, d prov.Device, secrets bool, req Request, act *activeRead) (*prov.View, error) {
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
	if act == nil {
		act = f.activeRead(d.ID)
	}
	sess, ok, err := act.get(ctx)
	if err != nil {
		return nil, fmt.Errorf("view: sessions: %w", err)
	}
	failed := false
	var userUps ownerUploads
	if ok && sess.Active() {
		if userUps, err = f.addUser(ctx, v, sess, &failed); err != nil {
			return nil, err
		}
	}
	dev := f.latestUploads(ctx, prov.DeviceObject(d.MAC).String(), &failed, "web.cfg", "phone.cfg", KVUploadName)
	v.DeviceWeb = f.uploadParams(dev, "web.cfg")
	v.DevicePhone = f.uploadParams(dev, "phone.cfg")
	if !polycomFamily(d.Vendor) {
		v.DeviceLocal = f.uploadParams(dev, KVUploadName)
		if v.User != nil {
			v.UserLocal = f.uploadParams(userUps, KVUploadName)
		}
	}
	if d.ID != 0 && !failed {
		f.cache.putView(*v, gen, act.gen)
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

// addUser adds the session's user, numbers, contacts and <user>-phone.cfg;
// it returns the user's uploads, read once for all of them.
func (f *Files) addUser(ctx context.Context, v *prov.View, s prov.Session, failed *bool) (ownerUploads, error) {
	u, err := f.store.GetUserByID(ctx, s.UserID)
	if err != nil {
		return ownerUploads{}, fmt.Errorf("view: session user: %w", err)
	}
	nums, err := f.store.NumbersOf(ctx, u.ID)
	if err != nil {
		return ownerUploads{}, fmt.Errorf("view: numbers: %w", err)
	}
	cs, err := f.store.ListContacts(ctx, u.ID)
	if err != nil {
		return ownerUploads{}, fmt.Errorf("view: contacts: %w", err)
	}
	ups := f.latestUploads(ctx, prov.UserObject(u.Username).String(), failed, "phone.cfg", "directory.xml", KVUploadName)
	cs = f.contactsWithPhoneFields(ups, cs)
	co, err := f.companyDirectory(ctx, u)
	if err != nil {
		*failed = true
		f.log.Warn("company directory", "user", u.Username, "err", err)
	}
	v.User, v.Session, v.Numbers, v.Contacts, v.Company = &u, &s, nums, cs, co
	v.UserInDevice = s.Door != prov.DoorNative
	v.UserPhone = f.uploadParams(ups, "phone.cfg")
	return ups, nil
}

// contactsWithPhoneFields adds to the stored contacts the fields only a
// phone edits (ring type, auto divert/reject, buddy watch…), which the
// contacts table has no columns for, from the owner's latest directory
// upload. A contact takes the fields of the uploaded item with its number
// (the next one, when several have it), so an edit in the portal keeps
// them and a contact whose number changed loses them.
func (f *Files) contactsWithPhoneFields(ups ownerUploads, cs []prov.Contact) []prov.Contact {
	u, ok := ups.latest["directory.xml"]
	if len(cs) == 0 || !ok {
		return cs
	}
	up, err := ParseDirectory(u.Data)
	if err != nil {
		f.log.Warn("stored upload does not parse", "owner", ups.owner, "name", "directory.xml", "err", err)
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

// ownerUploads is the newest version of each file an owner uploaded.
type ownerUploads struct {
	owner  string
	latest map[string]prov.Upload
}

// deviceUploadsKey is latestUploads' cache key of the uploads a device's
// view reads (view's call).
func deviceUploadsKey(mac string) string {
	return uploadsKey(prov.DeviceObject(mac).String(), []string{"web.cfg", "phone.cfg", KVUploadName})
}

func uploadsKey(owner string, names []string) string {
	key := owner
	for _, n := range names {
		key += "|" + n
	}
	return key
}

// latestUploads reads owner's newest uploads of names in one query (a view
// needs two or three per owner), none at all when the cache knows the owner
// has none of them; a failed read is logged and reported in *failed, so
// that the View is not cached, and reads as none.
func (f *Files) latestUploads(ctx context.Context, owner string, failed *bool, names ...string) ownerUploads {
	key := uploadsKey(owner, names)
	if f.cache.uploadsNone(key) {
		return ownerUploads{owner: owner}
	}
	gen := f.cache.generation()
	ups, err := f.store.LatestUploads(ctx, owner, names...)
	if err != nil {
		*failed = true
		f.log.Warn("read uploads", "owner", owner, "err", err)
		return ownerUploads{owner: owner}
	}
	if len(ups) == 0 {
		f.cache.putUploadsNone(key, gen)
		return ownerUploads{owner: owner}
	}
	out := ownerUploads{owner: owner, latest: make(map[string]prov.Upload, len(ups))}
	for _, u := range ups {
		out.latest[u.Name] = u
	}
	return out
}

// uploadParams parses the newest stored .cfg upload of that name; nil when
// there is none or it no longer parses (it was validated when stored).
func (f *Files) uploadParams(ups ownerUploads, name string) *prov.UploadParams {
	u, ok := ups.latest[name]
	if !ok {
		return nil
	}
	owner := ups.owner
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
	v, err := f.view(ctx, d, true, Request{Proto: ProtoHTTP}, nil)
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

// companyDirectory is prov.CompanyDirectory(viewer, "") through the cache:
// every logged-in phone's view lists it, and reading all users per view made
// a boot storm's logins quadratic (half the daemon's CPU with 2,000 users).
func (f *Files) companyDirectory(ctx context.Context, viewer prov.User) ([]prov.CompanyEntry, error) {
	if l, ok := f.cache.company(); ok {
		return l.VisibleTo(viewer), nil
	}
	gen := f.cache.generation()
	l, err := prov.CompanyAll(ctx, f.store, "")
	if err != nil {
		return nil, err
	}
	f.cache.putCompany(l, gen)
	return l.VisibleTo(viewer), nil
}
