package sip

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// emfileListener fails its first n Accepts as a full fd table does.
type emfileListener struct {
	net.Listener
	n int
}

func (l *emfileListener) Accept() (net.Conn, error) {
	if l.n > 0 {
		l.n--
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}

// TestAcceptSurvivesEMFILE: sipgo's accept loop returns on the first
// error, which stopped the whole daemon; the guard waits it out.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x"}, []string{"reason"})
	cfg := DefaultConfig()
	g := newConnGuard(cfg, refused, slog.New(slog.DiscardHandler))
	l := g.listener(context.Background(), &emfileListener{Listener: ln, n: 3})
	go func() {
		if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
			defer c.Close()
			_, _ = io.Copy(io.Discard, c)
		}
	}()
	c, err := l.Accept()
	if err != nil {
		t.Fatalf("Accept after EMFILE: %v", err)
	}
	c.Close()
	if n := testutil.ToFloat64(refused.WithLabelValues("accept_error")); n != 3 {
		t.Fatalf("accept errors counted: %v, want 3", n)
	}
	ln.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v", err)
	}
}

// TestTCPConnectionCaps is the fd-exhaustion attack: one host opening
// idle connections gets only its share, a phone elsewhere still
// registers over TCP, and an idle connection is closed.
func TestTCPConnectionCaps(t *testing.T) {
	e := startEnv(t, nil, func(c *Config, _ *Deps) {
		c.TCPMaxConnsPerSource, c.TCPMaxConns = 3, 100
		c.MinExpires, c.MaxExpires, c.DefaultExpires, c.TCPIdleTimeout = 1, 1, 1, time.Second
	})
	var conns []net.Conn
	for range 5 {
		c, err := net.Dial("tcp", e.tcp)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	closed := 0
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			closed++
		}
	}
	// The two over the cap are closed at once, the three others when idle.
	if closed != 5 {
		t.Fatalf("%d of 5 connections closed, want all (2 over the cap, 3 idle)", closed)
	}
	if n := testutil.ToFloat64(e.srv.m.tcpRefused.WithLabelValues("source_cap")); n != 2 {
		t.Fatalf("source_cap refusals = %v, want 2", n)
	}
	// With the idle ones gone, a phone registers over TCP.
	p := newPhone(t, "TCP", e.tcp)
	if res, _ := p.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 1, callID: "tcp-ok"}); res.StatusCode != 200 {
		t.Fatalf("REGISTER over TCP: %s", res.Short())
	}
}
