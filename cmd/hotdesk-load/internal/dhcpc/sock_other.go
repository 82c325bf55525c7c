//go:build !linux

package dhcpc

import (
	"errors"
	"net"
)

// ListenInterface needs SO_BINDTODEVICE, which only Linux has.
func ListenInterface(iface, addr string) (net.PacketConn, error) {
	return nil, errors.New("dhcpc: binding the DHCP client socket to an interface needs Linux")
}
