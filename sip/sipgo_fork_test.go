package sip

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// The sipgo fork (doc.go): an ACK for a 2xx sent again with its branch (the UAC answering a
// retransmitted 2xx) reaches the handler while the first one's is still
// running: it is part of no transaction, and a proxy forwards each.
func TestForkAck2xxRetransmissionReachesHandler(t *testing.T) {
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	acks := make(chan struct{}, 4)
	release := make(chan struct{})
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		acks <- struct{}{}
		<-release // the first ACK's handler still runs when the second arrives
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(pc) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ack := fmt.Sprintf("ACK sip:bob@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-ack2xx\r\n"+
		"From: <sip:alice@a.test>;tag=f1\r\nTo: <sip:bob@b.test>;tag=t1\r\nCall-ID: c1@test\r\nCSeq: 1 ACK\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", pc.LocalAddr(), c.LocalAddr())
	defer close(release)
	for i := range 2 {
		if _, err := c.Write([]byte(ack)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-acks:
		case <-time.After(5 * time.Second):
			t.Fatalf("ACK %d did not reach the handler", i+1)
		}
	}
}

// The sipgo fork (doc.go): a request's destination (its Route, else its
// Request-URI, with the transport's default port) is the text
// fmt.Sprintf("%v:%v", host, port) built before the patch.
func TestDestinationWithoutFmt(t *testing.T) {
	for _, tc := range []struct {
		name      string
		recipient sip.Uri
		route     *sip.Uri
		transport string
		want      string
	}{
		{"uri port", sip.Uri{Host: "10.0.0.2", Port: 5070}, nil, "UDP", "10.0.0.2:5070"},
		{"udp default", sip.Uri{Host: "hotdesk.test"}, nil, "UDP", "hotdesk.test:5060"},
		{"tls default", sip.Uri{Host: "hotdesk.test"}, nil, "TLS", "hotdesk.test:5061"},
		{"route first", sip.Uri{Host: "10.0.0.2", Port: 5070}, &sip.Uri{Host: "10.0.0.9", Port: 5090}, "UDP", "10.0.0.9:5090"},
		{"ipv6", sip.Uri{Host: "[2001:db8::1]", Port: 5060}, nil, "UDP", "[2001:db8::1]:5060"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(sip.INVITE, tc.recipient)
			req.SetTransport(tc.transport)
			if tc.route != nil {
				req.AppendHeader(&sip.RouteHeader{Address: *tc.route})
			}
			if got := req.Destination(); got != tc.want {
				t.Errorf("Destination() = %q, want %q", got, tc.want)
			}
		})
	}
}
