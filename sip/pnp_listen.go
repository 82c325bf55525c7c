package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// udpListenConfig is how the registrar's UDP sockets are bound. They never
// take the plug-and-play group's traffic (IP_MULTICAST_ALL off: Linux would
// otherwise hand a wildcard socket on 5060 every group datagram any socket
// joined, and the registrar would answer the phone's SUBSCRIBE with 405
// beside our 200); with plug-and-play on they share port 5060 with the
// group socket (SO_REUSEADDR on both, or the wildcard bind refuses it).
func udpListenConfig(shareWithPnP bool) *net.ListenConfig {
	return &net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			// SOL_IP options apply to a dual-stack IPv6 socket's IPv4 side
			// too; on an IPv6-only socket this fails and does not matter.
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_ALL, 0)
			if shareWithPnP {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			}
		})
		return errors.Join(err, serr)
	}}
}

// ListenPnP binds the plug-and-play sockets on cfg.Interface: one on
// 224.0.1.75:5060 that joined the group there, and one on the interface's
// first IPv4 address for the NOTIFYs.
func ListenPnP(cfg PnPConfig) (PnPListeners, error) {
	var ls PnPListeners
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return ls, fmt.Errorf("pnp.interface: %w", err)
	}
	if ifi.Flags&net.FlagMulticast == 0 {
		return ls, fmt.Errorf("pnp.interface: %s does not support multicast", cfg.Interface)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return ls, fmt.Errorf("pnp.interface: %s: %w", cfg.Interface, err)
	}
	var ip netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if v, ok := netip.AddrFromSlice(n.IP); ok && v.Unmap().Is4() {
				ip = v.Unmap()
				break
			}
		}
	}
	if !ip.IsValid() {
		return ls, fmt.Errorf("pnp.interface: %s has no IPv4 address", cfg.Interface)
	}
	lc := &net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		})
		return errors.Join(err, serr)
	}}
	group, err := lc.ListenPacket(context.Background(), "udp4", fmt.Sprintf("%s:%d", PnPGroup, PnPPort))
	if err != nil {
		return ls, fmt.Errorf("pnp: bind %s:%d: %w", PnPGroup, PnPPort, err)
	}
	ls.Group = group
	p := ipv4.NewPacketConn(group)
	if err := p.JoinGroup(ifi, &net.UDPAddr{IP: net.ParseIP(PnPGroup)}); err != nil {
		ls.Close()
		return PnPListeners{}, fmt.Errorf("pnp: join %s on %s: %w", PnPGroup, cfg.Interface, err)
	}
	uc, err := net.ListenPacket("udp4", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		ls.Close()
		return PnPListeners{}, fmt.Errorf("pnp: bind %s: %w", ip, err)
	}
	ls.Unicast = uc
	return ls, nil
}
