package sip

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// blockedEnv is a registrar on UDP with one worker and the given queue,
// whose first REGISTER holds that worker (in the readiness check) until
// release is closed; held is closed once it does.
func blockedEnv(t *testing.T, queue int, delay time.Duration) (e *testEnv, held, release chan struct{}) {
	t.Helper()
	held, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	e = startEnv(t, nil, func(c *Config, d *Deps) {
		c.Listen = []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}
		c.UDPWorkers, c.UDPQueue, c.UDPQueueDelay = 1, queue, delay
		d.Ready = func() bool {
			once.Do(func() { close(held); <-release })
			return true
		}
	})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	return e, held, release
}

// queuedRegister is a REGISTER of user 1001 from pc without credentials;
// call names its Call-ID and branch, so a resend is a retransmission.
func queuedRegister(pc net.PacketConn, call string) []byte {
	return fmt.Appendf(nil, "REGISTER sip:hotdesk.test SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;rport;branch=z9hG4bK-%s\r\nMax-Forwards: 70\r\n"+
		"From: <sip:1001@hotdesk.test>;tag=f-%s\r\nTo: <sip:1001@hotdesk.test>\r\n"+
		"Call-ID: %s@test\r\nCSeq: 1 REGISTER\r\nContact: <sip:1001@%s>\r\nExpires: 3600\r\n"+
		"Content-Length: 0\r\n\r\n", pc.LocalAddr(), call, call, call, pc.LocalAddr())
}

func rawOptions(pc net.PacketConn, call string) []byte {
	return fmt.Appendf(nil, "OPTIONS sip:hotdesk.test SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-%s\r\nMax-Forwards: 70\r\n"+
		"From: <sip:1001@hotdesk.test>;tag=f-%s\r\nTo: <sip:hotdesk.test>\r\n"+
		"Call-ID: %s@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", pc.LocalAddr(), call, call, call)
}

// readAnswers reads responses until one to the Call-ID last arrives and
// returns the status line and Retry-After of each, by Call-ID, in order.
func readAnswers(t *testing.T, pc net.PacketConn, last string) []string {
	t.Helper()
	var out []string
	buf := make([]byte, 65535)
	for range 100 {
		_ = pc.SetReadDeadline(time.Now().Add(settle))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %q: %v", out, err)
		}
		m := buf[:n]
		status, _, _ := bytes.Cut(m, []byte("\r\n"))
		callID := string(headerValue(m, "Call-ID"))
		a := callID + " " + string(bytes.TrimPrefix(status, []byte("SIP/2.0 ")))
		if ra := headerValue(m, "Retry-After"); ra != nil {
			a += " Retry-After=" + string(ra)
		}
		if bytes.HasPrefix(status, []byte("SIP/2.0 503")) && !bytes.Contains(headerValue(m, "To"), []byte("tag=")) {
			a += " untagged"
		}
		out = append(out, a)
		if callID == last+"@test" {
			return out
		}
	}
	t.Fatalf("no answer to %s in %q", last, out)
	return nil
}

// settle bounds each wait for the server in these tests: generous, as a
// busy machine is slow; a passing run never waits it out.
const settle = 30 * time.Second

func headerValue(msg []byte, name string) []byte {
	for line := range bytes.SplitSeq(msg, []byte("\r\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}

// TestUDPShedsWhenQueueFull: with the worker busy and its queue full, a
// REGISTER is answered 503 + Retry-After at once, unparsed; a
// retransmission of a queued one is dropped, not answered twice; the
// queued ones are answered when the worker is free.
func TestUDPShedsWhenQueueFull(t *testing.T) {
	e, held, release := blockedEnv(t, 2, 0)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv, _ := net.ResolveUDPAddr("udp", e.udp)
	send := func(b []byte) {
		if _, err := pc.WriteTo(b, srv); err != nil {
			t.Fatal(err)
		}
	}
	send(queuedRegister(pc, "a"))
	select {
	case <-held:
	case <-time.After(settle):
		t.Fatal("the worker never took the first REGISTER")
	}
	send(queuedRegister(pc, "b"))
	send(queuedRegister(pc, "c")) // the queue (2) is full now
	send(queuedRegister(pc, "d"))
	send(queuedRegister(pc, "e"))
	send(queuedRegister(pc, "b")) // a retransmission of a queued one
	waitFor(t, "two shed, one retransmission dropped", settle, func() bool {
		return testutil.ToFloat64(e.srv.m.udpShed.WithLabelValues("queue_full")) == 2 &&
			testutil.ToFloat64(e.srv.m.dropped.WithLabelValues("retransmission")) == 1
	})
	close(release)
	waitFor(t, "the queue drained", settle, func() bool { return testutil.ToFloat64(e.srv.m.udpQueued) == 0 })
	send(rawOptions(pc, "z")) // one worker: answered after b and c
	got := readAnswers(t, pc, "z")
	want := []string{"d@test 503 Service Unavailable Retry-After=2", "e@test 503 Service Unavailable Retry-After=2",
		"a@test 401 Unauthorized", "b@test 401 Unauthorized", "c@test 401 Unauthorized", "z@test 200 OK"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("answers:\n got %q\nwant %q", got, want)
	}
}

// TestUDPShedsStaleRequests: a REGISTER that waited in the queue longer
// than udp_queue_delay (its sender has retransmitted it by then) is
// answered 503 + Retry-After without digest work; fresh ones are served.
func TestUDPShedsStaleRequests(t *testing.T) {
	e, held, release := blockedEnv(t, 16, time.Second)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv, _ := net.ResolveUDPAddr("udp", e.udp)
	send := func(b []byte) {
		if _, err := pc.WriteTo(b, srv); err != nil {
			t.Fatal(err)
		}
	}
	send(queuedRegister(pc, "a"))
	select {
	case <-held:
	case <-time.After(settle):
		t.Fatal("the worker never took the first REGISTER")
	}
	send(queuedRegister(pc, "b"))
	send(queuedRegister(pc, "c"))
	waitFor(t, "two queued", settle, func() bool { return testutil.ToFloat64(e.srv.m.udpQueued) == 2 })
	e.clock.add(1500 * time.Millisecond) // b and c have waited 1.5 s
	send(queuedRegister(pc, "d"))
	waitFor(t, "three queued", settle, func() bool { return testutil.ToFloat64(e.srv.m.udpQueued) == 3 })
	close(release)
	got := readAnswers(t, pc, "d")
	want := []string{"a@test 401 Unauthorized", "b@test 503 Service Unavailable Retry-After=2",
		"c@test 503 Service Unavailable Retry-After=2", "d@test 401 Unauthorized"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("answers:\n got %q\nwant %q", got, want)
	}
	if n := testutil.ToFloat64(e.srv.m.udpShed.WithLabelValues("queue_delay")); n != 2 {
		t.Errorf("hotdesk_sip_udp_shed_total{reason=queue_delay} = %v, want 2", n)
	}
}

// TestRawShedResponse: the unparsed 503 copies every Via, From, To (with
// a tag added when it has none), Call-ID and CSeq, compact forms too, and
// refuses a request it cannot answer correctly.
func TestRawShedResponse(t *testing.T) {
	for _, tc := range []struct {
		name, req, want string
		ok              bool
	}{
		{"full", "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\n" +
			"From: <sip:1@h>;tag=x\r\nTo: <sip:1@h>\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\nContact: <sip:1@a>\r\n\r\n",
			"SIP/2.0 503 Service Unavailable\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP b;branch=z9hG4bK2\r\n" +
				"From: <sip:1@h>;tag=x\r\nTo: <sip:1@h>;tag=shed\r\nCall-ID: c1\r\nCSeq: 1 REGISTER\r\n" +
				"Retry-After: 2\r\nServer: hd\r\nContent-Length: 0\r\n\r\n", true},
		{"compact, tagged To", "OPTIONS sip:h SIP/2.0\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nf: <sip:1@h>;tag=x\r\n" +
			"t: <sip:1@h>;TAG=y\r\ni: c1\r\nCSeq: 1 OPTIONS\r\n\r\n",
			"SIP/2.0 503 Service Unavailable\r\nv: SIP/2.0/UDP a;branch=z9hG4bK1\r\nf: <sip:1@h>;tag=x\r\n" +
				"t: <sip:1@h>;TAG=y\r\ni: c1\r\nCSeq: 1 OPTIONS\r\nRetry-After: 2\r\nServer: hd\r\nContent-Length: 0\r\n\r\n", true},
		{"no CSeq", "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nFrom: <sip:1@h>\r\nTo: <sip:1@h>\r\nCall-ID: c\r\n\r\n", "", false},
		{"folded", "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a\r\nFrom: <sip:1@h>\r\nTo:\r\n <sip:1@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n", "", false},
		{"bare LF", "REGISTER sip:h SIP/2.0\r\nVia: SIP/2.0/UDP a\nX: y\r\nFrom: <sip:1@h>\r\nTo: <sip:1@h>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\r\n", "", false},
		{"start line only", "REGISTER sip:h SIP/2.0", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			ok := rawShedResponse(&b, []byte(tc.req), 2, "hd")
			if ok != tc.ok || ok && b.String() != tc.want {
				t.Fatalf("ok=%v\n%s\nwant ok=%v\n%s", ok, b.String(), tc.ok, tc.want)
			}
		})
	}
}

func TestRawBranch(t *testing.T) {
	for _, tc := range []struct{ msg, want string }{
		{"REGISTER x SIP/2.0\r\nFrom: a;branch=no\r\nVia: SIP/2.0/UDP h;rport;branch=z9hG4bK-1;x\r\nVia: SIP/2.0/UDP g;branch=2\r\n\r\n", "z9hG4bK-1"},
		{"REGISTER x SIP/2.0\r\nv: SIP/2.0/UDP h;BRANCH=z9hG4bK-2\r\n\r\n", "z9hG4bK-2"},
		{"REGISTER x SIP/2.0\r\nVia: SIP/2.0/UDP h;xbranch=z9\r\n\r\n", ""},
		{"REGISTER x SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", ""},
		{"REGISTER x SIP/2.0", ""},
	} {
		if got := string(rawBranch([]byte(tc.msg))); got != tc.want {
			t.Errorf("rawBranch(%q) = %q, want %q", tc.msg, got, tc.want)
		}
	}
}

// TestUDPSourcesAsSipgoSawThem: the cached sources handed to sipgo read
// as net.UDPAddr printed them (v4-mapped addresses as IPv4, zones kept),
// a dual-stack socket's v4-mapped source included, and the cache stays
// bounded.
func TestUDPSourcesAsSipgoSawThem(t *testing.T) {
	c := &udpConn{sources: map[netip.AddrPort]net.Addr{}}
	for _, s := range []string{"192.0.2.1:5060", "[2001:db8::1]:5061", "[fe80::1%eth0]:5062"} {
		ap := netip.MustParseAddrPort(s)
		if got, want := c.source(ap).String(), net.UDPAddrFromAddrPort(ap).String(); got != want {
			t.Errorf("source %s = %q, want %q", s, got, want)
		}
	}
	pc, err := net.ListenPacket("udp", "[::]:0")
	if err != nil {
		t.Skip("no dual-stack socket here:", err)
	}
	defer pc.Close()
	c.udp = pc.(*net.UDPConn)
	from, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	if _, err := from.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); err != nil {
		t.Skip("dual-stack socket unreachable over IPv4:", err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(settle))
	_, ap, _, _, err := c.read(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.source(ap).String(), from.LocalAddr().String(); got != want {
		t.Errorf("a v4-mapped source reads %q, want %q", got, want)
	}
	for i := range 2 * maxSources {
		c.source(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i)))
	}
	if len(c.sources) > maxSources {
		t.Errorf("%d sources cached, want at most %d", len(c.sources), maxSources)
	}
}
