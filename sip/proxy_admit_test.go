package sip

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestAdmission: a new INVITE is taken unless max_calls/max_dialogs is
// reached or INVITEs wait longer than queue_delay (in the socket buffer,
// or, for the last one taken, on the way to the proxy); a retransmission
// of one taken is always taken; the set forgets after 1–2 admitTTL.
func TestAdmission(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	src := netip.MustParseAddrPort("192.0.2.1:5060")
	key := func(b string) pendingKey { return pendingKey{src: src, branch: b} }
	type step struct {
		at      time.Duration // since t0
		branch  string
		full    string
		waited  time.Duration
		reached time.Duration // >0: the proxy got it this long after it was taken
		ok      bool
		reason  string
	}
	for _, tc := range []struct {
		name   string
		target time.Duration
		steps  []step
	}{
		{"taken", 200 * time.Millisecond, []step{{branch: "a", ok: true}, {branch: "b", ok: true}}},
		{"full sheds new, not retransmissions", 200 * time.Millisecond, []step{
			{branch: "a", ok: true},
			{at: time.Millisecond, branch: "b", full: "calls", reason: "calls"},
			{at: 500 * time.Millisecond, branch: "a", full: "calls", ok: true},
			{at: 501 * time.Millisecond, branch: "b", full: "calls", reason: "calls"},
		}},
		{"waited in the socket", 200 * time.Millisecond, []step{
			{branch: "a", waited: 201 * time.Millisecond, reason: "delay"},
			{at: time.Millisecond, branch: "b", waited: 199 * time.Millisecond, ok: true},
		}},
		{"waited for the proxy: shed for queue_delay, or until one arrives in time", 200 * time.Millisecond, []step{
			{branch: "a", ok: true, reached: 300 * time.Millisecond},
			{at: 301 * time.Millisecond, branch: "b", reason: "delay"},
			{at: 499 * time.Millisecond, branch: "a", ok: true}, // its retransmission still reaches its transaction
			{at: 501 * time.Millisecond, branch: "c", ok: true, reached: 10 * time.Millisecond},
			{at: 512 * time.Millisecond, branch: "d", ok: true},
		}},
		{"no delay shedding with queue_delay 0", 0, []step{
			{branch: "a", waited: time.Hour, ok: true, reached: time.Hour},
			{at: time.Hour + time.Millisecond, branch: "b", waited: time.Hour, ok: true},
		}},
		{"forgotten after two generations", 200 * time.Millisecond, []step{
			{branch: "a", ok: true},
			{at: admitTTL, branch: "b", ok: true},
			{at: 2 * admitTTL, branch: "a", full: "calls", reason: "calls"},
			{at: 2*admitTTL + time.Millisecond, branch: "b", full: "calls", ok: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAdmission(tc.target)
			for i, s := range tc.steps {
				ok, reason := a.admit(key(s.branch), t0.Add(s.at), s.full, s.waited)
				if ok != s.ok || reason != s.reason {
					t.Fatalf("step %d (%s): admit = %v %q, want %v %q", i, s.branch, ok, reason, s.ok, s.reason)
				}
				if s.reached > 0 {
					a.reached(key(s.branch), t0.Add(s.at+s.reached))
				}
			}
		})
	}
}

// TestRawToTagged tells new INVITEs from re-INVITEs in raw bytes.
func TestRawToTagged(t *testing.T) {
	for _, tc := range []struct {
		to   string
		want bool
	}{
		{"To: <sip:1002@hotdesk.test>", false},
		{"To: <sip:1002@hotdesk.test>;tag=abc", true},
		{"t: <sip:1002@hotdesk.test> ;TAG=abc", true},
		{"To: <sip:1002@hotdesk.test;tag=x>", true}, // a URI parameter named tag: in-dialog to be safe
		{"To: \"tagger\" <sip:tag=1@hotdesk.test>", false},
	} {
		msg := "INVITE sip:1002@hotdesk.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n" +
			tc.to + "\r\nFrom: <sip:1001@hotdesk.test>;tag=f\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"
		if got := rawToTagged([]byte(msg)); got != tc.want {
			t.Errorf("%q: tagged = %v, want %v", tc.to, got, tc.want)
		}
	}
}

// TestProxyReaderShedsNewInvites: over UDP, with max_calls reached, a new
// INVITE is answered 503 with Retry-After by the socket's reader, from its
// raw bytes (the To tag "shed" says so: no transaction, no parse), while a
// retransmission of the call holding the slot still reaches its
// transaction, which answers it with its last provisional response.
func TestProxyReaderShedsNewInvites(t *testing.T) {
	uac, uas, e, proxy := oneSlotProxy(t, func(pc *ProxyConfig) { pc.RetryAfter = 7 * time.Second })
	var rc rawCall
	rc.invite(t, uac, uas, proxy, 0) // holds the one slot: the callee does not answer
	if m := uac.read(t); !bytes.HasPrefix(m, []byte("SIP/2.0 100 ")) {
		t.Fatalf("caller got:\n%s", m)
	}

	var shed rawCall
	for i, want := range []float64{1, 2} { // a new INVITE, then its retransmission
		shed.sendInvite(t, uac, proxy, 1)
		res := uac.read(t)
		if !bytes.HasPrefix(res, []byte("SIP/2.0 503 ")) {
			t.Fatalf("new INVITE over max_calls (%d): got\n%s", i, res)
		}
		for _, line := range []string{"\r\nRetry-After: 7\r\n", "\r\nTo: <sip:1002@hotdesk.test>;tag=shed\r\n",
			"\r\nCall-ID: c1@bench\r\n", ";branch=z9hG4bK-b1\r\n"} {
			if !bytes.Contains(res, []byte(line)) {
				t.Errorf("the 503 lacks %q:\n%s", line, res)
			}
		}
		if n := metricValue(t, e, "hotdesk_sip_proxy_shed_total", map[string]string{"reason": "calls"}); n != want {
			t.Errorf("shed{calls} = %v, want %v", n, want)
		}
	}

	rc.sendInvite(t, uac, proxy, 0) // the held call's INVITE again
	if m := uac.read(t); !bytes.HasPrefix(m, []byte("SIP/2.0 100 ")) {
		t.Fatalf("a retransmission of the held call got:\n%s", m)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_calls_held", nil); n != 1 {
		t.Errorf("calls held = %v, want 1", n)
	}
}

// TestUDPArrivalStamped: a datagram read from a stamped socket carries the
// kernel's arrival time (between its send and its read), which admission
// takes the socket buffer's wait from.
func TestUDPArrivalStamped(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := &udpConn{udp: pc.(*net.UDPConn)}
	if c.stamped = stampArrivals(c.udp); !c.stamped {
		t.Fatal("SO_TIMESTAMPNS refused")
	}
	from, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer from.Close()
	sent := time.Now()
	if _, err := from.WriteTo([]byte("INVITE"), pc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, _, at, err := c.read(make([]byte, 64))
	read := time.Now()
	if err != nil || n != len("INVITE") {
		t.Fatalf("read %d, %v", n, err)
	}
	// The kernel's clock is the wall clock: compare without the monotonic reading.
	if at.Before(sent.Round(0).Add(-time.Millisecond)) || at.After(read.Round(0).Add(time.Millisecond)) {
		t.Errorf("arrival %v not between send %v and read %v", at, sent, read)
	}
}
