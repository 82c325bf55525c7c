package dhcp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Results counted in hotdesk_dhcp_packets_total{result}.
const (
	resOffer     = "offer"
	resAck       = "ack"
	resNak       = "nak"
	resIgnored   = "ignored"
	resExhausted = "exhausted"
	resDropped   = "dropped"
	resReleased  = "released"
	resDeclined  = "declined"
	resError     = "error"
)

// request is a parsed, sanity-checked client message.
type request struct {
	m        *dhcpv4.DHCPv4
	typ      string
	mac      string
	vendor   string
	hostname string
	pool     int
	at       time.Time
}

// handle answers one datagram; it returns the reply, written in sc, and
// where to send it, or nil. It never panics on malformed input: bad packets
// are counted and dropped.
func (s *Server) handle(ctx context.Context, pkt []byte, peer netip.AddrPort, sc *scratch) ([]byte, netip.AddrPort, dhcpv4.MessageType) {
	req, reason := s.parse(pkt, sc)
	if req == nil {
		s.drop("other", reason, peer, nil)
		return nil, netip.AddrPort{}, dhcpv4.MessageTypeNone
	}
	var (
		reply  *wireReply
		result string
	)
	switch msgType(req.m) {
	case dhcpv4.MessageTypeDiscover:
		reply, result = s.discover(ctx, req, sc)
	case dhcpv4.MessageTypeRequest:
		reply, result = s.request(ctx, req, sc)
	case dhcpv4.MessageTypeInform:
		reply, result = s.inform(ctx, req, sc)
	case dhcpv4.MessageTypeDecline:
		result = s.decline(ctx, req)
	case dhcpv4.MessageTypeRelease:
		result = s.release(ctx, req)
	}
	if result == resDropped {
		return nil, netip.AddrPort{}, dhcpv4.MessageTypeNone // counted by drop
	}
	s.m.countPacket(req.typ, result)
	if reply == nil {
		return nil, netip.AddrPort{}, dhcpv4.MessageTypeNone
	}
	sc.out = reply.encode(sc.out[:0], req.m)
	return sc.out, replyAddr(req.m, reply.typ, peer), reply.typ
}

// parse decodes pkt into sc and rejects what no client may send. The
// request is valid while pkt and sc are.
func (s *Server) parse(pkt []byte, sc *scratch) (*request, string) {
	if len(pkt) > maxPacket {
		return nil, "oversize"
	}
	m := &sc.msg
	if err := parseInto(pkt, m); err != nil {
		return nil, "malformed"
	}
	if m.OpCode != dhcpv4.OpcodeBootRequest {
		return nil, "op"
	}
	if m.HWType != iana.HWTypeEthernet || len(m.ClientHWAddr) != 6 {
		return nil, "hwtype"
	}
	if m.HopCount > 16 {
		return nil, "hops"
	}
	typ := ""
	switch msgType(m) {
	case dhcpv4.MessageTypeDiscover:
		typ = "discover"
	case dhcpv4.MessageTypeRequest:
		typ = "request"
	case dhcpv4.MessageTypeInform:
		typ = "inform"
	case dhcpv4.MessageTypeDecline:
		typ = "decline"
	case dhcpv4.MessageTypeRelease:
		typ = "release"
	case dhcpv4.MessageTypeNone:
		return nil, "no_type"
	default:
		return nil, "type"
	}
	mac := m.ClientHWAddr.String()
	if mac == "00:00:00:00:00:00" || m.ClientHWAddr[0]&1 == 1 {
		return nil, "chaddr"
	}
	sc.req = request{m: m, typ: typ, mac: mac, vendor: printable(m.ClassIdentifier()),
		hostname: printable(m.HostName()), pool: s.poolFor(m), at: s.now()}
	return &sc.req, ""
}

// printable keeps a client-supplied string safe to log and store.
func printable(v string) string {
	if len(v) > 128 {
		v = v[:128]
	}
	b := []byte(v)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// poolFor picks the pool of a message: the relay's subnet, else the client's
// current address, else the pool of the server's own address, else the first.
func (s *Server) poolFor(m *dhcpv4.DHCPv4) int {
	if gi, ok := v4(m.GatewayIPAddr); ok {
		return s.alloc.poolOf(gi)
	}
	if ci, ok := v4(m.ClientIPAddr); ok {
		if p := s.alloc.poolOf(ci); p >= 0 {
			return p
		}
	}
	if p := s.alloc.poolOf(s.s.serverID); p >= 0 {
		return p
	}
	if len(s.s.pools) > 0 {
		return 0
	}
	return -1
}

// v4 converts a header address, reporting false for a missing or 0.0.0.0 one.
func v4(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip.To4())
	return a, ok && !a.IsUnspecified()
}

// drop counts and debug-logs a packet dropped for reason.
func (s *Server) drop(typ, reason string, peer netip.AddrPort, req *request) string {
	s.m.dropped.WithLabelValues(reason).Inc()
	s.m.packets.WithLabelValues(typ, resDropped).Inc()
	if s.log.Enabled(context.Background(), -4) {
		args := []any{"reason", reason}
		if peer.IsValid() {
			args = append(args, "remote", peer.String())
		}
		if req != nil {
			args = append(args, "mac", req.mac)
		}
		s.log.Debug("dhcp packet dropped", args...)
	}
	return resDropped
}

// observe tells the Observer about a DISCOVER/REQUEST/INFORM; bound says ip
// was just acknowledged to the client as its lease.
func (s *Server) observe(ctx context.Context, req *request, typ string, ip netip.Addr, bound bool) {
	s.obs.Observe(ctx, Seen{MAC: req.mac, IP: ip, Bound: bound, VendorClass: req.vendor, Hostname: req.hostname, MsgType: typ, At: req.at})
}

// discover offers an address (server mode only).
func (s *Server) discover(ctx context.Context, req *request, sc *scratch) (*wireReply, string) {
	if s.s.mode != ModeServer {
		s.observe(ctx, req, MsgDiscover, netip.Addr{}, false)
		return nil, resIgnored
	}
	if req.pool < 0 {
		s.observe(ctx, req, MsgDiscover, netip.Addr{}, false)
		return nil, s.drop(req.typ, "no_subnet", netip.AddrPort{}, req)
	}
	requested, _ := optIP4(req.m, dhcpv4.OptionRequestedIPAddress)
	ip, err := s.offerAddr(ctx, req, requested)
	s.observe(ctx, req, MsgDiscover, ip, false)
	if errors.Is(err, ErrExhausted) {
		if last := s.lastExhaustWarn.Load(); req.at.Unix()-last >= 60 && s.lastExhaustWarn.CompareAndSwap(last, req.at.Unix()) {
			s.log.Warn("dhcp pool exhausted", "pool", s.s.pools[req.pool].name, "mac", req.mac) // at most once a minute
		}
		return nil, resExhausted
	}
	return s.reply(req, dhcpv4.MessageTypeOffer, ip, sc), resOffer
}

// offerAddr allocates, pinging fresh addresses first when configured.
func (s *Server) offerAddr(ctx context.Context, req *request, requested netip.Addr) (netip.Addr, error) {
	for try := 0; ; try++ {
		ip, fresh, err := s.alloc.offer(req.mac, req.pool, requested, req.at, s.s.offerHold)
		if err != nil || !fresh || !s.s.ping || try == 3 {
			return ip, err
		}
		if !s.ping(ctx, ip, s.s.pingTimeout) {
			return ip, nil
		}
		s.log.Warn("dhcp address answers ping, holding it", "ip", ip.String())
		s.m.conflicts.Inc()
		s.alloc.decline("", ip, req.at, s.s.declineHold)
		requested = netip.Addr{}
	}
}

// request handles SELECTING, INIT-REBOOT, RENEWING and REBINDING REQUESTs.
func (s *Server) request(ctx context.Context, req *request, sc *scratch) (*wireReply, string) {
	m := req.m
	if s.s.mode != ModeServer {
		s.observe(ctx, req, MsgRequest, netip.Addr{}, false)
		return nil, resIgnored // the other server is authoritative
	}
	sid, hasSID := optIP4(m, dhcpv4.OptionServerIdentifier)
	if hasSID && sid != s.s.serverID {
		s.alloc.unoffer(req.mac) // it chose another server
		s.observe(ctx, req, MsgRequest, netip.Addr{}, false)
		return nil, resIgnored
	}
	want, hasReq := optIP4(m, dhcpv4.OptionRequestedIPAddress)
	if !hasReq {
		want, hasReq = v4(m.ClientIPAddr) // RENEWING/REBINDING
	}
	if !hasReq || req.pool < 0 {
		s.observe(ctx, req, MsgRequest, netip.Addr{}, false)
		return s.nak(req, "wrong network", sc), resNak
	}
	lease, ok := s.alloc.commit(req.mac, req.pool, want, req.hostname, req.vendor, req.at)
	if !ok {
		s.observe(ctx, req, MsgRequest, netip.Addr{}, false)
		s.log.Debug("dhcp nak", "mac", req.mac, "requested", want.String())
		return s.nak(req, "address not available", sc), resNak
	}
	// Reported once the lease is stored below; a NAKed or unsaved
	// request ties nothing.
	if err := s.store.SaveLease(ctx, lease); errors.Is(err, ErrAddressTaken) {
		// Another server sharing the lease table bound it first: kept out
		// of this server's pool like a declined address, and NAKed so the
		// client starts over and is offered another.
		s.alloc.decline(req.mac, lease.IP, req.at, s.s.declineHold)
		s.learnShared(ctx, req.at)
		s.m.storeErrors.WithLabelValues("taken").Inc()
		s.log.Warn("dhcp address taken by another server", "mac", req.mac, "ip", lease.IP.String())
		s.observe(ctx, req, MsgRequest, netip.Addr{}, false)
		return s.nak(req, "address not available", sc), resNak
	} else if err != nil {
		s.m.storeErrors.WithLabelValues("save").Inc()
		s.log.Error("dhcp lease not persisted", "mac", req.mac, "ip", lease.IP.String(), "err", err)
		s.observe(ctx, req, MsgRequest, netip.Addr{}, false)
		return nil, resError // no ACK for a lease we could not record
	}
	s.observe(ctx, req, MsgRequest, lease.IP, true)
	return s.reply(req, dhcpv4.MessageTypeAck, lease.IP, sc), resAck
}

// inform answers DHCPINFORM with options only (RFC 2131 3.4).
func (s *Server) inform(ctx context.Context, req *request, sc *scratch) (*wireReply, string) {
	ci, _ := v4(req.m.ClientIPAddr)
	s.observe(ctx, req, MsgInform, ci, false)
	return s.reply(req, dhcpv4.MessageTypeAck, netip.Addr{}, sc), resAck
}

// decline takes the client's address out of use for decline_hold.
func (s *Server) decline(ctx context.Context, req *request) string {
	if s.s.mode != ModeServer {
		return resIgnored
	}
	if sid, ok := optIP4(req.m, dhcpv4.OptionServerIdentifier); !ok || sid != s.s.serverID {
		return s.drop(req.typ, "server_id", netip.AddrPort{}, req)
	}
	ip, ok := optIP4(req.m, dhcpv4.OptionRequestedIPAddress)
	if !ok {
		return s.drop(req.typ, "no_address", netip.AddrPort{}, req)
	}
	lease, ok := s.alloc.decline(req.mac, ip, req.at, s.s.declineHold)
	if !ok {
		return resIgnored
	}
	s.log.Warn("dhcp address declined", "mac", req.mac, "ip", ip.String())
	if err := s.store.SaveLease(ctx, lease); err != nil {
		s.m.storeErrors.WithLabelValues("save").Inc()
		s.log.Error("dhcp decline not persisted", "mac", req.mac, "err", err)
	}
	return resDeclined
}

// release frees the client's address.
func (s *Server) release(ctx context.Context, req *request) string {
	if s.s.mode != ModeServer {
		return resIgnored
	}
	if sid, ok := optIP4(req.m, dhcpv4.OptionServerIdentifier); !ok || sid != s.s.serverID {
		return s.drop(req.typ, "server_id", netip.AddrPort{}, req)
	}
	ci, ok := v4(req.m.ClientIPAddr)
	if !ok || !s.alloc.release(req.mac, ci) {
		return resIgnored
	}
	if err := s.store.DeleteLease(ctx, req.mac); err != nil {
		s.m.storeErrors.WithLabelValues("delete").Inc()
		s.log.Error("dhcp release not persisted", "mac", req.mac, "err", err)
	}
	return resReleased
}

// replyAddr is where a reply of type typ goes (RFC 2131 4.1): the relay,
// else the client's current address, else broadcast (an address-less client
// cannot be reached by unicast through a UDP socket without an ARP entry).
func replyAddr(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType, peer netip.AddrPort) netip.AddrPort {
	if gi, ok := v4(req.GatewayIPAddr); ok {
		return netip.AddrPortFrom(gi, dhcpv4.ServerPort)
	}
	if typ != dhcpv4.MessageTypeNak {
		if ci, ok := v4(req.ClientIPAddr); ok {
			return netip.AddrPortFrom(ci, dhcpv4.ClientPort)
		}
		if msgType(req) == dhcpv4.MessageTypeInform {
			if src := peer.Addr().Unmap(); src.Is4() && !src.IsUnspecified() {
				return netip.AddrPortFrom(src, peer.Port())
			}
		}
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), dhcpv4.ClientPort)
}
