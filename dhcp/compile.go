package dhcp

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// optionSet maps an option code to its encoded value.
type optionSet map[uint8][]byte

// vclass is a compiled VendorClass.
type vclass struct {
	match string // lower-case
	glob  bool
	opts  optionSet
}

// matchesLower reports whether a vendor class identifier (option 60),
// already lower-cased, matches.
func (v vclass) matchesLower(id string) bool {
	if v.glob {
		ok, _ := path.Match(v.match, id)
		return ok
	}
	return strings.Contains(id, v.match)
}

// reservation is a compiled Reservation.
type reservation struct {
	ip       netip.Addr
	hostname string
	pool     int
}

// settings is the validated, parsed form of a Config.
type settings struct {
	mode        string
	listen      netip.AddrPort
	serverID    netip.Addr
	pools       []poolSettings
	resv        map[string]reservation // by canonical MAC
	global      optionSet
	classes     []vclass
	declineHold time.Duration
	offerHold   time.Duration
	ping        bool
	pingTimeout time.Duration
	workers     int
}

// poolSettings is one compiled PoolConfig.
type poolSettings struct {
	name       string
	subnet     netip.Prefix
	start, end netip.Addr // invalid when the pool has no dynamic range
	leaseTime  time.Duration
	opts       optionSet // 1, 3, 6, 15, 42
}

// ownedOptions are built by the server itself and may not be configured.
var ownedOptions = map[int]bool{0: true, 1: true, 50: true, 51: true, 52: true, 53: true, 54: true,
	55: true, 57: true, 58: true, 59: true, 61: true, 82: true, 255: true}

// compile validates c and builds its runtime form; bootServer fills option 66
// when c.BootServer is empty.
func compile(c Config, bootServer string) (*settings, error) {
	if err := validateTop(c); err != nil {
		return nil, err
	}
	s := &settings{mode: c.Mode, resv: map[string]reservation{}, declineHold: c.DeclineHold,
		offerHold: c.OfferHold, ping: c.PingBeforeOffer, pingTimeout: c.PingTimeout, workers: c.Workers}
	s.listen = netip.MustParseAddrPort(c.Listen)
	if c.ServerID != "" {
		s.serverID, _ = parseV4(c.ServerID)
	}
	type poolIn struct {
		key string
		pc  PoolConfig
	}
	var pools []poolIn
	if c.Subnet != "" {
		pools = append(pools, poolIn{"", c.PoolConfig})
	} else if len(c.Range) > 0 || len(c.Reservations) > 0 {
		return nil, errKey("subnet", "required when range or reservations are set")
	}
	for i, pc := range c.Pools {
		pools = append(pools, poolIn{fmt.Sprintf("pools[%d].", i), pc})
	}
	for _, in := range pools {
		key, pc := in.key, in.pc
		if pc.LeaseTime == 0 {
			pc.LeaseTime = c.LeaseTime
		}
		ps, err := compilePool(pc, key, len(s.pools), s.resv)
		if err != nil {
			return nil, err
		}
		for _, o := range s.pools {
			if o.subnet.Overlaps(ps.subnet) {
				return nil, errKey(key+"subnet", "%s overlaps %s", ps.subnet, o.subnet)
			}
		}
		s.pools = append(s.pools, ps)
	}
	var err error
	if s.global, err = compileGlobal(c, bootServer); err != nil {
		return nil, err
	}
	if s.classes, err = compileClasses(c.VendorClasses); err != nil {
		return nil, err
	}
	return s, nil
}

// compileClasses validates vendor_classes.
func compileClasses(in []VendorClass) ([]vclass, error) {
	var out []vclass
	for i, vc := range in {
		key := fmt.Sprintf("vendor_classes[%d]", i)
		m := strings.ToLower(strings.TrimSpace(vc.Match))
		if m == "" {
			return nil, errKey(key+".match", "required")
		}
		glob := strings.ContainsAny(m, "*?[")
		if _, err := path.Match(m, ""); glob && err != nil {
			return nil, errKey(key+".match", "%v", err)
		}
		opts, err := compileOptions(key+".options", vc.Options)
		if err != nil {
			return nil, err
		}
		if len(vc.Option43) > 0 {
			if opts[43], err = encodeSubOptions(key+".option43", vc.Option43); err != nil {
				return nil, err
			}
		}
		out = append(out, vclass{match: m, glob: glob, opts: opts})
	}
	return out, nil
}

// compilePool validates one pool; key is its prefix ("" or "pools[N].").
func compilePool(pc PoolConfig, key string, idx int, resv map[string]reservation) (poolSettings, error) {
	ps := poolSettings{name: strconv.Itoa(idx), leaseTime: pc.LeaseTime, opts: optionSet{}}
	pfx, err := netip.ParsePrefix(strings.TrimSpace(pc.Subnet))
	if err != nil || !pfx.Addr().Is4() || pfx.Bits() > 30 {
		return ps, errKey(key+"subnet", "%q is not an IPv4 CIDR of /30 or larger", pc.Subnet)
	}
	ps.subnet = pfx.Masked()
	if pc.LeaseTime < time.Minute || pc.LeaseTime > 365*24*time.Hour {
		return ps, errKey(key+"lease_time", "must be between 1m and 8760h, got %v", pc.LeaseTime)
	}
	if err := compileRange(&ps, pc.Range, key); err != nil {
		return ps, err
	}
	mask := net4Mask(ps.subnet.Bits())
	ps.opts[1] = mask[:]
	if pc.Router != "" {
		r, err := parseV4(pc.Router)
		if err != nil {
			return ps, errKey(key+"router", "%v", err)
		}
		ps.opts[3] = r.AsSlice()
	}
	for _, l := range []struct {
		key  string
		code uint8
		v    []string
	}{{"dns", 6, pc.DNS}, {"ntp", 42, pc.NTP}} {
		ips, err := parseV4List(key+l.key, l.v)
		if err != nil {
			return ps, err
		}
		if len(ips) > 0 {
			ps.opts[l.code] = joinIPs(ips)
		}
	}
	if pc.Domain != "" {
		ps.opts[15] = []byte(pc.Domain)
	}
	return ps, compileReservations(pc.Reservations, ps, key, idx, resv)
}

// compileReservations validates a pool's reservations into resv.
func compileReservations(list []Reservation, ps poolSettings, key string, idx int, resv map[string]reservation) error {
	for i, r := range list {
		rk := fmt.Sprintf("%sreservations[%d]", key, i)
		mac, err := normMAC(r.MAC)
		if err != nil {
			return errKey(rk+".mac", "%v", err)
		}
		ip, err := parseV4(r.Address)
		if err != nil {
			return errKey(rk+".address", "%v", err)
		}
		if !ps.subnet.Contains(ip) || !usable(ps.subnet, ip) {
			return errKey(rk+".address", "%s is not a host address of %s", ip, ps.subnet)
		}
		if _, dup := resv[mac]; dup {
			return errKey(rk+".mac", "%s is reserved twice", mac)
		}
		for m, o := range resv {
			if o.ip == ip {
				return errKey(rk+".address", "%s is already reserved for %s", ip, m)
			}
		}
		resv[mac] = reservation{ip: ip, hostname: r.Hostname, pool: idx}
	}
	return nil
}

// compileRange parses range: [start, end] into ps.
func compileRange(ps *poolSettings, rng []string, key string) error {
	switch len(rng) {
	case 0:
		return nil
	case 2:
	default:
		return errKey(key+"range", "must be [first, last], got %d values", len(rng))
	}
	var err error
	if ps.start, err = parseV4(rng[0]); err != nil {
		return errKey(key+"range[0]", "%v", err)
	}
	if ps.end, err = parseV4(rng[1]); err != nil {
		return errKey(key+"range[1]", "%v", err)
	}
	for i, a := range []netip.Addr{ps.start, ps.end} {
		if !ps.subnet.Contains(a) || !usable(ps.subnet, a) {
			return errKey(fmt.Sprintf("%srange[%d]", key, i), "%s is not a host address of %s", a, ps.subnet)
		}
	}
	if ps.end.Less(ps.start) {
		return errKey(key+"range", "last %s is before first %s", ps.end, ps.start)
	}
	return nil
}

// compileGlobal builds the options every client may get.
func compileGlobal(c Config, bootServer string) (optionSet, error) {
	opts, err := compileOptions("options", c.Options)
	if err != nil {
		return nil, err
	}
	if bs := c.BootServer; bs != "" {
		opts[66] = []byte(bs)
	} else if bootServer != "" {
		opts[66] = []byte(bootServer)
	}
	if len(opts[66]) > 255 {
		return nil, errKey("boot_server", "longer than 255 bytes")
	}
	if len(c.Option150) > 0 {
		ips, err := parseV4List("option150", c.Option150)
		if err != nil {
			return nil, err
		}
		opts[150] = joinIPs(ips)
	}
	if len(c.Option43) > 0 {
		if opts[43], err = encodeSubOptions("option43", c.Option43); err != nil {
			return nil, err
		}
	}
	if c.TimeOffset != 0 {
		opts[2] = binary.BigEndian.AppendUint32(nil, uint32(int32(c.TimeOffset/time.Second)))
	}
	if c.TZPosix != "" {
		opts[100] = []byte(c.TZPosix)
	}
	if c.TZName != "" {
		opts[101] = []byte(c.TZName)
	}
	return opts, nil
}

// compileOptions encodes a code → value map (see encodeOption).
func compileOptions(key string, in map[int]string) (optionSet, error) {
	out := optionSet{}
	codes := make([]int, 0, len(in))
	for code := range in {
		codes = append(codes, code)
	}
	sort.Ints(codes) // deterministic error for the same config
	for _, code := range codes {
		k := fmt.Sprintf("%s[%d]", key, code)
		if code < 1 || code > 254 || ownedOptions[code] {
			return nil, errKey(k, "option %d cannot be configured", code)
		}
		b, err := encodeOption(code, in[code])
		if err != nil {
			return nil, errKey(k, "%v", err)
		}
		out[uint8(code)] = b
	}
	return out, nil
}

// ipListOptions carry one or more IPv4 addresses.
var ipListOptions = map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true,
	10: true, 11: true, 41: true, 42: true, 44: true, 45: true, 48: true, 49: true, 150: true}

// encodeOption turns a configured value into option bytes: "hex:0a0b" is raw,
// address options take a comma-separated IPv4 list, option 2 a signed number
// of seconds or a duration, everything else (66, 160, 100, 101, …) is text.
func encodeOption(code int, v string) ([]byte, error) {
	var b []byte
	switch {
	case strings.HasPrefix(v, "hex:"):
		var err error
		if b, err = hex.DecodeString(strings.ReplaceAll(v[4:], ":", "")); err != nil {
			return nil, fmt.Errorf("bad hex: %w", err)
		}
	case ipListOptions[code]:
		ips, err := parseV4List("value", strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }))
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("needs at least one IPv4 address")
		}
		b = joinIPs(ips)
	case code == 2:
		sec, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			d, derr := time.ParseDuration(v)
			if derr != nil {
				return nil, fmt.Errorf("%q is not seconds or a duration", v)
			}
			sec = int64(d / time.Second)
		}
		b = binary.BigEndian.AppendUint32(nil, uint32(int32(sec)))
	default:
		b = []byte(v)
	}
	if len(b) == 0 || len(b) > 255 {
		return nil, fmt.Errorf("value must be 1..255 bytes, got %d", len(b))
	}
	return b, nil
}

// encodeSubOptions encodes option 43 sub-options as code/length/value triplets.
func encodeSubOptions(key string, in map[int]string) ([]byte, error) {
	codes := make([]int, 0, len(in))
	for code := range in {
		codes = append(codes, code)
	}
	sort.Ints(codes)
	var out []byte
	for _, code := range codes {
		k := fmt.Sprintf("%s[%d]", key, code)
		if code < 1 || code > 254 {
			return nil, errKey(k, "sub-option code must be 1..254")
		}
		v := in[code]
		b := []byte(v)
		if strings.HasPrefix(v, "hex:") {
			var err error
			if b, err = hex.DecodeString(strings.ReplaceAll(v[4:], ":", "")); err != nil {
				return nil, errKey(k, "bad hex: %v", err)
			}
		}
		if len(b) > 255 {
			return nil, errKey(k, "value longer than 255 bytes")
		}
		out = append(append(out, byte(code), byte(len(b))), b...)
	}
	if len(out) > 255 {
		return nil, errKey(key, "encoded sub-options exceed 255 bytes")
	}
	return out, nil
}

func joinIPs(ips []netip.Addr) []byte {
	out := make([]byte, 0, 4*len(ips))
	for _, ip := range ips {
		out = append(out, ip.AsSlice()...)
	}
	return out
}

func net4Mask(bits int) [4]byte {
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], ^uint32(0)<<(32-bits))
	return m
}

// usable reports whether a is neither the network nor the broadcast address.
func usable(p netip.Prefix, a netip.Addr) bool {
	u := addrU32(a)
	n := addrU32(p.Addr())
	bcast := n | ^(^uint32(0) << (32 - p.Bits()))
	return u != n && u != bcast
}

func addrU32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func u32Addr(u uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], u)
	return netip.AddrFrom4(b)
}
