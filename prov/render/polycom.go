package render

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"time"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// polycom renders Polycom/Spectralink UC Software files.
type polycom struct {
	cfg   Config
	t     *template.Template
	zones *zoneCache
	// builtinConfig, builtinMaster: config.cfg, master.cfg are the
	// built-in templates, which config and master write themselves (the
	// same bytes, without the template's reflection).
	builtinConfig, builtinMaster bool
}

// zoneCache caches tzOffsets by zone name: time.LoadLocation reads the
// zoneinfo file on every call, which was a tenth of a boot storm's CPU.
// The names are the sites' time zones, a handful.
type zoneCache struct {
	m sync.Map // string → zoneOffsets
}

type zoneOffsets struct {
	off   int
	dst   bool
	known bool
}

func (p *polycom) Name() string { return "polycom" }

func (p *polycom) ContentType(files.FileKind) string { return "application/xml" }

// Files implements Vendor: the namespace knows Polycom's names itself.
func (p *polycom) Files(string) (files.VendorFile, bool) { return files.VendorFile{}, false }

// SyncEvent implements Vendor; checkSync.alwaysReboot=0 makes the phone
// reload without a reboot unless asked to.
func (p *polycom) SyncEvent(reboot bool) string {
	if reboot {
		return "check-sync;reboot=true"
	}
	return "check-sync"
}

// KnownParam implements Vendor: UC Software's parameter groups.
func (p *polycom) KnownParam(name string) bool {
	return prov.ValidateParams("p", map[string]string{name: ""}, false) == nil
}

// polycomDefaults are the vendor-default layer: no reboot on check-sync,
// server-authoritative logins, serial number in the User-Agent.
var polycomDefaults = map[string]string{
	"voIpProt.SIP.specialEvent.checkSync.alwaysReboot": "0",
	"prov.polling.enabled":                             "0",
	"prov.login.enabled":                               "0",
	"prov.login.useProvAuth":                           "1",
	"tcpIpApp.sntp.address":                            "pool.ntp.org",
	"tcpIpApp.sntp.resyncPeriod":                       "86400",
	"lcl.ml.lang":                                      "English_United_States",
	"device.prov.tagSerialNo":                          "1",
}

// Sources implements Vendor.
func (p *polycom) Sources(v *prov.View) []Source {
	srcs := []Source{{prov.LayerDefaults, "vendor defaults", polycomDefaults}}
	if v.Device.MAC != "" {
		srcs = append(srcs,
			Source{prov.LayerSite, "device account", p.deviceAccount(v)},
			Source{prov.LayerSite, "provisioning server", p.provServer(v)})
		if d := v.Device; d.Kind == prov.DeviceManaged && d.AssignedUserID != 0 && d.SecurityPIN != "" {
			srcs = append(srcs, Source{prov.LayerSite, "security PIN", localPasswords(d.SecurityPIN)})
		}
	}
	site := "site " + v.Site.Name
	srcs = append(srcs, Source{prov.LayerSite, site, p.siteParams(v)},
		Source{prov.LayerSite, site + " params", v.Site.Params})
	if v.User != nil {
		user := "user " + v.User.Username
		srcs = append(srcs, Source{prov.LayerUser, user, p.userParams(v)})
		if kp := p.keyParams(v); kp != nil {
			srcs = append(srcs, Source{prov.LayerUser, user + " keys", kp})
		}
		srcs = append(srcs, Source{prov.LayerUser, user + " params", v.User.Params})
	}
	srcs = append(srcs, Source{prov.LayerDevice, "device params", v.Device.Params})
	if len(v.Device.Authorized) > 0 {
		srcs = append(srcs, Source{prov.LayerDevice, "device authorized numbers", authorized(v.Device.Authorized)})
	}
	for _, u := range []*prov.UploadParams{v.DeviceWeb, v.DevicePhone} {
		if u != nil {
			srcs = append(srcs, Source{prov.LayerDevice, uploadSource(v.Device.MAC, u), u.Params})
		}
	}
	if v.User != nil && v.UserPhone != nil {
		srcs = append(srcs, Source{prov.LayerUserPhone, uploadSource(v.User.Username, v.UserPhone), v.UserPhone.Params})
	}
	return srcs
}

func uploadSource(owner string, u *prov.UploadParams) string {
	return fmt.Sprintf("upload %s-%s v%d", owner, u.Name, u.Version)
}

// deviceAccount is reg.1: the device's own SIP account, what a locked
// phone registers with.
func (p *polycom) deviceAccount(v *prov.View) map[string]string {
	d := v.Device
	m := p.line(1, aor(d.SIPUser, v), d.SIPUser, d.SIPPassword, v.Server.Host)
	m["reg.1.label"] = "Locked"
	m["reg.1.displayName"] = ""
	if v.Site.FeatureCodes.Voicemail != "" {
		// A locked phone has no mailbox: no subscription, no retrieval.
		m["msg.mwi.1.subscribe"] = ""
		m["msg.mwi.1.callBackMode"] = "disabled"
	}
	m["voIpProt.server.1.address"] = v.Server.Host
	m["voIpProt.server.1.port"] = strconv.Itoa(p.cfg.SIPPort)
	return m
}

// polycomMWI subscribes line n to its own mailbox and makes the messages
// key dial the site's mailbox code (SoundPoint IP Administrator Guide
// §4.6.3.5.1 "Message Waiting Indicator <mwi/>": msg.mwi.x.subscribe, a
// user part or SIP URL the phone SUBSCRIBEs to after boot;
// msg.mwi.x.callBackMode contact with msg.mwi.x.callBack the number
// called to retrieve messages). No code: voicemail is off, nothing set.
func polycomMWI(n int, number, code string) map[string]string {
	if code == "" {
		return nil
	}
	x := "msg.mwi." + strconv.Itoa(n) + "."
	return map[string]string{x + "subscribe": number, x + "callBackMode": "contact", x + "callBack": code}
}

// localPasswords guard the phone's own menus with the desk phone's
// security PIN (seed 003: it protects the phone's local admin and
// settings), so the phone's user, who is shown it, and nobody passing by
// can change them. It sits below the site's and device's params: an admin
// who keeps the admin menu to themselves sets device.auth.localAdminPassword
// there. Both names contain "password", so TFTP never carries them.
func localPasswords(pin string) map[string]string {
	return map[string]string{
		"device.auth.localAdminPassword": pin,
		"device.auth.localUserPassword":  pin,
	}
}

// aor is a line's address of record: with the site's SIP domain, since a
// bare user part makes the phone register at the server's address, which
// is not a domain the registrar serves.
func aor(user string, v *prov.View) string {
	if v.Site.Domain == "" {
		return user
	}
	return user + "@" + v.Site.Domain
}

func (p *polycom) line(n int, address, userID, password, host string) map[string]string {
	r := "reg." + strconv.Itoa(n) + "."
	m := map[string]string{
		r + "address":          address,
		r + "auth.userId":      userID,
		r + "auth.password":    password,
		r + "server.1.address": host,
		r + "server.1.port":    strconv.Itoa(p.cfg.SIPPort),
	}
	if p.cfg.SRVDomain != "" {
		// DNS SRV: transport DNSnaptr with port 0 makes the phone look up
		// NAPTR, then SRV, then A (UC Software Administrator's Guide,
		// reg.x.server.y.port/transport; DNSnaptr is also what FreePBX's
		// and Wazo's templates render); the records name every node, so
		// no server.2 is named.
		m[r+"server.1.address"], m[r+"server.1.port"], m[r+"server.1.transport"] = p.cfg.SRVDomain, "0", "DNSnaptr"
		for i := 2; i <= len(p.cfg.Nodes)+1; i++ { // named before the domain was set
			s := r + "server." + strconv.Itoa(i) + "."
			m[s+"address"], m[s+"port"] = "", ""
		}
		return m
	}
	// The other cluster nodes, in the configured order, for failover.
	i := 2
	for _, node := range p.cfg.Nodes {
		h, port := node, p.cfg.SIPPort
		if hh, pp, err := net.SplitHostPort(node); err == nil {
			h = hh
			port, _ = strconv.Atoi(pp)
		}
		if h == host && port == p.cfg.SIPPort {
			continue
		}
		s := r + "server." + strconv.Itoa(i) + "."
		m[s+"address"], m[s+"port"] = h, strconv.Itoa(port)
		i++
	}
	return m
}

// provServer moves the phone to this server over HTTP(S) from then on (the
// TFTP boot hand-off) with the device's digest credentials.
func (p *polycom) provServer(v *prov.View) map[string]string {
	base := v.Server.BaseURL
	typ := "HTTP"
	if strings.HasPrefix(base, "https://") {
		typ = "HTTPS"
	}
	if i := strings.Index(base, "://"); i >= 0 {
		base = base[i+3:]
	}
	return map[string]string{
		"device.prov.serverName":        base,
		"device.prov.serverType":        typ,
		"device.prov.user":              v.Device.ProvUser,
		"device.prov.password":          v.Device.ProvPassword,
		"device.dhcp.bootSrvUseOpt":     "Static",
		"device.prov.redunAttemptLimit": "3",
	}
}

// siteParams renders the site: login policy, locked-phone numbers,
// emergency routing, time zone and language.
func (p *polycom) siteParams(v *prov.View) map[string]string {
	s := v.Site
	l := s.Login
	m := map[string]string{
		"prov.login.enabled":         b01(l.Enabled),
		"prov.login.required":        b01(l.Required),
		"prov.login.automaticLogout": strconv.Itoa(l.AutomaticLogout),
		"prov.login.persistent":      b01(l.Persistent),
		"prov.login.defaultUser":     l.DefaultUser,
		"prov.login.defaultPassword": "",
		"prov.login.defaultOnly":     b01(l.DefaultOnly),
		"phoneLock.enabled":          b01(l.Required),
	}
	for k, val := range authorized(s.Authorized) {
		m[k] = val
	}
	if l.Enabled && v.Secrets && l.DefaultUser != "" {
		// The phone logs the default user in by itself (seed 000's shared
		// phones): with a password derived for it, never the user's own.
		m["prov.login.defaultPassword"] = v.DefaultLoginSecret
	}
	if l.Enabled && v.Secrets && v.Device.ProvPassword != "" && v.Server.BaseURL != "" {
		// The browser login door (log in, log out, change password) is the
		// microbrowser's home page; its signed link is a secret like the
		// passwords, so it is not served over TFTP unless allowed.
		m["mb.main.home"] = v.Server.BaseURL + "/" + files.PhonePagesPath + "?mac=" + v.Device.MAC + "&t=" + files.PhonePageToken(v.Device)
	}
	if len(s.Emergency) > 0 {
		m["dialplan.routing.server.1.address"] = v.Server.Host
		m["dialplan.routing.server.1.port"] = strconv.Itoa(p.cfg.SIPPort)
		m["dialplan.routing.emergency.1.value"] = strings.Join(s.Emergency, ",")
		m["dialplan.routing.emergency.1.server.1"] = "1"
	}
	if z := p.zones.zone(s.TimeZone); z.known {
		m["tcpIpApp.sntp.gmtOffset"] = strconv.Itoa(z.off)
		m["tcpIpApp.sntp.daylightSavings.enable"] = b01(z.dst)
	}
	if lang := polycomLang(s.Language); lang != "" {
		m["lcl.ml.lang"] = lang
	}
	return m
}

// authorized renders all five phoneLock.authorized slots so that a shorter
// list clears the slots a longer one filled.
func authorized(ns []prov.AuthorizedNumber) map[string]string {
	m := map[string]string{}
	for i := 1; i <= prov.MaxAuthorizedNumbers; i++ {
		var a prov.AuthorizedNumber
		if i <= len(ns) {
			a = ns[i-1]
		}
		k := "phoneLock.authorized." + strconv.Itoa(i) + "."
		m[k+"description"] = a.Description
		m[k+"value"] = a.Number
	}
	return m
}

// userParams renders the user's lines with the session's credentials.
func (p *polycom) userParams(v *prov.View) map[string]string {
	u := v.User
	user, pass := u.Username, u.SIPPassword
	if v.Session != nil {
		user, pass = v.Session.SIPUser, v.Session.SIPPassword
	}
	nums := v.Numbers
	if len(nums) == 0 {
		nums = []string{u.Username}
	}
	m := map[string]string{}
	display := strings.TrimSpace(u.FirstName + " " + u.LastName)
	for i, n := range nums {
		if i >= 8 {
			break
		}
		for k, val := range p.line(i+1, aor(n, v), user, pass, v.Server.Host) {
			m[k] = val
		}
		r := "reg." + strconv.Itoa(i+1) + "."
		m[r+"label"] = n
		m[r+"displayName"] = display
		for k, val := range polycomMWI(i+1, n, v.Site.FeatureCodes.Voicemail) {
			m[k] = val
		}
	}
	if lang := polycomLang(u.Language); lang != "" {
		m["lcl.ml.lang"] = lang
	}
	return m
}

func (p *polycom) needsSources(kind files.FileKind) bool {
	return kind == files.KindDeviceConfig || kind == files.KindUserConfig
}

// Render implements Vendor.
func (p *polycom) Render(kind files.FileKind, v *prov.View, srcs []Source) ([]byte, error) {
	switch kind {
	case files.KindMaster:
		return p.master(v)
	case files.KindDeviceConfig:
		if v.Device.MAC == "" {
			return nil, prov.ErrNotFound
		}
		layers := []prov.Layer{prov.LayerDefaults, prov.LayerSite, prov.LayerDevice}
		comment := "device " + v.Device.MAC + " (locked)"
		if v.UserInDevice {
			layers = prov.Layers
			comment = "device " + v.Device.MAC + " with its user"
		}
		return p.config(comment, mergeSorted(only(srcs, layers...)), v.Secrets)
	case files.KindUserConfig:
		if v.User == nil {
			return nil, prov.ErrNotFound
		}
		ps := slices.DeleteFunc(mergeSorted(srcs), func(q merged) bool {
			return q.layer != prov.LayerUser && q.layer != prov.LayerDevice && q.layer != prov.LayerUserPhone
		})
		return p.config("user profile", ps, v.Secrets)
	case files.KindDirectory:
		return p.exec("directory.xml", struct{ Contacts []prov.Contact }{v.DirectoryItems()})
	}
	return nil, prov.ErrNotFound
}

func (p *polycom) master(v *prov.View) ([]byte, error) {
	cfgFiles := "[PHONE_MAC_ADDRESS]" + files.DeviceConfigSuffix
	if v.Device.MAC != "" {
		cfgFiles = v.Device.MAC + files.DeviceConfigSuffix
	}
	if p.builtinMaster {
		return polycomMaster(p.cfg.AppFilePath, cfgFiles, v.Site.ProfileDirs), nil
	}
	return p.exec("master.cfg", map[string]string{
		"AppFilePath": p.cfg.AppFilePath, "ConfigFiles": cfgFiles,
		"LogDir": "", "OverridesDir": "", "ContactsDir": v.Site.ProfileDirs.Contacts,
		"UserProfilesDir": v.Site.ProfileDirs.UserProfiles, "CallListsDir": v.Site.ProfileDirs.CallLists,
	})
}

// polycomMaster writes the master file as the built-in master.cfg
// template does (TestPolycomConfigAsTemplate holds them equal).
func polycomMaster(app, cfgFiles string, dirs prov.ProfileDirs) []byte {
	var b bytes.Buffer
	b.Grow(600 + len(app) + len(cfgFiles) + len(dirs.Contacts) + len(dirs.UserProfiles) + len(dirs.CallLists))
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n" +
		"<!-- hotdesk master configuration: generated, do not edit -->\n<APPLICATION\n  APP_FILE_PATH=\"")
	writeXMLEscaped(&b, app)
	b.WriteString("\"\n  CONFIG_FILES=\"")
	writeXMLEscaped(&b, cfgFiles)
	b.WriteString("\"\n  MISC_FILES=\"\"\n  LOG_FILE_DIRECTORY=\"\"\n  OVERRIDES_DIRECTORY=\"\"\n  CONTACTS_DIRECTORY=\"")
	writeXMLEscaped(&b, dirs.Contacts)
	b.WriteString("\"\n  LICENSE_DIRECTORY=\"\"\n  USER_PROFILES_DIRECTORY=\"")
	writeXMLEscaped(&b, dirs.UserProfiles)
	b.WriteString("\"\n  CALL_LISTS_DIRECTORY=\"")
	writeXMLEscaped(&b, dirs.CallLists)
	b.WriteString("\"\n  COREFILE_DIRECTORY=\"\"/>\n")
	return b.Bytes()
}

type kv struct{ Name, Value string }

type group struct {
	Name   string
	Params []kv
}

// merged is a parameter after precedence: the value of the last source
// (src, its index) that sets it.
type merged struct {
	name, value string
	layer       prov.Layer
	src         int
}

// mergeSorted is Merge as a slice sorted by name, for the files that only
// need the values in order: no map to build and hash per rendered file.
func mergeSorted(srcs []Source) []merged {
	n := 0
	for _, s := range srcs {
		n += len(s.Params)
	}
	ps := make([]merged, 0, n)
	for i, s := range srcs {
		for name, val := range s.Params {
			if prov.ValidParamName(name) {
				ps = append(ps, merged{name, val, s.Layer, i})
			}
		}
	}
	slices.SortFunc(ps, func(a, b merged) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return cmp.Compare(a.src, b.src)
	})
	out := ps[:0]
	for i, q := range ps {
		if i+1 < len(ps) && ps[i+1].name == q.name {
			continue // a later source sets it
		}
		out = append(out, q)
	}
	return out
}

// config renders parameters, sorted by name, as <polycomConfig>, one
// element per first name segment. device.* needs device.set and
// device.<x>.set or the phone ignores it; secrets are left out unless
// allowed.
func (p *polycom) config(comment string, ps []merged, secrets bool) ([]byte, error) {
	flags := 0
	for _, q := range ps {
		if strings.HasPrefix(q.name, "device.") {
			flags++ // at most: sized once
		}
	}
	out := make([]kv, 0, len(ps)+flags+1)
	for _, q := range ps {
		if !secrets && (prov.SecretParam(q.name) || q.name == "device.prov.user") {
			continue
		}
		out = append(out, kv{q.name, q.value})
	}
	flags = 0
	for i, n := 0, len(out); i < n; i++ {
		if x, ok := strings.CutPrefix(out[i].Name, "device."); ok && !strings.HasSuffix(x, ".set") && x != "set" {
			out = append(out, kv{"device." + x + ".set", "1"})
			flags++
		}
	}
	if flags > 0 {
		out = append(out, kv{"device.set", "1"})
		slices.SortFunc(out, func(a, b kv) int { return strings.Compare(a.Name, b.Name) })
		// A name twice is a parameter and its flag: the flag's "1" wins.
		w := 0
		for i := 0; i < len(out); {
			j := i + 1
			for j < len(out) && out[j].Name == out[i].Name {
				j++
			}
			q := out[i]
			if j-i > 1 {
				q.Value = "1"
			}
			out[w] = q
			w++
			i = j
		}
		out = out[:w]
	}
	if p.builtinConfig {
		return polycomConfig(comment, out), nil
	}
	var groups []group
	for i, q := range out {
		g, _, _ := strings.Cut(q.Name, ".")
		if len(groups) == 0 || groups[len(groups)-1].Name != g {
			groups = append(groups, group{Name: g})
		}
		last := &groups[len(groups)-1]
		last.Params = out[i-len(last.Params) : i+1]
	}
	return p.exec("config.cfg", struct {
		Comment string
		Groups  []group
	}{comment, groups})
}

// polycomConfig writes params, sorted by name, as the built-in
// config.cfg template does (TestPolycomConfigAsTemplate holds them equal).
func polycomConfig(comment string, params []kv) []byte {
	size := 160 + len(comment)
	for _, q := range params {
		size += len(q.Name) + len(q.Value) + 8
	}
	var b bytes.Buffer
	b.Grow(size + size/8)
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<!-- ")
	b.WriteString(comment)
	b.WriteString(": generated by hotdesk, do not edit -->\n<polycomConfig>")
	group := ""
	for i, q := range params {
		g, _, _ := strings.Cut(q.Name, ".")
		if i == 0 || g != group {
			if i > 0 {
				b.WriteString("/>")
			}
			group = g
			b.WriteString("\n  <")
			b.WriteString(g)
		}
		b.WriteString("\n    ")
		b.WriteString(q.Name)
		b.WriteString(`="`)
		writeXMLEscaped(&b, q.Value)
		b.WriteByte('"')
	}
	if len(params) > 0 {
		b.WriteString("/>")
	}
	b.WriteString("\n</polycomConfig>\n")
	return b.Bytes()
}

func (p *polycom) exec(name string, data any) ([]byte, error) {
	var b bytes.Buffer
	if err := p.t.ExecuteTemplate(&b, name, data); err != nil {
		return nil, fmt.Errorf("polycom %s: %w", name, err)
	}
	return b.Bytes(), nil
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// zone is tzOffsets through the cache.
func (c *zoneCache) zone(name string) zoneOffsets {
	if z, ok := c.m.Load(name); ok {
		return z.(zoneOffsets)
	}
	var z zoneOffsets
	z.off, z.dst, z.known = tzOffsets(name)
	c.m.Store(name, z)
	return z
}

// tzOffsets returns the standard UTC offset in seconds and whether the zone
// observes daylight saving time, from fixed dates so output is stable.
func tzOffsets(name string) (int, bool, bool) {
	if name == "" {
		return 0, false, false
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return 0, false, false
	}
	_, jan := time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	_, jul := time.Date(2026, 7, 15, 12, 0, 0, 0, time.UTC).In(loc).Zone()
	return min(jan, jul), jan != jul, true
}

// polycomLangs maps BCP 47 tags to UC Software language names.
var polycomLangs = map[string]string{
	"en": "English_United_States", "en-us": "English_United_States", "en-gb": "English_United_Kingdom",
	"de": "Deutsch_Deutschland", "fr": "Francais_France", "es": "Espanol_Espana", "it": "Italiano_Italia",
	"nl": "Nederlands_Nederland", "pt": "Portugues_Portugal", "sv": "Svenska_Sverige",
	"da": "Dansk_Danmark", "no": "Norsk_Norge", "pl": "Polski_Polska",
}

// polycomLang accepts a tag ("de", "en-GB") or a UC Software name as is.
func polycomLang(s string) string {
	if s == "" {
		return ""
	}
	if strings.Contains(s, "_") && prov.ValidParamName(s) {
		return s
	}
	return polycomLangs[strings.ToLower(strings.ReplaceAll(s, "_", "-"))]
}

// keyParams renders the user's feature keys (button programming) after
// the keys of their lines. Parameter names, from the Polycom UC Software
// Administrators' Guide (4.1.0, 1725-11530-410; the same in 5.x):
//   - Flexible Line Key Assignment: lineKey.reassignment.enabled turns it
//     on; then every key is lineKey.x.category (Line, BLF, EFK, …) with
//     lineKey.x.index (for Line the registration, for EFK the macro, for
//     BLF 0: the next attendant resource in order).
//   - Busy Lamp Field: attendant.reg is the registration that SUBSCRIBEs
//     (the SoundPoint IP 3.1 guide, A-122); attendant.resourceList.x.address,
//     .label and .type ("normal": a key that watches and calls a user)
//     name each watched user; the phone subscribes to each address's
//     dialog event package (RFC 4235), which the registrar answers.
//   - Enhanced Feature Keys: feature.enhancedFeatureKeys.enabled;
//     efk.efklist.x.mname (macro name), .status (1 = on), .label and
//     .action.string, where digits followed by $Tinvite$ place a call.
//
// Speed dial, DND and forward keys are EFK macros that call the number or
// the site's DND / forward code (prov.Calls.handlingCode runs those), so
// DND and forwarding are the user's server-side call handling, the same
// the portal shows, not a setting of one handset.
func (p *polycom) keyParams(v *prov.View) map[string]string {
	u := v.User
	if len(u.Keys) == 0 {
		return nil
	}
	m := map[string]string{"lineKey.reassignment.enabled": "1"}
	key := 0
	nums := max(len(v.Numbers), 1)
	for line := 1; line <= min(nums, 8); line++ {
		n := 1
		if line == 1 {
			n = max(prov.LineKeys(*u), 1)
		}
		for range n {
			key++
			m[fmt.Sprintf("lineKey.%d.category", key)] = "Line"
			m[fmt.Sprintf("lineKey.%d.index", key)] = strconv.Itoa(line)
		}
	}
	blf, efk := 0, 0
	codes := v.Site.FeatureCodes
	for _, k := range u.Keys {
		label := k.Label
		var action string
		switch k.Kind {
		case prov.KeyBLF:
			blf++
			key++
			r := fmt.Sprintf("attendant.resourceList.%d.", blf)
			m[r+"address"] = aor(k.Target, v)
			m[r+"label"] = orString(label, k.Target)
			m[r+"type"] = "normal"
			m["attendant.reg"] = "1"
			m[fmt.Sprintf("lineKey.%d.category", key)] = "BLF"
			m[fmt.Sprintf("lineKey.%d.index", key)] = "0"
			continue
		case prov.KeySpeedDial:
			action, label = k.Target+"$Tinvite$", orString(label, k.Target)
		case prov.KeyDND:
			if codes.DND == "" {
				continue // the site has no DND code: no key that does nothing
			}
			action, label = codes.DND+"$Tinvite$", orString(label, "DND")
		case prov.KeyForward:
			if codes.Forward == "" {
				continue
			}
			action, label = codes.Forward+k.Target+"$Tinvite$", orString(label, "Forward")
		default:
			continue
		}
		efk++
		key++
		e := fmt.Sprintf("efk.efklist.%d.", efk)
		m[e+"mname"] = fmt.Sprintf("hotdesk%d", efk)
		m[e+"status"] = "1"
		m[e+"label"] = label
		m[e+"action.string"] = action
		m["feature.enhancedFeatureKeys.enabled"] = "1"
		m[fmt.Sprintf("lineKey.%d.category", key)] = "EFK"
		m[fmt.Sprintf("lineKey.%d.index", key)] = strconv.Itoa(efk)
	}
	return m
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
