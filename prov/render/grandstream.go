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

// grandstream renders Grandstream GRP26xx, GXP21xx/17xx/16xx, WP8xx and
// DP7xx files (Grandstream's SIP device provisioning guide): the phone asks
// for cfg<mac>, cfg<mac>.xml, cfg<model>.xml, then cfg.xml and, with its
// factory "Download and Process All Available Config Files" (P8467) = 0,
// applies the first one it gets. Each is a <gs_provision> of P-values.
//
// cfg<mac> is the legacy binary (encoded P-value) file: hotdesk does not
// claim it, so it gets 404 and the phone goes on to cfg<mac>.xml — an XML
// body there would be read as binary, and a 404 is what a server without
// the file answers.
//
// P-values used, with their meaning from Grandstream's configuration
// template (as annotated in the templates of FS PBX's and wazo-provd's
// Grandstream plugins): P212 Config Upgrade via (0 TFTP, 1 HTTP, 2 HTTPS),
// P237 Config Server Path (host[:port]/path, no scheme), P1360/P1361 Config
// HTTP/HTTPS user name/password, P192 Firmware Server Path, P6767 Firmware
// Upgrade via, P194 automatic upgrade (0 no), P81 Unregister On Reboot (0
// no: 1 unregisters every contact of the account, the sibling phones' too —
// FreePBX issue-tracker#447), P30 NTP server, P64 time zone (POSIX TZ),
// P1362 language, P2 admin password. Account 1: P271 active, P47 SIP
// server, P48 outbound proxy, P35 SIP user ID, P36 authenticate ID, P34
// password, P3 name (caller ID), P270 account name, P31 SIP registration,
// P32 register expiration (minutes), P130 SIP transport (0 UDP, 1 TCP, 2
// TLS). Accounts 2–4 (P401…, P501…, P601…): xx01 active, xx02 SIP
// server, xx03 outbound proxy, xx04 user ID, xx05 authenticate ID, xx06
// password, xx07 name, xx17 account name.
type grandstream struct {
	cfg   Config
	zones *zoneCache
}

func newGrandstream(cfg Config, zones *zoneCache) *grandstream {
	return &grandstream{cfg: cfg, zones: zones}
}

func (g *grandstream) Name() string { return "grandstream" }

func (g *grandstream) ContentType(files.FileKind) string { return "application/xml" }

// gsMaxLines is how many accounts every device file sets (the GRP2614 has
// four), so one that left the configuration is deactivated.
const gsMaxLines = 4

var (
	gsMACRE   = regexp.MustCompile(`^cfg([0-9A-Fa-f]{12})\.xml$`)
	gsModelRE = regexp.MustCompile(`^cfg[A-Za-z]{2,4}[0-9]{3,4}[A-Za-z0-9_-]{0,8}\.xml$`)
	gsParamRE = regexp.MustCompile(`^P[0-9]{1,5}$`)
)

// Files implements Vendor: cfg<mac>.xml is the device's; cfg<model>.xml
// and cfg.xml the common ones (any model).
func (g *grandstream) Files(name string) (files.VendorFile, bool) {
	if !strings.HasPrefix(name, "cfg") {
		return files.VendorFile{}, false
	}
	if m := gsMACRE.FindStringSubmatch(name); m != nil {
		mac, _ := prov.NormalizeMAC(m[1])
		return files.VendorFile{Kind: files.KindDeviceConfig, MAC: mac, Boot: true}, true
	}
	if name == "cfg.xml" || gsModelRE.MatchString(name) {
		return files.VendorFile{Kind: files.KindMaster, Boot: true}, true
	}
	return files.VendorFile{}, false
}

// SyncEvent implements Vendor: Grandstream phones re-provision on
// check-sync (wazo-provd's default for them); whether a plain one reboots
// is not in Grandstream's guides [unconfirmed]: reboot=true asks for it.
func (g *grandstream) SyncEvent(reboot bool) string {
	if reboot {
		return "check-sync;reboot=true"
	}
	return "check-sync"
}

var gsDefaults = map[string]string{
	"P30":  "pool.ntp.org",
	"P81":  "0", // Unregister On Reboot: no (see above)
	"P194": "0", // no periodic upgrade: hotdesk sends check-sync
}

// Sources implements Vendor; raw overrides are "grandstream:P<n>".
func (g *grandstream) Sources(v *prov.View) []Source {
	m := model(v, g.cfg, g.zones)
	srcs := []Source{{prov.LayerDefaults, "vendor defaults", gsDefaults}}
	site := "site " + v.Site.Name
	srcs = append(srcs, Source{prov.LayerSite, site, g.siteParams(v, m)},
		Source{prov.LayerSite, site + " params", vendorParams(g.Name(), v.Site.Params)})
	if v.User != nil {
		user := "user " + v.User.Username
		srcs = append(srcs, Source{prov.LayerUser, user, gsLines(m.Lines)},
			Source{prov.LayerUser, user + " params", vendorParams(g.Name(), v.User.Params)})
		if l := gsLang(m.Language); l != "" {
			srcs[len(srcs)-2].Params["P1362"] = l
		}
	}
	srcs = append(srcs, Source{prov.LayerDevice, "device params", vendorParams(g.Name(), v.Device.Params)})
	return srcs
}

// gsServer is P212 and P237 for a base URL.
func gsServer(base string) (via, path string) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", ""
	}
	via = map[string]string{"tftp": "0", "http": "1", "https": "2"}[u.Scheme]
	return via, u.Host + strings.TrimSuffix(u.Path, "/")
}

func (g *grandstream) siteParams(v *prov.View, m Model) map[string]string {
	p := map[string]string{}
	if via, path := gsServer(m.ProvURL); path != "" {
		p["P212"], p["P237"] = via, path
	}
	if m.ProvUser != "" {
		p["P1360"], p["P1361"] = m.ProvUser, m.ProvPassword
	}
	if via, path := gsServer(m.FirmwareURL); path != "" {
		p["P6767"], p["P192"] = via, path
	}
	if m.LocalPIN != "" {
		p["P2"] = m.LocalPIN
	}
	if m.TZKnown {
		p["P64"] = posixTZ(m.TZOffset)
	}
	if l := gsLang(v.Site.Language); l != "" {
		p["P1362"] = l
	}
	var lines []Line
	if v.User == nil && v.Device.MAC != "" {
		lines = m.Lines
	}
	for k, val := range gsLines(lines) {
		p[k] = val
	}
	return p
}

// gsLines sets accounts 1..gsMaxLines: ls active, the rest off.
func gsLines(ls []Line) map[string]string {
	p := map[string]string{}
	for i := 1; i <= gsMaxLines; i++ {
		var keys map[string]string // field → P-value
		if i == 1 {
			keys = map[string]string{"active": "P271", "server": "P47", "proxy": "P48", "user": "P35",
				"auth": "P36", "pass": "P34", "name": "P3", "label": "P270"}
		} else {
			b := "P" + strconv.Itoa(i+2)
			keys = map[string]string{"active": b + "01", "server": b + "02", "proxy": b + "03", "user": b + "04",
				"auth": b + "05", "pass": b + "06", "name": b + "07", "label": b + "17"}
		}
		if i > len(ls) {
			p[keys["active"]] = "0"
			continue
		}
		l := ls[i-1]
		for f, val := range map[string]string{
			"active": "1", "server": l.Domain, "proxy": l.Server + ":" + strconv.Itoa(l.Port), "user": l.User,
			"auth": l.AuthUser, "pass": l.Password, "name": l.Display, "label": l.Label,
		} {
			p[keys[f]] = val
		}
		// The next cluster node as the account's Secondary SIP Server
		// (Grandstream "GRP26xx Server Redundancy Guide": the phone
		// registers to both and calls through the primary first; P2312
		// for account 1, P2<n+2>12 for account n, as wazo-provd's
		// Grandstream base.tpl numbers them), cleared without one. Account
		// 1 also gets it as its Backup Outbound Proxy, P2333 (GXP21xx
		// configuration template 1.0.8.4, "Backup Outbound Proxy"): its
		// outbound proxy is a node too. The other accounts' number for
		// it is in no template found, so they fail over only where the
		// primary node still forwards.
		sec := "P2" + strconv.Itoa(i+2) + "12"
		if i == 1 {
			sec = "P2312"
		}
		p[sec] = ""
		if len(l.Backups) > 0 {
			p[sec] = l.Backups[0].String()
		}
		if l.SRV {
			// DNS SRV: the outbound proxy is the SRV domain without a
			// port. Account 1's DNS Mode is P103 (0 A record, 1 SRV, 2
			// NAPTR/SRV, 3 configured IP, as Grandstream templates
			// document it); the other accounts' DNS Mode number is in no
			// template found (unconfirmed), so they resolve the name as
			// their firmware defaults.
			p[keys["proxy"]] = l.Server
			if i == 1 {
				p["P103"] = "1"
			}
		} else if i == 1 && len(l.Backups) > 0 {
			p["P103"] = "0" // off again in a cluster without it
		}
		if i == 1 {
			p["P2333"] = p[sec]
			p["P31"] = "1"
			p["P32"] = strconv.Itoa(max(1, l.Expiry/60))
			p["P130"] = map[string]string{"udp": "0", "tcp": "1", "tls": "2"}[l.Transport]
		}
	}
	return p
}

// posixTZ spells a UTC offset as a POSIX TZ string, whose sign is the
// other way round ("UTC-1" is one hour east).
func posixTZ(sec int) string {
	sign := "-"
	if sec < 0 {
		sign, sec = "+", -sec
	}
	h, mins := sec/3600, (sec%3600)/60
	if mins == 0 {
		return "UTC" + sign + strconv.Itoa(h)
	}
	return fmt.Sprintf("UTC%s%d:%02d", sign, h, mins)
}

// gsLang is P1362's language code: the BCP 47 primary tag.
func gsLang(s string) string {
	t := langTag(s)
	if len(t) != 2 {
		return ""
	}
	return t
}

// Render implements Vendor.
func (g *grandstream) Render(kind files.FileKind, v *prov.View, srcs []Source) ([]byte, error) {
	switch kind {
	case files.KindMaster:
		// cfg<model>.xml and cfg.xml: where to provision from, never an
		// account or a secret.
		m := map[string]string{}
		for k, val := range gsDefaults {
			m[k] = val
		}
		if via, path := gsServer(v.Server.BaseURL); path != "" {
			m["P212"], m["P237"] = via, path
		}
		return gsProvision("", m, false)
	case files.KindDeviceConfig:
		if v.Device.MAC == "" {
			return nil, prov.ErrNotFound
		}
		return gsProvision(v.Device.MAC, flat(Merge(srcs)), v.Secrets)
	}
	return nil, prov.ErrNotFound
}

// KnownParam implements Vendor: Grandstream parameters are P-values.
func (g *grandstream) KnownParam(name string) bool { return gsParamRE.MatchString(name) }

// gsSecrets are the P-values that hold a password, and the provisioning
// user name (left out with its password, as Yealink's).
var gsSecrets = map[string]bool{"P2": true, "P196": true, "P34": true, "P1360": true, "P1361": true,
	"P406": true, "P506": true, "P606": true}

// gsProvision renders <gs_provision version="1"> with the device's <mac>
// and its P-values, in numeric order.
func gsProvision(mac string, m map[string]string, secrets bool) ([]byte, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		if !gsParamRE.MatchString(k) || !secrets && gsSecrets[k] {
			continue
		}
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := strconv.Atoi(names[i][1:])
		b, _ := strconv.Atoi(names[j][1:])
		return a < b
	})
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<gs_provision version=\"1\">\n")
	if mac != "" {
		fmt.Fprintf(&b, "  <mac>%s</mac>\n", mac)
	}
	b.WriteString("  <config version=\"1\">\n")
	for _, k := range names {
		val, err := xmlEscape(m[k])
		if err != nil {
			return nil, fmt.Errorf("grandstream %s: %w", k, err)
		}
		fmt.Fprintf(&b, "    <%s>%s</%s>\n", k, val, k)
	}
	b.WriteString("  </config>\n</gs_provision>\n")
	return b.Bytes(), nil
}

// secret masks Grandstream's password P-values in the effective-config view.
func (g *grandstream) secret(name string) bool { return gsSecrets[name] || prov.SecretParam(name) }
