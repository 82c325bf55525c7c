package dhcp

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// alwaysSent are pool options every OFFER/ACK carries, requested or not:
// without them a client cannot use its address.
var alwaysSent = map[uint8]bool{1: true, 3: true, 6: true, 15: true}

// chosen is one option picked for a reply; forced options come from a
// matching vendor class and survive trimming to the client's size limit.
type chosen struct {
	code   uint8
	val    []byte
	forced bool
}

// optionsFor picks the options of a reply into pick[:0]. Pool options
// 1/3/6/15 always go in; every other configured option (42, 2/100/101, 66,
// 150, 43, 160 …) goes in when the client lists it in option 55, or when
// the client sends no option 55 at all; options of a matching vendor class
// always go in and win over the global ones.
func (s *Server) optionsFor(req *request, pick []chosen) []chosen {
	// Option 55 read in place: one code per byte, no list built. An empty
	// one counts as none, as dhcpv4's ParameterRequestList reads it.
	prl := req.m.Options.Get(dhcpv4.OptionParameterRequestList)
	var rank [256]uint8 // position in option 55 plus one; 0 = not requested
	for i, c := range prl {
		if rank[c] == 0 {
			rank[c] = uint8(min(i+1, 255))
		}
	}
	wanted := func(code uint8) bool { return len(prl) == 0 || rank[code] != 0 }
	// put adds or replaces code's value (a list of a few dozen at most).
	put := func(c chosen) {
		for i := range pick {
			if pick[i].code == c.code {
				pick[i] = c
				return
			}
		}
		pick = append(pick, c)
	}
	pick = pick[:0]
	if req.pool >= 0 {
		for code, v := range s.s.pools[req.pool].opts {
			if alwaysSent[code] || wanted(code) {
				put(chosen{code: code, val: v})
			}
		}
	}
	for code, v := range s.s.global {
		if wanted(code) {
			put(chosen{code: code, val: v})
		}
	}
	if req.vendor != "" {
		lower := ""
		for _, vc := range s.s.classes {
			if lower == "" {
				lower = strings.ToLower(req.vendor)
			}
			if !vc.matchesLower(lower) {
				continue
			}
			for code, v := range vc.opts {
				if i := slices.IndexFunc(pick, func(c chosen) bool { return c.code == code }); i < 0 || !pick[i].forced {
					put(chosen{code: code, val: v, forced: true})
				}
			}
		}
	}
	// Order by the client's option 55, then by code, so trimming drops what
	// the client cares least about.
	slices.SortFunc(pick, func(a, b chosen) int {
		if a.forced != b.forced {
			if a.forced {
				return -1
			}
			return 1
		}
		ra, rb := int(rank[a.code]), int(rank[b.code])
		if (ra != 0) != (rb != 0) {
			if ra != 0 {
				return -1
			}
			return 1
		}
		if ra != rb {
			return ra - rb
		}
		return int(a.code) - int(b.code)
	})
	return pick
}

// reply builds an OFFER/ACK (yiaddr valid) or an INFORM ACK (yiaddr invalid)
// in sc.
func (s *Server) reply(req *request, typ dhcpv4.MessageType, yiaddr netip.Addr, sc *scratch) *wireReply {
	w := s.startReply(sc, req, typ)
	if typ == dhcpv4.MessageTypeAck {
		w.ciaddr = req.m.ClientIPAddr
	}
	if yiaddr.IsValid() {
		w.yiaddr = yiaddr
		w.leaseTimes(s.s.pools[req.pool].leaseTime)
		if r, ok := s.alloc.reservationOf(req.mac); ok && r.ip == yiaddr && r.hostname != "" {
			w.set(uint8(dhcpv4.OptionHostName), []byte(r.hostname))
		}
	}
	base := w.size()
	limit := maxReplySize(req.m)
	sc.pick = s.optionsFor(req, sc.pick)
	for _, c := range sc.pick {
		if c.code == 1 && !yiaddr.IsValid() && req.pool < 0 {
			continue
		}
		size := 2 + len(c.val)
		if base+size > limit {
			s.m.trimmed.Inc()
			continue
		}
		base += size
		w.set(c.code, c.val)
	}
	return w
}

// maxReplySize is the largest reply the client accepts: option 57 (at least
// 576, the RFC minimum) minus the IP and UDP headers, and never above 1500.
func maxReplySize(m *dhcpv4.DHCPv4) int {
	limit := 576
	if v := m.Options.Get(dhcpv4.OptionMaximumDHCPMessageSize); len(v) == 2 && int(binary.BigEndian.Uint16(v)) > limit {
		limit = int(binary.BigEndian.Uint16(v))
	}
	return min(limit, 1500) - 28
}

// nak builds a DHCPNAK (RFC 2131 table 3: no addresses, no lease options)
// in sc.
func (s *Server) nak(req *request, why string, sc *scratch) *wireReply {
	w := s.startReply(sc, req, dhcpv4.MessageTypeNak)
	w.set(uint8(dhcpv4.OptionMessage), []byte(why))
	if _, relayed := v4(req.m.GatewayIPAddr); relayed {
		w.flags |= 0x8000 // the relay must broadcast it on the client's link
	}
	return w
}
