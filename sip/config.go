package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config is the `sip:` section of hotdesk.yaml.
type Config struct {
	// Listen holds udp://host:port, tcp://host:port and tls://host:port,
	// and ws://host:port and wss://host:port for SIP over WebSocket (RFC
	// 7118: the portal's softphone).
	Listen []string `yaml:"listen"`
	// Domain is the served SIP domain and the digest realm.
	Domain string `yaml:"domain"`
	// Domains are further served domains (each is its own realm).
	Domains []string `yaml:"domains"`
	// MinExpires: a shorter non-zero expiry gets 423 Interval Too Brief.
	MinExpires int `yaml:"min_expires"`
	// MaxExpires caps the granted expiry.
	MaxExpires int `yaml:"max_expires"`
	// DefaultExpires applies when neither the contact nor the header says.
	DefaultExpires int `yaml:"default_expires"`
	// NonceTTL is how long a digest nonce is accepted before stale=true.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	// Algorithms accepted, and offered in challenges in this order: "MD5",
	// "SHA-256". SHA-256 is offered only to the clients SHA256UserAgents
	// names (or when it is the only algorithm): many phones and softphones
	// (baresip 1.0) fail on a challenge whose algorithm they do not know,
	// instead of skipping it as RFC 8760 asks.
	Algorithms []string `yaml:"algorithms"`
	// SHA256UserAgents are case-insensitive User-Agent substrings of the
	// clients also offered SHA-256 (before MD5 when listed first).
	SHA256UserAgents []string `yaml:"sha256_user_agents"`
	// TLSCert and TLSKey are PEM files, needed by tls:// listeners.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// LockoutThreshold failed authentications from one source address or for
	// one username lock it out for LockoutBase, doubling per lockout up to
	// LockoutMax. Failures older than LockoutWindow are forgotten.
	LockoutThreshold int           `yaml:"lockout_threshold"`
	LockoutBase      time.Duration `yaml:"lockout_base"`
	LockoutMax       time.Duration `yaml:"lockout_max"`
	LockoutWindow    time.Duration `yaml:"lockout_window"`
	// UDPWorkers answer each UDP socket's REGISTERs and OPTIONS in
	// parallel (0: GOMAXPROCS); one reader per socket feeds them.
	UDPWorkers int `yaml:"udp_workers"`
	// UDPQueue bounds the REGISTERs and OPTIONS of a socket waiting for a
	// worker; beyond it they are answered 503 + Retry-After unparsed.
	UDPQueue int `yaml:"udp_queue"`
	// UDPQueueDelay sheds the same way one that waited longer than this in
	// the queue (0: never): its sender has retransmitted it by then (T1 is
	// 500 ms), so answering it late only doubles the work.
	UDPQueueDelay time.Duration `yaml:"udp_queue_delay"`
	// UDPReadBuffer is SO_RCVBUF of the UDP sockets in bytes (0: system default).
	UDPReadBuffer int `yaml:"udp_read_buffer"`
	// UserAgent is sent in Server/User-Agent headers.
	UserAgent string `yaml:"user_agent"`
	// TCPMaxConns bounds the open TCP/TLS connections in all, and
	// TCPMaxConnsPerSource those from one address, so idle connections
	// cannot exhaust the daemon's file descriptors; TCPIdleTimeout closes a
	// connection nothing was read from for that long (it must outlast a
	// phone's registration refresh: the daemon reaches TCP phones over
	// their own connection).
	TCPMaxConns          int           `yaml:"tcp_max_conns"`
	TCPMaxConnsPerSource int           `yaml:"tcp_max_conns_per_source"`
	TCPIdleTimeout       time.Duration `yaml:"tcp_idle_timeout"`
	// TCPUnauthTimeout closes a TCP/TLS connection that has not sent a
	// request that authenticated within that time of its accept, however
	// slowly it keeps sending (slowloris); tcp_idle_timeout applies after.
	TCPUnauthTimeout time.Duration `yaml:"tcp_unauth_timeout"`
	// PnP answers SIP plug-and-play discovery (pnp.go).
	PnP PnPConfig `yaml:"pnp"`
}

// DefaultConfig returns the defaults: UDP and TCP on 0.0.0.0:5060, domain hotdesk.lan.
func DefaultConfig() Config {
	return Config{
		Listen:           []string{"udp://0.0.0.0:5060", "tcp://0.0.0.0:5060"},
		Domain:           "hotdesk.lan",
		MinExpires:       60,
		MaxExpires:       3600,
		DefaultExpires:   3600,
		NonceTTL:         5 * time.Minute,
		Algorithms:       []string{"MD5", "SHA-256"},
		LockoutThreshold: 10,
		LockoutBase:      time.Minute,
		LockoutMax:       time.Hour,
		LockoutWindow:    15 * time.Minute,
		UDPReadBuffer:    4 << 20,
		UDPQueue:         4096,
		UDPQueueDelay:    time.Second,
		UserAgent:        "hotdesk",
		// Below the unit's LimitNOFILE (65536), with room for the rest.
		TCPMaxConns:          20000,
		TCPMaxConnsPerSource: 64,
		TCPIdleTimeout:       65 * time.Minute,
		TCPUnauthTimeout:     20 * time.Second,
	}
}

// ListenAddr is one parsed `listen` entry.
type ListenAddr struct {
	Network string // "udp", "tcp", "tls", "ws" or "wss"
	Addr    string // host:port
}

// ListenAddrs parses Listen.
func (c Config) ListenAddrs() ([]ListenAddr, error) {
	out := make([]ListenAddr, 0, len(c.Listen))
	for i, s := range c.Listen {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("listen[%d]: %w", i, err)
		}
		switch u.Scheme {
		case "udp", "tcp", "tls", "ws", "wss":
		default:
			return nil, fmt.Errorf("listen[%d]: scheme %q: want udp, tcp, tls, ws or wss", i, u.Scheme)
		}
		if _, _, err := net.SplitHostPort(u.Host); err != nil || u.Path != "" {
			return nil, fmt.Errorf("listen[%d]: want %s://host:port", i, u.Scheme)
		}
		out = append(out, ListenAddr{Network: u.Scheme, Addr: u.Host})
	}
	return out, nil
}

// Validate checks the section; errors name the key.
func (c Config) Validate() error {
	var errs []error
	addrs, err := c.ListenAddrs()
	if err != nil {
		errs = append(errs, err)
	}
	if len(c.Listen) == 0 {
		errs = append(errs, errors.New("listen: at least one address is needed"))
	}
	for _, a := range addrs {
		if (a.Network == "tls" || a.Network == "wss") && (c.TLSCert == "" || c.TLSKey == "") {
			errs = append(errs, fmt.Errorf("tls_cert: a %s:// listener needs tls_cert and tls_key", a.Network))
			break
		}
	}
	if !validDomain(c.Domain) {
		errs = append(errs, fmt.Errorf("domain: %q is not a host name", c.Domain))
	}
	for i, d := range c.Domains {
		if !validDomain(d) {
			errs = append(errs, fmt.Errorf("domains[%d]: %q is not a host name", i, d))
		}
	}
	if c.MinExpires < 1 {
		errs = append(errs, errors.New("min_expires: must be at least 1"))
	}
	if c.MaxExpires < c.MinExpires {
		errs = append(errs, errors.New("max_expires: must not be below min_expires"))
	}
	if c.DefaultExpires < c.MinExpires || c.DefaultExpires > c.MaxExpires {
		errs = append(errs, errors.New("default_expires: must be within min_expires..max_expires"))
	}
	if c.NonceTTL < 5*time.Second {
		errs = append(errs, errors.New("nonce_ttl: must be at least 5s"))
	}
	if len(c.Algorithms) == 0 {
		errs = append(errs, errors.New("algorithms: at least one of MD5, SHA-256"))
	}
	for i, a := range c.Algorithms {
		if _, ok := hashFor(a); !ok {
			errs = append(errs, fmt.Errorf("algorithms[%d]: %q: want MD5 or SHA-256", i, a))
		}
	}
	for i, ua := range c.SHA256UserAgents {
		if strings.TrimSpace(ua) == "" || len(ua) > 128 {
			errs = append(errs, fmt.Errorf("sha256_user_agents[%d]: %q: want 1..128 characters", i, ua))
		}
	}
	if c.TCPMaxConns < 1 || c.TCPMaxConnsPerSource < 1 || c.TCPMaxConnsPerSource > c.TCPMaxConns {
		errs = append(errs, errors.New("tcp_max_conns_per_source: must be 1..tcp_max_conns"))
	}
	if c.TCPIdleTimeout < time.Duration(c.MaxExpires)*time.Second {
		errs = append(errs, errors.New("tcp_idle_timeout: must outlast max_expires (phones keep their connection between refreshes)"))
	}
	if c.TCPUnauthTimeout < time.Second || c.TCPUnauthTimeout > c.TCPIdleTimeout {
		errs = append(errs, errors.New("tcp_unauth_timeout: must be within 1s..tcp_idle_timeout"))
	}
	if c.LockoutThreshold < 1 {
		errs = append(errs, errors.New("lockout_threshold: must be at least 1"))
	}
	if c.LockoutBase <= 0 || c.LockoutMax < c.LockoutBase {
		errs = append(errs, errors.New("lockout_base: must be > 0 and lockout_max >= lockout_base"))
	}
	if c.LockoutWindow <= 0 {
		errs = append(errs, errors.New("lockout_window: must be > 0"))
	}
	if c.UDPReadBuffer < 0 {
		errs = append(errs, errors.New("udp_read_buffer: must not be negative"))
	}
	if c.UDPWorkers < 0 {
		errs = append(errs, errors.New("udp_workers: must not be negative"))
	}
	if c.UDPQueue < 1 || c.UDPQueue > 1<<20 {
		errs = append(errs, errors.New("udp_queue: must be within 1..1048576"))
	}
	if c.UDPQueueDelay < 0 || c.UDPQueueDelay > 32*time.Second {
		errs = append(errs, errors.New("udp_queue_delay: must be within 0..32s"))
	}
	if err := c.PnP.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// servedDomains returns Domain and Domains, lower-cased.
func (c Config) servedDomains() []string {
	out := []string{strings.ToLower(c.Domain)}
	for _, d := range c.Domains {
		out = append(out, strings.ToLower(d))
	}
	return out
}

func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, r := range d {
		if !(r == '.' || r == '-' || r == ':' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// Listeners are the sockets the daemon bound (so binding fails before READY).
// TLS holds plain TCP listeners; Serve wraps them with Config.TLSCert/TLSKey.
type Listeners struct {
	UDP []net.PacketConn
	TCP []net.Listener
	TLS []net.Listener
	// WS and WSS serve SIP over WebSocket; WSS holds plain TCP listeners
	// too, wrapped as TLS is.
	WS  []net.Listener
	WSS []net.Listener
}

// Close closes every listener (for error paths before Serve).
func (l Listeners) Close() {
	for _, c := range l.UDP {
		c.Close()
	}
	for _, c := range l.TCP {
		c.Close()
	}
	for _, c := range l.TLS {
		c.Close()
	}
	for _, c := range append(l.WS, l.WSS...) {
		c.Close()
	}
}

// Listen binds every address of cfg.Listen.
func Listen(cfg Config) (Listeners, error) {
	var ls Listeners
	addrs, err := cfg.ListenAddrs()
	if err != nil {
		return ls, err
	}
	for i, a := range addrs {
		switch a.Network {
		case "udp":
			pc, err := udpListenConfig(cfg.PnP.Enabled).ListenPacket(context.Background(), "udp", a.Addr)
			if err != nil {
				ls.Close()
				return Listeners{}, fmt.Errorf("listen[%d]: %w", i, err)
			}
			ls.UDP = append(ls.UDP, pc)
		default:
			l, err := net.Listen("tcp", a.Addr)
			if err != nil {
				ls.Close()
				return Listeners{}, fmt.Errorf("listen[%d]: %w", i, err)
			}
			switch a.Network {
			case "tls":
				ls.TLS = append(ls.TLS, l)
			case "ws":
				ls.WS = append(ls.WS, l)
			case "wss":
				ls.WSS = append(ls.WSS, l)
			default:
				ls.TCP = append(ls.TCP, l)
			}
		}
	}
	return ls, nil
}

func (c Config) tlsConfig() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tls_cert: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
