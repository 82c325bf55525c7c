//go:build !linux || 386
// +build !linux 386

package tftp

import "net"

// listenTransfer opens a transfer's socket on ip, port 0. (linux/386 has
// no sendto system call of its own, only socketcall.)
func listenTransfer(ip net.IP) (connection, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	return &connConnection{conn: conn}, nil
}
