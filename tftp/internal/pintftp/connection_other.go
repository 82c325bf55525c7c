//go:build !linux
// +build !linux

package tftp

import "net"

// listenTransfer opens a transfer's socket on ip, port 0.
func listenTransfer(ip net.IP) (connection, error) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	return &connConnection{conn: conn}, nil
}
