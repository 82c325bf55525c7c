// Package dhcptest is a minimal DHCPv4 server for the load tool's tests.
// It is built on github.com/insomniacslk/dhcp, not on package dhcpc, so the
// client's codec is checked against an implementation it does not share.
// Only tests import it.
package dhcptest

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Responder answers DISCOVER with an OFFER and REQUEST with an ACK (or a
// NAK when the requested address is not the one offered). Addresses are
// handed out from Pool upwards, one per MAC.
type Responder struct {
	ServerID netip.Addr
	Pool     netip.Addr
	// Options are added to every OFFER and ACK (66, 160 …).
	Options map[uint8]string
	// Edit may change a reply, replace its bytes, or drop it by
	// returning nil; nil Edit sends resp as built.
	Edit func(req, resp *dhcpv4.DHCPv4) []byte
	// Dest is where replies go; nil = back to the request's source.
	Dest *net.UDPAddr

	Discovers, Requests atomic.Int64

	mu     sync.Mutex
	leases map[string]netip.Addr
	next   uint32
}

// Serve answers on conn until the test ends (then conn is closed).
func (r *Responder) Serve(t testing.TB, conn net.PacketConn) {
	r.leases, r.next = map[string]netip.Addr{}, 0
	if b, ok := conn.(interface{ SetReadBuffer(int) error }); ok {
		_ = b.SetReadBuffer(4 << 20) // hundreds of handsets burst their DISCOVERs at once
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, peer, err := conn.ReadFrom(buf)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					t.Errorf("dhcptest: read: %v", err)
				}
				return
			}
			if out := r.answer(buf[:n]); out != nil {
				dst := peer
				if r.Dest != nil {
					dst = r.Dest
				}
				if _, err := conn.WriteTo(out, dst); err != nil {
					t.Errorf("dhcptest: write: %v", err)
				}
			}
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
}

// answer builds the reply bytes for one request, or nil.
func (r *Responder) answer(b []byte) []byte {
	req, err := dhcpv4.FromBytes(b)
	if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest {
		return nil
	}
	var resp *dhcpv4.DHCPv4
	switch req.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		r.Discovers.Add(1)
		resp = r.reply(req, dhcpv4.MessageTypeOffer, r.addrFor(req.ClientHWAddr.String()))
	case dhcpv4.MessageTypeRequest:
		r.Requests.Add(1)
		ip := r.addrFor(req.ClientHWAddr.String())
		if want, ok := netip.AddrFromSlice(req.RequestedIPAddress().To4()); !ok || want != ip {
			resp = r.reply(req, dhcpv4.MessageTypeNak, netip.Addr{})
			resp.UpdateOption(dhcpv4.OptMessage("address not available"))
		} else {
			resp = r.reply(req, dhcpv4.MessageTypeAck, ip)
		}
	default:
		return nil
	}
	if r.Edit != nil {
		return r.Edit(req, resp)
	}
	return resp.ToBytes()
}

func (r *Responder) reply(req *dhcpv4.DHCPv4, typ dhcpv4.MessageType, ip netip.Addr) *dhcpv4.DHCPv4 {
	resp, err := dhcpv4.NewReplyFromRequest(req, dhcpv4.WithMessageType(typ),
		dhcpv4.WithServerIP(r.ServerID.AsSlice()),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(r.ServerID.AsSlice())))
	if err != nil {
		panic(err) // only fails on a bad modifier
	}
	if typ == dhcpv4.MessageTypeNak {
		return resp
	}
	resp.YourIPAddr = ip.AsSlice()
	resp.UpdateOption(dhcpv4.OptIPAddressLeaseTime(time.Hour))
	resp.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(16, 32)))
	for code, v := range r.Options {
		resp.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(code), []byte(v)))
	}
	return resp
}

// addrFor returns mac's address, allocating the next one on first sight.
func (r *Responder) addrFor(mac string) netip.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ip, ok := r.leases[mac]; ok {
		return ip
	}
	b := r.Pool.As4()
	v := binary.BigEndian.Uint32(b[:]) + r.next
	r.next++
	ip := netip.AddrFrom4([4]byte(binary.BigEndian.AppendUint32(nil, v)))
	r.leases[mac] = ip
	return ip
}

// DropFirst is an Edit that drops the first reply of type typ to each MAC
// and passes every other reply: a lost OFFER or ACK the client must retry.
func DropFirst(typ dhcpv4.MessageType) func(req, resp *dhcpv4.DHCPv4) []byte {
	var mu sync.Mutex
	seen := map[string]bool{}
	return func(req, resp *dhcpv4.DHCPv4) []byte {
		mu.Lock()
		defer mu.Unlock()
		if resp.MessageType() == typ && !seen[req.ClientHWAddr.String()] {
			seen[req.ClientHWAddr.String()] = true
			return nil
		}
		return resp.ToBytes()
	}
}
