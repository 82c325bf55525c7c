package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
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
	t.Parallel()
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
	t.Parallel()
	e := startEnv(t, nil, func(c *Config, _ *Deps) {
		c.TCPMaxConnsPerSource, c.TCPMaxConns = 3, 100
		c.MinExpires, c.MaxExpires, c.DefaultExpires, c.TCPIdleTimeout, c.TCPUnauthTimeout = 1, 1, 1, time.Second, time.Second
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

// rawSIP sends one request on c and reads its response (no body).
func rawSIP(t *testing.T, c net.Conn, req string) (*sip.Response, error) {
	t.Helper()
	if _, err := io.WriteString(c, req); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf []byte
	chunk := make([]byte, 4096)
	for !strings.Contains(string(buf), "\r\n\r\n") && len(buf) < 64<<10 {
		n, err := c.Read(chunk)
		if err != nil {
			return nil, err
		}
		buf = append(buf, chunk[:n]...)
	}
	msg, err := sip.ParseMessage(buf)
	if err != nil {
		t.Fatalf("response %q: %v", buf, err)
	}
	res, ok := msg.(*sip.Response)
	if !ok {
		t.Fatalf("not a response: %q", buf)
	}
	return res, nil
}

// rawRegister is a REGISTER for 1001 over a raw TCP connection.
func rawRegister(branch string, cseq int, auth string) string {
	s := "REGISTER sip:hotdesk.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5998;branch=z9hG4bK" + branch + "\r\n" +
		"From: <sip:1001@hotdesk.test>;tag=c\r\nTo: <sip:1001@hotdesk.test>\r\nCall-ID: raw-" + branch + "\r\n" +
		fmt.Sprintf("CSeq: %d REGISTER\r\n", cseq) + "Contact: <sip:1001@127.0.0.1:5998;transport=tcp>\r\n" +
		"Max-Forwards: 70\r\n"
	if auth != "" {
		s += "Authorization: " + auth + "\r\n"
	}
	return s + "Content-Length: 0\r\n\r\n"
}

// TestTCPUnauthenticatedTimeout is slowloris on the SIP port: one
// connection dribbles a REGISTER a byte at a time and another sends
// complete requests that never authenticate; both are closed at
// tcp_unauth_timeout however busy they keep the socket, while a phone that
// authenticated over its connection keeps it.
func TestTCPUnauthenticatedTimeout(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil, func(c *Config, _ *Deps) { c.TCPUnauthTimeout = time.Second })
	// The phone authenticates over its connection, which lifts the timeout.
	phone, err := net.Dial("tcp", e.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	res, err := rawSIP(t, phone, rawRegister("p1", 1, ""))
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("first REGISTER: %v %v", res, err)
	}
	auth := digestFor(t, res.GetHeader("WWW-Authenticate").Value(), "REGISTER", "sip:hotdesk.test", "1001", "alice-sip")
	if res, err := rawSIP(t, phone, rawRegister("p2", 2, auth)); err != nil || res.StatusCode != 200 {
		t.Fatalf("REGISTER with credentials: %v %v", res, err)
	}
	closedWithin := func(c net.Conn, d time.Duration) <-chan bool {
		out := make(chan bool, 1)
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(d))
			buf := make([]byte, 4096)
			for {
				if _, err := c.Read(buf); err != nil {
					var ne net.Error
					out <- !(errors.As(err, &ne) && ne.Timeout())
					return
				}
			}
		}()
		return out
	}
	// The slow one: a byte every 50 ms, each read pushing an idle timer back.
	slow, err := net.Dial("tcp", e.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slowClosed := closedWithin(slow, 10*time.Second)
	stop := make(chan struct{})
	dribbled := make(chan struct{})
	go func() {
		defer close(dribbled)
		msg := []byte("REGISTER sip:hotdesk.test SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bKslow\r\n" +
			strings.Repeat("X-Pad: slowloris\r\n", 20))
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for _, b := range msg { // bounded: the message, about 20 s at this pace
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if _, err := slow.Write([]byte{b}); err != nil {
				return
			}
		}
	}()
	// The chatty one: complete REGISTERs without credentials (each 401).
	chatty, err := net.Dial("tcp", e.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer chatty.Close()
	if res, err := rawSIP(t, chatty, rawRegister("c1", 1, "")); err != nil || res.StatusCode != 401 {
		t.Fatalf("unauthenticated REGISTER: %v %v", res, err)
	}
	chattyClosed := closedWithin(chatty, 10*time.Second)
	if !<-slowClosed {
		t.Fatal("a connection dribbling an endless request was not closed within 10 s")
	}
	close(stop)
	<-dribbled
	if !<-chattyClosed {
		t.Fatal("a connection that never authenticated was not closed within 10 s")
	}
	// The phone's connection, accepted before both, is still served.
	if res, err := rawSIP(t, phone, rawRegister("p3", 3, "")); err != nil || res.StatusCode != 401 {
		t.Fatalf("the authenticated connection after the timeout: %v %v", res, err)
	}
}
