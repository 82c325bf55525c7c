package sip

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/icholy/digest"
)

// discardConn is a PacketConn that keeps the last datagram written.
type discardConn struct {
	net.PacketConn
	last []byte
}

func (d *discardConn) WriteTo(b []byte, _ net.Addr) (int, error) {
	d.last = append(d.last[:0], b...)
	return len(b), nil
}
func (d *discardConn) LocalAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}
}

const benchReg = "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-%d\r\n" +
	"From: <sip:%s@hotdesk.test>;tag=%d\r\nTo: <sip:%s@hotdesk.test>\r\nCall-ID: %d-bench\r\nCSeq: %d REGISTER\r\n" +
	"Contact: <sip:%s@127.0.0.1:5061>\r\n%sMax-Forwards: 70\r\nExpires: 3600\r\nUser-Agent: bench\r\nContent-Length: 0\r\n\r\n"

// BenchmarkRegisterDigest measures one full digest registration (REGISTER →
// 401, REGISTER with credentials → 200) through the UDP fast path, without
// the network: b.N registrations of 10,000 users.
func BenchmarkRegisterDigest(b *testing.B) {
	creds := newMemCreds()
	for i := range 10000 {
		u := fmt.Sprintf("u%d", 100000+i)
		creds.add(Credential{Username: u, Password: fmt.Sprintf("pw%05dx", i), Owner: Owner{OwnerUser, u}, AORs: []string{u}})
	}
	cfg := DefaultConfig()
	cfg.Domain = "hotdesk.test"
	s, err := New(cfg, Deps{Credentials: creds})
	if err != nil {
		b.Fatal(err)
	}
	dc := &discardConn{}
	c := &udpConn{PacketConn: dc, srv: s, local: "127.0.0.1:5060"}
	src := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5061}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		u := fmt.Sprintf("u%d", 100000+i%10000)
		s.handleDatagram(ctx, c, []byte(fmt.Sprintf(benchReg, i, u, i, u, i, 1, u, "")), src)
		res := string(dc.last)
		j := strings.Index(res, "WWW-Authenticate: ")
		if j < 0 {
			b.Fatalf("no challenge: %s", res)
		}
		line := res[j+18 : j+strings.Index(res[j:], "\r\n")]
		chal, _ := digest.ParseChallenge(line)
		cr, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1:5060", Username: u,
			Password: fmt.Sprintf("pw%05dx", i%10000), Count: 1, Cnonce: "abcdef"})
		auth := "Authorization: " + cr.String() + "\r\n"
		s.handleDatagram(ctx, c, []byte(fmt.Sprintf(benchReg, i, u, i, u, i, 2, u, auth)), src)
		if !strings.HasPrefix(string(dc.last), "SIP/2.0 200") {
			b.Fatalf("not registered: %s", dc.last)
		}
	}
	_ = time.Now
}
