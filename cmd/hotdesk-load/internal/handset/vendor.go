package handset

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"hotdesk/cmd/hotdesk-load/internal/polycfg"
)

// Vendor is what makes a handset one vendor's phone, written from the
// vendor's documentation (../shared/research/vendors.md), not from what
// hotdesk renders: how it names itself (HTTP and SIP User-Agent, DHCP
// option 60), the files a boot or re-sync fetches and how it merges them,
// where it reads its lines and provisioning credentials, and which NOTIFY
// re-provisions it. Everything else (registration, NOTIFY validation, the
// line diff) is the same phone.
type Vendor struct {
	Name string
	// OUI is the MAC prefix of the vendor's phones (6 hex digits).
	OUI string
	// UserAgent is the HTTP User-Agent with {mac} (12 lowercase hex
	// digits), {MAC} (uppercase) or {mac:} (colon separated) for the MAC;
	// SIPUserAgent the one in SIP requests ("": derived from UserAgent, as
	// UC Software does).
	UserAgent, SIPUserAgent string
	// VendorClass is the DHCP option 60 it sends.
	VendorClass string
	// NotifyEvent is the Event of the NOTIFY that re-provisions it without
	// a reboot.
	NotifyEvent string
	// fetch fetches and merges the files of a boot or re-sync, given the
	// parameters it has now (nil at power-on).
	fetch func(ctx context.Context, h *Handset, cur polycfg.Params) (polycfg.Params, error)
	// accounts are the configured registration lines, in line order.
	accounts func(p polycfg.Params) []polycfg.Account
	// provCreds are the HTTP digest credentials later fetches use.
	provCreds func(p polycfg.Params) (user, password string)
	// onEvent says whether a NOTIFY with Event ev re-provisions the phone
	// (ok) and whether it reboots it, from its current parameters.
	onEvent func(ev string, p polycfg.Params) (reboot, ok bool)
}

// Polycom is a VVX 400 on UC Software 6.4: <MAC>.cfg (else
// 000000000000.cfg), then its CONFIG_FILES, first listed wins; check-sync
// reloads unless reboot=true (voIpProt.SIP.specialEvent.checkSync.alwaysReboot=0).
var Polycom = &Vendor{Name: "polycom", OUI: "0004f2", UserAgent: DefaultUserAgent, VendorClass: "Polycom-VVX400", NotifyEvent: "check-sync",
	fetch: polycomFetch, accounts: polycfg.Params.Accounts, provCreds: polycfg.Params.ProvCredentials,
	onEvent: func(ev string, p polycfg.Params) (bool, bool) {
		reboot, ok := checkSync(ev)
		v, _ := p.Get("voIpProt.SIP.specialEvent.checkSync.alwaysReboot")
		return reboot || v == "1", ok
	}}

// Yealink is a T46U: y000000000000.cfg, then <mac>.cfg, which overrides
// it; "key = value" lines under "#!version:1.0.0.1". check-sync reboots
// it unless sip.notify_reboot_enable is 0 (then only reboot=true does);
// 2 ignores it.
var Yealink = &Vendor{Name: "yealink", OUI: "001565", UserAgent: "Yealink SIP-T46U 108.86.0.20 {mac:}",
	SIPUserAgent: "Yealink SIP-T46U 108.86.0.20", VendorClass: "yealink", NotifyEvent: "check-sync",
	fetch: func(ctx context.Context, h *Handset, _ polycfg.Params) (polycfg.Params, error) {
		merged := polycfg.Params{}
		for _, name := range []string{"y000000000000.cfg", h.cfg.MAC + ".cfg"} {
			body, _, err := h.Fetch(ctx, name)
			if err != nil {
				return nil, err
			}
			p, err := ParseYealink(body)
			if err != nil {
				return nil, kerr("parse_config", fmt.Errorf("%s: %w", name, err))
			}
			for k, v := range p {
				merged[k] = v
			}
		}
		return merged, nil
	},
	accounts: func(p polycfg.Params) []polycfg.Account {
		return lineAccounts(p, 16, func(n string) (bool, lineFields) {
			a := "account." + n + "."
			g := func(k string) string { v, _ := p.Get(a + k); return strings.TrimSpace(v) }
			l := lineFields{user: g("user_name"), auth: g("auth_name"), pass: g("password"),
				domain: g("sip_server.1.address"), server: g("sip_server.1.address"), port: g("sip_server.1.port")}
			if g("outbound_proxy_enable") == "1" && g("outbound_proxy.1.address") != "" {
				l.server, l.port = g("outbound_proxy.1.address"), g("outbound_proxy.1.port")
			}
			return g("enable") == "1", l
		})
	},
	provCreds: func(p polycfg.Params) (string, string) {
		u, _ := p.Get("static.auto_provision.server.username")
		pw, _ := p.Get("static.auto_provision.server.password")
		return u, pw
	},
	onEvent: func(ev string, p polycfg.Params) (bool, bool) {
		reboot, ok := checkSync(ev)
		if !ok {
			return false, false
		}
		switch v, _ := p.Get("sip.notify_reboot_enable"); v {
		case "0":
			return reboot, true
		case "2":
			return false, false
		}
		return true, true // the factory default, 1: every check-sync reboots
	}}

// Cisco is a CP-8851 on multiplatform firmware: at power-on it asks for
// /$PSN.xml (8851.xml); the <flat-profile> sets Profile_Rule,
// "[--uid u --pwd p]http://…/$MA.xml", which every re-sync follows. A
// profile changes only the parameters it names. NOTIFY "Event: resync"
// re-syncs without a reboot when Resync_From_SIP is Yes; "reboot" reboots.
var Cisco = &Vendor{Name: "cisco", OUI: "00562b", UserAgent: "Cisco/CP-8851-3PCC-11.3.7 ({mac})(FCH2101ABCD)",
	SIPUserAgent: "Cisco/CP-8851-3PCC-11.3.7", VendorClass: "Cisco Systems, Inc. IP Phone CP-8851-3PCC", NotifyEvent: "resync",
	fetch: func(ctx context.Context, h *Handset, cur polycfg.Params) (polycfg.Params, error) {
		rule, _ := cur.Get("Profile_Rule")
		if rule == "" {
			rule = "8851.xml" // the factory Profile_Rule, /$PSN.xml
		}
		name, u, pw := ProfileRule(rule, h.cfg.MAC)
		body, _, err := h.fetchAs(ctx, name, u, pw)
		if err != nil {
			return nil, err
		}
		p, err := ParseFlatProfile(body)
		if err != nil {
			return nil, kerr("parse_config", fmt.Errorf("%s: %w", name, err))
		}
		merged := polycfg.Params{}
		for k, v := range cur {
			merged[k] = v
		}
		for k, v := range p {
			merged[k] = v
		}
		return merged, nil
	},
	accounts: func(p polycfg.Params) []polycfg.Account {
		return lineAccounts(p, 16, func(n string) (bool, lineFields) {
			g := func(k string) string { v, _ := p.Get(k + "_" + n + "_"); return strings.TrimSpace(v) }
			l := lineFields{user: g("User_ID"), auth: g("User_ID"), pass: g("Password"), domain: g("Proxy")}
			if g("Use_Auth_ID") == "Yes" {
				l.auth = g("Auth_ID")
			}
			hp := l.domain
			if g("Use_Outbound_Proxy") == "Yes" && g("Outbound_Proxy") != "" {
				hp = g("Outbound_Proxy")
			}
			l.server = hp
			if h, pt, err := net.SplitHostPort(hp); err == nil {
				l.server, l.port = h, pt
			}
			if h, _, err := net.SplitHostPort(l.domain); err == nil {
				l.domain = h
			}
			return g("Line_Enable") == "Yes", l
		})
	},
	provCreds: func(p polycfg.Params) (string, string) {
		rule, _ := p.Get("Profile_Rule")
		_, u, pw := ProfileRule(rule, "")
		return u, pw
	},
	onEvent: func(ev string, p polycfg.Params) (bool, bool) {
		switch strings.ToLower(strings.TrimSpace(ev)) {
		case "resync":
			v, _ := p.Get("Resync_From_SIP")
			return false, v == "Yes"
		case "reboot":
			return true, true
		}
		return false, false
	}}

// Vendors are the vendors a handset can be, by name.
var Vendors = []*Vendor{Polycom, Yealink, Cisco}

// VendorByName finds a vendor by its name (case-insensitive).
func VendorByName(name string) (*Vendor, bool) {
	i := slices.IndexFunc(Vendors, func(v *Vendor) bool { return strings.EqualFold(v.Name, name) })
	if i < 0 {
		return nil, false
	}
	return Vendors[i], true
}

// HTTPUserAgent is the vendor's User-Agent for mac.
func (v *Vendor) HTTPUserAgent(mac string) string { return expandMAC(v.UserAgent, mac) }

// expandMAC fills the MAC placeholders of a User-Agent template.
func expandMAC(s, mac string) string {
	if strings.Contains(s, "{mac:}") {
		var b strings.Builder
		for i := 0; i+1 < len(mac); i += 2 {
			if i > 0 {
				b.WriteByte(':')
			}
			b.WriteString(mac[i : i+2])
		}
		s = strings.ReplaceAll(s, "{mac:}", b.String())
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "{MAC}", strings.ToUpper(mac)), "{mac}", mac)
}

// polycomFetch fetches the master file (<MAC>.cfg, else 000000000000.cfg)
// and the files it lists, and merges their parameters (first listed wins).
func polycomFetch(ctx context.Context, h *Handset, _ polycfg.Params) (polycfg.Params, error) {
	body, status, err := h.Fetch(ctx, h.cfg.MAC+".cfg")
	if status == http.StatusNotFound {
		body, _, err = h.Fetch(ctx, "000000000000.cfg")
	}
	if err != nil {
		return nil, err
	}
	m, err := polycfg.ParseMaster(body, h.cfg.MAC)
	if err != nil {
		return nil, kerr("parse_master", err)
	}
	if len(m.ConfigFiles) == 0 {
		return nil, kerr("no_config_files", errors.New("master lists no CONFIG_FILES"))
	}
	merged := polycfg.Params{}
	for _, f := range m.ConfigFiles {
		body, _, err := h.Fetch(ctx, f)
		if err != nil {
			return nil, err
		}
		p, err := polycfg.ParseParams(body)
		if err != nil {
			return nil, kerr("parse_config", err)
		}
		merged.Merge(p)
	}
	return merged, nil
}

// lineFields is one line as a vendor's parameters give it.
type lineFields struct{ user, auth, pass, domain, server, port string }

// lineAccounts reads lines 1..max through line, which returns whether line
// n is enabled and its fields.
func lineAccounts(p polycfg.Params, max int, line func(n string) (bool, lineFields)) []polycfg.Account {
	var out []polycfg.Account
	for n := 1; n <= max; n++ {
		on, l := line(strconv.Itoa(n))
		if !on || l.user == "" {
			continue
		}
		if l.auth == "" {
			l.auth = l.user
		}
		a := polycfg.Account{Line: n, Address: l.user + "@" + l.domain, UserID: l.auth, Password: l.pass,
			Domain: l.domain, Server: l.server, Port: 5060}
		if pn, err := strconv.Atoi(l.port); err == nil && pn > 0 && pn < 65536 {
			a.Port = pn
		}
		out = append(out, a)
	}
	return out
}

// ParseYealink reads a Yealink configuration file: "#!version:1.0.0.1"
// first, then "key = value" lines and comments. Keys are kept lower-case
// (polycfg.Params looks them up ignoring case).
func ParseYealink(body []byte) (polycfg.Params, error) {
	if len(body) > polycfg.MaxFileBytes {
		return nil, fmt.Errorf("parse yealink: %d bytes: too large", len(body))
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), polycfg.MaxFileBytes)
	if !sc.Scan() || strings.TrimSpace(sc.Text()) != "#!version:1.0.0.1" {
		return nil, errors.New("parse yealink: no #!version:1.0.0.1 header")
	}
	p := polycfg.Params{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("parse yealink: not key = value: %q", line)
		}
		p[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parse yealink: %w", err)
	}
	return p, nil
}

// ParseFlatProfile reads a Cisco MPP <flat-profile> (one element per
// parameter; the ua attribute is the user's access, ignored here).
func ParseFlatProfile(body []byte) (polycfg.Params, error) {
	if len(body) > polycfg.MaxFileBytes {
		return nil, fmt.Errorf("parse flat-profile: %d bytes: too large", len(body))
	}
	d := xml.NewDecoder(bytes.NewReader(body))
	p := polycfg.Params{}
	depth, root := 0, false
	var name string
	var val strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("parse flat-profile: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			switch {
			case depth == 1 && t.Name.Local == "flat-profile":
				root = true
			case depth == 1:
				return nil, fmt.Errorf("parse flat-profile: root element %s", t.Name.Local)
			case depth == 2:
				name = t.Name.Local
				val.Reset()
			}
		case xml.CharData:
			if depth == 2 {
				val.Write(t)
			}
		case xml.EndElement:
			if depth == 2 {
				p[strings.ToLower(name)] = val.String()
			}
			depth--
		}
	}
	if !root {
		return nil, errors.New("parse flat-profile: no <flat-profile>")
	}
	return p, nil
}

// ProfileRule splits a Cisco Profile_Rule, "[--uid u --pwd p]url", into
// the URL (with $MA replaced by mac) and the credentials it carries.
//
// A conditional rule, "(cond)?rule1|rule2" (the MPP admin guide's form,
// which hotdesk renders for Extension Mobility), takes rule2: the load
// tool's phones never sign in through Extension Mobility, so "$EMS" is
// not "mobile".
func ProfileRule(rule, mac string) (url, user, password string) {
	rule = strings.TrimSpace(rule)
	if strings.HasPrefix(rule, "(") {
		if _, branches, ok := strings.Cut(rule, ")?"); ok {
			if _, otherwise, ok := strings.Cut(branches, "|"); ok {
				rule = strings.TrimSpace(otherwise)
			}
		}
	}
	if opts, rest, ok := strings.Cut(rule, "]"); ok && strings.HasPrefix(opts, "[") {
		f := strings.Fields(strings.TrimPrefix(opts, "["))
		for i := 0; i+1 < len(f); i++ {
			switch f[i] {
			case "--uid":
				user = f[i+1]
			case "--pwd":
				password = f[i+1]
			}
		}
		rule = strings.TrimSpace(rest)
	}
	return strings.ReplaceAll(rule, "$MA", mac), user, password
}
