package daemon

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// TestClusterNodeNotReadyWhilePartitioned: a node's path to PostgreSQL
// goes silent (a TCP relay in the test stops forwarding; both ends'
// kernels still acknowledge, so TCP alone would never give up). The event
// connection's keepalive notices, the node answers REGISTER 503 with
// Retry-After, and once the path forwards again it reconnects,
// resynchronises and serves.
func TestClusterNodeNotReadyWhilePartitioned(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a daemon")
	}
	dsn := postgresDB(t)
	bin := buildBinary(t)
	seedClusterPhone(t, dsn, "0004f3000002", "hs0002", "pw-0002-secret")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	relay := newStallRelay(t, u.Host)
	u.Host = relay.addr()
	n := startNodeProc(t, bin, u.String(), "n1")
	h := newHandset(t, n.addrs.SIPUDP[0], "test.lan")
	register := func() int {
		code, res, err := h.registerAt(n.addrs.SIPUDP[0], "hs0002", "hs0002", "pw-0002-secret", 60)
		if err != nil {
			return 0 // no answer within the handset's timeout: ask again
		}
		if code == 503 {
			if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "5" {
				t.Fatalf("503 Retry-After = %v, want 5", ra)
			}
		}
		return code
	}
	waitFor(t, "REGISTER 200 before the partition", func() bool { return register() == 200 })

	relay.stall(true)
	waitFor(t, "REGISTER 503 while partitioned", func() bool { return register() == 503 })

	relay.stall(false)
	waitFor(t, "REGISTER 200 after the partition", func() bool { return register() == 200 })
}

// stallRelay forwards TCP connections to a target and, while stalled,
// holds what it reads: a partition that drops traffic without resetting
// anything.
type stallRelay struct {
	ln      net.Listener
	target  string
	mu      sync.Mutex
	cond    *sync.Cond
	stalled bool
	closed  bool
	conns   []net.Conn
	wg      sync.WaitGroup
}

func newStallRelay(t *testing.T, target string) *stallRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &stallRelay{ln: ln, target: target}
	r.cond = sync.NewCond(&r.mu)
	r.wg.Add(1)
	go r.accept()
	t.Cleanup(r.close)
	return r
}

func (r *stallRelay) addr() string { return r.ln.Addr().String() }

func (r *stallRelay) stall(on bool) {
	r.mu.Lock()
	r.stalled = on
	r.mu.Unlock()
	r.cond.Broadcast()
}

func (r *stallRelay) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return // closed
		}
		up, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		r.conns = append(r.conns, c, up)
		r.wg.Add(2)
		r.mu.Unlock()
		go r.pipe(up, c)
		go r.pipe(c, up)
	}
}

// pipe copies src to dst, waiting while stalled; it ends when either
// side closes.
func (r *stallRelay) pipe(dst, src net.Conn) {
	defer r.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			for r.stalled && !r.closed {
				r.cond.Wait()
			}
			closed := r.closed
			r.mu.Unlock()
			if closed {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or closed
		}
	}
}

func (r *stallRelay) close() {
	r.mu.Lock()
	r.closed = true
	conns := r.conns
	r.mu.Unlock()
	r.cond.Broadcast()
	r.ln.Close()
	for _, c := range conns {
		c.Close()
	}
	r.wg.Wait()
}
