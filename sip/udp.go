package sip

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/emiago/sipgo/sip"
	"golang.org/x/sys/unix"
)

// udpConn sits between a UDP socket and sipgo, whose reader reads the
// socket through ReadFrom: REGISTER and OPTIONS go to a bounded queue that
// UDPWorkers answer on the spot (no server transaction, so no 32 s of
// Timer J state per request), every other datagram is returned to sipgo
// as read, with no copy and no hand-over between goroutines. Writes from
// sipgo go straight to the socket, so requests we send (NOTIFY) leave
// from the listening port.
//
// The queue is what keeps an overload graceful: reading costs a few
// microseconds a datagram and a REGISTER with digest ~100, so beyond the
// rate the workers sustain the reader keeps the kernel buffer empty and
// answers what cannot be served in time with 503 + Retry-After from the
// raw bytes (a full queue, or a request that waited longer than
// UDPQueueDelay), and drops a retransmission of a request still queued or
// being answered. Without it a 4 MiB socket buffer held seconds of
// requests, each answered after its sender had retransmitted it, and every
// retransmission was answered again.
type udpConn struct {
	net.PacketConn
	srv   *Server
	local string
	reg   chan udpPacket // REGISTER and OPTIONS, to the workers
	done  chan struct{}
	once  sync.Once
	// packets recycles the datagram copies queued in reg.
	packets sync.Pool

	// udp is the socket when it is a *net.UDPConn: read without an
	// allocated address. sources caches the addresses handed to sipgo
	// (it only formats them); only sipgo's one reader touches it.
	udp     *net.UDPConn
	sources map[netip.AddrPort]net.Addr
	// stamped: the kernel stamps each datagram's arrival (SO_TIMESTAMPNS),
	// read into oob, so a new INVITE's wait in the socket buffer is known.
	stamped bool
	oob     [64]byte

	mu sync.Mutex
	// pending are the REGISTERs and OPTIONS queued or being answered, by
	// source and Via branch: their retransmissions are dropped.
	pending map[pendingKey]struct{}
}

type udpPacket struct {
	data []byte
	addr net.Addr
	at   time.Time // when the reader took it off the socket
	key  pendingKey
}

// pendingKey names a request by its source and top Via branch (RFC 3261
// §17.2.3: a retransmission carries the same branch).
type pendingKey struct {
	src    netip.AddrPort
	branch string
}

func newUDPConn(pc net.PacketConn, s *Server) *udpConn {
	queue := s.cfg.UDPQueue
	if queue <= 0 {
		queue = DefaultConfig().UDPQueue
	}
	c := &udpConn{PacketConn: pc, srv: s, local: pc.LocalAddr().String(),
		reg: make(chan udpPacket, queue), done: make(chan struct{}), sources: map[netip.AddrPort]net.Addr{},
		pending: map[pendingKey]struct{}{}, udp: udpOf(pc)}
	c.stamped = c.udp != nil && stampArrivals(c.udp)
	return c
}

// stampArrivals asks the kernel to stamp each datagram's arrival.
func stampArrivals(u *net.UDPConn) bool {
	rc, err := u.SyscallConn()
	if err != nil {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil || serr != nil {
		return false
	}
	return true
}

// arrival is the kernel's stamp in a datagram's control messages (zero
// when there is none).
func arrival(oob []byte) time.Time {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return time.Time{}
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
		oob = rest
	}
	return time.Time{}
}

func udpOf(pc net.PacketConn) *net.UDPConn {
	u, _ := pc.(*net.UDPConn)
	return u
}

// udpSource is a datagram's source as sipgo sees it: sipgo only formats
// it (String), which cost two allocations per datagram; the text is kept
// per source.
type udpSource string

func (a udpSource) Network() string { return "udp" }
func (a udpSource) String() string  { return string(a) }

// maxSources bounds the cache of formatted sources.
const maxSources = 4096

func (c *udpConn) source(ap netip.AddrPort) net.Addr {
	if a, ok := c.sources[ap]; ok {
		return a
	}
	if len(c.sources) >= maxSources {
		clear(c.sources)
	}
	a := udpSource(ap.String())
	c.sources[ap] = a
	return a
}

// read reads one datagram: its source as an AddrPort (IPv4 unmapped, as
// net.UDPAddr prints it) when the socket is a UDPConn, else as an Addr,
// and when the kernel stamped its arrival (zero: not stamped).
func (c *udpConn) read(b []byte) (int, netip.AddrPort, net.Addr, time.Time, error) {
	if c.udp == nil {
		n, addr, err := c.PacketConn.ReadFrom(b)
		return n, netip.AddrPort{}, addr, time.Time{}, err
	}
	if c.stamped {
		n, oobn, _, ap, err := c.udp.ReadMsgUDPAddrPort(b, c.oob[:])
		var at time.Time
		if err == nil {
			at = arrival(c.oob[:oobn])
		}
		return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil, at, err
	}
	n, ap, err := c.udp.ReadFromUDPAddrPort(b)
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil, time.Time{}, err
}

// ReadFrom is sipgo's reader: it reads the socket, queues REGISTER and
// OPTIONS for the workers, drops keep-alives, and returns the rest.
func (c *udpConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, ap, addr, at, err := c.read(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				c.once.Do(func() { close(c.done) })
				return 0, nil, net.ErrClosed
			}
			select {
			case <-c.done:
				return 0, nil, net.ErrClosed
			default:
			}
			// sipgo stops reading on any other error; a transient one
			// (ICMP feedback, a full buffer) must not end the socket.
			c.srv.log.Debug("udp read failed", "err", err)
			time.Sleep(time.Millisecond)
			continue
		}
		data := b[:n]
		if len(bytes.Trim(data, "\r\n\x00 ")) == 0 {
			continue // RFC 5626 keep-alive
		}
		if bytes.HasPrefix(data, []byte("REGISTER ")) || bytes.HasPrefix(data, []byte("OPTIONS ")) {
			if addr == nil {
				addr = net.UDPAddrFromAddrPort(ap)
			}
			c.enqueue(data, addr)
			continue
		}
		if addr == nil {
			addr = c.source(ap)
		}
		if bytes.HasPrefix(data, []byte("INVITE ")) && c.admitInvite(data, ap, addr, at) {
			continue
		}
		return n, addr, nil
	}
}

// Close closes the socket; the reader and workers then stop and sipgo sees ErrClosed.
func (c *udpConn) Close() error {
	c.once.Do(func() { close(c.done) })
	return c.PacketConn.Close()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// packetSize is the size of pooled datagram copies: SIP over UDP stays
// under 1,300 bytes (RFC 3261 §18.1.1); larger ones get their own copy.
const packetSize = 2048

// packetCopy copies a datagram for a queue, into a recycled buffer.
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

// packetFree recycles a copy once it is answered.
func (c *udpConn) packetFree(b []byte) {
	if cap(b) == packetSize {
		c.packets.Put((*[packetSize]byte)(b[:packetSize]))
	}
}

// enqueue queues a REGISTER or OPTIONS for the workers, drops it when it
// is a retransmission of one queued or being answered, and sheds it when
// the queue is full.
func (c *udpConn) enqueue(data []byte, addr net.Addr) {
	var key pendingKey
	if ua, ok := addr.(*net.UDPAddr); ok {
		key.src = ua.AddrPort()
	}
	if b := rawBranch(data); len(b) > 0 {
		key.branch = string(b)
		c.mu.Lock()
		_, dup := c.pending[key]
		if !dup {
			c.pending[key] = struct{}{}
		}
		c.mu.Unlock()
		if dup {
			c.srv.m.dropped.WithLabelValues("retransmission").Inc()
			return
		}
	}
	if len(c.reg) == cap(c.reg) { // only this reader sends: no copy for a full queue
		c.forget(key)
		c.shed(data, addr, "queue_full")
		return
	}
	c.srv.m.udpQueued.Inc()
	c.reg <- udpPacket{data: c.packetCopy(data), addr: addr, at: c.srv.now(), key: key}
}

// forget ends a request's retransmission guard.
func (c *udpConn) forget(key pendingKey) {
	if key.branch == "" {
		return
	}
	c.mu.Lock()
	delete(c.pending, key)
	c.mu.Unlock()
}

// work answers queued REGISTERs and OPTIONS; one that waited longer than
// UDPQueueDelay is shed, as its sender has retransmitted it already.
func (c *udpConn) work(ctx context.Context) {
	for {
		var p udpPacket
		select {
		case p = <-c.reg:
			c.srv.m.udpQueued.Dec()
		case <-c.done:
			return
		}
		if d := c.srv.cfg.UDPQueueDelay; d > 0 && c.srv.now().Sub(p.at) > d {
			c.shed(p.data, p.addr, "queue_delay")
		} else {
			c.srv.handleDatagram(ctx, c, p.data, p.addr)
		}
		c.forget(p.key)
		c.packetFree(p.data)
	}
}

// shedRetryAfter is the Retry-After (seconds) of a shed REGISTER/OPTIONS:
// short, as an overload of the UDP queue passes in seconds.
const shedRetryAfter = 2

// shed answers a request 503 + Retry-After built from its raw bytes,
// without parsing it or doing any digest work, and counts it.
func (c *udpConn) shed(data []byte, addr net.Addr, reason string) {
	b := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(b)
	b.Reset()
	if !rawShedResponse(b, data, shedRetryAfter, c.srv.cfg.UserAgent) {
		c.srv.m.dropped.WithLabelValues("invalid").Inc()
		return
	}
	// Counted before the answer goes out: whoever reads the 503 then
	// finds it in the metric.
	c.srv.m.udpShed.WithLabelValues(reason).Inc()
	if _, err := c.PacketConn.WriteTo(b.Bytes(), addr); err != nil {
		c.srv.m.dropped.WithLabelValues("write").Inc()
		c.srv.log.Debug("udp write failed", "err", err)
	}
}

// rawHeader names the header of a raw line in its full form, "" for one
// the 503 does not copy.
func rawHeader(line []byte) string {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return ""
	}
	name := bytes.TrimRight(line[:i], " \t")
	for _, h := range [...]struct{ full, compact string }{{"Via", "v"}, {"From", "f"}, {"To", "t"},
		{"Call-ID", "i"}, {"CSeq", ""}} {
		if bytes.EqualFold(name, []byte(h.full)) || h.compact != "" && bytes.EqualFold(name, []byte(h.compact)) {
			return h.full
		}
	}
	return ""
}

// rawShedResponse writes the 503 of a raw request: its Vias, From, To
// (tagged), Call-ID and CSeq lines as they came (RFC 3261 §8.2.6.2), then
// Retry-After. It reports false when the request lacks one of those or
// folds a header line, which the 503 would copy wrong.
func rawShedResponse(b *bytes.Buffer, data []byte, retryAfter int, server string) bool {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	_, headers, ok := bytes.Cut(head, []byte("\r\n"))
	if !ok || !cleanHeaders(data) {
		return false
	}
	b.WriteString("SIP/2.0 503 Service Unavailable\r\n")
	var seen [5]bool
	for line := range bytes.SplitSeq(headers, []byte("\r\n")) {
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return false
		}
		name := rawHeader(line)
		if name == "" {
			continue
		}
		b.Write(line)
		switch name {
		case "Via":
			seen[0] = true
		case "From":
			seen[1] = true
		case "To":
			seen[2] = true
			if !bytes.Contains(bytes.ToLower(line), []byte("tag=")) {
				b.WriteString(";tag=shed")
			}
		case "Call-ID":
			seen[3] = true
		case "CSeq":
			seen[4] = true
		}
		b.WriteString("\r\n")
	}
	if seen != [5]bool{true, true, true, true, true} {
		return false
	}
	b.WriteString("Retry-After: ")
	b.WriteString(strconv.Itoa(retryAfter))
	b.WriteString("\r\nServer: ")
	b.WriteString(stripCRLF(server))
	b.WriteString("\r\nContent-Length: 0\r\n\r\n")
	return true
}

// rawBranch is the branch parameter of a raw request's first Via, nil
// when there is none.
func rawBranch(data []byte) []byte {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	_, headers, _ := bytes.Cut(head, []byte("\r\n"))
	for line := range bytes.SplitSeq(headers, []byte("\r\n")) {
		if rawHeader(line) != "Via" {
			continue
		}
		const key = "branch="
		for i := 0; i+len(key) <= len(line); i++ {
			if !bytes.EqualFold(line[i:i+len(key)], []byte(key)) || i > 0 && line[i-1] != ';' && line[i-1] != ' ' {
				continue
			}
			v := line[i+len(key):]
			if end := bytes.IndexAny(v, ";, \t"); end >= 0 {
				v = v[:end]
			}
			return v
		}
		return nil
	}
	return nil
}

// handleDatagram answers a REGISTER/OPTIONS statelessly and reports whether
// the datagram was consumed (answered or dropped; a response, which a
// REGISTER or OPTIONS start line never parses as, is not).
func (s *Server) handleDatagram(ctx context.Context, c *udpConn, data []byte, addr net.Addr) (consumed bool) {
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
