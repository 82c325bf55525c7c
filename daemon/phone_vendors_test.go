package daemon

import (
	"bufio"
	"encoding/xml"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/icholy/digest"
)

// phoneVendor is what makes a deskPhone one vendor's phone, each written
// from the vendor's documentation (../shared/research/vendors.md), not
// from what the daemon renders. To add a vendor: its User-Agents, its
// configure (the files it asks for in order, merged as the phone merges
// them), where it reads its provisioning credentials and lines, and how it
// takes a NOTIFY.
type phoneVendor struct {
	name   string
	sipUA  string
	httpUA func(mac string) string
	// configure fetches the files a boot or re-sync fetches (with the
	// provisioning credentials pu/pp once it has them) and merges them;
	// false when the server failed it (reported as a problem).
	configure func(p *deskPhone, pu, pp string) (map[string]string, bool)
	provCreds func(m map[string]string) (user, pass string)
	lines     func(m map[string]string) map[string]phoneLine
	// onEvent says whether a NOTIFY with Event ev makes the phone reboot
	// rather than reload, from its current parameters; known is false for
	// an event it would not act on.
	onEvent func(ev string, param func(string) string) (reboot, known bool)
}

// polycomPhone is a VVX on UC Software: check-sync reloads unless
// reboot=true (voIpProt.SIP.specialEvent.checkSync.alwaysReboot=0).
var polycomPhone = &phoneVendor{
	name:  "polycom",
	sipUA: "PolycomVVX-VVX_400-UA/6.4.0.0000",
	httpUA: func(mac string) string {
		return "FileTransport PolycomVVX-VVX_400-UA/6.4.0.0000 (SN:" + mac + ") Type/Application"
	},
	configure: polycomConfigure,
	provCreds: func(m map[string]string) (string, string) { return m["device.prov.user"], m["device.prov.password"] },
	lines:     polycomLines,
	onEvent: func(ev string, param func(string) string) (bool, bool) {
		base, _, _ := strings.Cut(ev, ";")
		if strings.TrimSpace(base) != "check-sync" {
			return false, false
		}
		return strings.Contains(ev, "reboot=true") || param("voIpProt.SIP.specialEvent.checkSync.alwaysReboot") == "1", true
	},
}

// yealinkPhone is a T46U (Yealink auto-provisioning guide): it asks for
// y000000000000.cfg, then <mac>.cfg, which overrides it; key = value
// lines under "#!version:1.0.0.1". check-sync reboots it unless
// sip.notify_reboot_enable is 0 (then only with reboot=true); 2 ignores it.
var yealinkPhone = &phoneVendor{
	name:  "yealink",
	sipUA: "Yealink SIP-T46U 108.86.0.20",
	httpUA: func(mac string) string {
		var b strings.Builder
		for i := 0; i < 12; i += 2 {
			if i > 0 {
				b.WriteByte(':')
			}
			b.WriteString(mac[i : i+2])
		}
		return "Yealink SIP-T46U 108.86.0.20 " + b.String()
	},
	configure: func(p *deskPhone, pu, pp string) (map[string]string, bool) {
		merged := map[string]string{}
		for _, name := range []string{"y000000000000.cfg", p.mac + ".cfg"} {
			code, body := p.fetch(name, pu, pp)
			if code != 200 {
				p.problem(fmt.Sprintf("%s = %d:\n%s", name, code, body))
				return nil, false
			}
			m, err := parseYealink(body)
			if err != nil {
				p.problem(fmt.Sprintf("%s: %v", name, err))
				return nil, false
			}
			for k, v := range m {
				merged[k] = v // the MAC file overrides the common one
			}
		}
		return merged, true
	},
	provCreds: func(m map[string]string) (string, string) {
		return m["static.auto_provision.server.username"], m["static.auto_provision.server.password"]
	},
	lines: func(m map[string]string) map[string]phoneLine {
		lines := map[string]phoneLine{}
		for n := 1; n <= 16; n++ {
			a := "account." + strconv.Itoa(n) + "."
			if m[a+"enable"] != "1" || m[a+"user_name"] == "" {
				continue
			}
			u := m[a+"user_name"]
			lines[u] = phoneLine{user: u, authUser: m[a+"auth_name"], password: m[a+"password"]}
		}
		return lines
	},
	onEvent: func(ev string, param func(string) string) (bool, bool) {
		base, _, _ := strings.Cut(ev, ";")
		if strings.TrimSpace(base) != "check-sync" {
			return false, false
		}
		switch param("sip.notify_reboot_enable") {
		case "0":
			return strings.Contains(ev, "reboot=true"), true
		case "2":
			return false, false
		}
		return true, true // the factory default, 1: always reboot
	},
}

// parseYealink reads a Yealink configuration file.
func parseYealink(body string) (map[string]string, error) {
	sc := bufio.NewScanner(strings.NewReader(body))
	if !sc.Scan() || sc.Text() != "#!version:1.0.0.1" {
		return nil, fmt.Errorf("no #!version:1.0.0.1 header")
	}
	m := map[string]string{}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("not key = value: %q", line)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, sc.Err()
}

// ciscoPhone is a CP-8851 on multiplatform firmware (MPP provisioning
// guide): a fresh one asks for /$PSN.xml (8851.xml); the profile it gets
// sets Profile_Rule, "[--uid u --pwd p]http://…/$MA.xml", which every
// later resync follows. NOTIFY "Event: resync" re-syncs without a reboot
// when Resync_From_SIP is Yes; "reboot" reboots. With EM_Enable (the
// guide's "Configure Provisioning Authority") its Sign in softkey takes a
// user ID and password: signed in, $EMS is "mobile" and $MUID/$MPWD are
// what was typed, and every resync evaluates the rule's alternatives with
// them (ciscoRule) until the user signs out (p.native holds them).
var ciscoPhone = &phoneVendor{
	name:  "cisco",
	sipUA: "Cisco/CP-8851-3PCC-11.3.7",
	httpUA: func(mac string) string {
		return "Cisco/CP-8851-3PCC-11.3.7 (" + mac + ")(FCH2101ABCD)"
	},
	configure: func(p *deskPhone, pu, pp string) (map[string]string, bool) {
		rule := p.param("Profile_Rule")
		if rule == "" {
			rule = "8851.xml" // the factory Profile_Rule, /$PSN.xml
		}
		p.mu.Lock()
		native := p.native
		p.mu.Unlock()
		vars := map[string]string{"MA": p.mac}
		if native != nil {
			vars["EMS"], vars["MUID"], vars["MPWD"] = "mobile", native[0], native[1]
		}
		url, u, pw, signedIn, ok := ciscoRule(rule, vars)
		if !ok {
			p.problem("no Profile_Rule alternative applies: " + rule)
			return nil, false
		}
		if u != "" {
			pu, pp = u, pw
		}
		code, body := p.fetch(url, pu, pp)
		if code != 200 && signedIn {
			// The server refused the typed login: the sign-in fails and
			// the phone keeps what it had.
			p.t.Logf("phone %s: sign-in %s refused: %d", p.mac, url, code)
			p.mu.Lock()
			p.native = nil
			p.mu.Unlock()
			return nil, false
		}
		if code != 200 {
			p.problem(fmt.Sprintf("%s = %d:\n%s", url, code, body))
			return nil, false
		}
		m, err := parseFlatProfile(body)
		if err != nil {
			p.problem(fmt.Sprintf("%s: %v", url, err))
			return nil, false
		}
		merged := map[string]string{}
		p.mu.Lock()
		for k, v := range p.params {
			merged[k] = v // a profile changes only what it names
		}
		p.mu.Unlock()
		for k, v := range m {
			merged[k] = v
		}
		return merged, true
	},
	provCreds: func(m map[string]string) (string, string) {
		// The device's own credentials: the signed-out alternative's.
		_, u, pw, _, _ := ciscoRule(m["Profile_Rule"], map[string]string{})
		return u, pw
	},
	lines: func(m map[string]string) map[string]phoneLine {
		lines := map[string]phoneLine{}
		for n := 1; n <= 16; n++ {
			s := "_" + strconv.Itoa(n) + "_"
			if m["Line_Enable"+s] != "Yes" || m["User_ID"+s] == "" {
				continue
			}
			u := m["User_ID"+s]
			auth := m["User_ID"+s]
			if m["Use_Auth_ID"+s] == "Yes" {
				auth = m["Auth_ID"+s]
			}
			lines[u] = phoneLine{user: u, authUser: auth, password: m["Password"+s]}
		}
		return lines
	},
	onEvent: func(ev string, param func(string) string) (bool, bool) {
		switch strings.TrimSpace(ev) {
		case "resync":
			return false, param("Resync_From_SIP") == "Yes"
		case "reboot":
			return true, true
		}
		return false, false
	},
}

var ciscoCondRE = regexp.MustCompile(`^"([^"]*)" (eq|ne) "([^"]*)"$`)

// ciscoRule evaluates a Profile_Rule as the MPP provisioning guide
// ("Upgrade Rule", "Macro Expansion Variables") describes it: alternatives
// separated by '|', each "[(conditional-expr)?] [options] URL"; the first
// whose condition holds (or that has none) is fetched. Conditions compare
// quoted strings with eq/ne, joined by "and"; macros $NAME expand from
// vars (unknown ones to ""). signedIn: the chosen alternative had a
// condition (the Extension Mobility branch).
func ciscoRule(rule string, vars map[string]string) (url, uid, pwd string, signedIn, ok bool) {
	expand := func(s string) string {
		for _, k := range []string{"MUID", "MPWD", "EMS", "MA"} {
			s = strings.ReplaceAll(s, "$"+k, vars[k])
		}
		return s
	}
	for _, alt := range strings.Split(rule, "|") {
		alt = strings.TrimSpace(alt)
		cond := false
		if rest, isCond := strings.CutPrefix(alt, "("); isCond {
			c, after, found := strings.Cut(rest, ")?")
			if !found {
				return "", "", "", false, false
			}
			holds := true
			for _, clause := range strings.Split(c, " and ") {
				m := ciscoCondRE.FindStringSubmatch(expand(strings.TrimSpace(clause)))
				if m == nil {
					return "", "", "", false, false
				}
				if (m[1] == m[3]) != (m[2] == "eq") {
					holds = false
				}
			}
			if !holds {
				continue
			}
			alt, cond = strings.TrimSpace(after), true
		}
		if opts, rest, found := strings.Cut(alt, "]"); found && strings.HasPrefix(opts, "[") {
			f := strings.Fields(strings.TrimPrefix(opts, "["))
			for i := 0; i+1 < len(f); i++ {
				switch f[i] {
				case "--uid":
					uid = expand(f[i+1])
				case "--pwd":
					pwd = expand(f[i+1])
				}
			}
			alt = strings.TrimSpace(rest)
		}
		return expand(alt), uid, pwd, cond, true
	}
	return "", "", "", false, false
}

// emSignIn is a user signing in at the Cisco MPP's Sign in softkey: the
// phone re-syncs with the typed login; true when the server took it.
func (p *deskPhone) emSignIn(user, pass string) bool {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	p.mu.Lock()
	p.native = &[2]string{user, pass}
	p.mu.Unlock()
	p.reloadLocked()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.native != nil
}

// parseFlatProfile reads a Cisco <flat-profile>.
func parseFlatProfile(body string) (map[string]string, error) {
	var doc struct {
		XMLName xml.Name `xml:"flat-profile"`
		Params  []struct {
			XMLName xml.Name
			Value   string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, p := range doc.Params {
		m[p.XMLName.Local] = p.Value
	}
	return m, nil
}

// rebootCount is how many times the phone rebooted.
func (p *deskPhone) rebootCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reboots
}

// upload PUTs a file as the phone does, with its provisioning credentials.
func (p *deskPhone) upload(name, body string) int {
	p.t.Helper()
	p.mu.Lock()
	c := http.Client{Transport: &digest.Transport{Username: p.provUser, Password: p.provPass}}
	p.mu.Unlock()
	req, _ := http.NewRequest("PUT", p.provBase+"/"+name, strings.NewReader(body))
	req.Header.Set("User-Agent", p.vendor.httpUA(p.mac))
	res, err := c.Do(req)
	if err != nil {
		p.t.Fatalf("PUT %s: %v", name, err)
	}
	res.Body.Close()
	return res.StatusCode
}

// waitParam waits until the phone's configuration has k = want (a change
// may reach it through a check-sync held back behind an earlier one).
func (p *deskPhone) waitParam(k, want string) {
	p.t.Helper()
	timer := time.AfterFunc(20*time.Second, p.changed.Broadcast)
	defer timer.Stop()
	deadline := time.Now().Add(20 * time.Second)
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.params[k] != want && len(p.problems) == 0 && time.Now().Before(deadline) {
		p.changed.Wait()
	}
	switch {
	case len(p.problems) > 0:
		p.t.Fatalf("phone %s: %v", p.mac, p.problems)
	case p.params[k] != want:
		p.t.Fatalf("phone %s: %s = %q after 20 s, want %q", p.mac, k, p.params[k], want)
	}
}

var snomPhone = &phoneVendor{
	name:  "snom",
	sipUA: "snomD785/10.1.159.12",
	httpUA: func(mac string) string {
		return "Mozilla/4.0 (compatible; snomD785-SIP 10.1.159.12 2010.12-00004 OpenSSL 1.1.1 " + strings.ToUpper(mac) + ")"
	},
	configure: func(p *deskPhone, pu, pp string) (map[string]string, bool) {
		merged := map[string]string{}
		base := ""
		p.mu.Lock()
		if s := p.params["setting_server"]; s != "" {
			base, _, _ = snomServer(s)
		}
		p.mu.Unlock()
		for _, name := range []string{"snomD785.htm", "snomD785-" + strings.ToUpper(p.mac) + ".htm", strings.ToUpper(p.mac) + ".xml"} {
			code, body := p.fetch(base+name, pu, pp)
			if code != 200 {
				p.problem(fmt.Sprintf("%s = %d:\n%s", name, code, body))
				return nil, false
			}
			m, err := parseSnom(body)
			if err != nil {
				p.problem(fmt.Sprintf("%s: %v", name, err))
				return nil, false
			}
			for k, v := range m {
				merged[k] = v
			}
			if b, u, pw := snomServer(m["setting_server"]); u != "" {
				base, pu, pp = b, u, pw // the next file comes from there, with these
			}
		}
		return merged, true
	},
	provCreds: func(m map[string]string) (string, string) {
		_, u, pw := snomServer(m["setting_server"])
		return u, pw
	},
	lines: func(m map[string]string) map[string]phoneLine {
		lines := map[string]phoneLine{}
		for n := 1; n <= 12; n++ {
			s := "." + strconv.Itoa(n)
			if m["user_active"+s] != "on" || m["user_name"+s] == "" {
				continue
			}
			u := m["user_name"+s]
			auth := m["user_pname"+s]
			if auth == "" {
				auth = u
			}
			lines[u] = phoneLine{user: u, authUser: auth, password: m["user_pass"+s]}
		}
		return lines
	},
	onEvent: func(ev string, param func(string) string) (bool, bool) {
		base, _, _ := strings.Cut(ev, ";")
		switch strings.TrimSpace(base) {
		case "check-sync":
			return !strings.Contains(ev, "reboot=false"), true
		case "reboot":
			return true, true
		}
		return false, false
	},
}

func snomServer(s string) (base, user, pass string) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "", "", ""
	}
	if u.User != nil {
		user = u.User.Username()
		pass, _ = u.User.Password()
		u.User = nil
	}
	base = u.String()
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return base, user, pass
}

func parseSnom(body string) (map[string]string, error) {
	type setting struct {
		XMLName xml.Name
		Idx     string `xml:"idx,attr"`
		Value   string `xml:",chardata"`
	}
	var doc struct {
		XMLName xml.Name `xml:"settings"`
		Phone   struct {
			S []setting `xml:",any"`
		} `xml:"phone-settings"`
		Keys struct {
			S []setting `xml:",any"`
		} `xml:"functionKeys"`
	}
	if err := xml.Unmarshal([]byte(body), &doc); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, s := range append(doc.Phone.S, doc.Keys.S...) {
		k := s.XMLName.Local
		if s.Idx != "" {
			k += "." + s.Idx
		}
		m[k] = s.Value
	}
	return m, nil
}

var gsPhone = &phoneVendor{
	name:  "grandstream",
	sipUA: "Grandstream GRP2614 1.0.11.85",
	httpUA: func(mac string) string {
		return "Grandstream Model HW GRP2614 SW 1.0.11.85 DevId " + mac
	},
	configure: func(p *deskPhone, pu, pp string) (map[string]string, bool) {
		base := ""
		p.mu.Lock()
		if path := p.params["P237"]; path != "" {
			base = map[string]string{"0": "tftp", "1": "http", "2": "https"}[p.params["P212"]] + "://" + path + "/"
		}
		merged := map[string]string{}
		for k, v := range p.params {
			merged[k] = v // a file changes only the P-values it names
		}
		p.mu.Unlock()
		for _, name := range []string{"cfg" + p.mac, "cfg" + p.mac + ".xml", "cfggrp2614.xml", "cfg.xml"} {
			code, body := p.fetch(base+name, pu, pp)
			if code == 404 {
				continue
			}
			if code != 200 {
				p.problem(fmt.Sprintf("%s = %d:\n%s", name, code, body))
				return nil, false
			}
			m, err := parseGS(body)
			if err != nil {
				p.problem(fmt.Sprintf("%s: %v", name, err))
				return nil, false
			}
			for k, v := range m {
				merged[k] = v
			}
			return merged, true
		}
		p.problem("no configuration file found")
		return nil, false
	},
	provCreds: func(m map[string]string) (string, string) { return m["P1360"], m["P1361"] },
	lines: func(m map[string]string) map[string]phoneLine {
		lines := map[string]phoneLine{}
		for n := 1; n <= 4; n++ {
			active, user, auth, pass := "P271", "P35", "P36", "P34"
			if n > 1 {
				b := "P" + strconv.Itoa(n+2)
				active, user, auth, pass = b+"01", b+"04", b+"05", b+"06"
			}
			if m[active] != "1" || m[user] == "" {
				continue
			}
			a := m[auth]
			if a == "" {
				a = m[user]
			}
			lines[m[user]] = phoneLine{user: m[user], authUser: a, password: m[pass]}
		}
		return lines
	},
	onEvent: func(ev string, param func(string) string) (bool, bool) {
		base, _, _ := strings.Cut(ev, ";")
		if strings.TrimSpace(base) != "check-sync" {
			return false, false
		}
		return strings.Contains(ev, "reboot=true"), true
	},
}

func parseGS(body string) (map[string]string, error) {
	var cfg struct {
		XMLName xml.Name `xml:"gs_provision"`
		Config  struct {
			Params []struct {
				XMLName xml.Name
				Value   string `xml:",chardata"`
			} `xml:",any"`
		} `xml:"config"`
	}
	if err := xml.Unmarshal([]byte(body), &cfg); err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, p := range cfg.Config.Params {
		m[p.XMLName.Local] = p.Value
	}
	return m, nil
}

var fanvilPhone = &phoneVendor{
	name:   "fanvil",
	sipUA:  "Fanvil X4 2.10.2.6887",
	httpUA: func(mac string) string { return "Fanvil X4 2.10.2.6887 " + mac },
	configure: func(p *deskPhone, pu, pp string) (map[string]string, bool) {
		p.mu.Lock()
		base, devName := p.params["ap.FlashServerIP"], p.params["ap.FlashFileName"]
		p.mu.Unlock()
		if base != "" {
			base = strings.TrimSuffix(base, "/") + "/"
		}
		if devName == "" {
			devName = "$mac.cfg"
		}
		merged := map[string]string{}
		for _, name := range []string{"f0X4hw1.100.cfg", strings.ReplaceAll(devName, "$mac", p.mac)} {
			code, body := p.fetch(base+name, pu, pp)
			if code != 200 {
				p.problem(fmt.Sprintf("%s = %d:\n%s", name, code, body))
				return nil, false
			}
			m, err := parseFanvil(body)
			if err != nil {
				p.problem(fmt.Sprintf("%s: %v", name, err))
				return nil, false
			}
			for k, v := range m {
				merged[k] = v // the device's file overrides the common one
			}
		}
		return merged, true
	},
	provCreds: func(m map[string]string) (string, string) { return m["ap.DefaultUsername"], m["ap.DefaultPassword"] },
	lines: func(m map[string]string) map[string]phoneLine {
		lines := map[string]phoneLine{}
		for n := 1; n <= 6; n++ {
			l := "sip.line." + strconv.Itoa(n) + "."
			if m[l+"EnableReg"] != "1" || m[l+"PhoneNumber"] == "" {
				continue
			}
			u := m[l+"PhoneNumber"]
			auth := m[l+"RegisterUser"]
			if auth == "" {
				auth = u
			}
			lines[u] = phoneLine{user: u, authUser: auth, password: m[l+"RegisterPswd"]}
		}
		return lines
	},
	onEvent: func(ev string, param func(string) string) (bool, bool) {
		base, _, _ := strings.Cut(ev, ";")
		if strings.TrimSpace(base) != "check-sync" {
			return false, false
		}
		return strings.Contains(ev, "reboot=true"), true
	},
}

func parseFanvil(body string) (map[string]string, error) {
	type node struct {
		XMLName xml.Name
		Index   string `xml:"index,attr"`
		Value   string `xml:",chardata"`
		Kids    []node `xml:",any"`
	}
	var root node
	if err := xml.Unmarshal([]byte(body), &root); err != nil {
		return nil, err
	}
	if root.XMLName.Local != "sysConf" {
		return nil, fmt.Errorf("root %s", root.XMLName.Local)
	}
	m := map[string]string{}
	var walk func(n node, path string)
	walk = func(n node, path string) {
		for _, k := range n.Kids {
			p := k.XMLName.Local
			if path != "" {
				p = path + "." + p
			}
			if k.Index != "" {
				p += "." + k.Index
			}
			if len(k.Kids) > 0 {
				walk(k, p)
			} else {
				m[p] = k.Value
			}
		}
	}
	walk(root, "")
	return m, nil
}

var polyEdgePhone = func() *phoneVendor {
	v := *polycomPhone
	v.sipUA = "PolyEdge-Edge_E450-UA/8.0.3.0123"
	v.httpUA = func(mac string) string {
		return "FileTransport PolyEdge-Edge_E450-UA/8.0.3.0123 (SN:" + mac + ") Type/Application"
	}
	return &v
}()
