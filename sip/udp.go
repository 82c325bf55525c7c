package sip

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// udpConn sits between a UDP socket and sipgo. Several workers read the
// socket; REGISTER and OPTIONS are answered on the spot (no server
// transaction, so no 32 s of Timer J state per request), every other
// datagram is passed to sipgo, which reads it through ReadFrom. Writes
// from sipgo go straight to the socket, so requests we send (NOTIFY) leave
// from the listening port.
type udpConn struct {
	net.PacketConn
	srv   *Server
	local string
	in    chan udpPacket
	done  chan struct{}
	once  sync.Once
	// packets recycles the datagram copies queued in in.
	packets sync.Pool
}

type udpPacket struct {
	data []byte
	addr net.Addr
}

func newUDPConn(pc net.PacketConn, s *Server) *udpConn {
	return &udpConn{PacketConn: pc, srv: s, local: pc.LocalAddr().String(),
		in: make(chan udpPacket, 1024), done: make(chan struct{})}
}

// ReadFrom hands sipgo the datagrams the registrar did not answer.
func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	select {
	case p := <-c.in:
		n := copy(b, p.data)
		c.packetFree(p.data)
		return n, p.addr, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

// Close closes the socket; the readers then stop and sipgo sees ErrClosed.
func (c *udpConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.PacketConn.Close()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// packetSize is the size of pooled datagram copies: SIP over UDP stays
// under 1,300 bytes (RFC 3261 §18.1.1); larger ones get their own copy.
const packetSize = 2048

// packetCopy copies a datagram for the queue to sipgo, into a recycled
// buffer (one per datagram, 6 per call through the proxy).
func (c *udpConn) packetCopy(data []byte) []byte {
	if len(data) > packetSize {
		return bytes.Clone(data)
	}
	b, _ := c.packets.Get().(*[packetSize]byte)
	if b == nil {
		b = new([packetSize]byte)
	}
	return b[:copy(b[:], data)]
}

// packetFree recycles a copy once sipgo has copied it out.
func (c *udpConn) packetFree(b []byte) {
	if cap(b) == packetSize {
		c.packets.Put((*[packetSize]byte)(b[:packetSize]))
	}
}

func (c *udpConn) readLoop(ctx context.Context) {
	buf := make([]byte, 65535)
	for {
		n, addr, err := c.PacketConn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				c.once.Do(func() { close(c.done) })
				return
			}
			c.srv.log.Debug("udp read failed", "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		if c.srv.handleDatagram(ctx, c, buf[:n], addr) {
			continue
		}
		select {
		case c.in <- udpPacket{data: c.packetCopy(buf[:n]), addr: addr}:
		case <-c.done:
			return
		}
	}
}

// handleDatagram answers REGISTER/OPTIONS statelessly and reports whether
// the datagram was consumed (answered, dropped or a keep-alive).
func (s *Server) handleDatagram(ctx context.Context, c *udpConn, data []byte, addr net.Addr) (consumed bool) {
	if len(bytes.Trim(data, "\r\n\x00 ")) == 0 {
		return true // RFC 5626 keep-alive
	}
	if !bytes.HasPrefix(data, []byte("REGISTER ")) && !bytes.HasPrefix(data, []byte("OPTIONS ")) {
		return false
	}
	defer func() {
		if r := recover(); r != nil { // never let a peer's bytes kill a reader
			s.m.dropped.WithLabelValues("panic").Inc()
			s.log.Warn("recovered from a panic on a datagram", "source", addr.String(), "panic", r)
			consumed = true
		}
	}()
	if !cleanHeaders(data) {
		s.m.dropped.WithLabelValues("bare_crlf").Inc()
		return true
	}
	msg, err := s.parser.ParseSIP(data)
	if err != nil {
		s.m.dropped.WithLabelValues("parse").Inc()
		s.log.Debug("dropping unparseable datagram", "source", addr.String(), "err", err)
		return true
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return false
	}
	req.SetTransport("UDP")
	req.SetSource(addr.String())
	res := s.handle(ctx, req, c.local, true)
	if res == nil {
		return true
	}
	b := bufPool.Get().(*bytes.Buffer)
	b.Reset()
	res.StringWrite(b)
	if _, err := c.PacketConn.WriteTo(b.Bytes(), responseAddr(req, addr)); err != nil {
		s.m.dropped.WithLabelValues("write").Inc()
		s.log.Debug("udp write failed", "err", err)
	}
	bufPool.Put(b)
	return true
}

// responseAddr is where a UDP response goes (RFC 3261 §18.2.2, RFC 3581):
// the source address, and the source port when the Via asks for rport,
// else the Via's port.
func responseAddr(req *sip.Request, src net.Addr) net.Addr {
	ua, ok := src.(*net.UDPAddr)
	via := req.Via()
	if !ok || via == nil || via.Params.Has("rport") {
		return src
	}
	port := via.Port
	if port == 0 {
		port = 5060
	}
	if port == ua.Port {
		return src
	}
	return &net.UDPAddr{IP: ua.IP, Port: port, Zone: ua.Zone}
}

func tlsListener(l net.Listener, conf *tls.Config) net.Listener {
	return tls.NewListener(l, conf)
}

// splitHostPort parses "ip:port" into a sip.Addr.
func splitAddr(s string) (sip.Addr, bool) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return sip.Addr{}, false
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return sip.Addr{}, false
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return sip.Addr{}, false
	}
	return sip.Addr{IP: ip, Port: port}, true
}
