package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"hotdesk/prov/auth"
)

// healthy checks every component that can wedge: the store answers, the
// SIP registrar answers an OPTIONS on its first UDP listener, and the
// provisioning HTTP listener accepts connections. The systemd watchdog
// and /healthz both use it.
func (a *app) healthy(ctx context.Context) error {
	if err := a.store.Ping(ctx); err != nil {
		return fmt.Errorf("store: %w", err)
	}

	if len(a.addrs.SIPUDP) > 0 {
		if err := probeSIP(ctx, a.addrs.SIPUDP[0]); err != nil {
			return fmt.Errorf("sip: %w", err)
		}
	}
	if a.addrs.HTTP != "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", loopbackFor(a.addrs.HTTP))
		if err != nil {
			return fmt.Errorf("provisioning http: %w", err)
		}
		c.Close()
	}
	return nil
}

// loopbackFor turns a wildcard listen address into one a probe can dial.
func loopbackFor(addr string) string {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if h == "" || h == "0.0.0.0" || h == "::" {
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, p)
}

// probeSIP sends one OPTIONS to the registrar and waits for its 200.
func probeSIP(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", loopbackFor(addr))
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(2 * time.Second)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = c.SetDeadline(deadline)
	local := c.LocalAddr().String()
	id := auth.RandomSecret(8)
	target := loopbackFor(addr)
	msg := "OPTIONS sip:" + target + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=z9hG4bK" + id + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:watchdog@" + target + ">;tag=" + id + "\r\n" +
		"To: <sip:" + target + ">\r\n" +
		"Call-ID: watchdog-" + id + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := c.Write([]byte(msg)); err != nil {
		return err
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fmt.Errorf("no answer to OPTIONS: %w", err)
		}
		resp := string(buf[:n])
		if !strings.Contains(resp, "watchdog-"+id) {
			continue
		}
		if strings.HasPrefix(resp, "SIP/2.0 200") {
			return nil
		}
		return errors.New("OPTIONS answered " + strings.SplitN(resp, "\r\n", 2)[0])
	}
}
