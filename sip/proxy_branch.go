package sip

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// branch is one forwarded copy of a call: its client transaction, Timer C
// and its CANCEL. Its goroutine reads every response until the
// transaction ends, so the transaction layer never blocks on it.
type branch struct {
	c     *call
	owner Owner // of the binding rung (zero for the trunk)
	trunk bool
	media *bridged // a branch to a browser anchored on the bridge

	mu  sync.Mutex // guards req and tx (replaced by a digest retry)
	req *sip.Request
	tx  sip.ClientTransaction

	abandoned   atomic.Bool
	provisional atomic.Bool
	wantCancel  atomic.Bool
	cancelCh    chan struct{}
	cancelOnce  sync.Once
	timerC      bool // only touched by watch
	authTried   bool // only touched by watch
}

// watch runs the branch: relays provisionals to the loop, passes 2xx up
// at once, answers the trunk's challenge once, and enforces Timer C
// (RFC 3261 §16.6 step 11) and the 64*T1 wait for an answer to CANCEL.
func (b *branch) watch() {
	c := b.c
	timerC := time.NewTimer(c.p.cfg.TimerC)
	defer timerC.Stop()
	cancelCh := b.cancelCh
	var giveUp <-chan time.Time
	tx := b.tx
	for {
		select {
		case res := <-tx.Responses():
			switch {
			case res.IsProvisional():
				b.provisional.Store(true)
				if b.wantCancel.Load() {
					b.sendCancel()
				}
				if res.StatusCode > 100 {
					timerC.Reset(c.p.cfg.TimerC)
					c.post(branchEvent{b: b, res: res})
				}
			case res.IsSuccess():
				c.forward2xx(b, res)
				tx.OnRetransmission(func(r *sip.Response) { c.forward2xx(b, r) })
				c.post(branchEvent{b: b, out: &outcome{res: res}})
				return
			default:
				if b.retryAuth(res) {
					b.mu.Lock()
					tx = b.tx
					b.mu.Unlock()
					continue
				}
				out := &outcome{res: res}
				if b.timerC && res.StatusCode == 487 {
					out = c.synth(408, "Request Timeout")
				}
				c.post(branchEvent{b: b, out: out})
				return
			}
		case <-tx.Done():
			out := c.synth(408, "Request Timeout")
			if errors.Is(tx.Err(), sip.ErrTransactionTransport) {
				out = c.synth(503, "Service Unavailable")
			}
			c.post(branchEvent{b: b, out: out})
			return
		case <-timerC.C:
			b.timerC = true
			b.cancel()
		case <-cancelCh:
			cancelCh = nil
			giveUp = time.After(64 * sip.T1)
		case <-giveUp:
			tx.Terminate()
			c.post(branchEvent{b: b, out: c.synth(408, "Request Timeout")})
			return
		}
	}
}

// cancel asks for the branch to be cancelled: a CANCEL goes out now if a
// provisional came, else when one comes (RFC 3261 §9.1).
func (b *branch) cancel() {
	if !b.c.invite || b.wantCancel.Swap(true) {
		return
	}
	close(b.cancelCh)
	if b.provisional.Load() {
		b.sendCancel()
	}
}

func (b *branch) sendCancel() {
	b.cancelOnce.Do(func() {
		b.mu.Lock()
		creq := cancelFor(b.req)
		b.mu.Unlock()
		ctx, err := b.c.p.send(context.Background(), creq)
		if err != nil {
			b.c.p.log.Debug("sending CANCEL failed", "err", err)
			return
		}
		go func() {
			defer ctx.Terminate()
			t := time.NewTimer(sip.Timer_F)
			defer t.Stop()
			for {
				select {
				case r := <-ctx.Responses():
					if !r.IsProvisional() {
						return
					}
				case <-ctx.Done():
					return
				case <-t.C:
					return
				}
			}
		}()
	})
}

// retryAuth answers a trunk's 401/407 once with the trunk credentials,
// in a new transaction with the next CSeq.
func (b *branch) retryAuth(res *sip.Response) bool {
	tc := b.c.trunk
	if !b.trunk || b.authTried || tc.Username == "" || (res.StatusCode != 401 && res.StatusCode != 407) {
		return false
	}
	b.authTried = true
	in, out := "WWW-Authenticate", "Authorization"
	if res.StatusCode == 407 {
		in, out = "Proxy-Authenticate", "Proxy-Authorization"
	}
	h := res.GetHeader(in)
	if h == nil {
		return false
	}
	chal, err := digest.ParseChallenge(h.Value())
	if err != nil {
		return false
	}
	b.mu.Lock()
	old := b.req
	b.mu.Unlock()
	r := old.Clone()
	removeFirst(r, "Via")
	b.c.p.addVia(r, b.c.lh, r.Transport())
	r.ReplaceHeader(&sip.CSeqHeader{SeqNo: old.CSeq().SeqNo + 1, MethodName: r.Method})
	cred, err := digest.Digest(chal, digest.Options{Method: string(r.Method), URI: r.Recipient.String(),
		Username: tc.Username, Password: tc.Password, Count: 1, Cnonce: newCallID()[:16]})
	if err != nil {
		return false
	}
	removeAll(r, out)
	r.AppendHeader(sip.NewHeader(out, cred.String()))
	tx, err := b.c.p.send(context.Background(), r)
	if err != nil {
		return false
	}
	b.mu.Lock()
	b.req, b.tx = r, tx
	b.mu.Unlock()
	return true
}

// forkBinding sends a branch to one registered contact, at the address the
// REGISTER came from (NAT, TCP connection) and from the listener that
// received it.
func (c *call) forkBinding(b Binding) bool {
	var u sip.Uri
	if err := sip.ParseUri(b.Contact, &u); err != nil {
		return false
	}
	tp := b.Transport
	if tp == "" {
		tp = "UDP"
	}
	if b.Handoff != "" {
		// Held by another node: it delivers over the phone's own flow.
		c.p.m.handoffs.WithLabelValues("sent").Inc()
		return c.fork(u, b.Handoff, tp, sip.Addr{}, b.Owner, false, b.AOR)
	}
	var laddr sip.Addr
	if a, ok := splitAddr(b.Local); ok && tp == "UDP" {
		laddr = a
	}
	return c.fork(u, b.Target(), tp, laddr, b.Owner, false, "")
}

// forkTrunk sends a branch for number to the caller's trunk.
func (c *call) forkTrunk(number string) bool {
	tc := c.trunk
	if tc.Address == "" || number == "" {
		return false
	}
	host := tc.Domain
	if host == "" {
		host, _, _ = net.SplitHostPort(tc.Address)
	}
	tp := tc.Transport
	if tp == "" {
		tp = "udp"
	}
	u := sip.Uri{Scheme: "sip", User: number, Host: host}
	return c.fork(u, tc.Address, tp, sip.Addr{}, Owner{}, true, "")
}

// fork builds and sends one branch; handoffAOR signs it for the node
// holding that AOR's binding (Handoff).
func (c *call) fork(u sip.Uri, dest, tp string, laddr sip.Addr, owner Owner, trunk bool, handoffAOR string) bool {
	r := shareCopy(c.tmpl)
	r.Recipient = u
	if c.invite || c.up.Method == sip.REFER {
		c.p.addRecordRoute(r, c.up.Transport(), tp)
	}
	c.p.addVia(r, c.lh, tp)
	c.p.setTarget(r, dest, tp)
	if laddr.IP != nil {
		r.Laddr = laddr
	}
	if handoffAOR != "" {
		r.AppendHeader(c.p.handoffKey.header(handoffAOR, r, c.p.now()))
	}
	m, ok := c.toBrowser(r, tp, owner)
	if !ok {
		return false
	}
	tx, err := c.p.send(context.Background(), r)
	if err != nil {
		c.p.log.Debug("sending a branch failed", "dest", dest, "err", err)
		if m != nil {
			m.s.Close()
		}
		return false
	}
	b := &branch{c: c, req: r, tx: tx, owner: owner, trunk: trunk, media: m, cancelCh: make(chan struct{})}
	c.branches = append(c.branches, b)
	c.live++
	c.p.m.branches.Inc()
	go b.watch()
	return true
}
