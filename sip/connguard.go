package sip

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// connGuard keeps the TCP/TLS accept loops alive and bounded. sipgo's
// accept loop returns on the first error, and returning stops the whole
// daemon: so a full file-descriptor table (EMFILE, e.g. from thousands of
// idle connections) is waited out here instead, and the connections that
// could fill it are capped in all and per source, and closed when idle —
// or, until a request over them authenticates, a short time after accept.
type connGuard struct {
	max, perSource int
	idle, unauth   time.Duration
	refused        *prometheus.CounterVec
	log            *slog.Logger

	mu       sync.Mutex
	open     int
	bySource map[string]int
	// byRemote finds the connection of a request (its Source is the
	// connection's remote address) to lift its unauthenticated timeout.
	byRemote map[string]*guardedConn
}

func newConnGuard(cfg Config, refused *prometheus.CounterVec, log *slog.Logger) *connGuard {
	return &connGuard{max: cfg.TCPMaxConns, perSource: cfg.TCPMaxConnsPerSource, idle: cfg.TCPIdleTimeout,
		unauth: cfg.TCPUnauthTimeout, refused: refused, log: log, bySource: map[string]int{},
		byRemote: map[string]*guardedConn{}}
}

// authenticated lifts the unauthenticated timeout of the connection whose
// remote address is remote (a no-op for UDP sources).
func (g *connGuard) authenticated(remote string) {
	g.mu.Lock()
	c := g.byRemote[remote]
	g.mu.Unlock()
	if c != nil {
		c.authenticate()
	}
}

// listener wraps l; its Accept returns only when ctx ends or l is closed.
func (g *connGuard) listener(ctx context.Context, l net.Listener) net.Listener {
	return &guardedListener{Listener: l, g: g, ctx: ctx}
}

type guardedListener struct {
	net.Listener
	g   *connGuard
	ctx context.Context
}

// acceptBackoff bounds the wait after an accept error.
const acceptBackoff = time.Second

func (l *guardedListener) Accept() (net.Conn, error) {
	wait := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.ctx.Err() != nil {
				return nil, err
			}
			// EMFILE, ENFILE, ECONNABORTED…: keep serving the connections
			// already open and try again, backing off.
			l.g.refused.WithLabelValues("accept_error").Inc()
			l.g.log.Warn("tcp accept failed; retrying", "component", "sip", "err", err, "retry_in", wait)
			t := time.NewTimer(wait)
			select {
			case <-l.ctx.Done():
				t.Stop()
				return nil, net.ErrClosed
			case <-t.C:
			}
			wait = min(2*wait, acceptBackoff)
			continue
		}
		wait = 5 * time.Millisecond
		host := hostOf(c.RemoteAddr().String())
		if reason := l.g.admit(host); reason != "" {
			l.g.refused.WithLabelValues(reason).Inc()
			c.Close()
			continue
		}
		gc := &guardedConn{Conn: c, g: l.g, host: host, remote: c.RemoteAddr().String()}
		if l.g.unauth > 0 {
			gc.unauthUntil = time.Now().Add(l.g.unauth)
		} else {
			gc.authed = true
		}
		l.g.track(gc)
		return gc, nil
	}
}

// admit counts a new connection from host, or says why it is refused.
func (g *connGuard) admit(host string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.open >= g.max:
		return "total_cap"
	case g.bySource[host] >= g.perSource:
		return "source_cap"
	}
	g.open++
	g.bySource[host]++
	return ""
}

func (g *connGuard) track(c *guardedConn) {
	g.mu.Lock()
	g.byRemote[c.remote] = c
	g.mu.Unlock()
}

func (g *connGuard) release(c *guardedConn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byRemote[c.remote] == c {
		delete(g.byRemote, c.remote)
	}
	host := c.host
	g.open--
	if g.bySource[host]--; g.bySource[host] <= 0 {
		delete(g.bySource, host)
	}
}

// guardedConn closes itself when nothing was read for the idle timeout,
// or, before a request over it authenticated, at a fixed time after accept
// that reading does not push back (a peer dribbling bytes of a message
// that never ends is closed all the same), and gives its slot back once
// closed.
type guardedConn struct {
	net.Conn
	g      *connGuard
	host   string
	remote string
	closed sync.Once

	// mu orders setting the deadline in Read against authenticate, so a
	// Read that started before the authentication gets the idle deadline.
	mu          sync.Mutex
	authed      bool
	unauthUntil time.Time
}

func (c *guardedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	switch {
	case !c.authed:
		_ = c.Conn.SetReadDeadline(c.unauthUntil)
	case c.g.idle > 0:
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.g.idle))
	}
	c.mu.Unlock()
	return c.Conn.Read(p)
}

// authenticate switches the connection to the idle timeout, also for a
// Read already waiting.
func (c *guardedConn) authenticate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.authed {
		return
	}
	c.authed = true
	if c.g.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.g.idle))
	} else {
		_ = c.Conn.SetReadDeadline(time.Time{})
	}
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.g.release(c) })
	return err
}
