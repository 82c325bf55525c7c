package render

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// snom renders Snom D7xx/D8xx and M-series DECT files (Snom's Auto
// Provisioning and XML setting-file guides): with setting_server a
// directory URL the phone asks for snom<model>.htm (per model), then
// snom<model>-<MAC>.htm (per phone), then <MAC>.xml, each an XML
// <settings> document with <phone-settings> (one element per setting,
// perm="R" so the user cannot change it, idx for the per-identity ones)
// and <functionKeys>. Snom has no per-device digest setting of its own: the
// credentials travel in setting_server's URL (http://user:pass@host/…).
// NOTIFY "check-sync;reboot=false" re-provisions without a reboot.
type snom struct {
	cfg   Config
	zones *zoneCache
}

func newSnom(cfg Config, zones *zoneCache) *snom { return &snom{cfg: cfg, zones: zones} }

func (s *snom) Name() string { return "snom" }

func (s *snom) ContentType(files.FileKind) string { return "application/xml" }

const (
	// snomMaxLines is how many identities every device file sets (the D7xx
	// and D8xx have 12), so one that left the configuration is turned off.
	snomMaxLines = 12
	snomFkeys    = 12
)

var (
	snomModelRE  = regexp.MustCompile(`^snom[A-Za-z0-9]{2,12}\.htm$`)
	snomDeviceRE = regexp.MustCompile(`^snom[A-Za-z0-9]{2,12}-([0-9A-Fa-f]{12})\.htm$`)
	// snomParamRE is a Snom setting name ("user_pass"), ".<idx>" for a
	// per-identity or per-key one ("user_pass.1", "fkey.0").
	snomParamRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}(\.[0-9]{1,3})?$`)
)

// Files implements Vendor. Any model answers, so an unknown model gets
// the generic profile.
func (s *snom) Files(name string) (files.VendorFile, bool) {
	if strings.HasPrefix(name, "snom") {
		if snomModelRE.MatchString(name) {
			return files.VendorFile{Kind: files.KindMaster, Boot: true}, true
		}
		if m := snomDeviceRE.FindStringSubmatch(name); m != nil {
			mac, _ := prov.NormalizeMAC(m[1])
			return files.VendorFile{Kind: files.KindDeviceConfig, MAC: mac, Enroll: true}, true
		}
	}
	mac, rest, ok := macPrefix(name)
	if !ok {
		return files.VendorFile{}, false
	}
	switch rest {
	case ".xml":
		return files.VendorFile{Kind: files.KindDeviceConfig, MAC: mac, Enroll: true}, true
	case "-directory.xml":
		return files.VendorFile{Kind: files.KindDirectory, MAC: mac, Suffix: "directory.xml"}, true
	}
	return files.VendorFile{}, false
}

// SyncEvent implements Vendor: "check-sync;reboot=false" reloads the
// settings without a reboot; Snom reboots on "reboot".
func (s *snom) SyncEvent(reboot bool) string {
	if reboot {
		return "reboot"
	}
	return "check-sync;reboot=false"
}

var snomDefaults = map[string]string{
	"ntp_server":    "pool.ntp.org",
	"keyboard_lock": "off",
}

// Sources implements Vendor; raw overrides are "snom:<setting>[.<idx>]".
func (s *snom) Sources(v *prov.View) []Source {
	m := model(v, s.cfg, s.zones)
	srcs := []Source{{prov.LayerDefaults, "vendor defaults", snomDefaults}}
	site := "site " + v.Site.Name
	srcs = append(srcs, Source{prov.LayerSite, site, s.siteParams(v, m)},
		Source{prov.LayerSite, site + " params", vendorParams(s.Name(), v.Site.Params)})
	if v.User != nil {
		user := "user " + v.User.Username
		srcs = append(srcs, Source{prov.LayerUser, user, s.userParams(m)},
			Source{prov.LayerUser, user + " params", vendorParams(s.Name(), v.User.Params)})
	}
	srcs = append(srcs, Source{prov.LayerDevice, "device params", vendorParams(s.Name(), v.Device.Params)})
	return srcs
}

// snomServer is setting_server: the base URL, with the device's
// credentials in it when it has them.
func snomServer(base, user, pass string) string {
	u, err := url.Parse(base + "/")
	if err != nil || base == "" {
		return ""
	}
	if user != "" {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

func (s *snom) siteParams(v *prov.View, m Model) map[string]string {
	p := map[string]string{}
	if m.ProvURL != "" && m.ProvUser != "" {
		// Only with the credentials: a file without them (TFTP, after the
		// one delivery) must not overwrite the phone's URL that has them.
		p["setting_server"] = snomServer(m.ProvURL, m.ProvUser, m.ProvPassword)
	}
	if m.FirmwareURL != "" {
		// A Snom takes its firmware image's URL only from a firmware
		// settings file (<firmware-settings>, one <firmware> setting) that
		// firmware_status names (Snom wiki, "Firmware Configuration File"):
		// the URL configured for Snom is that file's.
		p["firmware_status"] = m.FirmwareURL
	}
	// keyboard_lock_emergency: what a locked keyboard may still dial.
	allowed := append([]string{}, m.Emergency...)
	for _, a := range m.Authorized {
		allowed = append(allowed, a.Number)
	}
	p["keyboard_lock_emergency"] = strings.Join(allowed, " ")
	if v.Site.Login.Required {
		p["keyboard_lock"] = "on"
	}
	if m.LocalPIN != "" {
		p["admin_mode_password"] = m.LocalPIN
	}
	if m.TZKnown {
		p["utc_offset"] = strconv.Itoa(m.TZOffset)
	}
	if l := snomLang(v.Site.Language); l != "" {
		p["language"], p["web_language"] = l, l
	}
	var lines []Line
	if v.User == nil && v.Device.MAC != "" {
		lines = m.Lines
	}
	for k, val := range snomLines(lines) {
		p[k] = val
	}
	for k, val := range snomKeys(nil, nil, nil, "", m.LoginPage) {
		p[k] = val
	}
	return p
}

func (s *snom) userParams(m Model) map[string]string {
	p := snomLines(m.Lines)
	for k, val := range snomKeys(m.Lines, m.Keys, m.SpeedDials, m.DirectoryURL, m.LoginPage) {
		p[k] = val
	}
	if l := snomLang(m.Language); l != "" {
		p["language"] = l
	}
	return p
}

// snomLines sets identities 1..snomMaxLines: ls active, the rest off.
func snomLines(ls []Line) map[string]string {
	p := map[string]string{}
	for i := 1; i <= snomMaxLines; i++ {
		n := "." + strconv.Itoa(i)
		if i > len(ls) {
			p["user_active"+n] = "off"
			continue
		}
		l := ls[i-1]
		outbound := l.Server + ":" + strconv.Itoa(l.Port) + ";transport=" + l.Transport
		if l.SRV {
			// DNS SRV: a host without a port, which the phone resolves as
			// RFC 3263 says (SRV, then A), as it does today for any name.
			outbound = l.Server
		}
		for k, val := range map[string]string{
			"user_active": "on", "user_realname": l.Display, "user_idle_text": l.Label, "user_name": l.User,
			"user_pname": l.AuthUser, "user_pass": l.Password, "user_host": l.Domain,
			"user_outbound": outbound,
			"user_expiry":   strconv.Itoa(l.Expiry),
		} {
			p[k+n] = val
		}
	}
	return p
}

// snomKeys lays out the function keys (idx from 0): one per line, then
// the user's feature keys ("blf sip:<number>@<domain>" watches and calls,
// "speed <number>" dials: the Snom D7 user manual, "XML provisioning of
// settings", spells a key as its type and argument), then the contacts'
// speed dials; the rest back to "line", the factory value. The last
// key opens the login door in the XML minibrowser when there is one: key
// type "url" (Action URL) fetches its URL and shows the Minibrowser page
// it answers (Snom wiki, "Function Key Types" and "Triggering an XML
// Minibrowser application", service.snom.com).
func snomKeys(ls []Line, keys []Key, dials []prov.Contact, dir, login string) map[string]string {
	p := map[string]string{}
	n := 0
	set := func(val string) {
		if n < snomFkeys-1 { // the last key is the login door's
			p["fkey."+strconv.Itoa(n)] = val
			n++
		}
	}
	for range ls {
		set("line")
	}
	for _, k := range keys {
		if k.BLF && len(ls) > 0 {
			set("blf sip:" + k.Number + "@" + ls[0].Domain)
		} else {
			set("speed " + k.Number)
		}
	}
	for _, c := range dials {
		set("speed " + c.Number)
	}
	for n < snomFkeys-1 {
		set("line")
	}
	last := "fkey." + strconv.Itoa(snomFkeys-1)
	p[last] = "line"
	if login != "" {
		p[last] = "url " + login + "&ui=snom"
	}
	p["dkey_directory"] = "keyevent F_DIRECTORY_SEARCH"
	if dir != "" {
		p["dkey_directory"] = "url " + dir
	}
	return p
}

// snomLangs maps BCP 47 primary tags to Snom's language names.
var snomLangs = map[string]string{
	"en": "English", "de": "Deutsch", "fr": "Francais", "es": "Espanol", "it": "Italiano", "nl": "Nederlands",
	"pt": "Portugues", "sv": "Svenska", "da": "Dansk", "no": "Norsk", "pl": "Polski", "tr": "Turkce",
}

func snomLang(s string) string {
	if s == "" {
		return ""
	}
	return snomLangs[langTag(s)]
}

// Render implements Vendor.
func (s *snom) Render(kind files.FileKind, v *prov.View, srcs []Source) ([]byte, error) {
	switch kind {
	case files.KindMaster:
		// Per model, common to every phone: where to provision from, never
		// an account or a secret.
		m := map[string]string{}
		for k, val := range snomDefaults {
			m[k] = val
		}
		if v.Server.BaseURL != "" {
			m["setting_server"] = snomServer(v.Server.BaseURL, "", "")
		}
		return snomSettings(m, false)
	case files.KindDeviceConfig:
		if v.Device.MAC == "" {
			return nil, prov.ErrNotFound
		}
		return snomSettings(flat(Merge(srcs)), v.Secrets)
	case files.KindDirectory:
		return xmlDirectory("SnomIPPhoneDirectory", "Directory", v.Contacts)
	}
	return nil, prov.ErrNotFound
}

// KnownParam implements Vendor: Snom setting names are lowercase words
// joined by '_', with ".<idx>" for per-identity and per-key settings.
func (s *snom) KnownParam(name string) bool { return snomParamRE.MatchString(name) }

// snomSecret: passwords, and setting_server when it carries credentials.
func snomSecret(k, val string) bool {
	if k == "setting_server" {
		u, err := url.Parse(val)
		return err != nil || u.User != nil
	}
	base, _, _ := strings.Cut(k, ".")
	return prov.SecretParam(k) || base == "user_pass" || base == "http_pass" || strings.HasSuffix(base, "_pin")
}

// snomSettings renders the <settings> document: function keys ("fkey.N")
// in <functionKeys>, every other setting in <phone-settings>, sorted.
func snomSettings(m map[string]string, secrets bool) ([]byte, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		if !snomParamRE.MatchString(k) || !secrets && snomSecret(k, m[k]) {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var phone, keys bytes.Buffer
	for _, k := range names {
		val, err := xmlEscape(m[k])
		if err != nil {
			return nil, fmt.Errorf("snom %s: %w", k, err)
		}
		name, idx, hasIdx := strings.Cut(k, ".")
		attrs := ` perm="R"`
		if hasIdx {
			attrs = ` idx="` + idx + `"` + attrs
		}
		if name == "fkey" {
			fmt.Fprintf(&keys, "    <fkey%s context=\"active\">%s</fkey>\n", attrs, val)
			continue
		}
		fmt.Fprintf(&phone, "    <%s%s>%s</%s>\n", name, attrs, val, name)
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<settings>\n  <phone-settings>\n")
	b.Write(phone.Bytes())
	b.WriteString("  </phone-settings>\n  <functionKeys>\n")
	b.Write(keys.Bytes())
	b.WriteString("  </functionKeys>\n</settings>\n")
	return b.Bytes(), nil
}

// xmlDirectory renders an XML browser directory page (<root>: Snom's
// SnomIPPhoneDirectory and the like): DirectoryEntry with Name and Telephone.
func xmlDirectory(root, title string, cs []prov.Contact) ([]byte, error) {
	type entry struct {
		Name      string `xml:"Name"`
		Telephone string `xml:"Telephone"`
	}
	doc := struct {
		XMLName xml.Name
		Title   string  `xml:"Title"`
		Entries []entry `xml:"DirectoryEntry"`
	}{XMLName: xml.Name{Local: root}, Title: title}
	for _, c := range cs {
		name := strings.TrimSpace(c.FirstName + " " + c.LastName)
		if name == "" {
			name = c.Label
		}
		doc.Entries = append(doc.Entries, entry{Name: name, Telephone: c.Number})
	}
	out, err := xml.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", root, err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}

// secret masks Snom's secrets in the effective-config view (setting_server
// may carry the provisioning credentials).
func (s *snom) secret(name string) bool { return name == "setting_server" || snomSecret(name, "") }
