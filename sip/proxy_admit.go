package sip

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
)

// admission takes or sheds new INVITEs over UDP at the socket's reader,
// before they are parsed, get a goroutine and a transaction: under a burst
// the memory grew there (thousands of handler goroutines queued for the
// CPU, each with its parsed request and stack) before max_calls, counted
// in the handler, saw the calls. A new INVITE is shed when max_calls or
// max_dialogs is reached, or while the INVITEs taken last waited longer
// than queue_delay between the reader and the proxy: that wait is the
// backlog, and a caller retransmits an INVITE not answered within T1
// (500 ms), which doubles the work of an overloaded proxy.
//
// It remembers the INVITEs it took (source and top Via branch, RFC 3261
// §17.2.3) for 1–2 admitTTL, so their retransmissions always reach their
// transaction and are never shed; two generations swapped every admitTTL
// bound that to 2 × admitTTL of calls, with no goroutine.
type admission struct {
	target time.Duration // queue_delay; 0: no shedding on delay

	mu        sync.Mutex
	cur, prev map[pendingKey]time.Time // when the reader took it; zero once the proxy saw it
	rotated   time.Time
	// shedUntil: an INVITE taken waited longer than target; new ones
	// are shed until then (or until one taken waits less).
	shedUntil time.Time
}

// admitTTL outlasts an INVITE's retransmissions while it waits for its
// 100 Trying: at 0.5, 1.5 and 3.5 s (T1 doubling).
const admitTTL = 4 * time.Second

func newAdmission(target time.Duration) *admission {
	return &admission{target: target, cur: map[pendingKey]time.Time{}, prev: map[pendingKey]time.Time{}}
}

func (a *admission) rotate(now time.Time) {
	if now.Sub(a.rotated) >= admitTTL {
		a.prev, a.cur, a.rotated = a.cur, make(map[pendingKey]time.Time, len(a.cur)), now
	}
}

// admit decides on an INVITE read at now after it waited in the socket
// buffer; full names max_calls ("calls") or max_dialogs ("dialogs")
// reached, "" neither. A retransmission of one taken is always taken.
func (a *admission) admit(key pendingKey, now time.Time, full string, waited time.Duration) (ok bool, reason string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rotate(now)
	if _, ok := a.cur[key]; ok {
		return true, ""
	}
	if _, ok := a.prev[key]; ok {
		return true, ""
	}
	if full != "" {
		return false, full
	}
	if a.target > 0 && (waited > a.target || now.Before(a.shedUntil)) {
		return false, "delay"
	}
	a.cur[key] = now
	return true, ""
}

// reached notes that the proxy got an INVITE taken by admit, at now: its
// wait sets whether new ones are shed for the next target.
func (a *admission) reached(key pendingKey, now time.Time) {
	if a.target <= 0 {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	m := a.cur
	at, ok := m[key]
	if !ok {
		m = a.prev
		if at, ok = m[key]; !ok {
			return
		}
	}
	if at.IsZero() {
		return // a retransmission: the first one counted
	}
	m[key] = time.Time{}
	if now.Sub(at) > a.target {
		a.shedUntil = now.Add(a.target)
	} else {
		a.shedUntil = time.Time{}
	}
}

// admitKey names an INVITE the proxy handles as the reader named it; ok
// is false for other transports or one without a branch.
func admitKey(req *sip.Request) (pendingKey, bool) {
	if !strings.EqualFold(req.Transport(), "udp") {
		return pendingKey{}, false
	}
	via := req.Via()
	if via == nil {
		return pendingKey{}, false
	}
	b, _ := via.Params.Get("branch")
	src, err := netip.ParseAddrPort(req.Source())
	if b == "" || err != nil {
		return pendingKey{}, false
	}
	return pendingKey{src: netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), branch: b}, true
}

// admitInvite is the reader's part: a datagram starting "INVITE " from
// src that is not in a dialog (no To tag) is taken or answered 503 with
// Retry-After from its raw bytes. It reports whether it was shed.
// arrived is when the kernel got it (zero: unknown).
func (c *udpConn) admitInvite(data []byte, src netip.AddrPort, addr net.Addr, arrived time.Time) (shed bool) {
	p := c.srv.proxy.Load()
	if p == nil || !src.IsValid() || rawToTagged(data) {
		return false
	}
	b := rawBranch(data)
	if len(b) == 0 {
		return false // the handler sheds it, if need be
	}
	full := ""
	switch {
	case p.held.Load() >= int64(p.cfg.MaxCalls):
		full = "calls"
	case p.dialogs.len() >= p.cfg.MaxDialogs:
		full = "dialogs"
	}
	now := time.Now() // the kernel's clock, not p.now: the wait is real time
	var waited time.Duration
	if !arrived.IsZero() {
		waited = now.Sub(arrived)
	}
	ok, reason := p.admit.admit(pendingKey{src: src, branch: string(b)}, p.now(), full, waited)
	if ok {
		return false
	}
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if !rawShedResponse(buf, data, int(p.cfg.RetryAfter/time.Second), c.srv.cfg.UserAgent) {
		return false // the parser's checks answer it
	}
	// Counted before the answer goes out: whoever reads the 503 then
	// finds it in the metric.
	p.m.shed.WithLabelValues(reason).Inc()
	var err error
	if c.udp != nil {
		_, err = c.udp.WriteToUDPAddrPort(buf.Bytes(), src)
	} else {
		_, err = c.PacketConn.WriteTo(buf.Bytes(), addr)
	}
	if err != nil {
		c.srv.m.dropped.WithLabelValues("write").Inc()
		c.srv.log.Debug("udp write failed", "err", err)
	}
	return true
}

// rawToTagged reports whether a raw request's To header has a tag (an
// in-dialog request); a request without a To is not.
func rawToTagged(data []byte) bool {
	head, _, _ := bytes.Cut(data, []byte("\r\n\r\n"))
	_, headers, _ := bytes.Cut(head, []byte("\r\n"))
	for line := range bytes.SplitSeq(headers, []byte("\r\n")) {
		if rawHeader(line) != "To" {
			continue
		}
		const key = "tag="
		for i := 0; i+len(key) <= len(line); i++ {
			if bytes.EqualFold(line[i:i+len(key)], []byte(key)) && i > 0 && (line[i-1] == ';' || line[i-1] == ' ') {
				return true
			}
		}
		return false
	}
	return false
}
