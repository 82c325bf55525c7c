//go:build !386
// +build !386

package tftp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"syscall"
	"time"
	"unsafe"
)

// pollConnection is a transfer's UDP socket that Go's poller watches for
// reads only.
//
// Go registers every socket for EPOLLIN|EPOLLOUT, edge-triggered, and on
// Linux a UDP socket signals EPOLLOUT each time a datagram it sent is freed:
// every DATA block (and every ACK of an upload) woke the thread parked in
// epoll_wait for an event no goroutine waits on (golang/go#17249), a thread
// wake-up per block. Here the socket sits in an epoll set of its own,
// registered for EPOLLIN only, and that set is what Go's poller watches: a
// send wakes nobody, a datagram wakes the transfer's goroutine as before.
type pollConnection struct {
	fd  int
	ep  *os.File        // the epoll set; its deadline is the read timeout
	rc  syscall.RawConn // ep's, to wait for the set to become readable
	v6  bool
	sa  syscall.RawSockaddrAny // the last datagram's source
	to  syscall.RawSockaddrAny // where sendTo last sent
	toL uint32
	// toAP is to's address, so a transfer's sends build it once.
	toAP   netip.AddrPort
	recvFn func(uintptr) bool // c.recv
	buf    []byte             // readFrom's buffer, for recv
	n      int                // recv's results
	errno  syscall.Errno
	// from is the address the last datagram came from, returned again
	// while the peer stays the same (as connConnection).
	from   *net.UDPAddr
	fromAP netip.AddrPort
}

// listenTransfer opens a transfer's socket on ip, port 0: a
// pollConnection, or a plain connConnection where one cannot be made (an
// unspecified local address, whose family only net.ListenUDP picks well).
func listenTransfer(ip net.IP) (connection, error) {
	if ip != nil && !ip.IsUnspecified() {
		if c, err := newPollConnection(ip); err == nil {
			return c, nil
		}
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip})
	if err != nil {
		return nil, err
	}
	return &connConnection{conn: conn}, nil
}

func newPollConnection(ip net.IP) (_ *pollConnection, err error) {
	c := &pollConnection{fd: -1}
	c.recvFn = c.recv
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ip4 := ip.To4(); ip4 != nil {
		a := &syscall.SockaddrInet4{}
		copy(a.Addr[:], ip4)
		sa = a
	} else {
		family, c.v6 = syscall.AF_INET6, true
		a := &syscall.SockaddrInet6{}
		copy(a.Addr[:], ip.To16())
		sa = a
	}
	fd, err := syscall.Socket(family, syscall.SOCK_DGRAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, syscall.IPPROTO_UDP)
	if err != nil {
		return nil, err
	}
	c.fd = fd
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	// As net.ListenUDP does.
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1); err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, sa); err != nil {
		return nil, err
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(fd)}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	c.ep = os.NewFile(uintptr(epfd), "tftp-transfer-epoll")
	if c.rc, err = c.ep.SyscallConn(); err != nil {
		return nil, err
	}
	// A deadline needs the set in Go's poller; NewFile falls back to a
	// blocking file without saying so.
	if err := c.ep.SetReadDeadline(time.Time{}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *pollConnection) sendTo(data []byte, addr *net.UDPAddr) error {
	if ap := addrPortOf(addr); ap != c.toAP || c.toL == 0 {
		if err := c.setTo(ap); err != nil {
			return err
		}
	}
	if len(data) == 0 {
		return errors.New("tftp: empty datagram")
	}
	for {
		_, _, e := syscall.Syscall6(syscall.SYS_SENDTO, uintptr(c.fd),
			uintptr(unsafe.Pointer(&data[0])), uintptr(len(data)), 0,
			uintptr(unsafe.Pointer(&c.to)), uintptr(c.toL))
		switch e {
		case 0:
			return nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			// The send buffer is full (never seen on a transfer's
			// lock-step traffic): the datagram is lost, as on the
			// wire, and the retransmission timeout resends it.
			return nil
		default:
			return os.NewSyscallError("sendto", e)
		}
	}
}

// setTo stores ap in c.to in the socket's family.
func (c *pollConnection) setTo(ap netip.AddrPort) error {
	c.to = syscall.RawSockaddrAny{}
	addr, port := ap.Addr(), ap.Port()
	if !c.v6 {
		if !addr.Unmap().Is4() {
			return errors.New("tftp: IPv6 peer on an IPv4 transfer socket")
		}
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&c.to))
		sa.Family = syscall.AF_INET
		sa.Addr = addr.Unmap().As4()
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		c.toL = syscall.SizeofSockaddrInet4
	} else {
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&c.to))
		sa.Family = syscall.AF_INET6
		sa.Addr = addr.As16()
		if zone := addr.Zone(); zone != "" {
			// A link-local peer: its zone (an interface's name or
			// index) is the scope, looked up once per transfer.
			if ifi, err := net.InterfaceByName(zone); err == nil {
				sa.Scope_id = uint32(ifi.Index)
			} else if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
				sa.Scope_id = uint32(n)
			} else {
				return fmt.Errorf("tftp: zone of %v: %w", ap, err)
			}
		}
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		p[0], p[1] = byte(port>>8), byte(port)
		c.toL = syscall.SizeofSockaddrInet6
	}
	c.toAP = ap
	return nil
}

func addrPortOf(a *net.UDPAddr) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.IP)
	return netip.AddrPortFrom(ip.WithZone(a.Zone), uint16(a.Port))
}

func (c *pollConnection) readFrom(buffer []byte) (int, *net.UDPAddr, error) {
	if len(buffer) == 0 {
		return 0, nil, errors.New("tftp: empty read buffer")
	}
	c.buf = buffer
	err := c.rc.Read(c.recvFn)
	c.buf = nil
	n, errno := c.n, c.errno
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0, nil, &connectionError{error: err, timeout: true, temporary: true}
		}
		return 0, nil, err
	}
	if errno != 0 {
		return 0, nil, os.NewSyscallError("recvfrom", errno)
	}
	ap := c.source()
	if c.from == nil || ap != c.fromAP {
		c.from, c.fromAP = net.UDPAddrFromAddrPort(ap), ap
	}
	return n, c.from, nil
}

// recv is rc.Read's callback, a method value made once per transfer (a
// closure per read would be an allocation per ACK).
func (c *pollConnection) recv(uintptr) bool {
	saLen := uint32(syscall.SizeofSockaddrAny)
	r, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, uintptr(c.fd),
		uintptr(unsafe.Pointer(&c.buf[0])), uintptr(len(c.buf)), 0,
		uintptr(unsafe.Pointer(&c.sa)), uintptr(unsafe.Pointer(&saLen)))
	if e == syscall.EAGAIN || e == syscall.EINTR {
		return false // wait until the set says the socket is readable
	}
	c.n, c.errno = int(r), e
	return true
}

// source returns the last datagram's source address.
func (c *pollConnection) source() netip.AddrPort {
	switch c.sa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(&c.sa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&c.sa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

func (c *pollConnection) setDeadline(d time.Duration) error {
	return c.ep.SetReadDeadline(time.Now().Add(d))
}

func (c *pollConnection) close() {
	if c.ep != nil {
		c.ep.Close()
		c.ep = nil
	}
	if c.fd >= 0 {
		syscall.Close(c.fd)
		c.fd = -1
	}
}
