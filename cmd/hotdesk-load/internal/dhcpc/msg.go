package dhcpc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// BOOTP op codes.
const (
	OpRequest byte = 1
	OpReply   byte = 2
)

// MsgType is option 53, the DHCP message type.
type MsgType byte

// Message types (RFC 2132 9.6).
const (
	Discover MsgType = 1
	Offer    MsgType = 2
	Request  MsgType = 3
	Decline  MsgType = 4
	Ack      MsgType = 5
	Nak      MsgType = 6
	Release  MsgType = 7
	Inform   MsgType = 8
)

func (t MsgType) String() string {
	names := [...]string{"none", "DISCOVER", "OFFER", "REQUEST", "DECLINE", "ACK", "NAK", "RELEASE", "INFORM"}
	if int(t) < len(names) {
		return names[t]
	}
	return fmt.Sprintf("type%d", byte(t))
}

// Option codes this package reads or writes.
const (
	OptPad         byte = 0
	OptSubnetMask  byte = 1
	OptTimeOffset  byte = 2
	OptRouter      byte = 3
	OptDNS         byte = 6
	OptDomain      byte = 15
	OptNTP         byte = 42
	OptVendorInfo  byte = 43
	OptRequestedIP byte = 50
	OptLeaseTime   byte = 51
	OptOverload    byte = 52
	OptMsgType     byte = 53
	OptServerID    byte = 54
	OptParams      byte = 55
	OptMessage     byte = 56
	OptMaxSize     byte = 57
	OptVendorClass byte = 60
	OptClientID    byte = 61
	OptTFTPServer  byte = 66
	OptCiscoTFTP   byte = 150
	OptPolycomBoot byte = 160
	OptEnd         byte = 255
)

// FlagBroadcast asks the server to broadcast its reply (RFC 2131 4.1): a
// client without an address cannot take a unicast one.
const FlagBroadcast uint16 = 0x8000

const (
	headerLen = 236 // op … file, before the magic cookie
	minLen    = headerLen + 4
	// bootpMinLen is the BOOTP minimum size; some relays and servers drop
	// shorter requests, so requests are padded to it.
	bootpMinLen = 300
)

var magicCookie = [4]byte{99, 130, 83, 99}

// Parse errors.
var (
	ErrShort     = errors.New("dhcpc: message shorter than 240 bytes")
	ErrMagic     = errors.New("dhcpc: no DHCP magic cookie")
	ErrTruncated = errors.New("dhcpc: option runs past the end of its field")
	ErrNoEnd     = errors.New("dhcpc: options field has no end option")
	ErrHLen      = errors.New("dhcpc: hlen above 16")
)

// Options maps an option code to its value; an option that appears more
// than once is concatenated (RFC 3396).
type Options map[byte][]byte

// Message is one DHCPv4 message (RFC 2131 2). Addresses are IPv4; the zero
// netip.Addr encodes as 0.0.0.0.
type Message struct {
	Op, HType, HLen, Hops byte
	XID                   uint32
	Secs, Flags           uint16
	CIAddr, YIAddr        netip.Addr
	SIAddr, GIAddr        netip.Addr
	CHAddr                [16]byte
	SName                 [64]byte
	File                  [128]byte
	Options               Options
}

// HWAddr returns the client hardware address (HLen bytes of CHAddr).
func (m *Message) HWAddr() net.HardwareAddr {
	return net.HardwareAddr(slices.Clone(m.CHAddr[:min(int(m.HLen), len(m.CHAddr))]))
}

// Type returns option 53, or 0 when it is missing or malformed.
func (m *Message) Type() MsgType {
	if v := m.Options[OptMsgType]; len(v) == 1 {
		return MsgType(v[0])
	}
	return 0
}

// Addr returns a single-address option (50, 54, 1 …).
func (m *Message) Addr(code byte) (netip.Addr, bool) {
	v := m.Options[code]
	if len(v) != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte(v)), true
}

// Seconds returns a 32-bit seconds option (51, 58, 59) as a duration.
func (m *Message) Seconds(code byte) (time.Duration, bool) {
	v := m.Options[code]
	if len(v) != 4 {
		return 0, false
	}
	return time.Duration(binary.BigEndian.Uint32(v)) * time.Second, true
}

// Text returns a text option without the trailing NULs some servers add.
func (m *Message) Text(code byte) string {
	return strings.TrimRight(string(m.Options[code]), "\x00")
}

// Parse decodes a message. It copies what it keeps, so b may be reused.
// It is strict where a lenient parser would hide a server's mistake: an
// option that overruns its field and a missing end option are errors.
func Parse(b []byte) (*Message, error) {
	if len(b) < minLen {
		return nil, ErrShort
	}
	if [4]byte(b[headerLen:minLen]) != magicCookie {
		return nil, ErrMagic
	}
	m := &Message{Op: b[0], HType: b[1], HLen: b[2], Hops: b[3],
		XID: binary.BigEndian.Uint32(b[4:]), Secs: binary.BigEndian.Uint16(b[8:]), Flags: binary.BigEndian.Uint16(b[10:]),
		CIAddr: addrAt(b, 12), YIAddr: addrAt(b, 16), SIAddr: addrAt(b, 20), GIAddr: addrAt(b, 24),
		Options: Options{}}
	if m.HLen > 16 {
		return nil, ErrHLen
	}
	copy(m.CHAddr[:], b[28:44])
	copy(m.SName[:], b[44:108])
	copy(m.File[:], b[108:236])
	if err := parseOptions(b[minLen:], m.Options, true); err != nil {
		return nil, fmt.Errorf("options: %w", err)
	}
	return m, m.parseOverload()
}

// parseOverload reads options carried in file and sname (option 52), in
// the order RFC 3396 gives: file first, then sname.
func (m *Message) parseOverload() error {
	v, ok := m.Options[OptOverload]
	if !ok {
		return nil
	}
	if len(v) != 1 || v[0] < 1 || v[0] > 3 {
		return fmt.Errorf("dhcpc: option 52 value %v: %w", v, ErrTruncated)
	}
	if v[0]&1 != 0 {
		if err := parseOptions(m.File[:], m.Options, false); err != nil {
			return fmt.Errorf("file options: %w", err)
		}
	}
	if v[0]&2 != 0 {
		if err := parseOptions(m.SName[:], m.Options, false); err != nil {
			return fmt.Errorf("sname options: %w", err)
		}
	}
	return nil
}

// parseOptions appends the options of one field to into. needEnd is set
// for the options field; an overloaded field may also just run out.
func parseOptions(b []byte, into Options, needEnd bool) error {
	for i := 0; i < len(b); {
		code := b[i]
		switch code {
		case OptPad:
			i++
			continue
		case OptEnd:
			return nil
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			return fmt.Errorf("option %d at %d: %w", code, i, ErrTruncated)
		}
		n := int(b[i+1])
		into[code] = append(into[code], b[i+2:i+2+n]...)
		i += 2 + n
	}
	if needEnd {
		return ErrNoEnd
	}
	return nil
}

func addrAt(b []byte, off int) netip.Addr { return netip.AddrFrom4([4]byte(b[off : off+4])) }

// putAddr writes a as four bytes; an invalid or non-IPv4 address is 0.0.0.0.
func putAddr(b []byte, a netip.Addr) {
	if a.Is4() {
		v := a.As4()
		copy(b, v[:])
	}
}

// Marshal encodes m: option 53 first, the others by code, values over 255
// bytes split into several options (RFC 3396), then end, padded to 300
// bytes.
func (m *Message) Marshal() []byte {
	b := make([]byte, minLen, 576)
	b[0], b[1], b[2], b[3] = m.Op, m.HType, m.HLen, m.Hops
	binary.BigEndian.PutUint32(b[4:], m.XID)
	binary.BigEndian.PutUint16(b[8:], m.Secs)
	binary.BigEndian.PutUint16(b[10:], m.Flags)
	for i, a := range []netip.Addr{m.CIAddr, m.YIAddr, m.SIAddr, m.GIAddr} {
		putAddr(b[12+4*i:], a)
	}
	copy(b[28:], m.CHAddr[:])
	copy(b[44:], m.SName[:])
	copy(b[108:], m.File[:])
	copy(b[headerLen:], magicCookie[:])
	if v, ok := m.Options[OptMsgType]; ok {
		b = appendOption(b, OptMsgType, v)
	}
	codes := make([]byte, 0, len(m.Options))
	for c := range m.Options {
		if c != OptMsgType && c != OptPad && c != OptEnd {
			codes = append(codes, c)
		}
	}
	slices.Sort(codes)
	for _, c := range codes {
		b = appendOption(b, c, m.Options[c])
	}
	b = append(b, OptEnd)
	for len(b) < bootpMinLen {
		b = append(b, OptPad)
	}
	return b
}

// appendOption writes code/len/value, splitting long values; an empty value
// is a zero-length option.
func appendOption(b []byte, code byte, v []byte) []byte {
	for {
		n := min(len(v), 255)
		b = append(append(b, code, byte(n)), v[:n]...)
		v = v[n:]
		if len(v) == 0 {
			return b
		}
	}
}
