//go:build !386
// +build !386

package tftp

import (
	"bytes"
	"net"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestPollConnection: a transfer socket sends and receives like a UDP
// socket, times out as one, and a send leaves its epoll set unready (the
// EPOLLOUT wake-up it exists to avoid).
func TestPollConnection(t *testing.T) {
	tests := []struct {
		name string
		ip   net.IP
		net  string
	}{
		{"IPv4", net.IPv4(127, 0, 0, 1), "udp4"},
		{"IPv6", net.IPv6loopback, "udp6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, err := net.ListenUDP(tt.net, &net.UDPAddr{IP: tt.ip})
			if err != nil {
				t.Skipf("no %s loopback: %v", tt.name, err)
			}
			defer peer.Close()
			c, err := listenTransfer(tt.ip)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			pc, ok := c.(*pollConnection)
			if !ok {
				t.Fatalf("listenTransfer(%v) = %T, want *pollConnection", tt.ip, c)
			}
			peerAddr := peer.LocalAddr().(*net.UDPAddr)

			if err := c.sendTo([]byte("\x00\x03\x00\x01data"), peerAddr); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 64)
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, tid, err := peer.ReadFromUDP(buf)
			if err != nil || !bytes.Equal(buf[:n], []byte("\x00\x03\x00\x01data")) {
				t.Fatalf("peer got %q, %v", buf[:n], err)
			}
			events := make([]syscall.EpollEvent, 1)
			if n, err := syscall.EpollWait(int(pc.ep.Fd()), events, 0); err != nil || n != 0 {
				t.Fatalf("after a send the set has %d events (%v), want 0", n, err)
			}

			var froms []*net.UDPAddr
			for _, ack := range []string{"\x00\x04\x00\x01", "\x00\x04\x00\x02"} {
				if _, err := peer.WriteToUDP([]byte(ack), tid); err != nil {
					t.Fatal(err)
				}
				if err := c.setDeadline(5 * time.Second); err != nil {
					t.Fatal(err)
				}
				n, from, err := c.readFrom(buf)
				if err != nil || string(buf[:n]) != ack {
					t.Fatalf("read %q, %v; want %q", buf[:n], err, ack)
				}
				if !from.IP.Equal(peerAddr.IP) || from.Port != peerAddr.Port {
					t.Fatalf("from %v, want %v", from, peerAddr)
				}
				froms = append(froms, from)
			}
			if froms[0] != froms[1] {
				t.Error("a second datagram from the same peer got a new *UDPAddr")
			}

			if err := c.setDeadline(time.Millisecond); err != nil {
				t.Fatal(err)
			}
			_, _, err = c.readFrom(buf)
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("read past the deadline: %v, want a timeout net.Error", err)
			}
		})
	}
}

// TestListenTransferUnspecified: without a local address the family is
// net.ListenUDP's choice, so the plain socket is used.
func TestListenTransferUnspecified(t *testing.T) {
	for _, ip := range []net.IP{nil, net.IPv4zero, net.IPv6unspecified} {
		c, err := listenTransfer(ip)
		if err != nil {
			t.Fatalf("%v: %v", ip, err)
		}
		if _, ok := c.(*connConnection); !ok {
			t.Errorf("listenTransfer(%v) = %T, want *connConnection", ip, c)
		}
		c.close()
	}
}

// TestPollConnectionZone: a link-local peer's zone becomes the scope of
// the address sent to, by interface name or number.
func TestPollConnectionZone(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	tests := []struct {
		zone    string
		want    uint32
		wantErr bool
	}{
		{"lo", uint32(lo.Index), false},
		{"7", 7, false},
		{"no-such-interface", 0, true},
	}
	c := &pollConnection{v6: true}
	for _, tt := range tests {
		err := c.setTo(addrPortOf(&net.UDPAddr{IP: net.ParseIP("fe80::1"), Port: 69, Zone: tt.zone}))
		if (err != nil) != tt.wantErr {
			t.Fatalf("zone %q: err %v, want error %v", tt.zone, err, tt.wantErr)
		}
		if err != nil {
			continue
		}
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&c.to))
		if sa.Scope_id != tt.want {
			t.Errorf("zone %q: scope %d, want %d", tt.zone, sa.Scope_id, tt.want)
		}
	}
}
