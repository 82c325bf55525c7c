package sip

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// rawPeer is a bare UDP SIP endpoint for the call benchmark: it writes
// messages as text and picks headers out of what it reads, so the
// allocations the benchmark reports are the proxy's, not a client
// library's.
type rawPeer struct {
	pc  net.PacketConn
	buf []byte
}

func newRawPeer(tb testing.TB) *rawPeer {
	tb.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { pc.Close() })
	return &rawPeer{pc: pc, buf: make([]byte, 65535)}
}

func (r *rawPeer) addr() string { return r.pc.LocalAddr().String() }

// read returns the next datagram (valid until the next read); a lost
// one fails the benchmark after 5 s instead of hanging it.
func (r *rawPeer) read(tb testing.TB) []byte {
	tb.Helper()
	_ = r.pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := r.pc.ReadFrom(r.buf)
	if err != nil {
		tb.Fatalf("%s: %v", r.addr(), err)
	}
	return r.buf[:n]
}

// readStatus reads until a response with the code (skipping 100/180).
func (r *rawPeer) readStatus(tb testing.TB, code string) []byte {
	tb.Helper()
	for range 10 {
		m := r.read(tb)
		if bytes.HasPrefix(m, []byte("SIP/2.0 "+code)) {
			return m
		}
		if !bytes.HasPrefix(m, []byte("SIP/2.0 1")) {
			tb.Fatalf("want %s, got:\n%s", code, m)
		}
	}
	tb.Fatalf("no %s", code)
	return nil
}

func (r *rawPeer) send(tb testing.TB, b []byte, to net.Addr) {
	tb.Helper()
	if _, err := r.pc.WriteTo(b, to); err != nil {
		tb.Fatal(err)
	}
}

// headerLines appends every "Name: value\r\n" line of msg whose name is
// one of names, in message order.
func headerLines(dst, msg []byte, names ...string) []byte {
	for line := range bytes.SplitSeq(msg, []byte("\r\n")) {
		if len(line) == 0 {
			break
		}
		for _, n := range names {
			if len(line) > len(n) && line[len(n)] == ':' && bytes.EqualFold(line[:len(n)], []byte(n)) {
				dst = append(append(dst, line...), "\r\n"...)
			}
		}
	}
	return dst
}

// rawCall drives one call with raw peers: uac calls 1002, whose binding
// is uas. Its buffers are reused from call to call.
type rawCall struct {
	out, hdr, ok []byte
}

// sendInvite sends call i's INVITE (again: a retransmission).
func (rc *rawCall) sendInvite(tb testing.TB, uac *rawPeer, proxy net.Addr, i int) {
	tb.Helper()
	rc.out = fmt.Appendf(rc.out[:0], "INVITE sip:1002@hotdesk.test SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-b%d\r\nFrom: <sip:1001@hotdesk.test>;tag=f%d\r\n"+
		"To: <sip:1002@hotdesk.test>\r\nCall-ID: c%d@bench\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@%s>\r\n"+
		"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		uac.addr(), i, i, i, uac.addr(), len(benchSDP), benchSDP)
	uac.send(tb, rc.out, proxy)
}

// invite sends the INVITE and returns it as the callee got it.
func (rc *rawCall) invite(tb testing.TB, uac, uas *rawPeer, proxy net.Addr, i int) []byte {
	tb.Helper()
	rc.sendInvite(tb, uac, proxy, i)
	inv := uas.read(tb)
	if !bytes.HasPrefix(inv, []byte("INVITE ")) {
		tb.Fatalf("callee got:\n%s", inv)
	}
	rc.hdr = headerLines(rc.hdr[:0], inv, "Via", "Record-Route", "From", "Call-ID", "CSeq")
	rc.hdr = bytes.TrimSuffix(headerLines(rc.hdr, inv, "To"), []byte("\r\n"))
	rc.hdr = fmt.Appendf(rc.hdr, ";tag=t%d\r\n", i)
	return inv
}

// answer sends 180 and 200 from the callee (again: a retransmission)
// and returns the 200 as the caller got it.
func (rc *rawCall) answer(tb testing.TB, uas *rawPeer, proxy net.Addr, i int) {
	tb.Helper()
	rc.out = fmt.Appendf(rc.out[:0], "SIP/2.0 180 Ringing\r\n%sContact: <sip:1002@%s>\r\nContent-Length: 0\r\n\r\n",
		rc.hdr, uas.addr())
	uas.send(tb, rc.out, proxy)
	rc.send200(tb, uas, proxy)
}

func (rc *rawCall) send200(tb testing.TB, uas *rawPeer, proxy net.Addr) {
	tb.Helper()
	rc.out = fmt.Appendf(rc.out[:0], "SIP/2.0 200 OK\r\n%sContact: <sip:1002@%s>\r\nContent-Type: application/sdp\r\n"+
		"Content-Length: %d\r\n\r\n%s", rc.hdr, uas.addr(), len(benchSDP), benchSDP)
	uas.send(tb, rc.out, proxy)
}

// bye sends the caller's BYE along the Record-Route of the 200 and has
// the callee answer it.
func (rc *rawCall) bye(tb testing.TB, uac, uas *rawPeer, proxy net.Addr, i int) {
	tb.Helper()
	rc.out = fmt.Appendf(rc.out[:0], "BYE sip:1002@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-y%d\r\n%s"+
		"From: <sip:1001@hotdesk.test>;tag=f%d\r\nCall-ID: c%d@bench\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\n"+
		"Content-Length: 0\r\n\r\n", uas.addr(), uac.addr(), i, rc.ok, i, i)
	uac.send(tb, rc.out, proxy)
	bye := uas.read(tb)
	if !bytes.HasPrefix(bye, []byte("BYE ")) {
		tb.Fatalf("callee got:\n%s", bye)
	}
	rc.hdr = headerLines(rc.hdr[:0], bye, "Via", "From", "To", "Call-ID", "CSeq")
	rc.out = fmt.Appendf(rc.out[:0], "SIP/2.0 200 OK\r\n%sContent-Length: 0\r\n\r\n", rc.hdr)
	uas.send(tb, rc.out, proxy)
	uac.readStatus(tb, "200")
}

// ack takes the caller's 200 and sends the ACK, which the callee gets.
func (rc *rawCall) ack(tb testing.TB, uac, uas *rawPeer, proxy net.Addr, i int) {
	tb.Helper()
	ok := uac.readStatus(tb, "200")
	rc.ok = headerLines(rc.ok[:0], ok, "Record-Route", "To")
	rc.ok = bytes.ReplaceAll(rc.ok, []byte("Record-Route:"), []byte("Route:"))
	rc.out = fmt.Appendf(rc.out[:0], "ACK sip:1002@%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-a%d\r\n%s"+
		"From: <sip:1001@hotdesk.test>;tag=f%d\r\nCall-ID: c%d@bench\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\n"+
		"Content-Length: 0\r\n\r\n", uas.addr(), uac.addr(), i, rc.ok, i, i)
	uac.send(tb, rc.out, proxy)
	if m := uas.read(tb); !bytes.HasPrefix(m, []byte("ACK ")) {
		tb.Fatalf("callee got:\n%s", m)
	}
}

const benchSDP = "v=0\r\no=user1 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"

// BenchmarkProxyCall is one call through the stateful proxy on loopback
// UDP, as sip/bench/calls_vs_kamailio.sh offers them: INVITE → 100, 180,
// 200 → ACK → BYE → 200, the caller trusted (no 407) and the callee a
// stored binding. allocs/op and B/op are the whole process's (proxy plus
// the two raw peers, which allocate little), so they do not depend on the
// machine's load as the script's rates do:
//
//	go test -run '^$' -bench ProxyCall -benchmem ./sip/
func BenchmarkProxyCall(b *testing.B) {
	uac, uas := newRawPeer(b), newRawPeer(b)
	cfg := DefaultConfig()
	cfg.Domain = "hotdesk.test"
	cfg.Listen = []string{"udp://127.0.0.1:0"}
	store := preStore{bs: []Binding{{AOR: "sip:1002@hotdesk.test", Contact: "sip:1002@" + uas.addr(),
		Source: uas.addr(), Transport: "UDP", Expires: time.Now().Add(time.Hour), Owner: Owner{OwnerUser, "bob"}}}}
	creds := newMemCreds()
	creds.add(Credential{Username: "1002", Password: "bob-sip", Owner: Owner{OwnerUser, "bob"}, AORs: []string{"1002"}}, "bob")
	srv, err := New(cfg, Deps{Credentials: creds, Bindings: store})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pcfg := DefaultProxyConfig()
	pcfg.TrustedSources = []string{"127.0.0.1"}
	if _, err := srv.enableProxy(ctx, pcfg, ProxyDeps{}); err != nil {
		b.Fatal(err)
	}
	ls, err := Listen(cfg)
	if err != nil {
		b.Fatal(err)
	}
	proxyAddr := ls.UDP[0].LocalAddr()
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Serve(ctx, ls) }()
	b.Cleanup(func() { cancel(); <-stopped })
	waitPooled(b, srv.UA, proxyAddr.String())

	var rc rawCall
	call := func(i int) {
		rc.invite(b, uac, uas, proxyAddr, i)
		rc.answer(b, uas, proxyAddr, i)
		rc.ack(b, uac, uas, proxyAddr, i)
		rc.bye(b, uac, uas, proxyAddr, i)
	}
	call(-1) // warm the pools
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		call(i)
	}
}
