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

// cisco renders Cisco MPP (6800/7800/8800 multiplatform, "3PCC") files
// (Cisco's MPP provisioning guide): a <flat-profile> of elements named
// after the parameters. A phone fresh from the box asks for /$PSN.xml
// ($PSN is the product series number, e.g. 8851.xml) with its MAC in the
// User-Agent; that file moves its Profile_Rule to <base>/$MA.xml with its
// digest credentials (--uid/--pwd). Resync_From_SIP makes NOTIFY
// "Event: resync" reload the profile without a reboot.
type cisco struct {
	cfg   Config
	zones *zoneCache
}

func newCisco(cfg Config, zones *zoneCache) *cisco { return &cisco{cfg: cfg, zones: zones} }

func (c *cisco) Name() string { return "cisco" }

func (c *cisco) ContentType(files.FileKind) string { return "application/xml" }

const ciscoMaxLines = 6

// ciscoPSNRE matches $PSN.xml: a product series number (6821, 7841, 8851,
// 8845, 8861…). Any series answers: an unknown model gets the generic profile.
var ciscoPSNRE = regexp.MustCompile(`^[0-9]{4}[A-Za-z]{0,3}\.xml$`)

// Files implements Vendor.
func (c *cisco) Files(name string) (files.VendorFile, bool) {
	// Each vendor's names are checked on every fetch of every phone: the
	// literal each expression needs is tested before running it.
	if strings.HasSuffix(name, ".xml") && ciscoPSNRE.MatchString(name) {
		return files.VendorFile{Kind: files.KindDeviceConfig, Boot: true}, true
	}
	mac, rest, ok := macPrefix(name)
	switch {
	case ok && rest == ".xml":
		return files.VendorFile{Kind: files.KindDeviceConfig, MAC: mac, Boot: true}, true
	case ok && rest == "-directory.xml":
		return files.VendorFile{Kind: files.KindDirectory, MAC: mac, Suffix: "directory.xml"}, true
	}
	return files.VendorFile{}, false
}

// SyncEvent implements Vendor: MPP re-syncs on "resync" (Resync_From_SIP)
// and reboots on "reboot".
func (c *cisco) SyncEvent(reboot bool) string {
	if reboot {
		return "reboot"
	}
	return "resync"
}

var ciscoDefaults = map[string]string{
	"Provision_Enable":            "Yes",
	"Resync_On_Reset":             "Yes",
	"Resync_From_SIP":             "Yes",
	"Resync_Periodic":             "0",
	"Resync_Error_Retry_Delay":    "60",
	"Forced_Resync_Delay":         "60",
	"Primary_NTP_Server":          "pool.ntp.org",
	"Daylight_Saving_Time_Enable": "No",
	"Auth_Resync_Reboot":          "Yes",
}

// Sources implements Vendor; raw overrides are "cisco:<Parameter_Name>".
func (c *cisco) Sources(v *prov.View) []Source {
	m := model(v, c.cfg, c.zones)
	srcs := []Source{{prov.LayerDefaults, "vendor defaults", ciscoDefaults}}
	site := "site " + v.Site.Name
	srcs = append(srcs, Source{prov.LayerSite, site, c.siteParams(v, m)},
		Source{prov.LayerSite, site + " params", vendorParams(c.Name(), v.Site.Params)})
	if v.User != nil {
		user := "user " + v.User.Username
		srcs = append(srcs, Source{prov.LayerUser, user, c.userParams(m)},
			Source{prov.LayerUser, user + " params", vendorParams(c.Name(), v.User.Params)})
	}
	srcs = append(srcs, Source{prov.LayerDevice, "device params", vendorParams(c.Name(), v.Device.Params)})
	return srcs
}

func (c *cisco) siteParams(v *prov.View, m Model) map[string]string {
	p := map[string]string{}
	p["EM_Enable"] = "No"
	if m.ProvURL != "" {
		rule := m.ProvURL + "/$MA.xml"
		if m.ProvUser != "" {
			rule = "[--uid " + m.ProvUser + " --pwd " + m.ProvPassword + "]" + rule
		}
		if m.ProvUser != "" && m.LoginPage != "" {
			// Extension Mobility, decided by hotdesk (the MPP
			// administration guide's "Configure Provisioning Authority":
			// EM_Enable gives the phone its Sign in softkey; while a user
			// is signed in, $EMS is "mobile" and $MUID/$MPWD are what they
			// typed, and the rule's first branch fetches the profile with
			// them; signed out, the second, with the device's own
			// credentials). The path names the user (their digest realm)
			// and the token of the session this profile belongs to, so a
			// re-sync still carrying an ended login is told from a new one
			// (prov.Sessions.ExtensionMobility).
			tok := v.EMToken
			if tok == "" {
				tok = prov.EMNoToken
			}
			rule = `("$EMS" eq "mobile" and "$MUID" ne "" and "$MPWD" ne "")?[--uid $MUID --pwd $MPWD]` +
				m.ProvURL + "/" + files.EMPath + "/$MUID/" + tok + "/$MA.xml|" + rule
			p["EM_Enable"] = "Yes"
		}
		p["Profile_Rule"] = rule
	}
	// The login door in the phone's XML services (the Services button).
	p["XML_Service_Name"], p["XML_Service_URL"] = "", ""
	if m.LoginPage != "" {
		p["XML_Service_Name"], p["XML_Service_URL"] = "Login", m.LoginPage+"&ui=cisco"
	}
	if m.ProvUser != "" {
		// The XML services (the directory) authenticate as the device.
		p["XML_User_Name"], p["XML_Password"] = m.ProvUser, m.ProvPassword
	}
	if m.FirmwareURL != "" {
		// Upgrade_Rule: the load the phone runs; it upgrades when it
		// differs and every line is idle, then reboots (MPP provisioning
		// guide, "Upgrade Rule").
		p["Upgrade_Rule"] = m.FirmwareURL
	}
	p["Emergency_Number"] = strings.Join(m.Emergency, ",")
	if m.TZKnown {
		p["Time_Zone"] = "GMT" + ciscoOffset(m.TZOffset)
		p["Daylight_Saving_Time_Enable"] = map[bool]string{true: "Yes", false: "No"}[m.TZDST]
	}
	if l := ciscoLang(v.Site.Language); l != "" {
		p["Language_Selection"] = l
	}
	if m.LocalPIN != "" {
		p["User_Password"] = m.LocalPIN
	}
	var lines []Line
	if v.User == nil && v.Device.MAC != "" {
		lines = m.Lines
	}
	for k, val := range ciscoLines(lines) {
		p[k] = val
	}
	for k, val := range ciscoDials(nil, "") {
		p[k] = val
	}
	for k, val := range ciscoKeys(len(lines), nil) {
		p[k] = val
	}
	return p
}

func (c *cisco) userParams(m Model) map[string]string {
	p := ciscoLines(m.Lines)
	for k, val := range ciscoDials(m.SpeedDials, m.DirectoryURL) {
		p[k] = val
	}
	for k, val := range ciscoKeys(len(m.Lines), m.Keys) {
		p[k] = val
	}
	if l := ciscoLang(m.Language); l != "" {
		p["Language_Selection"] = l
	}
	return p
}

// ciscoLines sets lines 1..ciscoMaxLines: ls enabled, the rest off.
func ciscoLines(ls []Line) map[string]string {
	p := map[string]string{}
	for i := 1; i <= ciscoMaxLines; i++ {
		n := "_" + strconv.Itoa(i) + "_"
		if i > len(ls) {
			p["Line_Enable"+n] = "No"
			continue
		}
		l := ls[i-1]
		for k, val := range map[string]string{
			"Line_Enable": "Yes", "Short_Name": l.Label, "Display_Name": l.Display, "User_ID": l.User,
			"Auth_ID": l.AuthUser, "Use_Auth_ID": "Yes", "Password": l.Password, "Proxy": l.Domain,
			"Outbound_Proxy": l.Server + ":" + strconv.Itoa(l.Port), "Use_Outbound_Proxy": "Yes",
			"Register_Expires": strconv.Itoa(l.Expiry), "SIP_Transport": strings.ToUpper(l.Transport),
			"Register": "Yes",
		} {
			p[k+n] = val
		}
		// The next cluster node as the line's alternate outbound proxy:
		// MPP uses it only with Dual Registration on, and registers to
		// both (Cisco IP Phone 8800/7800 Multiplatform Administration
		// Guide, "Dual Registration": Alternate Proxy, Alternate Outbound
		// Proxy, Dual Registration; "reboot the phone for the feature to
		// take effect"). The nodes share one location store, and the phone
		// registers one Contact, so both registrations are one binding.
		alt, dual := "", "No"
		if len(l.Backups) > 0 {
			alt, dual = l.Backups[0].String(), "Yes"
		}
		p["Alternate_Outbound_Proxy"+n], p["Dual_Registration"+n] = alt, dual
		// DNS SRV: the line's proxy is the SRV domain, looked up with the
		// _sip._udp prefix (Use_DNS_SRV_N_, DNS_SRV_Auto_Prefix_N_ as in
		// SPA/MPP configuration templates), no outbound proxy.
		// Turned off again in a cluster without it (a domain taken back).
		if len(l.Backups) > 0 {
			p["Use_DNS_SRV"+n], p["DNS_SRV_Auto_Prefix"+n] = "No", "No"
		}
		if l.SRV {
			p["Proxy"+n], p["Outbound_Proxy"+n], p["Use_Outbound_Proxy"+n] = l.Server, "", "No"
			p["Use_DNS_SRV"+n], p["DNS_SRV_Auto_Prefix"+n] = "Yes", "Yes"
		}
	}
	return p
}

// ciscoDials sets speed dials 2..9 (1 is voicemail) and the XML directory.
func ciscoDials(dials []prov.Contact, dir string) map[string]string {
	p := map[string]string{}
	for i := 2; i <= 9; i++ {
		name, num := "", ""
		if i-2 < len(dials) {
			c := dials[i-2]
			name, num = c.Label, c.Number
			if name == "" {
				name = strings.TrimSpace(c.FirstName + " " + c.LastName)
			}
		}
		p["Speed_Dial_"+strconv.Itoa(i)+"_Name"] = name
		p["Speed_Dial_"+strconv.Itoa(i)+"_Number"] = num
	}
	p["XML_Directory_Service_Name"] = ""
	p["XML_Directory_Service_URL"] = dir
	if dir != "" {
		p["XML_Directory_Service_Name"] = "Directory"
	}
	return p
}

// ciscoKeys programs line keys 1..ciscoMaxLines: a key of a line keeps
// its extension; the user's feature keys follow, each with its extension
// Disabled and an Extended Function (Cisco IP Phone 8800/7800 Multiplatform
// Administration Guide, "Programmable features on line keys" and "Speed
// dial on a line key": fnc=sd;ext=<number>@$PROXY;vid=<ext>;nme=<name>;
// "Busy lamp field": fnc=blf+sd;sub=<uri>;…). Every other key goes back to
// its own extension and no function, so a logout leaves none behind.
func ciscoKeys(lines int, keys []Key) map[string]string {
	p := map[string]string{}
	// A name must not add fields to the function string.
	clean := strings.NewReplacer(";", " ", "=", " ")
	for n := 1; n <= ciscoMaxLines; n++ {
		ext, fn := strconv.Itoa(n), ""
		if j := n - lines - 1; n > lines && j < len(keys) {
			k := keys[j]
			ext = "Disabled"
			fn = "fnc=sd;ext=" + k.Number + "@$PROXY;vid=1;nme=" + clean.Replace(k.Label)
			if k.BLF {
				fn = "fnc=blf+sd;sub=" + k.Number + "@$PROXY;ext=" + k.Number + "@$PROXY;nme=" + clean.Replace(k.Label)
			}
		}
		p["Extension_"+strconv.Itoa(n)+"_"], p["Extended_Function_"+strconv.Itoa(n)+"_"] = ext, fn
	}
	return p
}

func ciscoOffset(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	return fmt.Sprintf("%s%02d:%02d", sign, sec/3600, (sec%3600)/60)
}

var ciscoLangs = map[string]string{
	"en": "English-US", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "nl": "Dutch",
	"pt": "Portuguese", "sv": "Swedish", "da": "Danish", "no": "Norwegian", "pl": "Polish",
}

func ciscoLang(s string) string {
	if s == "" {
		return ""
	}
	return ciscoLangs[langTag(s)]
}

// Render implements Vendor: the device's one profile (MPP has no user
// profile; a login is the user's lines in it).
func (c *cisco) Render(kind files.FileKind, v *prov.View, srcs []Source) ([]byte, error) {
	switch kind {
	case files.KindDeviceConfig:
		if v.Device.MAC == "" {
			return nil, prov.ErrNotFound
		}
		return flatProfile(flat(Merge(srcs)), v.Secrets)
	case files.KindDirectory:
		return ciscoDirectory(v.Contacts)
	}
	return nil, prov.ErrNotFound
}

// KnownParam implements Vendor: MPP parameter names are words joined by
// '_' (Line_Enable_1_, Profile_Rule, Speed_Dial_2_Number).
func (c *cisco) KnownParam(name string) bool { return ciscoParamRE.MatchString(name) }

var ciscoParamRE = regexp.MustCompile(`^[A-Z][A-Za-z0-9]*(_[A-Za-z0-9]+)*_?$`)

func (c *cisco) secret(name string) bool { return ciscoSecret(name) }

// ciscoSecret: passwords and the profile rule (it carries --pwd).
func ciscoSecret(k string) bool {
	return prov.SecretParam(k) || k == "Profile_Rule" || k == "XML_User_Name"
}

// ciscoWithheld is what a file without secrets leaves out: the secrets,
// except a Profile_Rule without credentials, which moves a phone that
// booted over TFTP to HTTP(S) (it gets its credentials there, once).
func ciscoWithheld(k, v string) bool {
	if k == "Profile_Rule" {
		return strings.Contains(v, "--pwd")
	}
	return ciscoSecret(k)
}

// flatProfile renders <flat-profile>: one element per parameter, sorted.
func flatProfile(m map[string]string, secrets bool) ([]byte, error) {
	names := make([]string, 0, len(m))
	for k := range m {
		if !ciscoParamRE.MatchString(k) || !secrets && ciscoWithheld(k, m[k]) {
			continue
		}
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<flat-profile>\n")
	for _, k := range names {
		val, err := xmlEscape(m[k])
		if err != nil {
			return nil, fmt.Errorf("cisco %s: %w", k, err)
		}
		fmt.Fprintf(&b, "  <%s ua=\"na\">%s</%s>\n", k, val, k)
	}
	b.WriteString("</flat-profile>\n")
	return b.Bytes(), nil
}

// ciscoDirectory renders the XML directory service's page (CiscoIPPhoneDirectory).
func ciscoDirectory(cs []prov.Contact) ([]byte, error) {
	type entry struct {
		Name      string `xml:"Name"`
		Telephone string `xml:"Telephone"`
	}
	doc := struct {
		XMLName xml.Name `xml:"CiscoIPPhoneDirectory"`
		Title   string   `xml:"Title"`
		Entries []entry  `xml:"DirectoryEntry"`
	}{Title: "Directory"}
	for _, c := range cs {
		name := strings.TrimSpace(c.FirstName + " " + c.LastName)
		if name == "" {
			name = c.Label
		}
		doc.Entries = append(doc.Entries, entry{Name: name, Telephone: c.Number})
	}
	out, err := xml.MarshalIndent(doc, "", " ")
	if err != nil {
		return nil, fmt.Errorf("cisco directory: %w", err)
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}
