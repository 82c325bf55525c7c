package files

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"hotdesk/prov"
)

// Uploads in Polycom's formats: the .cfg overrides a phone writes back and its
// local directory, parsed and checked before they are stored.

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
	if prov.SecretParam(name) {
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
		if !prov.ValidParamName(name) || len(a.Value) > maxParamValueLen {
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
func ParseDirectory(data []byte) ([]prov.Contact, error) {
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
	out := make([]prov.Contact, 0, len(d.Items))
	for i, it := range d.Items {
		for _, f := range []string{it.FirstName, it.LastName, it.Contact, it.Label, it.DivertContact} {
			if len(f) > maxContactField {
				return nil, fmt.Errorf("%w: item %d: field too long", ErrMalformed, i+1)
			}
		}
		c := prov.Contact{Position: i + 1, FirstName: strings.TrimSpace(it.FirstName),
			LastName: strings.TrimSpace(it.LastName), Number: strings.TrimSpace(it.Contact),
			Label: strings.TrimSpace(it.Label),
			Phone: prov.ContactPhone{Protocol: strings.TrimSpace(it.Protocol), RingType: strings.TrimSpace(it.RingType),
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
		if err := checkContactPhone(c.Phone); err != nil {
			return nil, fmt.Errorf("%w: item %d: %v", ErrMalformed, i+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// checkContactPhone validates the fields against the guide's permitted values.
func checkContactPhone(p prov.ContactPhone) error {
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
