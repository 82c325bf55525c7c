package sipua

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Config describes one UA.
type Config struct {
	// Local is the ip:port to bind ("127.0.0.1:0").
	Local string
	// Server is the registrar/proxy host:port every request goes to.
	Server    string
	UserAgent string
	// Algorithm picks among the offered challenges: "" or "auto" prefers
	// SHA-256, else the named one ("MD5", "SHA-256").
	Algorithm string
	// T1 is the first retransmission interval (500 ms); Timeout ends a
	// transaction (Timer F, 32 s).
	T1      time.Duration
	Timeout time.Duration
	// AcceptCalls answers INVITE with 200 OK.
	AcceptCalls bool
	// SplitContact binds a second socket on the same address: requests
	// (REGISTER, INVITE, …) go out from the first one, which also receives
	// their responses, while the Contact names the second one, the only one
	// that answers requests from the network (NOTIFY, INVITE). A request
	// that reaches the sending port is dropped and counted, as a phone
	// whose NAT or port setup differs between the two would lose it.
	SplitContact bool
	// Validation, when set, makes the UA challenge requests from the
	// network before it accepts them (Polycom's requestValidation).
	Validation *Validation
}

// Event is an in-dialog or out-of-dialog request the UA answered.
type Event struct {
	Method string
	// Name is the Event header of a NOTIFY ("check-sync", …).
	Name string
	At   time.Time
	// User is the user the request was addressed to (Request-URI, else
	// To); AuthUser the digest username that validated it (Validation).
	User, AuthUser string
	// Refused: Validation refused the request's credentials (it got 403,
	// not 200); WaitEvent skips such events.
	Refused bool
}

// Stats counts what the UA did with requests from the network.
type Stats struct {
	// Challenged: requests answered 401 by Validation (one per attempt).
	Challenged int64
	// Refused: requests whose credentials Validation refused.
	Refused int64
	// Misdirected: requests that reached the sending port of a UA with
	// SplitContact, dropped unanswered.
	Misdirected int64
}

// UA is one handset's SIP stack.
type UA struct {
	cfg Config
	// conn sends requests and receives their responses (laddr); lconn
	// receives requests (caddr, the Contact). They are one socket unless
	// SplitContact.
	conn, lconn  *net.UDPConn
	laddr, caddr *net.UDPAddr
	raddr        *net.UDPAddr

	mu     sync.Mutex
	tx     map[string]chan *sip.Response
	seen   map[string]struct{}
	nonces map[string]time.Time

	challenged, refused, misdirected atomic.Int64

	events chan Event
	done   chan struct{}
	wg     sync.WaitGroup
}

// ErrTimeout means no final response arrived within the transaction timeout.
var ErrTimeout = errors.New("sipua: transaction timeout")

// New binds the socket and starts the reader.
func New(cfg Config) (*UA, error) {
	if cfg.T1 <= 0 {
		cfg.T1 = 500 * time.Millisecond
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 32 * time.Second
	}
	if cfg.Local == "" {
		cfg.Local = "127.0.0.1:0"
	}
	raddr, err := net.ResolveUDPAddr("udp", cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("sipua: server %q: %w", cfg.Server, err)
	}
	laddr, err := net.ResolveUDPAddr("udp", cfg.Local)
	if err != nil {
		return nil, fmt.Errorf("sipua: local %q: %w", cfg.Local, err)
	}
	if laddr.IP == nil || laddr.IP.IsUnspecified() {
		// A phone puts its own address in Via and Contact, never 0.0.0.0:
		// take the one the kernel routes towards the server.
		if c, err := net.DialUDP("udp", nil, raddr); err == nil {
			laddr.IP = c.LocalAddr().(*net.UDPAddr).IP
			c.Close()
		}
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("sipua: listen: %w", err)
	}
	lconn := conn
	if cfg.SplitContact {
		c := *laddr
		c.Port = 0
		if lconn, err = net.ListenUDP("udp", &c); err != nil {
			conn.Close()
			return nil, fmt.Errorf("sipua: listen contact: %w", err)
		}
	}
	u := &UA{cfg: cfg, conn: conn, lconn: lconn, laddr: conn.LocalAddr().(*net.UDPAddr),
		caddr: lconn.LocalAddr().(*net.UDPAddr), raddr: raddr,
		tx: map[string]chan *sip.Response{}, seen: map[string]struct{}{}, nonces: map[string]time.Time{},
		events: make(chan Event, 32), done: make(chan struct{})}
	u.wg.Add(1)
	go u.read(conn)
	if lconn != conn {
		u.wg.Add(1)
		go u.read(lconn)
	}
	return u, nil
}

// LocalAddr is the address requests reach: the one in the Contact.
func (u *UA) LocalAddr() *net.UDPAddr { return u.caddr }

// SendAddr is the address requests are sent from (LocalAddr unless
// SplitContact).
func (u *UA) SendAddr() *net.UDPAddr { return u.laddr }

// Stats returns the counters so far.
func (u *UA) Stats() Stats {
	return Stats{Challenged: u.challenged.Load(), Refused: u.refused.Load(), Misdirected: u.misdirected.Load()}
}

// Close stops the readers and closes the sockets.
func (u *UA) Close() error {
	select {
	case <-u.done:
		return nil
	default:
	}
	close(u.done)
	err := u.conn.Close()
	if u.lconn != u.conn {
		if e := u.lconn.Close(); err == nil {
			err = e
		}
	}
	u.wg.Wait()
	return err
}

// Events delivers answered requests (NOTIFY, INVITE, BYE), de-duplicated
// against retransmissions. It drops events when nobody reads.
func (u *UA) Events() <-chan Event { return u.events }

// WaitEvent waits for a request of method (and, for NOTIFY, event name
// prefix) and returns when it arrived.
func (u *UA) WaitEvent(ctx context.Context, method, name string) (time.Time, error) {
	for {
		select {
		case ev := <-u.events:
			if !ev.Refused && ev.Method == method && strings.HasPrefix(strings.ToLower(ev.Name), strings.ToLower(name)) {
				return ev.At, nil
			}
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("wait %s %s: %w", method, name, ctx.Err())
		}
	}
}

// DrainEvents forgets events received so far (before an action whose
// NOTIFY must be told apart from older ones).
func (u *UA) DrainEvents() {
	for {
		select {
		case <-u.events:
		default:
			return
		}
	}
}

func (u *UA) read(conn *net.UDPConn) {
	defer u.wg.Done()
	// 8 KiB: more than any REGISTER answer or NOTIFY a handset gets over
	// UDP, and 10,000 readers of 64 KiB would cost 650 MB.
	buf := make([]byte, 8192)
	for {
		n, src, err := conn.ReadFromUDP(buf)
		if err != nil {
			return
		}
		if n < 8 {
			continue // keep-alive CRLF and noise
		}
		data := make([]byte, n)
		copy(data, buf[:n])
		msg, err := sip.ParseMessage(data)
		if err != nil {
			continue
		}
		switch m := msg.(type) {
		case *sip.Response:
			u.deliver(m)
		case *sip.Request:
			if conn != u.lconn {
				u.misdirected.Add(1)
				continue
			}
			m.SetSource(src.String())
			u.answer(m, src)
		}
	}
}

func (u *UA) deliver(res *sip.Response) {
	via := res.Via()
	if via == nil {
		return
	}
	branch, _ := via.Params.Get("branch")
	u.mu.Lock()
	ch := u.tx[branch]
	u.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- res:
	default:
	}
}

// answer replies to a request from the network: NOTIFY, OPTIONS, BYE and
// CANCEL get 200, INVITE 200 with SDP when AcceptCalls (else 486), ACK
// nothing, anything else 501. With Validation, the methods it names are
// first challenged (401) and then accepted only with valid credentials
// (else 403).
func (u *UA) answer(req *sip.Request, src *net.UDPAddr) {
	code, reason := 200, "OK"
	var body []byte
	ev := Event{Method: req.Method.String(), User: addressedUser(req)}
	switch req.Method {
	case sip.ACK:
		return
	case sip.NOTIFY, sip.OPTIONS, sip.BYE, sip.CANCEL:
	case sip.INVITE:
		if !u.cfg.AcceptCalls {
			code, reason = 486, "Busy Here"
		}
	default:
		code, reason = 501, "Not Implemented"
	}
	key := req.Method.String() + " " + req.CallID().Value() + " " + strconv.FormatUint(uint64(req.CSeq().SeqNo), 10)
	if code < 300 && u.cfg.Validation.covers(req.Method) {
		v := u.validate(req)
		if v.challenge != nil {
			// A retransmission of the request is the same transaction: a
			// phone answers it again, and it is one challenge.
			if !u.note("401 " + key) {
				u.challenged.Add(1)
			}
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			res.AppendHeader(v.challenge)
			_, _ = u.lconn.WriteToUDP([]byte(res.String()), src)
			return
		}
		ev.User, ev.AuthUser = v.user, v.authUser
		if !v.ok {
			code, reason, ev.Refused = 403, "Forbidden", true
		}
	}
	if req.Method == sip.INVITE && code == 200 {
		body = sdp(u.caddr)
	}
	res := sip.NewResponseFromRequest(req, code, reason, body)
	if to := res.To(); to != nil && req.Method == sip.INVITE {
		if _, ok := to.Params.Get("tag"); !ok {
			to.Params.Add("tag", sip.GenerateTagN(10))
		}
		res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", Host: u.caddr.IP.String(), Port: u.caddr.Port}})
		if body != nil {
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		}
	}
	if req.Method == sip.OPTIONS || req.Method == sip.CANCEL {
		_, _ = u.lconn.WriteToUDP([]byte(res.String()), src)
		return
	}
	dup := u.note(key)
	if ev.Refused && !dup {
		// Counted before the answer goes out: whoever reads the answer
		// then finds it in Stats.
		u.refused.Add(1)
	}
	_, _ = u.lconn.WriteToUDP([]byte(res.String()), src)
	if dup {
		return
	}
	ev.At = time.Now()
	if h := req.GetHeader("Event"); h != nil {
		ev.Name = h.Value()
	}
	select {
	case u.events <- ev:
	default:
	}
}

// note records key (a request's method, Call-ID and CSeq) and reports
// whether it was seen already: a retransmission.
func (u *UA) note(key string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, dup := u.seen[key]; dup {
		return true
	}
	if len(u.seen) > 256 {
		clear(u.seen)
	}
	u.seen[key] = struct{}{}
	return false
}

func sdp(a *net.UDPAddr) []byte {
	ip := a.IP.String()
	return []byte("v=0\r\no=- 1 1 IN IP4 " + ip + "\r\ns=-\r\nc=IN IP4 " + ip +
		"\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")
}

// transact sends req and waits for its final response, retransmitting
// over UDP per RFC 3261 (Timer A/E doubling from T1, capped at 4 s for
// non-INVITE; INVITE stops retransmitting on a provisional response).
func (u *UA) transact(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	branch, _ := req.Via().Params.Get("branch")
	ch := make(chan *sip.Response, 8)
	u.mu.Lock()
	u.tx[branch] = ch
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		delete(u.tx, branch)
		u.mu.Unlock()
	}()
	data := []byte(req.String())
	if _, err := u.conn.WriteToUDP(data, u.raddr); err != nil {
		return nil, fmt.Errorf("send %s: %w", req.Method, err)
	}
	ctx, cancel := context.WithTimeout(ctx, u.cfg.Timeout)
	defer cancel()
	interval := u.cfg.T1
	timer := time.NewTimer(interval)
	defer timer.Stop()
	retransmit := true
	for {
		select {
		case res := <-ch:
			if res.StatusCode < 200 {
				if req.IsInvite() {
					retransmit = false
				}
				continue
			}
			return res, nil
		case <-timer.C:
			if retransmit {
				_, _ = u.conn.WriteToUDP(data, u.raddr)
			}
			interval *= 2
			if !req.IsInvite() && interval > 4*time.Second {
				interval = 4 * time.Second
			}
			timer.Reset(interval)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, fmt.Errorf("%s: %w", req.Method, ErrTimeout)
			}
			return nil, ctx.Err()
		case <-u.done:
			return nil, net.ErrClosed
		}
	}
}

// newRequest builds a request to ruri with fresh Via branch, our Contact,
// Max-Forwards and User-Agent; From/To/Call-ID/CSeq come from the caller.
func (u *UA) newRequest(method sip.RequestMethod, ruri sip.Uri) *sip.Request {
	req := sip.NewRequest(method, ruri)
	// Via names the sending port: responses come back there.
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
		Host: u.laddr.IP.String(), Port: u.laddr.Port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranch())
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	if u.cfg.UserAgent != "" {
		req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	}
	return req
}

// contact names the listening port: requests from the network go there.
func (u *UA) contact(user string) *sip.ContactHeader {
	return &sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: u.caddr.IP.String(), Port: u.caddr.Port},
		Params: sip.NewParams()}
}
