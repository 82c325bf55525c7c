package dhcp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Replies are written straight into a reader's buffer, byte for byte what
// dhcpv4.(*DHCPv4).ToBytes writes for the same message (options in code
// order, 82 last, long values split per RFC 3396, padded to BOOTP's 300
// bytes): building a dhcpv4.DHCPv4 first (an options map, one slice per
// value, a sorted key list, a growing buffer) was about half the garbage
// of a DORA (BenchmarkDORA).

// scratch is one reader's reusable memory for building replies; a reply
// built in it is valid until the next one.
type scratch struct {
	msg  dhcpv4.DHCPv4 // the request being answered (parseInto)
	req  request
	out  []byte
	w    wireReply
	pick []chosen
}

func newScratch() *scratch {
	sc := &scratch{out: make([]byte, 0, maxPacket), pick: make([]chosen, 0, 32)}
	sc.w.opts = make([]replyOpt, 0, 32)
	return sc
}

// replyOpt is one option of a reply being built.
type replyOpt struct {
	code uint8
	val  []byte
}

// wireReply is a reply being built: header fields and options. It lives
// in a scratch (option values point into nums).
type wireReply struct {
	typ    dhcpv4.MessageType
	flags  uint16
	ciaddr net.IP     // nil = 0.0.0.0
	yiaddr netip.Addr // invalid = 0.0.0.0
	opts   []replyOpt
	// nums backs the small numeric option values (53, 54, 51, 58, 59).
	nums [17]byte
}

// set adds or replaces option code (the last value set wins, as with
// dhcpv4.(*DHCPv4).UpdateOption).
func (w *wireReply) set(code uint8, val []byte) {
	for i := range w.opts {
		if w.opts[i].code == code {
			w.opts[i].val = val
			return
		}
	}
	w.opts = append(w.opts, replyOpt{code: code, val: val})
}

// size is what the options set so far take, with the fixed header, magic
// cookie and end option.
func (w *wireReply) size() int {
	n := 241
	for _, o := range w.opts {
		n += 2 + len(o.val)
	}
	return n
}

// startReply begins a reply to req of type typ: the header fields copied as
// dhcpv4.NewReplyFromRequest copies them, options 53 and 54, and options
// 82 (RFC 3046) and 61 (RFC 6842) copied from the request.
func (s *Server) startReply(sc *scratch, req *request, typ dhcpv4.MessageType) *wireReply {
	w := &sc.w
	w.typ, w.flags, w.ciaddr, w.yiaddr, w.opts = typ, req.m.Flags, nil, netip.Addr{}, w.opts[:0]
	w.nums[0] = byte(typ)
	w.set(uint8(dhcpv4.OptionDHCPMessageType), w.nums[0:1])
	sid := s.s.serverID.As4()
	copy(w.nums[1:5], sid[:])
	w.set(uint8(dhcpv4.OptionServerIdentifier), w.nums[1:5])
	if v := req.m.Options.Get(dhcpv4.OptionRelayAgentInformation); v != nil {
		w.set(uint8(dhcpv4.OptionRelayAgentInformation), v)
	}
	if v := req.m.Options.Get(dhcpv4.OptionClientIdentifier); v != nil {
		w.set(uint8(dhcpv4.OptionClientIdentifier), v)
	}
	return w
}

// leaseTimes sets options 51, 58 and 59 for a lease of lt.
func (w *wireReply) leaseTimes(lt time.Duration) {
	for i, d := range [3]time.Duration{lt, lt / 2, lt * 7 / 8} {
		v := w.nums[5+4*i : 9+4*i]
		binary.BigEndian.PutUint32(v, uint32(d/time.Second))
		w.set([3]uint8{51, 58, 59}[i], v)
	}
}

// encode appends the reply to req to out, as dhcpv4.(*DHCPv4).ToBytes does.
func (w *wireReply) encode(out []byte, req *dhcpv4.DHCPv4) []byte {
	out = append(out, byte(dhcpv4.OpcodeBootReply), byte(req.HWType), byte(len(req.ClientHWAddr)), 0)
	out = append(out, req.TransactionID[:]...)
	out = append(out, 0, 0) // secs
	out = binary.BigEndian.AppendUint16(out, w.flags)
	out = appendIP(out, w.ciaddr)
	if w.yiaddr.IsValid() {
		a := w.yiaddr.As4()
		out = append(out, a[:]...)
	} else {
		out = append(out, 0, 0, 0, 0)
	}
	out = append(out, 0, 0, 0, 0) // siaddr
	out = appendIP(out, req.GatewayIPAddr)
	var chaddr [16]byte
	copy(chaddr[:], req.ClientHWAddr)
	out = append(out, chaddr[:]...)
	out = append(out, make([]byte, 64+128)...) // sname, file (the compiler appends zeros, no allocation)
	out = append(out, 99, 130, 83, 99)         // magic cookie
	slices.SortFunc(w.opts, func(a, b replyOpt) int { return optRank(a.code) - optRank(b.code) })
	for _, o := range w.opts {
		if o.code == 0 || o.code == 255 {
			continue // pad and end are never options with a value
		}
		data := o.val
		if len(data) == 0 {
			out = append(out, o.code, 0)
			continue
		}
		for len(data) > 0 { // RFC 3396: a long value is the option repeated
			n := min(len(data), 255)
			out = append(out, o.code, byte(n))
			out = append(out, data[:n]...)
			data = data[n:]
		}
	}
	out = append(out, 255)
	for len(out) < 300 { // BOOTP's minimum, which some relays insist on
		out = append(out, 0)
	}
	return out
}

// optRank orders options by code with 82 last (RFC 3046 2.1).
func optRank(code uint8) int {
	if code == uint8(dhcpv4.OptionRelayAgentInformation) {
		return 256
	}
	return int(code)
}

// appendIP appends a header address, 0.0.0.0 when it is missing.
func appendIP(out []byte, ip net.IP) []byte {
	if ip4 := ip.To4(); ip4 != nil {
		return append(out, ip4...)
	}
	return append(out, 0, 0, 0, 0)
}

// The option getters below read values in place, as strictly as dhcpv4's
// getters (a value of the wrong length is absent), without the decoding
// buffer each of those allocates per call.

// msgType is option 53, dhcpv4.MessageTypeNone when missing.
func msgType(m *dhcpv4.DHCPv4) dhcpv4.MessageType {
	if v := m.Options.Get(dhcpv4.OptionDHCPMessageType); len(v) == 1 {
		return dhcpv4.MessageType(v[0])
	}
	return dhcpv4.MessageTypeNone
}

// optIP4 is an address option, reporting false for a missing or 0.0.0.0 one.
func optIP4(m *dhcpv4.DHCPv4, code dhcpv4.OptionCode) (netip.Addr, bool) {
	v := m.Options.Get(code)
	if len(v) != 4 {
		return netip.Addr{}, false
	}
	a := netip.AddrFrom4([4]byte(v))
	return a, !a.IsUnspecified()
}

// errShort: a datagram too short for a BOOTP header and magic cookie.
var errShort = errors.New("dhcp: packet shorter than a BOOTP header")

// parseInto decodes q into m as dhcpv4.FromBytes does (the same fields,
// options concatenated per RFC 3396, an End option required), reusing m's
// options map. Addresses, chaddr and option values alias q: m is valid
// while q is. FromBytes copied each of them, about a third of the
// allocations of an exchange.
func parseInto(q []byte, m *dhcpv4.DHCPv4) error {
	const hdr = 240 // fixed fields, sname, file and the magic cookie
	if len(q) < hdr {
		return errShort
	}
	if [4]byte(q[236:240]) != [4]byte{99, 130, 83, 99} {
		return fmt.Errorf("dhcp: magic cookie %x", q[236:240])
	}
	m.OpCode = dhcpv4.OpcodeType(q[0])
	m.HWType = iana.HWType(q[1])
	hlen := min(int(q[2]), 16)
	m.HopCount = q[3]
	m.TransactionID = dhcpv4.TransactionID(q[4:8])
	m.NumSeconds = binary.BigEndian.Uint16(q[8:10])
	m.Flags = binary.BigEndian.Uint16(q[10:12])
	m.ClientIPAddr = net.IP(q[12:16:16])
	m.YourIPAddr = net.IP(q[16:20:20])
	m.ServerIPAddr = net.IP(q[20:24:24])
	m.GatewayIPAddr = net.IP(q[24:28:28])
	m.ClientHWAddr = net.HardwareAddr(q[28 : 28+hlen : 28+hlen])
	m.ServerHostName = cString(q[44:108])
	m.BootFileName = cString(q[108:236])
	if m.Options == nil {
		m.Options = dhcpv4.Options{}
	}
	clear(m.Options)
	if len(q) == hdr {
		return nil // no options at all is no missing End, for FromBytes
	}
	for o := q[hdr:]; len(o) > 0; {
		code := o[0]
		switch code {
		case 0: // pad
			o = o[1:]
			continue
		case 255:
			return nil
		}
		if len(o) < 2 || len(o) < 2+int(o[1]) {
			return fmt.Errorf("dhcp: option %d: %w", code, io.ErrUnexpectedEOF)
		}
		n := int(o[1])
		v := o[2 : 2+n : 2+n]
		o = o[2+n:]
		if prev, ok := m.Options[code]; ok || n == 0 {
			// A repeated option is concatenated (RFC 3396) into new
			// memory (prev's capacity ends at its length); an empty first
			// value is nil, as FromBytes leaves it.
			m.Options[code] = append(prev, v...)
			continue
		}
		m.Options[code] = v
	}
	return io.ErrUnexpectedEOF // no End option
}

// cString is a NUL-terminated header field.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
