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
	// UserInDevice renders the user's layers into the device's own files:
	// set for sessions opened by a door the phone does not know about.
	UserInDevice bool
	// DeviceWeb, DevicePhone and UserPhone are the parsed uploads; nil when absent.
	DeviceWeb, DevicePhone, UserPhone *UploadParams
	// Secrets includes passwords; false for TFTP unless the admin allows it.
	Secrets bool
	Server  ServerInfo
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

// DefaultUploadNamespaces are the parameter prefixes a phone may write back in
// a .cfg upload: user-facing settings, never device.*, reg.*, or prov.* except
// the login password (issue 6's change-password flow).
var DefaultUploadNamespaces = []string{
	"up.", "se.", "lcl.", "dir.", "feature.", "call.", "softkey.", "attendant.",
	"efk.", "voice.volume.", "key.", "msg.", "bg.", "powerSaving.", "callLists.",
	"tcpIpApp.sntp.gmtOffset", "tcpIpApp.sntp.daylightSavings.", "prov.login.localPassword",
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

// Upload parse failures, wrapped by ParseConfigParams and ParseDirectory.
var (
	// ErrMalformed means the file is not well-formed XML of the expected shape.
	ErrMalformed = errors.New("malformed")
	// ErrNamespace means a .cfg upload sets a parameter outside the allowed namespaces.
	ErrNamespace = errors.New("parameter not allowed")
)

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
// refuses DTDs, bad names, duplicate parameters and, when namespaces is not
// nil, parameters outside them.
func ParseConfigParams(data []byte, namespaces []string) (map[string]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	params := map[string]string{}
	depth, roots := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 || (t.Name.Local != "polycomConfig" && t.Name.Local != "PHONE_CONFIG") {
					return nil, fmt.Errorf("%w: root element %q", ErrMalformed, t.Name.Local)
				}
			}
			if depth++; depth > maxXMLDepth {
				return nil, fmt.Errorf("%w: nested too deep", ErrMalformed)
			}
			if err := addAttrs(params, t.Attr, namespaces); err != nil {
				return nil, err
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return nil, fmt.Errorf("%w: DTD or directive", ErrMalformed)
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text outside the root", ErrMalformed)
			}
		}
	}
	if roots != 1 {
		return nil, fmt.Errorf("%w: no root element", ErrMalformed)
	}
	return params, nil
}

func addAttrs(params map[string]string, attrs []xml.Attr, namespaces []string) error {
	for _, a := range attrs {
		name := a.Name.Local
		if a.Name.Space != "" {
			if a.Name.Space == "xmlns" || a.Name.Space == "xml" || a.Name.Space == "http://www.w3.org/2001/XMLSchema-instance" {
				continue
			}
			return fmt.Errorf("%w: namespaced attribute %q", ErrMalformed, a.Name.Space+":"+name)
		}
		if name == "xmlns" {
			continue
		}
		if !ValidParamName(name) || len(a.Value) > maxParamValueLen {
			return fmt.Errorf("%w: bad parameter %q", ErrMalformed, name)
		}
		if _, dup := params[name]; dup {
			return fmt.Errorf("%w: duplicate parameter %q", ErrMalformed, name)
		}
		if namespaces != nil && !allowedParam(name, namespaces) {
			return fmt.Errorf("%w: %q", ErrNamespace, name)
		}
		if len(params) >= maxParams {
			return fmt.Errorf("%w: too many parameters", ErrMalformed)
		}
		params[name] = a.Value
	}
	return nil
}

// polycomDirectory is the <directory> file a Polycom phone reads and writes.
type polycomDirectory struct {
	XMLName xml.Name `xml:"directory"`
	Items   []struct {
		FirstName string `xml:"fn"`
		LastName  string `xml:"ln"`
		Contact   string `xml:"ct"`
		SpeedDial string `xml:"sd"`
		Label     string `xml:"lb"`
	} `xml:"item_list>item"`
}

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
		for _, f := range []string{it.FirstName, it.LastName, it.Contact, it.Label} {
			if len(f) > maxContactField {
				return nil, fmt.Errorf("%w: item %d: field too long", ErrMalformed, i+1)
			}
		}
		c := Contact{Position: i + 1, FirstName: strings.TrimSpace(it.FirstName),
			LastName: strings.TrimSpace(it.LastName), Number: strings.TrimSpace(it.Contact),
			Label: strings.TrimSpace(it.Label)}
		if sd := strings.TrimSpace(it.SpeedDial); sd != "" {
			n, err := strconv.Atoi(sd)
			if err != nil || n < 0 || n > 9999 {
				return nil, fmt.Errorf("%w: item %d: speed dial %q", ErrMalformed, i+1, sd)
			}
			c.SpeedDial = n
		}
		out = append(out, c)
	}
	return out, nil
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
