package render

import (
	"net"
	"strconv"
	"strings"

	"hotdesk/prov"
	"hotdesk/prov/files"
)

// Model is the vendor-neutral device model every non-Polycom renderer
// turns into its own parameters: what hotdesk decides for a phone, before
// any vendor's spelling. Polycom's renderer predates it and spells the
// same decisions directly (polycom.go).
type Model struct {
	MAC string
	// Lines are the accounts the phone registers: the device account while
	// locked, the user's numbers while someone is logged in.
	Lines []Line
	// Locked is the locked profile: only Authorized and Emergency numbers
	// may be dialled (the proxy enforces it too).
	Locked     bool
	Authorized []prov.AuthorizedNumber
	Emergency  []string
	// Keys are the user's feature keys (the portal's button programming),
	// in order, after the lines' keys.
	Keys []Key
	// SpeedDials are the user's contacts with a speed-dial slot, in order.
	SpeedDials []prov.Contact
	Contacts   []prov.Contact
	// DirectoryURL is where the phone reads its directory ("" for none).
	DirectoryURL string
	// Language is a BCP 47 tag ("de", "en-GB"); TimeZone an IANA name,
	// with its standard offset (seconds) and whether it has DST.
	Language string
	TimeZone string
	TZOffset int
	TZDST    bool
	TZKnown  bool
	// Prov is where the phone fetches its files from now on, with its
	// digest credentials (empty without secrets).
	ProvURL, ProvUser, ProvPassword string
	// ResyncNoReboot: a check-sync reloads the files without a reboot.
	ResyncNoReboot bool
	// FirmwareURL is the firmware the phone should run ("" : keep its own).
	FirmwareURL string
	// LoginPage is the phone-browser login door ("" when not served).
	LoginPage string
	// LocalPIN guards the phone's own menus (the security PIN).
	LocalPIN string
	// NTP is the time server.
	NTP string
	// Voicemail is the site's mailbox code: user lines subscribe to their
	// message-waiting and the messages key dials it ("" : voicemail off).
	Voicemail string
}

// Key is one feature key as every phone can program it: BLF watches and
// calls Number; otherwise the key dials Number. DND and forward dial the
// site's feature codes (as Polycom's EFK macros do), so they are the
// user's server-side call handling the portal shows, not one handset's.
type Key struct {
	BLF           bool
	Number, Label string
}

// featureKeys turns the user's keys into Keys; a DND or forward key is
// left out when the site has no code for it (a key that does nothing).
func featureKeys(ks []prov.FeatureKey, codes prov.FeatureCodes) []Key {
	var out []Key
	for _, k := range ks {
		switch k.Kind {
		case prov.KeyBLF:
			out = append(out, Key{BLF: true, Number: k.Target, Label: orString(k.Label, k.Target)})
		case prov.KeySpeedDial:
			out = append(out, Key{Number: k.Target, Label: orString(k.Label, k.Target)})
		case prov.KeyDND:
			if codes.DND != "" {
				out = append(out, Key{Number: codes.DND, Label: orString(k.Label, "DND")})
			}
		case prov.KeyForward:
			if codes.Forward != "" {
				out = append(out, Key{Number: codes.Forward + k.Target, Label: orString(k.Label, "Forward")})
			}
		}
	}
	return out
}

// Line is one SIP account.
type Line struct {
	// User is the address's user part, Domain its host (the site's SIP
	// domain, or the server when none).
	User, Domain   string
	Display, Label string
	AuthUser       string
	Password       string
	Server         string
	Port           int
	Transport      string // udp, tcp, tls
	Expiry         int    // registration expiry in seconds
	// Backups are the other cluster nodes, in the configured order: the
	// registrars the phone fails over to when Server does not answer.
	Backups []Node
	// SRV: Server is a domain the phone resolves with DNS SRV (Port 0,
	// no Backups): Config.SRVDomain.
	SRV bool
}

// Node is one registrar a phone reaches (a cluster node).
type Node struct {
	Host string
	Port int
}

// String is host:port.
func (n Node) String() string { return net.JoinHostPort(n.Host, strconv.Itoa(n.Port)) }

// backups are cfg.Nodes without the node at host:port (the one that
// served the file, which every line names first), in order; a node
// without a port listens on the registrar's.
func backups(nodes []string, host string, port int) []Node {
	var out []Node
	for _, n := range nodes {
		h, p := n, port
		if hh, pp, err := net.SplitHostPort(n); err == nil {
			h = hh
			p, _ = strconv.Atoi(pp)
		}
		if h == host && p == port {
			continue
		}
		out = append(out, Node{Host: h, Port: p})
	}
	return out
}

// Address is the line's address of record.
func (l Line) Address() string { return l.User + "@" + l.Domain }

// model builds the Model of v; secrets stay out unless v.Secrets.
func model(v *prov.View, cfg Config, zones *zoneCache) Model {
	d, s := v.Device, v.Site
	m := Model{MAC: d.MAC, Language: s.Language, TimeZone: s.TimeZone, ResyncNoReboot: true, NTP: "pool.ntp.org"}
	domain := s.Domain
	if domain == "" {
		domain = v.Server.Host
	}
	mk := func(user, auth, pass, label, display string) Line {
		if !v.Secrets {
			pass = ""
		}
		if cfg.SRVDomain != "" {
			return Line{User: user, Domain: domain, AuthUser: auth, Password: pass, Label: label, Display: display,
				Server: cfg.SRVDomain, Transport: "udp", Expiry: 3600, SRV: true}
		}
		return Line{User: user, Domain: domain, AuthUser: auth, Password: pass, Label: label, Display: display,
			Server: v.Server.Host, Port: cfg.SIPPort, Transport: "udp", Expiry: 3600,
			Backups: backups(cfg.Nodes, v.Server.Host, cfg.SIPPort)}
	}
	if v.User == nil {
		m.Locked = true
		if d.SIPUser != "" {
			m.Lines = []Line{mk(d.SIPUser, d.SIPUser, d.SIPPassword, "Locked", "")}
		}
	} else {
		u := v.User
		user, pass := u.Username, u.SIPPassword
		if v.Session != nil {
			user, pass = v.Session.SIPUser, v.Session.SIPPassword
		}
		nums := v.Numbers
		if len(nums) == 0 {
			nums = []string{u.Username}
		}
		display := strings.TrimSpace(u.FirstName + " " + u.LastName)
		for i, n := range nums {
			if i >= 8 {
				break
			}
			m.Lines = append(m.Lines, mk(n, user, pass, n, display))
		}
		if u.Language != "" {
			m.Language = u.Language
		}
		for _, c := range v.Contacts {
			if c.SpeedDial > 0 {
				m.SpeedDials = append(m.SpeedDials, c)
			}
		}
		m.Contacts = v.Contacts
		m.Keys = featureKeys(u.Keys, s.FeatureCodes)
		m.Voicemail = s.FeatureCodes.Voicemail
	}
	m.Authorized = append(m.Authorized, s.Authorized...)
	m.Authorized = append(m.Authorized, d.Authorized...)
	m.Emergency = s.Emergency
	if z := zones.zone(s.TimeZone); z.known {
		m.TZOffset, m.TZDST, m.TZKnown = z.off, z.dst, true
	}
	if v.Server.BaseURL != "" {
		m.ProvURL = v.Server.BaseURL
		if d.MAC != "" {
			m.DirectoryURL = v.Server.BaseURL + "/" + d.MAC + "-directory.xml"
		}
	}
	if v.Secrets && d.MAC != "" {
		m.ProvUser, m.ProvPassword = d.ProvUser, d.ProvPassword
		if d.Kind == prov.DeviceManaged && d.AssignedUserID != 0 {
			m.LocalPIN = d.SecurityPIN
		}
		if s.Login.Enabled && d.ProvPassword != "" && v.Server.BaseURL != "" {
			m.LoginPage = v.Server.BaseURL + "/" + files.PhonePagesPath + "?mac=" + d.MAC + "&t=" + files.PhonePageToken(d)
		}
	}
	m.FirmwareURL = cfg.FirmwareURLs[strings.ToLower(d.Vendor)]
	return m
}

// offsetHours spells a UTC offset in seconds as Yealink and Cisco do: "+1",
// "-5", "+5:30".
func offsetHours(sec int) string {
	sign := "+"
	if sec < 0 {
		sign, sec = "-", -sec
	}
	h, mins := sec/3600, (sec%3600)/60
	if mins == 0 {
		return sign + strconv.Itoa(h)
	}
	return sign + strconv.Itoa(h) + ":" + strconv.Itoa(mins)
}

// langTag is a BCP 47 tag's primary language, lowercase ("de-AT" → "de").
func langTag(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "_", "-"))
	tag, _, _ := strings.Cut(s, "-")
	return tag
}
