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

// fanvil renders Fanvil X-series files (X3/X4/X5/X6/X7, X210, their U,
// Pro and V2 variants) as wazo-provd's Fanvil plugin lays them out: the
// phone asks for its per-model common file, whose name varies with model
// and hardware ("f0X4hw1.100.cfg", "F0V00X300000.cfg", "F0000X600000.cfg",
// "fanvil_x210_v2_hwv2_0.txt"), then <mac>.cfg. Both are an XML <sysConf>
// of sections (<ap> auto-provisioning, <phone>, <sip> with <line
// index="N">…). hotdesk spells a setting by its path, the index after the
// element it belongs to: "sip.line.1.RegisterUser", "ap.DefaultPassword".
//
// The provisioning server's credentials are <ap> DefaultUsername and
// DefaultPassword; FlashServerIP and FlashFileName ("$mac.cfg") keep the
// phone on hotdesk. Re-sync: NOTIFY check-sync (wazo-provd's standard SIP
// synchronize for Fanvil); Fanvil's guides found do not say whether it
// reboots [unconfirmed]; reboot=true asks for it.
type fanvil struct {
	cfg   Config
	zones *zoneCache
}

func newFanvil(cfg Config, zones *zoneCache) *fanvil { return &fanvil{cfg: cfg, zones: zones} }

func (f *fanvil) Name() string { return "fanvil" }

func (f *fanvil) ContentType(files.FileKind) string { return "application/xml" }

// fanvilMaxLines is how many SIP lines every device file sets (the X4U
// has six), so one that left the configuration is disabled.
const fanvilMaxLines = 6

var (
	// fanvilCommonRE: the per-model common files, any model (an unknown
	// one gets the generic file). A 12-hex-digit name is a device's.
	fanvilCommonRE = regexp.MustCompile(`^(?:[fF]0(?:[0-9A-Za-z]{1,8}hw[0-9]{1,2}\.[0-9]{1,4}|[0-9A-Z]{10})\.cfg|fanvil_[a-z0-9_]{2,40}\.txt)$`)
	// fanvilParamRE is a setting path: element names, each optionally
	// followed by its index ("sip.line.1.PhoneNumber").
	fanvilParamRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9_]*(\.[0-9]{1,3})?\.)*[A-Za-z][A-Za-z0-9_]*$`)
)

// fanvilSections are <sysConf>'s top-level elements (wazo-provd's Fanvil
// templates); a raw override must start with one.
var fanvilSections = map[string]bool{
	"Version": true, "ap": true, "AUTOUPDATE_CONFIG_MODULE": true, "fwCheck": true, "phone": true, "cti": true,
	"web": true, "qos": true, "log": true, "sip": true, "call": true, "dsskey": true, "net": true, "mm": true,
	"lan": true, "wan": true, "tr069": true, "alarm": true, "ldap": true, "xml": true, "pnp": true,
}

// Files implements Vendor.
func (f *fanvil) Files(name string) (files.VendorFile, bool) {
	if mac, rest, ok := macPrefix(name); ok {
		if rest == ".cfg" {
			return files.VendorFile{Kind: files.KindDeviceConfig, MAC: mac, Enroll: true}, true
		}
		return files.VendorFile{}, false
	}
	if (strings.HasPrefix(name, "f0") || strings.HasPrefix(name, "F0") || strings.HasPrefix(name, "fanvil_")) &&
		fanvilCommonRE.MatchString(name) {
		return files.VendorFile{Kind: files.KindMaster, Boot: true}, true
	}
	return files.VendorFile{}, false
}

// SyncEvent implements Vendor.
func (f *fanvil) SyncEvent(reboot bool) string {
	if reboot {
		return "check-sync;reboot=true"
	}
	return "check-sync"
}

var fanvilDefaults = map[string]string{
	"Version":                    "2.0002",
	"ap.DownloadCommonConf":      "1",
	"ap.DownloadDeviceConf":      "1",
	"ap.FlashFileName":           "$mac.cfg",
	"ap.FlashMode":               "1",
	"phone.date.EnableSNTP":      "1",
	"phone.date.SNTPServer":      "pool.ntp.org",
	"fwCheck.EnableAutoUpgrade":  "0",
	"ap.pnp.PNPEnable":           "0",
	"ap.SaveProvisionInfo":       "1",
	"call.port.1.AutoOnhook":     "1",
	"call.port.1.AutoOnhookTime": "0",
}

// Sources implements Vendor; raw overrides are "fanvil:<path>".
func (f *fanvil) Sources(v *prov.View) []Source {
	m := model(v, f.cfg, f.zones)
	srcs := []Source{{prov.LayerDefaults, "vendor defaults", fanvilDefaults}}
	site := "site " + v.Site.Name
	srcs = append(srcs, Source{prov.LayerSite, site, f.siteParams(v, m)},
		Source{prov.LayerSite, site + " params", vendorParams(f.Name(), v.Site.Params)})
	if v.User != nil {
		user := "user " + v.User.Username
		p := fanvilLines(m.Lines)
		for k, val := range fanvilKeys(len(m.Lines), m.Keys) {
			p[k] = val
		}
		if l := fanvilLang(m.Language); l != "" {
			p["phone.display.DefaultLanguage"] = l
		}
		srcs = append(srcs, Source{prov.LayerUser, user, p},
			Source{prov.LayerUser, user + " params", vendorParams(f.Name(), v.User.Params)})
	}
	srcs = append(srcs, Source{prov.LayerDevice, "device params", vendorParams(f.Name(), v.Device.Params)})
	return srcs
}

// fanvilServer is <ap>'s server: FlashServerIP (the base URL) and
// FlashProtocol (4 HTTP, 5 HTTPS).
func fanvilServer(p map[string]string, base string) {
	if base == "" {
		return
	}
	p["ap.FlashServerIP"] = base
	p["ap.FlashProtocol"] = "4"
	if strings.HasPrefix(base, "https:") {
		p["ap.FlashProtocol"] = "5"
	}
}

func (f *fanvil) siteParams(v *prov.View, m Model) map[string]string {
	p := map[string]string{}
	fanvilServer(p, m.ProvURL)
	if m.ProvUser != "" {
		p["ap.DefaultUsername"], p["ap.DefaultPassword"] = m.ProvUser, m.ProvPassword
	}
	if m.FirmwareURL != "" {
		// The server the phone checks for a newer firmware (wazo-provd's
		// Fanvil templates: <fwCheck> EnableAutoUpgrade, UpgradeServer1).
		p["fwCheck.EnableAutoUpgrade"], p["fwCheck.UpgradeServer1"] = "1", m.FirmwareURL
	}
	if m.LocalPIN != "" {
		p["phone.MenuPassword"] = m.LocalPIN
	}
	if m.TZKnown {
		// TimeZone in quarter hours east of UTC, with its name (wazo's table).
		p["phone.date.TimeZone"] = strconv.Itoa(m.TZOffset / 900)
		p["phone.date.TimeZoneName"] = "UTC" + offsetHours(m.TZOffset)
		if !m.TZDST {
			p["phone.date.EnableDST"] = "0"
		}
	}
	if l := fanvilLang(v.Site.Language); l != "" {
		p["phone.display.DefaultLanguage"] = l
	}
	var lines []Line
	if v.User == nil && v.Device.MAC != "" {
		lines = m.Lines
	}
	for k, val := range fanvilLines(lines) {
		p[k] = val
	}
	for k, val := range fanvilKeys(len(lines), nil) {
		p[k] = val
	}
	return p
}

// fanvilKeys12 is the number of DSS keys on the first page hotdesk manages:
// a line's or a feature key each, the rest cleared so a logout leaves none
// behind. Twelve is the X4U's page; keys a model lacks are ignored.
const fanvilKeys12 = 12

// fanvilKeys lays out the first page of DSS keys (wazo-provd's Fanvil
// plugin, common.py _format_fkey and templates/base-new.tpl: <dsskey>
// <dssSide index="1"> <Fkey index="n"> Type 2 with Value "SIP<n>" is line
// n's key; Type 1 with "<number>@<line>/f" a speed dial, "<number>@<line>/ba"
// a BLF; Type 0 none): one key per line, then the user's feature keys on
// line 1; the rest back to none.
func fanvilKeys(lines int, keys []Key) map[string]string {
	p := map[string]string{}
	// A title must not break the value's syntax; Fanvil titles are text.
	clean := strings.NewReplacer("@", " ", "/", " ")
	for i := 1; i <= fanvilKeys12; i++ {
		k := "dsskey.dssSide.1.Fkey." + strconv.Itoa(i) + "."
		typ, val, title := "0", "", ""
		switch j := i - lines - 1; {
		case i <= lines:
			typ, val = "2", "SIP"+strconv.Itoa(i)
		case j < len(keys):
			key := keys[j]
			typ, val, title = "1", key.Number+"@1/f", clean.Replace(key.Label)
			if key.BLF {
				val = key.Number + "@1/ba"
			}
		}
		p[k+"Type"], p[k+"Value"], p[k+"Title"] = typ, val, title
	}
	return p
}

// fanvilLines sets sip lines 1..fanvilMaxLines: ls registered, the rest off.
func fanvilLines(ls []Line) map[string]string {
	p := map[string]string{}
	for i := 1; i <= fanvilMaxLines; i++ {
		n := "sip.line." + strconv.Itoa(i) + "."
		if i > len(ls) {
			p[n+"EnableReg"] = "0"
			continue
		}
		l := ls[i-1]
		port := strconv.Itoa(l.Port)
		for k, val := range map[string]string{
			"EnableReg": "1", "PhoneNumber": l.User, "DisplayName": l.Display, "RegisterAddr": l.Domain,
			"RegisterPort": port, "RegisterUser": l.AuthUser, "RegisterPswd": l.Password,
			"RegisterTTL": strconv.Itoa(l.Expiry), "ProxyAddr": l.Server, "ProxyPort": port,
			"ProxyUser": l.AuthUser, "ProxyPswd": l.Password,
			"Transport": map[string]string{"udp": "0", "tcp": "1", "tls": "3"}[l.Transport],
		} {
			p[n+k] = val
		}
		// The next cluster node as the line's backup proxy (wazo-provd's
		// Fanvil templates, base-V-series.tpl: <line> BackupAddr,
		// BackupPort, BackupTransport, BackupTTL); cleared without one.
		p[n+"BackupAddr"], p[n+"BackupPort"] = "", ""
		// DNS SRV (unconfirmed in Fanvil's own documents: <line> DNSSRV
		// and DNSMode 1 as a third-party Fanvil template renders them):
		// the proxy is the SRV domain without a port.
		if len(l.Backups) > 0 { // off again in a cluster without it
			p[n+"DNSSRV"], p[n+"DNSMode"] = "0", "0"
		}
		if l.SRV {
			p[n+"ProxyAddr"], p[n+"ProxyPort"], p[n+"RegisterPort"] = l.Server, "", ""
			p[n+"DNSSRV"], p[n+"DNSMode"] = "1", "1"
		}
		if len(l.Backups) > 0 {
			b := l.Backups[0]
			p[n+"BackupAddr"], p[n+"BackupPort"] = b.Host, strconv.Itoa(b.Port)
			p[n+"BackupTransport"] = p[n+"Transport"]
			p[n+"BackupTTL"] = strconv.Itoa(l.Expiry)
		}
	}
	return p
}

// fanvilLangs are the DefaultLanguage codes of the current X models.
var fanvilLangs = map[string]bool{"en": true, "ru": true, "it": true, "fr": true, "de": true, "he": true,
	"es": true, "tr": true, "hr": true, "nl": true, "ko": true, "pt": true, "pl": true, "ar": true}

func fanvilLang(s string) string {
	if t := langTag(s); fanvilLangs[t] {
		return t
	}
	return ""
}

// Render implements Vendor.
func (f *fanvil) Render(kind files.FileKind, v *prov.View, srcs []Source) ([]byte, error) {
	switch kind {
	case files.KindMaster:
		// The per-model common file: defaults and where to provision
		// from, never an account or a secret.
		m := map[string]string{}
		for k, val := range fanvilDefaults {
			m[k] = val
		}
		fanvilServer(m, v.Server.BaseURL)
		return sysConf(m, false)
	case files.KindDeviceConfig:
		if v.Device.MAC == "" {
			return nil, prov.ErrNotFound
		}
		return sysConf(flat(Merge(srcs)), v.Secrets)
	}
	return nil, prov.ErrNotFound
}

// KnownParam implements Vendor: a setting path under one of <sysConf>'s sections.
func (f *fanvil) KnownParam(name string) bool {
	sec, _, _ := strings.Cut(name, ".")
	return fanvilParamRE.MatchString(name) && fanvilSections[sec]
}

// fanvilSecret: passwords (…Pswd, …Password) and the provisioning user.
func fanvilSecret(k string) bool {
	l := strings.ToLower(k)
	return prov.SecretParam(k) || strings.HasSuffix(l, "pswd") || k == "ap.DefaultUsername"
}

// xmlNode is one element of a nested settings document.
type xmlNode struct {
	name, index string
	value       *string
	kids        []*xmlNode
}

func (n *xmlNode) child(name, index string) *xmlNode {
	for _, c := range n.kids {
		if c.name == name && c.index == index {
			return c
		}
	}
	c := &xmlNode{name: name, index: index}
	n.kids = append(n.kids, c)
	return c
}

// segLess orders path segments, numbers numerically.
func segLess(a, b string) bool {
	x, e1 := strconv.Atoi(a)
	y, e2 := strconv.Atoi(b)
	if e1 == nil && e2 == nil {
		return x < y
	}
	return a < b
}

// sysConf renders <sysConf> from setting paths. A path that is both a
// value and a parent of others (only a raw override can make one) keeps
// its children.
func sysConf(m map[string]string, secrets bool) ([]byte, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		if !fanvilParamRE.MatchString(k) || !secrets && fanvilSecret(k) {
			continue
		}
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		a, b := strings.Split(names[i], "."), strings.Split(names[j], ".")
		for k := 0; k < len(a) && k < len(b); k++ {
			if a[k] != b[k] {
				return segLess(a[k], b[k])
			}
		}
		return len(a) < len(b)
	})
	root := &xmlNode{name: "sysConf"}
	for _, k := range names {
		segs := strings.Split(k, ".")
		n := root
		for i := 0; i < len(segs); i++ {
			idx := ""
			if i+1 < len(segs) && segs[i+1][0] >= '0' && segs[i+1][0] <= '9' {
				idx = segs[i+1]
			}
			n = n.child(segs[i], idx)
			if idx != "" {
				i++
			}
		}
		val := m[k]
		n.value = &val
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	var write func(n *xmlNode, depth int) error
	write = func(n *xmlNode, depth int) error {
		pad := strings.Repeat("  ", depth)
		attr := ""
		if n.index != "" {
			attr = ` index="` + n.index + `"`
		}
		if len(n.kids) == 0 {
			val := ""
			if n.value != nil {
				var err error
				if val, err = xmlEscape(*n.value); err != nil {
					return fmt.Errorf("fanvil %s: %w", n.name, err)
				}
			}
			fmt.Fprintf(&b, "%s<%s%s>%s</%s>\n", pad, n.name, attr, val, n.name)
			return nil
		}
		fmt.Fprintf(&b, "%s<%s%s>\n", pad, n.name, attr)
		for _, c := range n.kids {
			if err := write(c, depth+1); err != nil {
				return err
			}
		}
		fmt.Fprintf(&b, "%s</%s>\n", pad, n.name)
		return nil
	}
	if err := write(root, 0); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// secret masks Fanvil's secrets in the effective-config view.
func (f *fanvil) secret(name string) bool { return fanvilSecret(name) }
