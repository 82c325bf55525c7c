package dhcpc

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultParams is the option 55 list a Polycom-like handset sends: the
// pool options, NTP and time offset, and every place a boot server may
// hide (66, 160, 150, 43).
var DefaultParams = []byte{OptSubnetMask, OptRouter, OptDNS, OptDomain, OptNTP, OptTimeOffset,
	OptTFTPServer, OptPolycomBoot, OptCiscoTFTP, OptVendorInfo}

// Config describes a client shared by many handsets.
type Config struct {
	// Conn is the shared socket; the client owns it and Close closes it.
	Conn net.PacketConn
	// Server is where requests go: 255.255.255.255:67 on a LAN.
	Server net.Addr
	// VendorClass is option 60 ("" = not sent).
	VendorClass string
	// Params is option 55 (nil = DefaultParams).
	Params []byte
	// RTO is the first retransmission timeout, doubled per try up to
	// MaxRTO; Tries bounds the transmissions of each phase. RFC 2131 4.1
	// starts at 4 s; a load tool wants a lost packet to show sooner.
	RTO, MaxRTO time.Duration
	Tries       int
}

// Lease is what one completed DISCOVER→OFFER→REQUEST→ACK gave a handset.
type Lease struct {
	Addr      netip.Addr
	ServerID  netip.Addr
	LeaseTime time.Duration
	// BootServer is option 160, else option 66, as sent ("" = neither);
	// BootOption says which (0 = neither).
	BootServer string
	BootOption byte
	// OfferAfter runs from the first DISCOVER to the OFFER taken, AckAfter
	// from the first REQUEST to the ACK.
	OfferAfter, AckAfter time.Duration
	Retransmits          int
	Ack                  *Message
}

// Error is a failed exchange; Kind is short and bounded, for error tables.
type Error struct {
	Kind string
	Err  error
}

func (e *Error) Error() string { return "dhcp " + e.Kind + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// ErrClosed means the client's socket was closed or failed mid-exchange.
var ErrClosed = errors.New("dhcpc: client closed")

// Stats are the client's socket-level counters.
type Stats struct {
	Sent, Retransmits int64
	// Replies reached a waiting handset; Unmatched carried an xid no one
	// waits for (late duplicates, other clients); WrongHW had a waiting xid
	// but another chaddr; Malformed did not parse; Overflow found the
	// handset's queue full.
	Replies, Unmatched, WrongHW, Malformed, Overflow int64
}

// reply is one datagram handed to a waiting handset.
type reply struct {
	m   *Message
	err error // set when the datagram carried the xid but did not parse
}

type waiter struct {
	hw net.HardwareAddr
	ch chan reply
}

// Client runs the exchanges of many handsets over one socket.
type Client struct {
	cfg     Config
	mu      sync.Mutex
	waiters map[uint32]*waiter
	done    chan struct{}
	readErr error // set by the reader before done is closed

	sent, retrans, replies, unmatched, wrongHW, malformed, overflow atomic.Int64
}

// New starts the client's reader on cfg.Conn.
func New(cfg Config) *Client {
	if cfg.Params == nil {
		cfg.Params = DefaultParams
	}
	if cfg.RTO <= 0 {
		cfg.RTO = time.Second
	}
	if cfg.MaxRTO < cfg.RTO {
		cfg.MaxRTO = 8 * cfg.RTO
	}
	if cfg.Tries < 1 {
		cfg.Tries = 4
	}
	c := &Client{cfg: cfg, waiters: map[uint32]*waiter{}, done: make(chan struct{})}
	go c.readLoop()
	return c
}

// Close closes the socket and waits for the reader.
func (c *Client) Close() error {
	err := c.cfg.Conn.Close()
	<-c.done
	return err
}

// Stats returns the counters so far.
func (c *Client) Stats() Stats {
	return Stats{Sent: c.sent.Load(), Retransmits: c.retrans.Load(), Replies: c.replies.Load(),
		Unmatched: c.unmatched.Load(), WrongHW: c.wrongHW.Load(), Malformed: c.malformed.Load(), Overflow: c.overflow.Load()}
}

func (c *Client) readLoop() {
	defer close(c.done)
	buf := make([]byte, 64<<10)
	for {
		n, _, err := c.cfg.Conn.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				c.readErr = err
			}
			return
		}
		c.dispatch(buf[:n])
	}
}

// dispatch hands a datagram to the handset waiting for its xid. A reply
// that carries a waiting xid but does not parse still goes to it, so the
// handset fails with "malformed_reply" instead of a puzzling timeout.
func (c *Client) dispatch(b []byte) {
	if len(b) < 8 {
		c.malformed.Add(1)
		return
	}
	xid := binary.BigEndian.Uint32(b[4:])
	c.mu.Lock()
	w := c.waiters[xid]
	c.mu.Unlock()
	m, err := Parse(b)
	switch {
	case w == nil:
		if err != nil {
			c.malformed.Add(1)
		} else {
			c.unmatched.Add(1)
		}
		return
	case err != nil:
		c.malformed.Add(1)
	case m.Op != OpReply:
		c.unmatched.Add(1)
		return
	case !bytes.Equal(m.HWAddr(), w.hw):
		c.wrongHW.Add(1)
		return
	}
	// Counted before the send: once the handset has its reply, Stats must
	// already include it.
	c.replies.Add(1)
	select {
	case w.ch <- reply{m: m, err: err}:
	default:
		c.replies.Add(-1)
		c.overflow.Add(1)
	}
}

// register picks an unused, non-zero xid for hw.
func (c *Client) register(hw net.HardwareAddr) (uint32, *waiter) {
	w := &waiter{hw: hw, ch: make(chan reply, 4)}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		xid := rand.Uint32()
		if _, taken := c.waiters[xid]; !taken && xid != 0 {
			c.waiters[xid] = w
			return xid, w
		}
	}
}

func (c *Client) unregister(xid uint32) {
	c.mu.Lock()
	delete(c.waiters, xid)
	c.mu.Unlock()
}

// Acquire runs DISCOVER→OFFER→REQUEST→ACK for hw (a 6-byte MAC) and
// returns the lease. It takes the first acceptable OFFER.
func (c *Client) Acquire(ctx context.Context, hw net.HardwareAddr) (Lease, error) {
	return c.AcquireAs(ctx, hw, c.cfg.VendorClass)
}

// AcquireAs is Acquire with option 60 set to vendorClass ("" = none): a
// shared client serves handsets of several vendors.
func (c *Client) AcquireAs(ctx context.Context, hw net.HardwareAddr, vendorClass string) (Lease, error) {
	if len(hw) != 6 {
		return Lease{}, &Error{Kind: "bad_mac", Err: fmt.Errorf("%v is not a 6-byte MAC", hw)}
	}
	xid, w := c.register(hw)
	defer c.unregister(xid)
	start := time.Now()
	var l Lease
	offer, err := c.exchange(ctx, w, "offer", &l.Retransmits, func() []byte { return c.discover(xid, hw, start, vendorClass).Marshal() }, acceptOffer)
	if err != nil {
		return l, err
	}
	l.OfferAfter = time.Since(start)
	sid, _ := offer.Addr(OptServerID)
	reqAt := time.Now()
	ack, err := c.exchange(ctx, w, "ack", &l.Retransmits, func() []byte { return c.request(xid, hw, start, offer, vendorClass).Marshal() },
		func(m *Message) (bool, error) { return acceptAck(m, offer.YIAddr, sid) })
	if err != nil {
		return l, err
	}
	l.AckAfter = time.Since(reqAt)
	l.Addr, l.ServerID, l.Ack = ack.YIAddr, sid, ack
	l.LeaseTime, _ = ack.Seconds(OptLeaseTime)
	l.BootServer, l.BootOption = BootServer(ack)
	return l, nil
}

// exchange sends build() and waits for a reply accept takes, retransmitting
// with a doubling, jittered timeout; phase names the awaited reply.
func (c *Client) exchange(ctx context.Context, w *waiter, phase string, retrans *int, build func() []byte,
	accept func(*Message) (bool, error)) (*Message, error) {
	rto := c.cfg.RTO
	for try := range c.cfg.Tries {
		if try > 0 {
			*retrans++
			c.retrans.Add(1)
		}
		if _, err := c.cfg.Conn.WriteTo(build(), c.cfg.Server); err != nil {
			return nil, &Error{Kind: "send", Err: fmt.Errorf("waiting for %s: %w", phase, err)}
		}
		c.sent.Add(1)
		m, err := c.await(ctx, w, jitter(rto), accept)
		if m != nil || err != nil {
			return m, err
		}
		rto = min(2*rto, c.cfg.MaxRTO)
	}
	return nil, &Error{Kind: "timeout_" + phase, Err: fmt.Errorf("no %s after %d transmissions", phase, c.cfg.Tries)}
}

// await returns the first reply accept takes, nil on timeout, or an error.
func (c *Client) await(ctx context.Context, w *waiter, d time.Duration, accept func(*Message) (bool, error)) (*Message, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case r := <-w.ch:
			if r.err != nil {
				return nil, &Error{Kind: "malformed_reply", Err: r.err}
			}
			ok, err := accept(r.m)
			if err != nil {
				return nil, err
			}
			if ok {
				return r.m, nil
			}
		case <-t.C:
			return nil, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("dhcp: %w", ctx.Err())
		case <-c.done:
			return nil, &Error{Kind: "socket", Err: errors.Join(ErrClosed, c.readErr)}
		}
	}
}

// jitter spreads d over [0.75d, 1.25d) so thousands of handsets that lost
// packets together do not retransmit together (RFC 2131 4.1 randomises too).
func jitter(d time.Duration) time.Duration {
	return d*3/4 + rand.N(d/2+1)
}

// acceptOffer takes an OFFER with an address and a server identifier and
// ignores every other type (a late ACK/NAK of nobody's business).
func acceptOffer(m *Message) (bool, error) {
	if m.Type() != Offer {
		return false, nil
	}
	if !m.YIAddr.Is4() || m.YIAddr.IsUnspecified() {
		return false, &Error{Kind: "bad_offer", Err: errors.New("OFFER without yiaddr")}
	}
	if _, ok := m.Addr(OptServerID); !ok {
		return false, &Error{Kind: "bad_offer", Err: errors.New("OFFER without option 54")}
	}
	return true, nil
}

// acceptAck takes the ACK of the offered address from the chosen server;
// a NAK from it ends the exchange; duplicate OFFERs are ignored.
func acceptAck(m *Message, offered, sid netip.Addr) (bool, error) {
	if s, ok := m.Addr(OptServerID); ok && s != sid {
		return false, nil // another server's answer
	}
	switch m.Type() {
	case Nak:
		return false, &Error{Kind: "nak", Err: fmt.Errorf("NAK: %q", m.Text(OptMessage))}
	case Ack:
		if m.YIAddr != offered {
			return false, &Error{Kind: "bad_ack", Err: fmt.Errorf("ACK for %v, offered %v", m.YIAddr, offered)}
		}
		return true, nil
	}
	return false, nil
}

// base is the common part of a handset's requests.
func (c *Client) base(t MsgType, xid uint32, hw net.HardwareAddr, start time.Time, vendorClass string) *Message {
	m := &Message{Op: OpRequest, HType: 1, HLen: 6, XID: xid, Flags: FlagBroadcast,
		Secs: uint16(min(time.Since(start)/time.Second, 0xffff)), Options: Options{}}
	copy(m.CHAddr[:], hw)
	m.Options[OptMsgType] = []byte{byte(t)}
	m.Options[OptClientID] = append([]byte{1}, hw...)
	m.Options[OptParams] = c.cfg.Params
	if vendorClass != "" {
		m.Options[OptVendorClass] = []byte(vendorClass)
	}
	return m
}

func (c *Client) discover(xid uint32, hw net.HardwareAddr, start time.Time, vendorClass string) *Message {
	return c.base(Discover, xid, hw, start, vendorClass)
}

// request is the SELECTING-state REQUEST for offer (RFC 2131 4.3.2):
// requested address and server identifier, ciaddr zero.
func (c *Client) request(xid uint32, hw net.HardwareAddr, start time.Time, offer *Message, vendorClass string) *Message {
	m := c.base(Request, xid, hw, start, vendorClass)
	ip := offer.YIAddr.As4()
	m.Options[OptRequestedIP] = ip[:]
	m.Options[OptServerID] = offer.Options[OptServerID]
	return m
}

// BootServer returns option 160, else option 66, and its code; a Polycom
// looks for 160 first.
func BootServer(m *Message) (string, byte) {
	for _, code := range []byte{OptPolycomBoot, OptTFTPServer} {
		if v := strings.TrimSpace(m.Text(code)); v != "" {
			return v, code
		}
	}
	return "", 0
}

// BootURL turns a boot server option into a provisioning base URL the way
// a handset set to HTTP reads it: a URL keeps its http or https scheme, a
// bare host[:port][/path] gets http://. Other schemes are refused: the
// simulated handset only speaks HTTP.
func BootURL(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", errors.New("empty boot server")
	}
	if !strings.Contains(v, "://") {
		v = "http://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		return "", fmt.Errorf("boot server %q: %w", v, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("boot server %q: scheme %q is not http or https", v, u.Scheme)
	}
	if u.Host == "" {
		return "", fmt.Errorf("boot server %q: no host", v)
	}
	return u.String(), nil
}
