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
// could fill it are capped in all and per source, and closed when idle.
type connGuard struct {
	max, perSource int
	idle           time.Duration
	refused        *prometheus.CounterVec
	log            *slog.Logger

	mu       sync.Mutex
	open     int
	bySource map[string]int
}

func newConnGuard(cfg Config, refused *prometheus.CounterVec, log *slog.Logger) *connGuard {
	return &connGuard{max: cfg.TCPMaxConns, perSource: cfg.TCPMaxConnsPerSource, idle: cfg.TCPIdleTimeout,
		refused: refused, log: log, bySource: map[string]int{}}
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
		return &guardedConn{Conn: c, g: l.g, host: host}, nil
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

func (g *connGuard) release(host string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.open--
	if g.bySource[host]--; g.bySource[host] <= 0 {
		delete(g.bySource, host)
	}
}

// guardedConn closes itself when nothing was read for the idle timeout
// and gives its slot back once closed.
type guardedConn struct {
	net.Conn
	g      *connGuard
	host   string
	closed sync.Once
}

func (c *guardedConn) Read(p []byte) (int, error) {
	if c.g.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.g.idle))
	}
	return c.Conn.Read(p)
}

func (c *guardedConn) Close() error {
	err := c.Conn.Close()
	c.closed.Do(func() { c.g.release(c.host) })
	return err
}
