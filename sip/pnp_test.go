package sip

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakePnPProv enrols by a fixed policy and records what it was asked.
type fakePnPProv struct {
	mu     sync.Mutex
	asked  []PnPDevice
	denied map[string]bool
}

func (f *fakePnPProv) PnPEnrol(_ context.Context, d PnPDevice) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, d)
	if f.denied[d.MAC] {
		return "", fmt.Errorf("device %s: %w", d.MAC, ErrPnPDenied)
	}
	return "http://10.0.0.1:8080/prov/" + strings.ToLower(d.Vendor) + "/", nil
}

func (f *fakePnPProv) calls() []PnPDevice {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]PnPDevice(nil), f.asked...)
}

// pnpEnv is a running responder.
type pnpEnv struct {
	pnp   *PnP
	prov  *fakePnPProv
	reg   *prometheus.Registry
	clock *fakeClock
	group string // where phones send SUBSCRIBEs
}

// startPnP serves ls (loopback sockets unless given) until the test ends.
func startPnP(t *testing.T, ls PnPListeners) *pnpEnv {
	t.Helper()
	if ls.Group == nil {
		var err error
		if ls.Group, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if ls.Unicast, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	e := &pnpEnv{prov: &fakePnPProv{denied: map[string]bool{"00156500dead": true}}, reg: prometheus.NewRegistry(),
		clock: &fakeClock{t: time.Unix(1_800_000_000, 0)}, group: ls.Group.LocalAddr().String()}
	var err error
	e.pnp, err = NewPnP(PnPDeps{Registerer: e.reg, Now: e.clock.Now, Provisioner: e.prov})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.pnp.Serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return e
}

func (e *pnpEnv) count(name, result string) float64 {
	var c *prometheus.CounterVec
	switch name {
	case "subscribes":
		c = e.pnp.m.subscribes
	default:
		c = e.pnp.m.notifies
	}
	return testutil.ToFloat64(c.WithLabelValues(result))
}

// pnpPhone is a phone's UDP socket.
type pnpPhone struct {
	t    *testing.T
	conn net.PacketConn
	// answered holds the answers to the NOTIFYs read, by branch: a
	// retransmission (the responder's timer fired before our answer
	// arrived, as on a busy machine) is answered again and skipped.
	answered map[string][]byte
}

func newPnPPhone(t *testing.T, conn net.PacketConn) *pnpPhone {
	t.Helper()
	if conn == nil {
		var err error
		if conn, err = net.ListenPacket("udp4", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { conn.Close() })
	return &pnpPhone{t: t, conn: conn, answered: map[string][]byte{}}
}

// subscribe sends the vendor's SUBSCRIBE fixture to dst.
func (p *pnpPhone) subscribe(dst net.Addr, vendor, mac, callID string, cseq int) {
	p.t.Helper()
	raw, err := os.ReadFile("testdata/pnp/" + vendor + ".sip")
	if err != nil {
		p.t.Fatal(err)
	}
	msg := strings.NewReplacer("{{MAC}}", mac, "{{ADDR}}", p.conn.LocalAddr().String(), "{{CALLID}}", callID,
		"{{CSEQ}}", fmt.Sprint(cseq)).Replace(string(raw))
	if _, err := p.conn.WriteTo([]byte(msg), dst); err != nil {
		p.t.Fatal(err)
	}
}

// read returns the next SIP message the phone receives (bounded wait),
// past retransmissions of NOTIFYs it answered.
func (p *pnpPhone) read() (sip.Message, net.Addr) {
	p.t.Helper()
	buf := make([]byte, 8192)
	for range 50 {
		p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := p.conn.ReadFrom(buf)
		if err != nil {
			p.t.Fatalf("phone read: %v", err)
		}
		m, err := sip.NewParser().ParseSIP(buf[:n])
		if err != nil {
			p.t.Fatalf("phone parse: %v\n%s", err, buf[:n])
		}
		if req, ok := m.(*sip.Request); ok && req.Via() != nil {
			branch, _ := req.Via().Params.Get("branch")
			if res, seen := p.answered[branch]; seen {
				p.conn.WriteTo(res, from)
				continue
			}
		}
		return m, from
	}
	p.t.Fatal("phone: only retransmissions")
	return nil, nil
}

func (p *pnpPhone) response() *sip.Response {
	p.t.Helper()
	m, _ := p.read()
	res, ok := m.(*sip.Response)
	if !ok {
		p.t.Fatalf("want a response, got %s", m.String())
	}
	return res
}

// answerNotify reads the NOTIFY, answers it with status and returns it
// and where it came from.
func (p *pnpPhone) answerNotify(status int) (*sip.Request, net.Addr) {
	p.t.Helper()
	m, from := p.read()
	req, ok := m.(*sip.Request)
	if !ok || req.Method != sip.NOTIFY {
		p.t.Fatalf("want a NOTIFY, got %s", m.String())
	}
	res := []byte(sip.NewResponseFromRequest(req, status, "X", nil).String())
	branch, _ := req.Via().Params.Get("branch")
	p.answered[branch] = res
	if _, err := p.conn.WriteTo(res, from); err != nil {
		p.t.Fatal(err)
	}
	return req, from
}

// checkNotify asserts the NOTIFY carries url in the subscription's dialog.
func checkNotify(t *testing.T, n *sip.Request, sub200 *sip.Response, url string) {
	t.Helper()
	if ct := n.GetHeader("Content-Type"); ct == nil || ct.Value() != "application/url" {
		t.Errorf("Content-Type %v", ct)
	}
	if ev := n.GetHeader("Event"); ev == nil || !strings.HasPrefix(ev.Value(), "ua-profile") {
		t.Errorf("Event %v", ev)
	}
	if string(n.Body()) != url {
		t.Errorf("body %q, want %q", n.Body(), url)
	}
	if n.CallID().Value() != sub200.CallID().Value() {
		t.Errorf("Call-ID %s, want the SUBSCRIBE's %s", n.CallID().Value(), sub200.CallID().Value())
	}
	ftag, _ := n.From().Params.Get("tag")
	ttag, _ := sub200.To().Params.Get("tag")
	if ftag == "" || ftag != ttag {
		t.Errorf("NOTIFY From tag %q, want the 200's To tag %q", ftag, ttag)
	}
	if ss := n.GetHeader("Subscription-State"); ss == nil || !strings.HasPrefix(ss.Value(), "terminated") {
		t.Errorf("Subscription-State %v", ss)
	}
}

// TestPnPLoopback: a Yealink and a Grandstream (which repeats its SUBSCRIBE
// five times) get 200 and exactly one NOTIFY each with their URL; a denied
// phone gets 403 and no NOTIFY; garbage is counted and ignored.
func TestPnPLoopback(t *testing.T) {
	t.Parallel()
	e := startPnP(t, PnPListeners{})
	group, _ := net.ResolveUDPAddr("udp4", e.group)

	yl := newPnPPhone(t, nil)
	yl.subscribe(group, "yealink", "001565aabbcc", "y1", 1)
	res := yl.response()
	if res.StatusCode != 200 || res.Contact() == nil {
		t.Fatalf("SUBSCRIBE answer: %s", res)
	}
	n, _ := yl.answerNotify(200)
	checkNotify(t, n, res, "http://10.0.0.1:8080/prov/yealink/")

	gs := newPnPPhone(t, nil)
	for i := 1; i <= 5; i++ {
		gs.subscribe(group, "grandstream", "000B82123456", "g1", i)
		res := gs.response()
		if res.StatusCode != 200 {
			t.Fatalf("Grandstream SUBSCRIBE %d: %s", i, res.Short())
		}
		if i == 1 {
			n, _ := gs.answerNotify(200)
			checkNotify(t, n, res, "http://10.0.0.1:8080/prov/grandstream/")
		}
	}
	if got := e.count("subscribes", "repeat"); got != 4 {
		t.Errorf("repeats %v, want 4", got)
	}
	calls := e.prov.calls()
	if len(calls) != 2 || calls[0].MAC != "001565aabbcc" || calls[0].Vendor != "Yealink" || calls[0].Model != "SIP-T46U" ||
		calls[1].MAC != "000b82123456" || calls[1].Version != "1.0.11.85" {
		t.Errorf("enrolments %+v", calls)
	}
	// The window passes: the phone asks again and is told again.
	e.clock.add(pnpWindow + time.Second)
	yl.subscribe(group, "yealink", "001565aabbcc", "y2", 1)
	if res := yl.response(); res.StatusCode != 200 {
		t.Fatalf("after the window: %s", res.Short())
	}
	yl.answerNotify(200)

	denied := newPnPPhone(t, nil)
	denied.subscribe(group, "yealink", "00156500dead", "d1", 1)
	if res := denied.response(); res.StatusCode != 403 {
		t.Fatalf("denied phone: %s", res.Short())
	}
	// A phone refusing the NOTIFY is counted.
	rf := newPnPPhone(t, nil)
	rf.subscribe(group, "yealink", "001565000001", "r1", 1)
	rf.response()
	rf.answerNotify(481)

	bad := newPnPPhone(t, nil)
	for _, m := range []string{"garbage", "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\n\r\n"} {
		bad.conn.WriteTo([]byte(m), group)
	}
	waitFor(t, "every NOTIFY settled and bad input counted", 10*time.Second, func() bool {
		return e.count("notifies", "ok") == 3 && e.count("notifies", "rejected") == 1 &&
			e.count("subscribes", "bad_request") == 2
	})
	if got := e.count("subscribes", "denied"); got != 1 {
		t.Errorf("denied %v", got)
	}
}

// TestPnPRateLimit: a source flooding SUBSCRIBEs is answered up to its
// burst, the rest dropped and counted.
func TestPnPRateLimit(t *testing.T) {
	t.Parallel()
	e := startPnP(t, PnPListeners{})
	group, _ := net.ResolveUDPAddr("udp4", e.group)
	ph := newPnPPhone(t, nil)
	const sent = pnpSourceBurst + 5
	for i := range sent {
		ph.subscribe(group, "yealink", "0015650000ff", fmt.Sprintf("f%d", i), 1)
	}
	waitFor(t, "flood counted", 10*time.Second, func() bool {
		return e.count("subscribes", "rate_limited")+e.count("subscribes", "repeat")+
			e.count("subscribes", "notified") == sent
	})
	if got := e.count("subscribes", "rate_limited"); got != sent-pnpSourceBurst {
		t.Errorf("rate limited %v, want %d", got, sent-pnpSourceBurst)
	}
}

func TestParsePnPSubscribe(t *testing.T) {
	t.Parallel()
	base := "SUBSCRIBE sip:x@224.0.1.75 SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1\r\n" +
		"To: <sip:%s@224.0.1.75>\r\nCall-ID: c\r\nCSeq: 1 SUBSCRIBE\r\n%s\r\n\r\n"
	for _, tc := range []struct {
		name, from, event string
		mac               string
		err               bool
	}{
		{"yealink", "MAC%3a001565AABBCC", `ua-profile;profile-type="device";vendor="Yealink";model="T46U";version="1"`, "001565aabbcc", false},
		{"dashes", "mac%3a00-15-65-aa-bb-cc", `ua-profile;profile-type=device;vendor=Snom`, "001565aabbcc", false},
		{"upper escape", "MAC%3A000B82123456", `UA-Profile ; profile-type="device"`, "000b82123456", false},
		{"user profile", "MAC%3a001565aabbcc", `ua-profile;profile-type="user"`, "", true},
		{"other event", "MAC%3a001565aabbcc", `presence`, "", true},
		{"no MAC", "alice", `ua-profile;profile-type="device"`, "", true},
		{"short MAC", "MAC%3a0015", `ua-profile;profile-type="device"`, "", true},
		{"not hex", "MAC%3a00156zaabbcc", `ua-profile;profile-type="device"`, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := fmt.Sprintf(base, tc.from, "From: <sip:"+tc.from+"@224.0.1.75>;tag=1\r\nEvent: "+tc.event)
			m, err := sip.NewParser().ParseSIP([]byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			d, err := parsePnPSubscribe(m.(*sip.Request))
			if (err != nil) != tc.err || d.MAC != tc.mac {
				t.Fatalf("got %+v, %v; want mac %q err %v", d, err, tc.mac, tc.err)
			}
		})
	}
}

func TestPnPConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		c   PnPConfig
		err bool
	}{
		{PnPConfig{}, false},
		{PnPConfig{Enabled: true, Interface: "eth0"}, false},
		{PnPConfig{Enabled: true}, true},
		{PnPConfig{Enabled: true, Interface: "a very long name"}, true},
	} {
		if err := tc.c.Validate(); (err != nil) != tc.err {
			t.Errorf("%+v: %v", tc.c, err)
		}
	}
	c := DefaultConfig()
	c.PnP = PnPConfig{Enabled: true}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "pnp.interface") {
		t.Errorf("sip config with pnp and no interface: %v", err)
	}
	if _, err := ListenPnP(PnPConfig{Enabled: true, Interface: "hd-nonexistent"}); err == nil ||
		!strings.Contains(err.Error(), "pnp.interface") {
		t.Errorf("ListenPnP on a missing interface: %v", err)
	}
}
