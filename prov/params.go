package prov

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// Layer is one level of the configuration precedence, lowest first:
// defaults < site < user < device < user_phone.
type Layer string

// Precedence layers, as GET /api/v1/devices/{mac}/effective-config names them.
const (
	// LayerDefaults are the vendor renderer's built-in values.
	LayerDefaults Layer = "defaults"
	// LayerSite is <MAC>.cfg and the site: device account, Site.Params, login
	// policy, authorized and emergency numbers, time zone, language, NTP and
	// the provisioning server.
	LayerSite Layer = "site"
	// LayerUser is <user>.cfg, the admin's profile of the logged-in user:
	// User.Params, lines with the session's credentials, language.
	LayerUser Layer = "user"
	// LayerDevice is the web/device overrides: admin per-device Params and
	// authorized numbers, the phone's <MAC>-web.cfg and <MAC>-phone.cfg.
	LayerDevice Layer = "device"
	// LayerUserPhone is <user>-phone.cfg, what the user changed on a phone.
	LayerUserPhone Layer = "user_phone"
)

// Layers lists the layers from lowest to highest precedence.
var Layers = []Layer{LayerDefaults, LayerSite, LayerUser, LayerDevice, LayerUserPhone}

// Param is one effective configuration parameter and where it came from.
type Param struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Layer Layer  `json:"layer"`
	// Source names the object inside the layer, e.g. "site params",
	// "device account", "upload 0004f2000001-web.cfg v3".
	Source string `json:"source"`
}

// ServerInfo is how phones reach this provisioning server.
type ServerInfo struct {
	// BaseURL is the provisioning URL with scheme and path prefix, no trailing slash.
	BaseURL string
	// Host is the host (name or address) of BaseURL, also used as SIP server.
	Host string
}

// UploadParams are the parameters of a stored .cfg upload.
type UploadParams struct {
	Name    string
	Version int
	Params  map[string]string
}

// View is everything a renderer needs to render one device's files: the
// device, its site, the user logged in on it (if any) and the uploads that
// take part in the merge. Files builds it; renderers must not change it.
type View struct {
	Device  Device
	Site    Site
	User    *User
	Session *Session
	// Numbers are the user's numbers, rendered as lines.
	Numbers  []string
	Contacts []Contact
	// Company is the company directory as the user's directory scope shows
	// it, the user left out; rendered after Contacts (DirectoryItems).
	Company []CompanyEntry
	// UserInDevice renders the user's layers into the device's own files:
	// set for sessions opened by a door the phone does not know about.
	UserInDevice bool
	// DeviceWeb, DevicePhone and UserPhone are the parsed uploads; nil when absent.
	DeviceWeb, DevicePhone, UserPhone *UploadParams
	// DeviceLocal and UserLocal are a key = value phone's settings upload
	// (Yealink <mac>-local.cfg), the device's and the logged-in user's.
	DeviceLocal, UserLocal *UploadParams
	// Secrets includes passwords; false for TFTP unless the admin allows it.
	Secrets bool
	Server  ServerInfo
	// DefaultLoginSecret is the password the phone logs the site's default
	// user in with (prov.login.defaultPassword); "" for none.
	DefaultLoginSecret string
	// EMToken is the Extension Mobility token the phone's profile rule
	// carries (EMToken); "" for none: the next sign-in is a new login.
	EMToken string
}

// Renderer turns a View into a vendor's files. render.Set implements it.
type Renderer interface {
	// Render returns the body of a file of kind for v (KindMaster,
	// KindDeviceConfig, KindUserConfig, KindDirectory), or ErrNotFound when
	// the vendor has no such file.
	Render(ctx context.Context, kind FileKind, v *View) ([]byte, error)
	// Effective returns the merged parameters, sorted by name.
	Effective(v *View) ([]Param, error)
	// ContentType is the MIME type of kind's files for the device's vendor.
	ContentType(v *View, kind FileKind) string
}

// SecretParam reports whether a parameter carries a secret and so must not
// be served over TFTP (unless allowed) nor shown unmasked.
func SecretParam(name string) bool {
	return strings.Contains(strings.ToLower(name), "password")
}

var paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$`)

// ValidParamName reports whether name can be a parameter: an XML attribute
// name made of letters, digits, '_', '.', '-'.
func ValidParamName(name string) bool { return paramNameRE.MatchString(name) }

// paramGroups are the top-level groups of the phones' configuration
// parameters (Polycom UC Software's parameter list): an admin's parameter
// outside them is a typo, refused with its name instead of being served
// and silently ignored by the phone.
var paramGroups = map[string]bool{
	"acd": true, "apps": true, "attendant": true, "bg": true, "bluetooth": true, "call": true,
	"callLists": true, "device": true, "dialplan": true, "dir": true, "divert": true, "dns": true,
	"efk": true, "exchange": true, "feature": true, "httpd": true, "hoteling": true, "key": true,
	"lcl": true, "ldap": true, "lineKey": true, "log": true, "mb": true, "msg": true, "mwi": true,
	"nat": true, "np": true, "pres": true, "phoneLock": true, "powerSaving": true, "prov": true,
	"ptt": true, "qos": true, "reg": true, "saf": true, "se": true, "sec": true, "softkey": true,
	"sip": true, "tcpIpApp": true, "uc": true, "up": true, "upgrade": true, "video": true,
	"voice": true, "voIpProt": true, "wifi": true,
}

// ValidateParams checks an admin's parameters (a site's, a device's or a
// user's profile): known names, bounded values. field names the map in
// errors; forUser refuses the device's own settings (device.*), which a
// user's profile cannot carry from phone to phone.
func ValidateParams(field string, m map[string]string, forUser bool) error {
	if len(m) > 500 {
		return Invalid(field, "has more than 500 parameters")
	}
	for k, v := range m {
		if vendor, name, ok := strings.Cut(k, ":"); ok {
			// A raw override for one vendor's phones (render.VendorPrefix);
			// a ParamCatalog checks the name against that vendor's list.
			switch {
			case !vendorKeyRE.MatchString(vendor) || !ValidParamName(name):
				return Invalid(field+"."+k, "is not a parameter name (<vendor>:<name>)")
			case len(v) > 1024 || strings.ContainsAny(v, "\x00\r\n"):
				return Invalid(field+"."+k, "value is too long or has control characters")
			}
			continue
		}
		group, _, _ := strings.Cut(k, ".")
		switch {
		case !ValidParamName(k) || !strings.Contains(k, "."):
			return Invalid(field+"."+k, "is not a parameter name")
		case !paramGroups[group]:
			return Invalid(field+"."+k, "is not a known phone parameter (group "+group+")")
		case forUser && group == "device":
			return Invalid(field+"."+k, "is a device setting, not a user's")
		case len(v) > 1024 || strings.ContainsAny(v, "\x00\r\n"):
			return Invalid(field+"."+k, "value is too long or has control characters")
		}
	}
	return nil
}

var vendorKeyRE = regexp.MustCompile(`^[a-z][a-z0-9]{1,19}$`)

// ParamCatalog knows each vendor's parameter names (render.Catalog
// implements it from the renderers' lists).
type ParamCatalog interface {
	// KnownParam reports, for a bare (Polycom) or "<vendor>:<name>"
	// parameter, whether it is one of that vendor's parameters, and
	// whether the vendor is one hotdesk renders.
	KnownParam(name string) (known, vendorKnown bool)
}

// CheckVendorParams checks m's "<vendor>:<name>" overrides against cat
// (nil: no check beyond ValidateParams').
func CheckVendorParams(cat ParamCatalog, field string, m map[string]string) error {
	if cat == nil {
		return nil
	}
	for k := range m {
		vendor, _, ok := strings.Cut(k, ":")
		if !ok {
			continue
		}
		known, vendorKnown := cat.KnownParam(k)
		switch {
		case !vendorKnown:
			return Invalid(field+"."+k, "names a vendor hotdesk does not provision ("+vendor+")")
		case !known:
			return Invalid(field+"."+k, "is not a known "+vendor+" parameter")
		}
	}
	return nil
}

// DefaultUploadNamespaces are the parameter prefixes a phone owns in its
// .cfg uploads (<MAC>-phone.cfg, <user>-phone.cfg, <MAC>-web.cfg): what
// the user changes on the handset or its web page — preferences (up.*),
// sounds and ring tones, language and clock, volumes, call and feature
// settings, forwarding (divert.*), line-key layout, push-to-talk channels,
// the local directory's settings. The line parameters a phone owns
// (reg.N.label, lineKeys, ringType, fwd.*) are in phoneOwnedLine. Within
// these, UploadParamRefusal still refuses secrets and addresses.
var DefaultUploadNamespaces = []string{
	"up.", "se.", "lcl.", "dir.", "feature.", "call.", "softkey.", "attendant.",
	"efk.", "voice.volume.", "key.", "msg.", "bg.", "powerSaving.", "callLists.",
	"tcpIpApp.sntp.gmtOffset", "tcpIpApp.sntp.daylightSavings.", "prov.login.localPassword",
	"ptt.", "divert.", "lineKey.",
}

// Reasons an upload's parameter is refused, the values of
// hotdesk_prov_upload_params_refused_total's reason label.
const (
	// RefusedProvisioning: prov.* and device.*, which could move the phone
	// to another provisioning server or change its network set-up.
	RefusedProvisioning = "provisioning"
	// RefusedSecret: passwords and authentication user names.
	RefusedSecret = "secret"
	// RefusedAddress: where the phone sends something (servers, ports,
	// URLs, the microbrowser's home page, the corporate directory's server).
	RefusedAddress = "address"
	// RefusedNotPhoneOwned: anything else the phone does not own, e.g. a
	// line's address, credentials or display name, dial plan, phone lock.
	RefusedNotPhoneOwned = "not_phone_owned"
)

// phoneOwnedLine are the reg.N.* parameters a phone owns: how a line
// appears and rings on it and where the user forwards it, never who the
// line is (address, auth.*, displayName) or where it registers.
var phoneOwnedLine = []string{"label", "lineKeys", "ringType", "callsPerLineKey", "fwd."}

// addressSegments are name segments that say where the phone goes: a
// phone that could set them could re-point itself (or its corporate
// directory's credentials) at another host.
var addressSegments = map[string]bool{
	"address": true, "server": true, "serverName": true, "host": true, "port": true, "proxy": true,
	"outboundProxy": true, "url": true, "home": true, "baseDN": true, "domain": true,
}

// secretSegments are name segments of credentials.
var secretSegments = map[string]bool{"auth": true, "user": true, "userId": true, "credentials": true}

// UploadParamRefusal is why a phone may not set name in an upload, or ""
// when it may: name must be in one of namespaces (or a phone-owned line
// parameter) and carry no secret or address.
func UploadParamRefusal(name string, namespaces []string) string {
	if name == localPasswordParam || name == localPasswordParam+".hashed" {
		// The change-password flow: taken out of the file (SplitConfigUpload).
		if allowedParam(name, namespaces) {
			return ""
		}
		return RefusedNotPhoneOwned
	}
	if strings.HasPrefix(name, "prov.") || strings.HasPrefix(name, "device.") {
		return RefusedProvisioning
	}
	segs := strings.Split(name, ".")
	if SecretParam(name) {
		return RefusedSecret
	}
	for _, s := range segs {
		if secretSegments[s] {
			return RefusedSecret
		}
	}
	for i, s := range segs {
		// A busy-lamp-field entry's address is the colleague watched, not a server.
		if addressSegments[s] && !(s == "address" && i == 3 && strings.HasPrefix(name, "attendant.resourceList.")) {
			return RefusedAddress
		}
	}
	if rest, ok := strings.CutPrefix(name, "reg."); ok {
		n, param, _ := strings.Cut(rest, ".")
		if _, err := strconv.Atoi(n); err != nil || len(n) > 3 {
			return RefusedNotPhoneOwned
		}
		for _, p := range phoneOwnedLine {
			if param == p || strings.HasSuffix(p, ".") && strings.HasPrefix(param, p) {
				return ""
			}
		}
		return RefusedNotPhoneOwned
	}
	if !allowedParam(name, namespaces) {
		return RefusedNotPhoneOwned
	}
	return ""
}

// allowedParam reports whether name starts with one of the namespaces.
func allowedParam(name string, namespaces []string) bool {
	for _, ns := range namespaces {
		if strings.HasPrefix(name, ns) {
			return true
		}
	}
	return false
}

// ErrMalformed means an upload is not well-formed XML of the expected shape
// (wrapped by ParseConfigParams, SplitConfigUpload and ParseDirectory).
var ErrMalformed = errors.New("malformed")

// Parse limits: a phone's files are small; anything bigger is hostile.
const (
	maxXMLDepth      = 16
	maxParams        = 5000
	maxContacts      = 2000
	maxContactField  = 128
	maxParamValueLen = 4096
)

// ParseConfigParams parses a Polycom .cfg (<polycomConfig> or the older
// <PHONE_CONFIG>): every attribute of every element is a parameter. It
// refuses DTDs, bad names and duplicate parameters.
func ParseConfigParams(data []byte) (map[string]string, error) {
	_, attrs, err := parseConfig(data)
	if err != nil {
		return nil, err
	}
	params := make(map[string]string, len(attrs))
	for _, a := range attrs {
		params[a.Name] = a.Value
	}
	return params, nil
}

// RefusedParam is a parameter an upload may not set, and why (a Refused* reason).
type RefusedParam struct {
	Name   string
	Reason string
}

// ConfigUpload is a .cfg upload split into what the phone may set and what not.
type ConfigUpload struct {
	// Params are the parameters kept.
	Params map[string]string
	// Refused are the parameters left out, in file order.
	Refused []RefusedParam
	// Data is the file to store: as uploaded when nothing was left out,
	// else rebuilt with the kept parameters only (same root, file order).
	Data []byte
	// LocalPassword is the login password the user set on the handset
	// (prov.login.localPassword, unless .hashed="1": the phone's own hash,
	// which cannot become an argon2id hash). Never part of Params nor Data,
	// so no password is stored in clear.
	LocalPassword string
}

// localPasswordParam is where a phone writes the login password its user
// changed on the handset (the change-password flow).
const localPasswordParam = "prov.login.localPassword"

// SplitConfigUpload parses a phone's .cfg upload and keeps the parameters
// the phone owns (UploadParamRefusal with namespaces): a parameter it may
// not set is left out and reported, not a reason to lose the rest. A file
// that is not a well-formed config is refused whole (ErrMalformed).
func SplitConfigUpload(data []byte, namespaces []string) (ConfigUpload, error) {
	root, attrs, err := parseConfig(data)
	if err != nil {
		return ConfigUpload{}, err
	}
	up := ConfigUpload{Params: make(map[string]string, len(attrs)), Data: data}
	kept := attrs[:0:0]
	hashed := false
	for _, a := range attrs {
		if why := UploadParamRefusal(a.Name, namespaces); why != "" {
			up.Refused = append(up.Refused, RefusedParam{Name: a.Name, Reason: why})
			continue
		}
		switch a.Name {
		case localPasswordParam:
			up.LocalPassword = a.Value
			continue
		case localPasswordParam + ".hashed":
			hashed = a.Value == "1"
			continue
		}
		up.Params[a.Name] = a.Value
		kept = append(kept, a)
	}
	if hashed {
		up.LocalPassword = ""
	}
	if len(kept) < len(attrs) {
		up.Data = configFile(root, kept)
	}
	return up, nil
}

// configFile writes params as a Polycom override file: one element holds
// them all, which the phone reads as it reads any element's attributes.
func configFile(root string, params []kv) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n<" + root + ">\n  <OVERRIDES")
	for _, p := range params {
		b.WriteString("\n    " + p.Name + `="` + attrEscaper.Replace(p.Value) + `"`)
	}
	b.WriteString("/>\n</" + root + ">\n")
	return b.Bytes()
}

// attrEscaper escapes an attribute value so that it parses back the same,
// line breaks and tabs included.
var attrEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;",
	"\n", "&#xA;", "\r", "&#xD;", "\t", "&#x9;")

// kv is one parameter in file order.
type kv struct{ Name, Value string }

// parseConfig walks a .cfg once: its root element's name and every
// parameter in file order.
func parseConfig(data []byte) (string, []kv, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var attrs []kv
	seen := map[string]bool{}
	root := ""
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 || (t.Name.Local != "polycomConfig" && t.Name.Local != "PHONE_CONFIG") {
					return "", nil, fmt.Errorf("%w: root element %q", ErrMalformed, t.Name.Local)
				}
				root = t.Name.Local
			}
			if depth++; depth > maxXMLDepth {
				return "", nil, fmt.Errorf("%w: nested too deep", ErrMalformed)
			}
			if attrs, err = addAttrs(attrs, seen, t.Attr); err != nil {
				return "", nil, err
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return "", nil, fmt.Errorf("%w: DTD or directive", ErrMalformed)
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return "", nil, fmt.Errorf("%w: text outside the root", ErrMalformed)
			}
		}
	}
	if roots != 1 {
		return "", nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	return root, attrs, nil
}

func addAttrs(attrs []kv, seen map[string]bool, xattrs []xml.Attr) ([]kv, error) {
	for _, a := range xattrs {
		name := a.Name.Local
		if a.Name.Space != "" {
			if a.Name.Space == "xmlns" || a.Name.Space == "xml" || a.Name.Space == "http://www.w3.org/2001/XMLSchema-instance" {
				continue
			}
			return nil, fmt.Errorf("%w: namespaced attribute %q", ErrMalformed, a.Name.Space+":"+name)
		}
		if name == "xmlns" {
			continue
		}
		if !ValidParamName(name) || len(a.Value) > maxParamValueLen {
			return nil, fmt.Errorf("%w: bad parameter %q", ErrMalformed, name)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: duplicate parameter %q", ErrMalformed, name)
		}
		if len(attrs) >= maxParams {
			return nil, fmt.Errorf("%w: too many parameters", ErrMalformed)
		}
		seen[name] = true
		attrs = append(attrs, kv{name, a.Value})
	}
	return attrs, nil
}

// polycomDirectory is the <directory> file a Polycom phone reads and
// writes: every item field the UC Software admin guide's "Local Contact
// Directory" defines (fn ln ct sd lb pt rt dc ad ar bw bb).
type polycomDirectory struct {
	XMLName xml.Name `xml:"directory"`
	Items   []struct {
		FirstName     string `xml:"fn"`
		LastName      string `xml:"ln"`
		Contact       string `xml:"ct"`
		SpeedDial     string `xml:"sd"`
		Label         string `xml:"lb"`
		Protocol      string `xml:"pt"`
		RingType      string `xml:"rt"`
		DivertContact string `xml:"dc"`
		AutoDivert    string `xml:"ad"`
		AutoReject    string `xml:"ar"`
		BuddyWatch    string `xml:"bw"`
		BuddyBlock    string `xml:"bb"`
	} `xml:"item_list>item"`
}

var (
	// ringTypeRE is a ring tone number (the guide: 1 to 21; later phones have more).
	ringTypeRE = regexp.MustCompile(`^[0-9]{1,3}$`)
	// protocolRE: SIP, H323 or Unspecified as the guide has it, any case.
	protocolRE = regexp.MustCompile(`^(?i:sip|h323|unspecified)$`)
)

// ParseDirectory parses a Polycom <directory> upload into contacts, in file order.
func ParseDirectory(data []byte) ([]Contact, error) {
	if err := checkWellFormed(data, "directory"); err != nil {
		return nil, err
	}
	var d polycomDirectory
	if err := xml.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(d.Items) > maxContacts {
		return nil, fmt.Errorf("%w: more than %d contacts", ErrMalformed, maxContacts)
	}
	out := make([]Contact, 0, len(d.Items))
	for i, it := range d.Items {
		for _, f := range []string{it.FirstName, it.LastName, it.Contact, it.Label, it.DivertContact} {
			if len(f) > maxContactField {
				return nil, fmt.Errorf("%w: item %d: field too long", ErrMalformed, i+1)
			}
		}
		c := Contact{Position: i + 1, FirstName: strings.TrimSpace(it.FirstName),
			LastName: strings.TrimSpace(it.LastName), Number: strings.TrimSpace(it.Contact),
			Label: strings.TrimSpace(it.Label),
			Phone: ContactPhone{Protocol: strings.TrimSpace(it.Protocol), RingType: strings.TrimSpace(it.RingType),
				DivertContact: strings.TrimSpace(it.DivertContact), AutoDivert: strings.TrimSpace(it.AutoDivert),
				AutoReject: strings.TrimSpace(it.AutoReject), BuddyWatch: strings.TrimSpace(it.BuddyWatch),
				BuddyBlock: strings.TrimSpace(it.BuddyBlock)}}
		if sd := strings.TrimSpace(it.SpeedDial); sd != "" {
			n, err := strconv.Atoi(sd)
			if err != nil || n < 0 || n > 9999 {
				return nil, fmt.Errorf("%w: item %d: speed dial %q", ErrMalformed, i+1, sd)
			}
			c.SpeedDial = n
		}
		if err := c.Phone.check(); err != nil {
			return nil, fmt.Errorf("%w: item %d: %v", ErrMalformed, i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// check validates the fields against the guide's permitted values.
func (p ContactPhone) check() error {
	if p.Protocol != "" && !protocolRE.MatchString(p.Protocol) {
		return fmt.Errorf("protocol (pt) %q is SIP, H323 or Unspecified", p.Protocol)
	}
	if p.RingType != "" && !ringTypeRE.MatchString(p.RingType) {
		return fmt.Errorf("ring type (rt) %q is a number", p.RingType)
	}
	for _, f := range []struct{ name, v string }{{"auto divert (ad)", p.AutoDivert}, {"auto reject (ar)", p.AutoReject},
		{"buddy watching (bw)", p.BuddyWatch}, {"buddy block (bb)", p.BuddyBlock}} {
		if f.v != "" && f.v != "0" && f.v != "1" {
			return fmt.Errorf("%s %q is 0 or 1", f.name, f.v)
		}
	}
	return nil
}

// checkWellFormed walks data once: well-formed, one root named root (any
// root when ""), no DTD, bounded depth.
func checkWellFormed(data []byte, root string) error {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 || (root != "" && t.Name.Local != root) {
					return fmt.Errorf("%w: root element %q", ErrMalformed, t.Name.Local)
				}
			}
			if depth++; depth > maxXMLDepth {
				return fmt.Errorf("%w: nested too deep", ErrMalformed)
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return fmt.Errorf("%w: DTD or directive", ErrMalformed)
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return fmt.Errorf("%w: text outside the root", ErrMalformed)
			}
		}
	}
	if roots != 1 {
		return fmt.Errorf("%w: no root element", ErrMalformed)
	}
	return nil
}
