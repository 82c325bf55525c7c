//go:build linux

package dhcpc

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// rcvBuf holds a burst of broadcast replies while handsets are scheduled.
const rcvBuf = 4 << 20

// ListenInterface binds the shared client socket at addr (0.0.0.0:68 on a
// LAN) with SO_BROADCAST, and to iface with SO_BINDTODEVICE when iface is
// set, so broadcast requests leave through that interface and only its
// replies are read.
func ListenInterface(iface, addr string) (net.PacketConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) { serr = setSockOpts(int(fd), iface) }); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("dhcpc: listen %s on %q: %w", addr, iface, err)
	}
	return pc, nil
}

func setSockOpts(fd int, iface string) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_BROADCAST, 1); err != nil {
		return fmt.Errorf("SO_BROADCAST: %w", err)
	}
	if iface != "" {
		if err := unix.BindToDevice(fd, iface); err != nil {
			return fmt.Errorf("SO_BINDTODEVICE %s: %w", iface, err)
		}
	}
	// SO_RCVBUFFORCE may exceed net.core.rmem_max but needs CAP_NET_ADMIN;
	// without it the capped SO_RCVBUF is the best there is.
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf) != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	return nil
}
