package dhcp

import (
	"net"
	"net/netip"
	"sort"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
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

// optionsFor picks the options of a reply. Pool options 1/3/6/15 always go
// in; every other configured option (42, 2/100/101, 66, 150, 43, 160 …) goes
// in when the client lists it in option 55, or when the client sends no
// option 55 at all; options of a matching vendor class always go in and win
// over the global ones.
func (s *Server) optionsFor(req *request) []chosen {
	prl := req.m.ParameterRequestList()
	var requested [256]bool
	for _, c := range prl {
		requested[c.Code()] = true
	}
	wanted := func(code uint8) bool { return prl == nil || requested[code] }
	picked := map[uint8]chosen{}
	if req.pool >= 0 {
		for code, v := range s.s.pools[req.pool].opts {
			if alwaysSent[code] || wanted(code) {
				picked[code] = chosen{code: code, val: v}
			}
		}
	}
	for code, v := range s.s.global {
		if wanted(code) {
			picked[code] = chosen{code: code, val: v}
		}
	}
	if req.vendor != "" {
		for _, vc := range s.s.classes {
			if !vc.matches(req.vendor) {
				continue
			}
			for code, v := range vc.opts {
				if _, done := picked[code]; !done || !picked[code].forced {
					picked[code] = chosen{code: code, val: v, forced: true}
				}
			}
		}
	}
	out := make([]chosen, 0, len(picked))
	for _, c := range picked {
		out = append(out, c)
	}
	// Order by the client's option 55, then by code, so trimming drops what
	// the client cares least about.
	rank := map[uint8]int{}
	for i, c := range prl {
		if _, ok := rank[c.Code()]; !ok {
			rank[c.Code()] = i
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.forced != b.forced {
			return a.forced
		}
		ra, oka := rank[a.code]
		rb, okb := rank[b.code]
		if oka != okb {
			return oka
		}
		if ra != rb {
			return ra < rb
		}
		return a.code < b.code
	})
	return out
}

// reply builds an OFFER/ACK (yiaddr valid) or an INFORM ACK (yiaddr invalid).
func (s *Server) reply(req *request, typ dhcpv4.MessageType, yiaddr netip.Addr) *dhcpv4.DHCPv4 {
	resp := newReply(req.m)
	resp.UpdateOption(dhcpv4.OptMessageType(typ))
	resp.UpdateOption(dhcpv4.OptServerIdentifier(s.s.serverID.AsSlice()))
	if typ == dhcpv4.MessageTypeAck {
		resp.ClientIPAddr = req.m.ClientIPAddr
	}
	if yiaddr.IsValid() {
		resp.YourIPAddr = yiaddr.AsSlice()
		lt := s.s.pools[req.pool].leaseTime
		resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(lt))
		resp.UpdateOption(dhcpv4.OptRenewTimeValue(lt / 2))
		resp.UpdateOption(dhcpv4.OptRebindingTimeValue(lt * 7 / 8))
		if r, ok := s.alloc.reservationOf(req.mac); ok && r.ip == yiaddr && r.hostname != "" {
			resp.UpdateOption(dhcpv4.OptHostName(r.hostname))
		}
	}
	base := 241 // fixed header, magic cookie and the end option
	for _, v := range resp.Options {
		base += 2 + len(v)
	}
	limit := maxReplySize(req.m)
	for _, c := range s.optionsFor(req) {
		if c.code == 1 && !yiaddr.IsValid() && req.pool < 0 {
			continue
		}
		size := 2 + len(c.val)
		if base+size > limit {
			s.m.trimmed.Inc()
			continue
		}
		base += size
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(c.code), c.val))
	}
	return resp
}

// maxReplySize is the largest reply the client accepts: option 57 (at least
// 576, the RFC minimum) minus the IP and UDP headers, and never above 1500.
func maxReplySize(m *dhcpv4.DHCPv4) int {
	limit := 576
	if v, err := m.MaxMessageSize(); err == nil && int(v) > limit {
		limit = int(v)
	}
	return min(limit, 1500) - 28
}

// nak builds a DHCPNAK (RFC 2131 table 3: no addresses, no lease options).
func (s *Server) nak(req *request, why string) *dhcpv4.DHCPv4 {
	resp, err := dhcpv4.NewReplyFromRequest(req.m)
	if err != nil {
		resp = &dhcpv4.DHCPv4{Options: dhcpv4.Options{}}
		dhcpv4.WithReply(req.m)(resp)
		resp.GatewayIPAddr = req.m.GatewayIPAddr
	}
	resp.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeNak))
	resp.UpdateOption(dhcpv4.OptServerIdentifier(s.s.serverID.AsSlice()))
	resp.UpdateOption(dhcpv4.OptMessage(why))
	if _, relayed := v4(req.m.GatewayIPAddr); relayed {
		resp.SetBroadcast() // the relay must broadcast it on the client's link
	}
	return resp
}

// newReply is dhcpv4.NewReplyFromRequest without the random transaction ID
// it draws (crypto/rand behind a context with a deadline) only for
// WithReply to overwrite it with the request's: that draw was 5 % of the
// server's CPU per DORA.
func newReply(req *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	d := &dhcpv4.DHCPv4{HWType: iana.HWTypeEthernet, ClientHWAddr: make(net.HardwareAddr, 6),
		ClientIPAddr: net.IPv4zero, YourIPAddr: net.IPv4zero, ServerIPAddr: net.IPv4zero,
		GatewayIPAddr: net.IPv4zero, Options: dhcpv4.Options{}}
	dhcpv4.WithReply(req)(d)
	dhcpv4.WithGatewayIP(req.GatewayIPAddr)(d)
	// RFC 3046 (relay agent information) and RFC 6842 (client identifier).
	dhcpv4.WithOptionCopied(req, dhcpv4.OptionRelayAgentInformation)(d)
	dhcpv4.WithOptionCopied(req, dhcpv4.OptionClientIdentifier)(d)
	return d
}
