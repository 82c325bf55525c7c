package daemon

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// dhcpRelay is a DHCP relay agent on loopback, as a site's router is to
// the appliances: it forwards a phone's DHCP messages with its own address
// as giaddr to the server it is told, and receives the replies on port 67
// (RFC 2131 §4.1). Several servers behind one relay is how a segment is
// served by more than one node.
type dhcpRelay struct {
	t    *testing.T
	conn *net.UDPConn
	ip   net.IP
}

func newDHCPRelay(t *testing.T, ip string) *dhcpRelay {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", net.JoinHostPort(ip, "67"))
	if err != nil {
		t.Fatalf("relay socket: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	return &dhcpRelay{t: t, conn: pc.(*net.UDPConn), ip: net.ParseIP(ip).To4()}
}

// exchange relays msg to server and returns the reply to it (same xid).
func (r *dhcpRelay) exchange(server string, msg *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, error) {
	msg.GatewayIPAddr = r.ip
	msg.HopCount = 1
	dst, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		return nil, err
	}
	if _, err := r.conn.WriteToUDP(msg.ToBytes(), dst); err != nil {
		return nil, err
	}
	buf := make([]byte, 1500)
	deadline := time.Now().Add(5 * time.Second)
	for range 16 { // bounded: stray replies to earlier exchanges are skipped
		_ = r.conn.SetReadDeadline(deadline)
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			return nil, fmt.Errorf("no reply from %s: %w", server, err)
		}
		rep, err := dhcpv4.FromBytes(buf[:n])
		if err != nil {
			return nil, err
		}
		if rep.TransactionID == msg.TransactionID {
			return rep, nil
		}
	}
	return nil, fmt.Errorf("no reply from %s with xid %s", server, msg.TransactionID)
}

// lease runs DISCOVER/OFFER/REQUEST/ACK for hw through server and returns
// the address acknowledged.
func (r *dhcpRelay) lease(server string, hw net.HardwareAddr) (net.IP, error) {
	disc, err := dhcpv4.NewDiscovery(hw)
	if err != nil {
		return nil, err
	}
	offer, err := r.exchange(server, disc)
	if err != nil {
		return nil, err
	}
	if offer.MessageType() != dhcpv4.MessageTypeOffer {
		return nil, fmt.Errorf("DISCOVER answered %s", offer.MessageType())
	}
	req, err := dhcpv4.NewRequestFromOffer(offer)
	if err != nil {
		return nil, err
	}
	ack, err := r.exchange(server, req)
	if err != nil {
		return nil, err
	}
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		return nil, fmt.Errorf("REQUEST answered %s", ack.MessageType())
	}
	return ack.YourIPAddr, nil
}

// renew sends a RENEWING-state REQUEST (ciaddr set, RFC 2131 §4.3.2) for
// ip through server and returns the reply's type and address.
func (r *dhcpRelay) renew(server string, hw net.HardwareAddr, ip net.IP) (dhcpv4.MessageType, net.IP, error) {
	req, err := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(ip))
	if err != nil {
		return 0, nil, err
	}
	ack, err := r.exchange(server, req)
	if err != nil {
		return 0, nil, err
	}
	return ack.MessageType(), ack.YourIPAddr, nil
}
