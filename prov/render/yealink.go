package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// yealink renders Yealink T3x/T4x/T5x and W7x DECT files (Yealink's Auto
// Provisioning guide): the common y000000000000.cfg, then <mac>.cfg, both
// "key = value" lines under "#!version:1.0.0.1". The phone has no user
// profile of its own, so <mac>.cfg carries the logged-in user's lines; it
// uploads <mac>-local.cfg (settings changed on the phone) and
// <mac>-contact.xml (its local directory), which are stored.
type yealink struct {
	cfg   Config
	zones *zoneCache
}

func newYealink(cfg Config, zones *zoneCache) *yealink { return &yealink{cfg: cfg, zones: zones} }

func (y *yealink) Name() string { return "yealink" }

func (y *yealink) ContentType(kind files.FileKind) string {
	if kind == files.KindDirectory {
		return "application/xml"
	}
	return "text/plain; charset=utf-8"
}

// yealinkMaxLines is how many accounts every device file sets, so a line
// that left the configuration is disabled rather than kept.
const (
	yealinkMaxLines = 8
	yealinkLineKeys = 10
)

var yealinkCommonRE = regexp.MustCompile(`^y0000000000[0-9a-fA-F]{2}\.cfg$`)

// Files implements Vendor.
func (y *yealink) Files(name string) (files.VendorFile, bool) {
	if strings.HasPrefix(name, "y0000000000") && yealinkCommonRE.MatchString(name) {
		// y000000000000.cfg (older firmware: y0000000000<hw>.cfg)
		return files.VendorFile{Kind: files.KindMaster, Boot: true}, true
	}
	mac, rest, ok := macPrefix(name)
	if !ok {
		return files.VendorFile{}, false
	}
	switch rest {
	case ".cfg":
		return files.VendorFile{Kind: files.KindDeviceConfig, MAC: mac, Enroll: true}, true
	case "-directory.xml":
		return files.VendorFile{Kind: files.KindDirectory, MAC: mac, Suffix: "directory.xml"}, true
	case "-local.cfg":
		return files.VendorFile{Kind: files.KindOverride, MAC: mac, Suffix: "local.cfg"}, true
	case "-contact.xml":
		return files.VendorFile{Kind: files.KindOverride, MAC: mac, Suffix: "contact.xml"}, true
	}
	return files.VendorFile{}, false
}

// SyncEvent implements Vendor. With sip.notify_reboot_enable = 0 (the
// defaults below) a plain check-sync re-provisions without a reboot;
// Yealink's own default (1) would reboot on every one.
func (y *yealink) SyncEvent(reboot bool) string {
	if reboot {
		return "check-sync;reboot=true"
	}
	return "check-sync;reboot=false"
}

// yealinkDefaults is the vendor-default layer.
var yealinkDefaults = map[string]string{
	"sip.notify_reboot_enable":            "0",
	"static.auto_provision.power_on":      "1",
	"static.auto_provision.repeat.enable": "0",
	"static.auto_provision.weekly.enable": "0",
	"local_time.ntp_server1":              "pool.ntp.org",
	"local_time.summer_time":              "0",
	"phone_setting.phone_lock.enable":     "0",
}

// Sources implements Vendor: the same layers as Polycom's, with the
// admin's raw overrides spelled "yealink:<name>".
func (y *yealink) Sources(v *prov.View) []Source {
	m := model(v, y.cfg, y.zones)
	srcs := []Source{{prov.LayerDefaults, "vendor defaults", yealinkDefaults}}
	site := "site " + v.Site.Name
	srcs = append(srcs, Source{prov.LayerSite, site, y.siteParams(v, m)},
		Source{prov.LayerSite, site + " params", vendorParams(y.Name(), v.Site.Params)})
	if v.User != nil {
		user := "user " + v.User.Username
		srcs = append(srcs, Source{prov.LayerUser, user, y.userParams(m)},
			Source{prov.LayerUser, user + " params", vendorParams(y.Name(), v.User.Params)})
	}
	srcs = append(srcs, Source{prov.LayerDevice, "device params", vendorParams(y.Name(), v.Device.Params)})
	// What the phone uploaded (<mac>-local.cfg), by the same precedence as
	// Polycom's: the device's over the admin's, the user's above all.
	if u := v.DeviceLocal; u != nil {
		srcs = append(srcs, Source{prov.LayerDevice, uploadSource(v.Device.MAC, u), u.Params})
	}
	if u := v.UserLocal; u != nil && v.User != nil {
		srcs = append(srcs, Source{prov.LayerUserPhone, uploadSource(v.User.Username, u), u.Params})
	}
	return srcs
}

// siteParams: provisioning, locked profile, time, language, and the
// device account on account.1 (the user layer replaces it).
func (y *yealink) siteParams(v *prov.View, m Model) map[string]string {
	p := map[string]string{}
	if m.ProvURL != "" {
		p["static.auto_provision.server.url"] = m.ProvURL + "/"
	}
	if m.ProvUser != "" {
		p["static.auto_provision.server.username"] = m.ProvUser
		p["static.auto_provision.server.password"] = m.ProvPassword
	}
	if m.FirmwareURL != "" {
		p["static.firmware.url"] = m.FirmwareURL
	}
	var allowed []string
	allowed = append(allowed, m.Emergency...)
	for _, a := range m.Authorized {
		allowed = append(allowed, a.Number)
	}
	p["phone_setting.emergency.number"] = strings.Join(allowed, ",")
	if v.Site.Login.Required {
		p["phone_setting.phone_lock.enable"] = "1"
	}
	if m.LocalPIN != "" {
		p["phone_setting.phone_lock.unlock_pin"] = m.LocalPIN
	}
	if m.TZKnown {
		p["local_time.time_zone"] = offsetHours(m.TZOffset)
		p["local_time.summer_time"] = map[bool]string{true: "2", false: "0"}[m.TZDST]
	}
	if l := yealinkLang(v.Site.Language); l != "" {
		p["lang.gui"] = l
		p["lang.wui"] = l
	}
	var lines []Line
	if v.User == nil && v.Device.MAC != "" {
		lines = m.Lines
	}
	for k, val := range yealinkLines(lines) {
		p[k] = val
	}
	if v.Site.FeatureCodes.Voicemail != "" {
		// A locked phone has no mailbox: the user layer's MWI goes with it.
		for i := 1; i <= yealinkMaxLines; i++ {
			p["account."+strconv.Itoa(i)+".subscribe_mwi"] = "0"
			p["voice_mail.number."+strconv.Itoa(i)] = ""
		}
	}
	for k, val := range yealinkKeys(nil, nil, nil, "", m.LoginPage) {
		p[k] = val
	}
	return p
}

// userParams: the user's lines, line keys, speed dials and directory.
func (y *yealink) userParams(m Model) map[string]string {
	p := yealinkLines(m.Lines)
	for k, val := range yealinkMWI(len(m.Lines), m.Voicemail) {
		p[k] = val
	}
	for k, val := range yealinkKeys(m.Lines, m.Keys, m.SpeedDials, m.DirectoryURL, m.LoginPage) {
		p[k] = val
	}
	if l := yealinkLang(m.Language); l != "" {
		p["lang.gui"] = l
	}
	return p
}

// yealinkMWI subscribes each user line to its own mailbox's
// message-waiting and sets the voice mail number its messages key dials
// (Yealink SIP-T2xP/T19P Administrator's Guide, "Message Waiting
// Indicator": account.X.subscribe_mwi, voice_mail.number.X; the phones
// also take unsolicited NOTIFYs, which hotdesk sends to phones that do
// not subscribe). No code: voicemail is off, nothing set.
func yealinkMWI(lines int, code string) map[string]string {
	if code == "" {
		return nil
	}
	p := map[string]string{}
	for i := 1; i <= min(lines, yealinkMaxLines); i++ {
		n := strconv.Itoa(i)
		p["account."+n+".subscribe_mwi"] = "1"
		p["voice_mail.number."+n] = code
	}
	return p
}

// yealinkLines sets accounts 1..yealinkMaxLines: ls enabled, the rest off.
func yealinkLines(ls []Line) map[string]string {
	p := map[string]string{}
	for i := 1; i <= yealinkMaxLines; i++ {
		a := "account." + strconv.Itoa(i) + "."
		if i > len(ls) {
			p[a+"enable"] = "0"
			continue
		}
		l := ls[i-1]
		transport := map[string]string{"udp": "0", "tcp": "1", "tls": "2"}[l.Transport]
		for k, val := range map[string]string{
			"enable": "1", "label": l.Label, "display_name": l.Display, "auth_name": l.AuthUser,
			"user_name": l.User, "password": l.Password,
			"sip_server.1.address": l.Domain, "sip_server.1.port": strconv.Itoa(l.Port),
			"sip_server.1.transport_type": transport, "sip_server.1.expires": strconv.Itoa(l.Expiry),
			"outbound_proxy_enable": "1", "outbound_proxy.1.address": l.Server,
			"outbound_proxy.1.port": strconv.Itoa(l.Port),
		} {
			p[a+k] = val
		}
		if l.SRV {
			// DNS SRV: the registrar is the SRV domain with transport 3,
			// DNS-NAPTR (NAPTR, then SRV, then A), port 0 (Yealink admin
			// guide, account.X.sip_server.Y.transport_type: 0 UDP, 1 TCP,
			// 2 TLS, 3 DNS-NAPTR), and no outbound proxy: the records name
			// every node.
			p[a+"sip_server.1.address"], p[a+"sip_server.1.port"], p[a+"sip_server.1.transport_type"] = l.Server, "0", "3"
			p[a+"outbound_proxy_enable"], p[a+"outbound_proxy.1.address"], p[a+"outbound_proxy.1.port"] = "0", "", ""
			p[a+"outbound_proxy.2.address"], p[a+"outbound_proxy.2.port"] = "", ""
			continue
		}
		// The next cluster node is the second outbound proxy, the one the
		// phone fails over to (Yealink admin guide, "Server Redundancy":
		// account.X.outbound_proxy.Y.*, Y = 1..2; a Yealink names two, so
		// a third node is not named). Cleared without one, so a node taken
		// out of the cluster leaves the phone.
		p[a+"outbound_proxy.2.address"], p[a+"outbound_proxy.2.port"] = "", ""
		if len(l.Backups) > 0 {
			b := l.Backups[0]
			p[a+"outbound_proxy.2.address"], p[a+"outbound_proxy.2.port"] = b.Host, strconv.Itoa(b.Port)
		}
	}
	return p
}

// yealinkKeys lays out the line keys: one per line, then the user's
// feature keys, then the contacts' speed dials; the rest cleared, so a
// logout leaves none behind. The last key opens the login door in the
// phone's XML browser (type 27) when there is one, and is never crowded
// out. linekey.X.type values from Yealink's administrator guide (DSS key
// types, e.g. the SIP-T2/T4/T5 Administrator Guide V84, "linekey.X.type"):
// 0 N/A, 13 Speed Dial, 15 Line, 16 BLF, 27 XML Browser; a BLF key's
// value is the watched number, on the account linekey.X.line.
func yealinkKeys(ls []Line, keys []Key, dials []prov.Contact, dir, login string) map[string]string {
	p := map[string]string{}
	n := 0
	set := func(typ, value, label, line string) {
		if n >= yealinkLineKeys-1 {
			return // the last key is the login door's
		}
		n++
		k := "linekey." + strconv.Itoa(n) + "."
		p[k+"type"], p[k+"value"], p[k+"label"], p[k+"line"] = typ, value, label, line
	}
	for i, l := range ls {
		set("15", "", l.Label, strconv.Itoa(i+1)) // 15: Line
	}
	for _, k := range keys {
		if k.BLF {
			set("16", k.Number, k.Label, "1") // 16: BLF
		} else {
			set("13", k.Number, k.Label, "1")
		}
	}
	for _, c := range dials {
		label := c.Label
		if label == "" {
			label = strings.TrimSpace(c.FirstName + " " + c.LastName)
		}
		set("13", c.Number, label, "1") // 13: Speed Dial
	}
	for n < yealinkLineKeys-1 {
		set("0", "", "", "")
	}
	last := "linekey." + strconv.Itoa(yealinkLineKeys) + "."
	p[last+"type"], p[last+"value"], p[last+"label"], p[last+"line"] = "0", "", "", ""
	if login != "" {
		p[last+"type"], p[last+"value"], p[last+"label"], p[last+"line"] = "27", login+"&ui=yealink", "Login", "1" // 27: XML Browser
	}
	if dir != "" {
		p["remote_phonebook.data.1.url"] = dir
		p["remote_phonebook.data.1.name"] = "Directory"
	} else {
		p["remote_phonebook.data.1.url"] = ""
		p["remote_phonebook.data.1.name"] = ""
	}
	return p
}

// yealinkLangs maps BCP 47 primary tags to lang.gui names.
var yealinkLangs = map[string]string{
	"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pl": "Polish",
	"pt": "Portuguese", "ru": "Russian", "tr": "Turkish", "he": "Hebrew", "zh": "Chinese_S",
}

func yealinkLang(s string) string {
	if s == "" {
		return ""
	}
	return yealinkLangs[langTag(s)]
}

// Render implements Vendor.
func (y *yealink) Render(kind files.FileKind, v *prov.View, srcs []Source) ([]byte, error) {
	switch kind {
	case files.KindMaster:
		// Common to every Yealink: defaults and where to provision from,
		// never a device's account or secrets.
		m := map[string]string{}
		for k, val := range yealinkDefaults {
			m[k] = val
		}
		if v.Server.BaseURL != "" {
			m["static.auto_provision.server.url"] = v.Server.BaseURL + "/"
		}
		return kvFile("common", m, false), nil
	case files.KindDeviceConfig:
		if v.Device.MAC == "" {
			return nil, prov.ErrNotFound
		}
		comment := "device " + v.Device.MAC + " (locked)"
		if v.User != nil {
			comment = "device " + v.Device.MAC + " with its user"
		}
		return kvFile(comment, flat(Merge(srcs)), v.Secrets), nil
	case files.KindDirectory:
		return yealinkDirectory(v.Contacts)
	}
	return nil, prov.ErrNotFound
}

func (y *yealink) secret(name string) bool { return secretName(name) }

// KnownParam implements Vendor.
func (y *yealink) KnownParam(name string) bool { return knownParam(yealinkParams, name) }

// yealinkParams are the parameter prefixes (a trailing '.') and names an
// admin may set as "yealink:<name>" (Yealink's T4x/T5x admin guides).
var yealinkParams = []string{
	"account.", "features.", "phone_setting.", "lang.", "local_time.", "linekey.", "expansion_module.",
	"programablekey.", "memorykey.", "remote_phonebook.", "directory_setting.", "voice.", "sip.",
	"static.auto_provision.", "static.firmware.", "static.network.", "static.security.", "security.",
	"ringtone.", "wallpaper_upload.", "phone_setting.", "screensaver.", "dialplan.", "call_waiting.",
	"transfer.", "forward.", "custom_softkey_", "softkey.", "push_xml.", "action_url.", "bw.", "voice_mail.",
	"static.lang.", "gui_lang.", "hotdesking.", "auto_redial.", "multicast.", "super_search.",
}

// knownParam reports whether name is one of list, or under a prefix of it.
func knownParam(list []string, name string) bool {
	if !prov.ValidParamName(name) {
		return false
	}
	for _, p := range list {
		if name == p || strings.HasSuffix(p, ".") && strings.HasPrefix(name, p) ||
			strings.HasSuffix(p, "_") && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// macPrefix splits a 12-hex-digit MAC off the front of name.
func macPrefix(name string) (mac, rest string, ok bool) {
	if len(name) < 13 {
		return "", "", false
	}
	m, ok := prov.NormalizeMAC(name[:12])
	if !ok || strings.ContainsAny(name[:12], ":-.") {
		return "", "", false
	}
	return m, name[12:], true
}

// flat is a merge's values.
func flat(m map[string]prov.Param) map[string]string {
	out := make(map[string]string, len(m))
	for k, p := range m {
		out[k] = p.Value
	}
	return out
}

// secretName reports a parameter a file without secrets leaves out: a
// password, or a PIN that unlocks the phone.
func secretName(k string) bool {
	l := strings.ToLower(k)
	return prov.SecretParam(k) || strings.Contains(l, "pin") || strings.HasSuffix(l, ".username")
}

// kvFile renders Yealink's "key = value" file, sorted, secrets left out
// unless allowed. Values cannot hold a line break (ValidateParams refuses
// them; the renderer's own never do).
func kvFile(comment string, m map[string]string, secrets bool) []byte {
	names := make([]string, 0, len(m))
	for k := range m {
		if !secrets && secretName(k) {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString("#!version:1.0.0.1\n")
	fmt.Fprintf(&b, "## hotdesk: %s\n", comment)
	for _, k := range names {
		val := strings.NewReplacer("\r", "", "\n", "").Replace(m[k])
		fmt.Fprintf(&b, "%s = %s\n", k, val)
	}
	return b.Bytes()
}

// yealinkDirectory renders the remote phone book in Yealink's XML browser
// directory format.
func yealinkDirectory(cs []prov.Contact) ([]byte, error) {
	type entry struct {
		Name      string `xml:"Name"`
		Telephone string `xml:"Telephone"`
	}
	doc := struct {
		XMLName xml.Name `xml:"YealinkIPPhoneDirectory"`
		Entries []entry  `xml:"DirectoryEntry"`
	}{}
	for _, c := range cs {
		name := strings.TrimSpace(c.FirstName + " " + c.LastName)
		if c.Label != "" && name == "" {
			name = c.Label
		}
		doc.Entries = append(doc.Entries, entry{Name: name, Telephone: c.Number})
	}
	out, err := xml.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, fmt.Errorf("yealink directory: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}
