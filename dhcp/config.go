package dhcp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Mode values for Config.Mode.
const (
	ModeOff    = "off"
	ModeServer = "server"
	ModeInform = "inform"
)

// Config is the `dhcp:` section of the daemon's YAML. The top-level pool keys
// (subnet, range, router, …) describe the first pool; Pools adds more.
type Config struct {
	// Mode is off, server (leases + options) or inform (answers only DHCPINFORM).
	Mode string `yaml:"mode"`
	// Interface is the network interface the socket is bound to (SO_BINDTODEVICE).
	Interface string `yaml:"interface"`
	// Listen is the UDP address to bind, default 0.0.0.0:67.
	Listen string `yaml:"listen"`
	// ServerID is option 54; empty = the first IPv4 address of Interface.
	ServerID string `yaml:"server_id"`

	// Pool keys of the first (simplest) pool, kept as the issue names them.
	PoolConfig `yaml:",inline"`
	// Pools are extra pools (other subnets reached through relays).
	Pools []PoolConfig `yaml:"pools"`

	// BootServer is option 66; empty = the daemon's provisioning base URL (Deps.BootServer).
	BootServer string `yaml:"boot_server"`
	// Option150 is the Cisco TFTP server list.
	Option150 []string `yaml:"option150"`
	// Option43 are vendor-specific sub-options (code → value; "hex:..." for raw bytes).
	Option43 map[int]string `yaml:"option43"`
	// Options are extra options sent to every client (code → value).
	Options map[int]string `yaml:"options"`
	// VendorClasses override options for clients whose option 60 matches.
	VendorClasses []VendorClass `yaml:"vendor_classes"`
	// TimeOffset is option 2 (offset from UTC); zero = not sent.
	TimeOffset time.Duration `yaml:"time_offset"`
	// TZPosix is option 100 (POSIX TZ string, e.g. "CET-1CEST,M3.5.0,M10.5.0/3").
	TZPosix string `yaml:"tz_posix"`
	// TZName is option 101 (tz database name, e.g. "Europe/Berlin").
	TZName string `yaml:"tz_name"`

	// PingBeforeOffer sends an ICMP echo before offering a fresh address.
	PingBeforeOffer bool `yaml:"ping_before_offer"`
	// PingTimeout bounds the ping-before-offer wait.
	PingTimeout time.Duration `yaml:"ping_timeout"`
	// DeclineHold is how long an address stays unused after a DHCPDECLINE.
	DeclineHold time.Duration `yaml:"decline_hold"`
	// OfferHold is how long an offered address is kept for the client that got the offer.
	OfferHold time.Duration `yaml:"offer_hold"`
	// Workers is the number of goroutines reading the socket.
	Workers int `yaml:"workers"`
}

// PoolConfig describes one subnet and its dynamic range.
type PoolConfig struct {
	Subnet string `yaml:"subnet"`
	// Range is [first, last] of the dynamic addresses; empty = reservations/INFORM only.
	Range        []string      `yaml:"range"`
	Router       string        `yaml:"router"`
	DNS          []string      `yaml:"dns"`
	NTP          []string      `yaml:"ntp"`
	Domain       string        `yaml:"domain"`
	LeaseTime    time.Duration `yaml:"lease_time"`
	Reservations []Reservation `yaml:"reservations"`
}

// Reservation pins an address (and optionally a hostname) to a MAC.
type Reservation struct {
	MAC      string `yaml:"mac"`
	Address  string `yaml:"address"`
	Hostname string `yaml:"hostname"`
}

// VendorClass overrides options for clients whose option 60 matches Match.
// Match is case-insensitive: a glob when it holds * or ?, else a substring
// (as dnsmasq's --dhcp-vendorclass). Options set here are always sent to a
// matching client, whether or not its option 55 asks for them.
type VendorClass struct {
	Match    string         `yaml:"match"`
	Options  map[int]string `yaml:"options"`
	Option43 map[int]string `yaml:"option43"`
}

// DefaultConfig returns the section's defaults: DHCP off.
func DefaultConfig() Config {
	return Config{
		Mode:        ModeOff,
		Listen:      "0.0.0.0:67",
		PingTimeout: 500 * time.Millisecond,
		DeclineHold: time.Hour,
		OfferHold:   30 * time.Second,
		Workers:     4,
		PoolConfig:  PoolConfig{LeaseTime: time.Hour},
	}
}

// Validate checks the section; errors name the key relative to the section.
func (c Config) Validate() error {
	_, err := compile(c, "")
	return err
}

// errKey prefixes an error with the config key it is about.
func errKey(key string, format string, args ...any) error {
	return fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...))
}

func validateTop(c Config) error {
	switch c.Mode {
	case ModeOff, ModeServer, ModeInform:
	case "":
		return errKey("mode", "required (off, server or inform)")
	default:
		return errKey("mode", "%q is not off, server or inform", c.Mode)
	}
	if _, err := netip.ParseAddrPort(c.Listen); err != nil {
		return errKey("listen", "%v", err)
	}
	if c.ServerID != "" {
		if _, err := parseV4(c.ServerID); err != nil {
			return errKey("server_id", "%v", err)
		}
	}
	if c.Mode == ModeServer && c.Subnet == "" && len(c.Pools) == 0 {
		return errKey("subnet", "required in server mode")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"decline_hold", c.DeclineHold}, {"offer_hold", c.OfferHold}, {"ping_timeout", c.PingTimeout}} {
		if d.v <= 0 {
			return errKey(d.key, "must be positive, got %v", d.v)
		}
	}
	if c.Workers < 1 || c.Workers > 256 {
		return errKey("workers", "must be 1..256, got %d", c.Workers)
	}
	if off := c.TimeOffset; off%time.Second != 0 || off > 24*time.Hour || off < -24*time.Hour {
		return errKey("time_offset", "must be whole seconds within ±24h, got %v", off)
	}
	return nil
}

// parseV4 parses a dotted IPv4 address.
func parseV4(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, err
	}
	if !a.Is4() {
		return netip.Addr{}, fmt.Errorf("%q is not IPv4", s)
	}
	return a, nil
}

// parseV4List parses a list of IPv4 addresses, naming the bad index.
func parseV4List(key string, list []string) ([]netip.Addr, error) {
	out := make([]netip.Addr, 0, len(list))
	for i, s := range list {
		a, err := parseV4(s)
		if err != nil {
			return nil, errKey(fmt.Sprintf("%s[%d]", key, i), "%v", err)
		}
		out = append(out, a)
	}
	return out, nil
}

// normMAC returns the canonical lower-case colon form of a MAC address.
func normMAC(s string) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return "", err
	}
	if len(hw) != 6 {
		return "", errors.New("not a 6-byte Ethernet MAC")
	}
	return hw.String(), nil
}
