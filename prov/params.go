package prov

import (
	"regexp"
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
// take part in the merge. prov/files builds it; renderers must not change it.
type View struct {
	Device  Device
	Site    Site
	User    *User
	Session *Session
	// Numbers are the user's numbers, rendered as lines.
	Numbers  []string
	Contacts []Contact
	// Company is the company directory as the user's directory scope shows
	// it, shared by every view of that scope (read-only); the user's own
	// entry is in it and left out where it is used (CompanySelf), rendered
	// after Contacts (DirectoryItems).
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

// SecretParam reports whether a parameter carries a secret and so must not
// be served over TFTP (unless allowed) nor shown unmasked.
func SecretParam(name string) bool {
	// ASCII names (all the phones' parameters) are matched in place:
	// lowering a copy of each was most of a rendered file's garbage.
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return strings.Contains(strings.ToLower(name), "password")
		}
	}
	const word = "password"
	for i := 0; i+len(word) <= len(name); i++ {
		if strings.EqualFold(name[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// ValidParamName reports whether name can be a parameter: an XML attribute
// name made of letters, digits, '_', '.', '-', at most 128 of them, not
// starting with a digit, '.' or '-'. A loop, not a regexp: every rendered
// file checks each of its parameters (2 % of the daemon's CPU in a boot
// storm as a regexp).
func ValidParamName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '.' || c == '-'):
		default:
			return false
		}
	}
	return true
}

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
