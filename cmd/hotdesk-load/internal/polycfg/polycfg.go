package polycfg

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MaxFileBytes bounds what the parsers read; phones refuse bigger files too.
const MaxFileBytes = 4 << 20

// ErrNotPolycom means the data had no element the parser looks for.
var ErrNotPolycom = errors.New("polycfg: no polycom configuration found")

// Master is the boot file (<MAC>.cfg or 000000000000.cfg).
type Master struct {
	AppFilePath string
	// ConfigFiles lists the files to fetch, highest precedence first, with
	// [PHONE_MAC_ADDRESS] already replaced.
	ConfigFiles []string
	// Attrs holds every attribute of the APPLICATION element.
	Attrs map[string]string
}

// ParseMaster parses an <APPLICATION> master file for the phone with mac
// (12 lowercase hex digits; used for the [PHONE_MAC_ADDRESS] placeholder).
func ParseMaster(data []byte, mac string) (Master, error) {
	if len(data) > MaxFileBytes {
		return Master{}, fmt.Errorf("parse master: %d bytes: too large", len(data))
	}
	d := newDecoder(data)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return Master{}, fmt.Errorf("parse master: %w", ErrNotPolycom)
		}
		if err != nil {
			return Master{}, fmt.Errorf("parse master: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || !strings.EqualFold(se.Name.Local, "APPLICATION") {
			continue
		}
		m := Master{Attrs: map[string]string{}}
		for _, a := range se.Attr {
			m.Attrs[strings.ToUpper(a.Name.Local)] = a.Value
		}
		m.AppFilePath = m.Attrs["APP_FILE_PATH"]
		m.ConfigFiles = SplitFiles(m.Attrs["CONFIG_FILES"], mac)
		return m, nil
	}
}

// SplitFiles splits a CONFIG_FILES value (comma separated, spaces allowed)
// and substitutes the MAC placeholder as UC Software does.
func SplitFiles(v, mac string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		f = strings.ReplaceAll(f, "[PHONE_MAC_ADDRESS]", mac)
		out = append(out, f)
	}
	return out
}

// Params is a set of parameters by full dotted name. Lookups through Get
// ignore case, as UC Software does for parameter names.
type Params map[string]string

// ParseParams returns every attribute of every element of a
// <polycomConfig> file (any nesting; the grouping elements carry no
// meaning). A parameter repeated in one file keeps its last value.
func ParseParams(data []byte) (Params, error) {
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("parse params: %d bytes: too large", len(data))
	}
	d := newDecoder(data)
	p := Params{}
	elems := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse params: %w", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		elems++
		for _, a := range se.Attr {
			if a.Name.Local == "" {
				continue
			}
			p[strings.ToLower(a.Name.Local)] = a.Value
		}
	}
	if elems == 0 {
		return nil, fmt.Errorf("parse params: %w", ErrNotPolycom)
	}
	return p, nil
}

// Get returns the value of name (case-insensitive) and whether it is set.
func (p Params) Get(name string) (string, bool) {
	v, ok := p[strings.ToLower(name)]
	return v, ok
}

// Merge adds q's parameters that p lacks: files listed first in
// CONFIG_FILES win, so merge them in listed order.
func (p Params) Merge(q Params) {
	for k, v := range q {
		if _, ok := p[k]; !ok {
			p[k] = v
		}
	}
}

// Account is one registration line (reg.N.*) as the phone would use it.
type Account struct {
	Line     int
	Address  string // reg.N.address: user part, or user@host
	UserID   string // reg.N.auth.userId (falls back to the address user)
	Password string
	// Domain is the host part of the address of record: the one in
	// reg.N.address, else the line's (or the phone's) server address.
	Domain string
	// Server and Port are where REGISTER goes.
	Server string
	Port   int
}

// User is the user part of the address of record.
func (a Account) User() string {
	u, _, _ := strings.Cut(a.Address, "@")
	return strings.TrimPrefix(strings.TrimPrefix(u, "sip:"), "sips:")
}

// AOR is sip:user@domain.
func (a Account) AOR() string { return "sip:" + a.User() + "@" + a.Domain }

// ErrNoAccount means the line has no address.
var ErrNoAccount = errors.New("polycfg: line has no account")

// Account returns registration line n.
func (p Params) Account(n int) (Account, error) {
	r := "reg." + strconv.Itoa(n) + "."
	get := func(k string) string { v, _ := p.Get(k); return strings.TrimSpace(v) }
	a := Account{Line: n, Address: get(r + "address"), UserID: get(r + "auth.userId"),
		Password: get(r + "auth.password")}
	if a.User() == "" {
		return Account{}, fmt.Errorf("account %d: %w", n, ErrNoAccount)
	}
	if a.UserID == "" {
		a.UserID = a.User()
	}
	a.Server = firstNonEmpty(get(r+"server.1.address"), get("voIpProt.server.1.address"))
	port := firstNonEmpty(get(r+"server.1.port"), get("voIpProt.server.1.port"))
	a.Port = 5060
	if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65536 {
		a.Port = n
	}
	if _, host, ok := strings.Cut(a.Address, "@"); ok && host != "" {
		a.Domain = host
	} else {
		a.Domain = a.Server
	}
	return a, nil
}

// MaxLines bounds the line numbers Accounts looks at (a VVX 600 has 16
// lines, a CCX up to 48).
const MaxLines = 48

// Accounts returns every configured line (reg.N with an address, N from 1
// to MaxLines) in line order: the set of lines the phone registers.
func (p Params) Accounts() []Account {
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, "reg.")
		if !ok {
			continue
		}
		num, field, ok := strings.Cut(rest, ".")
		if !ok || field != "address" {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n >= 1 && n <= MaxLines {
			seen[n] = true
		}
	}
	var out []Account
	for n := 1; n <= MaxLines; n++ {
		if !seen[n] {
			continue
		}
		if a, err := p.Account(n); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// ProvCredentials returns device.prov.user/password: the HTTP digest
// credentials the phone uses from then on ("" when not set).
func (p Params) ProvCredentials() (user, password string) {
	u, _ := p.Get("device.prov.user")
	pw, _ := p.Get("device.prov.password")
	return u, pw
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// newDecoder is lenient like the phones' parser: HTML entities, unclosed
// elements and unknown charsets are accepted.
func newDecoder(data []byte) *xml.Decoder {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	d.CharsetReader = func(_ string, r io.Reader) (io.Reader, error) { return r, nil }
	return d
}
