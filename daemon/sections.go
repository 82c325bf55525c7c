package daemon

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"hotdesk/dhcp"
	"hotdesk/prov/mail"
	"hotdesk/prov/provhttp"
	"hotdesk/prov/store"
	"hotdesk/sip"
	"hotdesk/sip/media"
	"hotdesk/tftp"
)

// The protocol rooms own their configuration sections; until a room's own
// Config type is wired in, its section is declared here with the same keys.

// SIPConfig is the sip: section, owned by the sip room: the registrar's
// keys, with the proxy's under sip.proxy.
type SIPConfig struct {
	sip.Config `yaml:",inline"`
	Proxy      sip.ProxyConfig `yaml:"proxy"`
	Voicemail  VoicemailConfig `yaml:"voicemail"`
	WebRTC     WebRTCConfig    `yaml:"webrtc"`
}

// VoicemailConfig is sip.voicemail: the voicemail server (sip/media/vm)
// and the mailboxes' budgets.
type VoicemailConfig struct {
	Enabled bool `yaml:"enabled"`
	// Listen is the voicemail server's SIP UDP address; only the proxy
	// talks to it, so it stays on loopback.
	Listen string `yaml:"listen"`
	// MediaAddress is the IP its RTP sockets bind to and announce: one the
	// phones reach.
	MediaAddress    string `yaml:"media_address"`
	NoAnswerSeconds int    `yaml:"no_answer_seconds"`
	MaxMessage      int    `yaml:"max_message_seconds"`
	MaxMailboxMB    int64  `yaml:"max_mailbox_mb"`
	MaxTotalMB      int64  `yaml:"max_total_mb"`
	RetentionDays   int    `yaml:"retention_days"`
}

func defaultVoicemail() VoicemailConfig {
	return VoicemailConfig{Listen: "127.0.0.1:0", NoAnswerSeconds: 20, MaxMessage: 120, MaxMailboxMB: 50,
		MaxTotalMB: 2000, RetentionDays: 30}
}

func (v VoicemailConfig) validate(add func(string, error)) {
	if !v.Enabled {
		return
	}
	add("sip.voicemail.listen", validHostPort(v.Listen, false))
	if host, _, err := net.SplitHostPort(v.Listen); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			add("sip.voicemail.listen", fmt.Errorf("%q: must be a loopback address (only the proxy calls it)", v.Listen))
		}
	}
	if ip := net.ParseIP(v.MediaAddress); ip == nil || ip.IsUnspecified() {
		add("sip.voicemail.media_address", fmt.Errorf("%q: want the IP address phones send RTP to", v.MediaAddress))
	}
	if v.NoAnswerSeconds < 5 || v.NoAnswerSeconds > 300 {
		add("sip.voicemail.no_answer_seconds", fmt.Errorf("%d: want 5..300", v.NoAnswerSeconds))
	}
	if v.MaxMessage < 10 || v.MaxMessage > 600 {
		add("sip.voicemail.max_message_seconds", fmt.Errorf("%d: want 10..600", v.MaxMessage))
	}
	if v.MaxMailboxMB < 1 || v.MaxTotalMB < v.MaxMailboxMB {
		add("sip.voicemail.max_mailbox_mb", fmt.Errorf("%d MB per mailbox, %d MB in all: want 1 <= max_mailbox_mb <= max_total_mb",
			v.MaxMailboxMB, v.MaxTotalMB))
	}
	if v.RetentionDays < 0 {
		add("sip.voicemail.retention_days", fmt.Errorf("%d: want 0 (keep) or more", v.RetentionDays))
	}
}

// WebRTCConfig is sip.webrtc: the portal softphone's media bridge, on
// when sip.listen has a ws:// or wss:// entry.
type WebRTCConfig struct {
	// WSURL is the WebSocket URL browsers register at; "{host}" is the
	// host name the portal was reached at ("": from the first ws/wss
	// listener's port).
	WSURL string `yaml:"ws_url"`
	// RTPAddress is the IP the bridge's plain-RTP sockets bind to and
	// advertise to phones.
	RTPAddress string `yaml:"rtp_address"`
	// ICEServers are STUN/TURN servers for browsers outside the LAN.
	ICEServers []media.ICEServer `yaml:"ice_servers"`
	// PublicIPs are advertised as the bridge's ICE addresses (1:1 NAT).
	PublicIPs []string `yaml:"public_ips"`
	// Loopback lets ICE use 127.0.0.1 only (tests, a browser on the box).
	Loopback bool `yaml:"loopback"`
	// MaxSessions bounds the bridged calls.
	MaxSessions int `yaml:"max_sessions"`
	// RecordingRetention deletes recordings older than this (0: kept
	// while the budget allows); RecordingMaxBytes is the budget of all
	// recordings together (the oldest go first) and caps one.
	RecordingRetention time.Duration `yaml:"recording_retention"`
	RecordingMaxBytes  int64         `yaml:"recording_max_bytes"`
	// RecordNumbers records every bridged call of these numbers (the
	// softphone user's own or the other party), besides users with
	// "record calls" on.
	RecordNumbers []string `yaml:"record_numbers"`
}

// wsListener is the first ws:// or wss:// entry of sip.listen.
func (c SIPConfig) wsListener() (scheme, port string) {
	addrs, _ := c.ListenAddrs()
	for _, a := range addrs {
		if a.Network == "ws" || a.Network == "wss" {
			_, port, _ = net.SplitHostPort(a.Addr)
			return a.Network, port
		}
	}
	return "", ""
}

func (w WebRTCConfig) validate(wsOn bool) []error {
	var errs []error
	if wsOn && net.ParseIP(w.RTPAddress) == nil {
		errs = append(errs, fmt.Errorf("sip.webrtc.rtp_address: %q: a ws:// listener needs the IP the media bridge uses towards phones", w.RTPAddress))
	}
	if ip := net.ParseIP(w.RTPAddress); ip != nil && ip.IsUnspecified() {
		errs = append(errs, fmt.Errorf("sip.webrtc.rtp_address: %q: want one address phones can reach, not a wildcard", w.RTPAddress))
	}
	if w.WSURL != "" && !strings.HasPrefix(w.WSURL, "ws://") && !strings.HasPrefix(w.WSURL, "wss://") {
		errs = append(errs, fmt.Errorf("sip.webrtc.ws_url: %q: want ws:// or wss://", w.WSURL))
	}
	for i, s := range w.ICEServers {
		for _, u := range s.URLs {
			if !strings.HasPrefix(u, "stun:") && !strings.HasPrefix(u, "turn:") && !strings.HasPrefix(u, "turns:") {
				errs = append(errs, fmt.Errorf("sip.webrtc.ice_servers[%d]: %q: want stun:, turn: or turns:", i, u))
			}
		}
	}
	for i, ip := range w.PublicIPs {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("sip.webrtc.public_ips[%d]: %q is not an IP address", i, ip))
		}
	}
	if w.RecordingRetention < 0 {
		errs = append(errs, fmt.Errorf("sip.webrtc.recording_retention: %v: want 0 (no limit) or more", w.RecordingRetention))
	}
	if w.RecordingMaxBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("sip.webrtc.recording_max_bytes: %d: want at least 1 MiB", w.RecordingMaxBytes))
	}
	for i, n := range w.RecordNumbers {
		if n == "" || len(n) > 32 || strings.Trim(n, "0123456789+*#") != "" {
			errs = append(errs, fmt.Errorf("sip.webrtc.record_numbers[%d]: %q: want a phone number (digits, +, *, #)", i, n))
		}
	}
	if w.MaxSessions < 0 || w.MaxSessions > 10000 {
		errs = append(errs, fmt.Errorf("sip.webrtc.max_sessions: %d: want 0 (500) to 10000", w.MaxSessions))
	}
	return errs
}

func defaultSIP() SIPConfig {
	return SIPConfig{Config: sip.DefaultConfig(), Proxy: sip.DefaultProxyConfig(),
		Voicemail: defaultVoicemail(),
		WebRTC:    WebRTCConfig{RecordingRetention: 90 * 24 * time.Hour, RecordingMaxBytes: 2 << 30}}
}

// ProvisioningConfig is the provisioning: section: provhttp's keys, with
// the TFTP transfer limits under provisioning.tftp.
type ProvisioningConfig struct {
	provhttp.Config `yaml:",inline"`
	TFTP            tftp.Config `yaml:"tftp"`
}

func defaultProvisioning() ProvisioningConfig {
	return ProvisioningConfig{Config: provhttp.DefaultConfig(), TFTP: tftp.DefaultConfig()}
}

// DHCPConfig is the dhcp: section, owned by the dhcp room.
type DHCPConfig = dhcp.Config

func defaultDHCP() DHCPConfig { return dhcp.DefaultConfig() }

// MailConfig is the mail: section, owned by the mail room.
type MailConfig = mail.Config

// StoreConfig is the store: section, owned by prov/store.
type StoreConfig = store.Config

func defaultStore() StoreConfig { return store.DefaultConfig() }

// ClusterConfig names this node among several sharing one PostgreSQL
// store.
type ClusterConfig struct {
	// Node is this node's name: the holder of the bindings it takes, and
	// the sender of the events it relays. Empty: the host name.
	Node string `yaml:"node"`
	// Nodes are every node's SIP address as phones reach it (host or
	// host:port): rendered lines name them all, for failover.
	Nodes []string `yaml:"nodes"`
	// Secret is shared by every node: it signs the calls a node hands to
	// the node holding the callee's binding (a TCP/TLS or NAT'd phone).
	// Empty: such bindings on another node are not called.
	Secret string `yaml:"secret"`
	// SRVDomain is a DNS name whose SRV records list the nodes: rendered
	// lines name it in each vendor's DNS SRV mode instead of node
	// addresses (check-config prints the records to publish).
	SRVDomain string `yaml:"srv_domain"`
}

// nodeName is the configured node name, else the host name.
func (c ClusterConfig) nodeName() string {
	if c.Node != "" {
		return c.Node
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		return "hotdeskd"
	}
	return h
}

// validNodeAddr accepts host or host:port (an IP address or a DNS name).
func validNodeAddr(s string) error {
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%q: port must be 1-65535", s)
		}
		host = h
	}
	if host == "" || strings.ContainsAny(host, " /:@") {
		return fmt.Errorf("%q is not a host or host:port", s)
	}
	return nil
}

// validSRVDomain accepts a DNS name with a dot; an IP address has no SRV
// records.
func validSRVDomain(d string) error {
	if net.ParseIP(d) != nil || !strings.Contains(d, ".") || strings.HasPrefix(d, ".") || len(d) > 253 {
		return fmt.Errorf("%q: want a DNS name such as sip.example.com", d)
	}
	for _, r := range d {
		if !(r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return fmt.Errorf("%q: want a DNS name such as sip.example.com", d)
		}
	}
	return nil
}

func validNodeName(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > 64 {
		return fmt.Errorf("%q: at most 64 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%q: use letters, digits, '-', '_' and '.' only", s)
		}
	}
	return nil
}

func (c Config) validateSections() []error {
	var errs []error
	add := func(key string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	for i, l := range c.SIP.Listen {
		add(fmt.Sprintf("sip.listen[%d]", i), validListenURL(l, "udp", "tcp", "tls", "ws", "wss"))
	}
	scheme, _ := c.SIP.wsListener()
	errs = append(errs, c.SIP.WebRTC.validate(scheme != "")...)
	if err := c.SIP.Config.Validate(); err != nil {
		errs = append(errs, prefixed("sip", err)...)
	}
	if err := c.SIP.Proxy.Validate(); err != nil {
		errs = append(errs, prefixed("sip.proxy", err)...)
	}
	c.SIP.Voicemail.validate(add)
	p := c.Provisioning
	add("provisioning.http_listen", validHostPort(p.HTTPListen, true))
	add("provisioning.https_listen", validHostPort(p.HTTPSListen, true))
	add("provisioning.tftp_listen", validHostPort(p.TFTPListen, true))
	if err := p.Config.Validate(); err != nil {
		errs = append(errs, prefixed("provisioning", err)...)
	}
	if err := p.TFTP.Validate(); err != nil {
		errs = append(errs, prefixed("provisioning.tftp", err)...)
	}
	if err := c.DHCP.Validate(); err != nil {
		errs = append(errs, prefixed("dhcp", err)...)
	}
	add("cluster.node", validNodeName(c.Cluster.Node))
	for i, n := range c.Cluster.Nodes {
		add(fmt.Sprintf("cluster.nodes[%d]", i), validNodeAddr(n))
	}
	if d := c.Cluster.SRVDomain; d != "" {
		add("cluster.srv_domain", validSRVDomain(d))
	}
	if s := c.Cluster.Secret; s != "" && len(s) < 16 {
		add("cluster.secret", errors.New("at least 16 characters (a guessable secret lets anyone on the LAN inject calls as a node)"))
	}
	if err := c.Store.Validate(); err != nil {
		errs = append(errs, prefixed("store", err)...)
	}
	if err := c.Mail.Validate(); err != nil {
		errs = append(errs, prefixed("mail", err)...)
	}
	return errs
}

// prefixed puts section. before each joined error's lines.
func prefixed(section string, err error) []error {
	var out []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			out = append(out, fmt.Errorf("%s.%w", section, e))
		}
		return out
	}
	return []error{fmt.Errorf("%s.%w", section, err)}
}

func maskSections(c *Config, mask func(*string)) {
	mask(&c.Store.DSN)
	mask(&c.Cluster.Secret)
	mask(&c.SIP.Proxy.Trunk.Password)
	mask(&c.Mail.Password)
}
