package dhcp

import (
	"encoding/binary"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
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
