package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// connectedCall is a browser call through b, connected both ways: a pion
// browser that reads without allocating and a phone socket.
type connectedCall struct {
	s         *Session
	browser   *browserPeer
	phone     *net.UDPConn
	atBrowser chan struct{} // one per packet the browser gets
	atPhone   chan struct{}
}

func connectCall(t *testing.T, b *Bridge) *connectedCall {
	t.Helper()
	// The browser without pion's interceptors, which allocate per packet:
	// what is counted below is then the bridge's.
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se),
		webrtc.WithInterceptorRegistry(&interceptor.Registry{})).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "browser")
	if err != nil {
		t.Fatal(err)
	}
	c := &connectedCall{browser: &browserPeer{pc: pc, track: track}, atBrowser: make(chan struct{}, 1), atPhone: make(chan struct{}, 1)}
	if c.phone, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.phone.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, err := c.phone.Read(buf); err != nil {
				return
			}
			c.atPhone <- struct{}{}
		}
	}()
	// Read into one buffer, not ReadRTP, for the same reason.
	c.browser.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			c.atBrowser <- struct{}{}
		}
	})
	if _, err := c.browser.pc.AddTrack(c.browser.track); err != nil {
		t.Fatal(err)
	}
	o, err := c.browser.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	var once sync.Once
	c.browser.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	s, answer, _, err := b.FromBrowser(context.Background(), gathered(t, c.browser.pc, o), CallInfo{})
	if err != nil {
		t.Fatal(err)
	}
	c.s = s
	t.Cleanup(s.Close)
	if err := c.browser.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	if err := s.PhoneAnswered(phoneSDP(c.phone, "0")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-connected:
	case <-time.After(settle):
		t.Fatal("browser not connected")
	}
	return c
}

// TestBridgeForwardAllocs: forwarding a packet allocates nothing in the
// bridge's loops (a read buffer, packet and address per loop, counters
// resolved once). What is counted is the whole process: pion's SRTP on
// both ends and the test's peers included, which is why the bound is not
// zero; a per-packet allocation in the loops (ReadRTP, ReadFromUDP, a
// metric label lookup) adds one or more per packet and fails it.
func TestBridgeForwardAllocs(t *testing.T) {
	b := newTestBridge(t, nil)
	c := connectCall(t, b)
	bridgeRTP := c.s.RTPAddr().AddrPort()
	// Every packet a new sequence number: SRTP drops replays.
	phonePkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 7}, Payload: make([]byte, 160)}
	raw := make([]byte, 1500)
	phoneWrite := func() error {
		phonePkt.SequenceNumber++
		phonePkt.Timestamp += 160
		n, err := phonePkt.MarshalTo(raw)
		if err != nil {
			return err
		}
		_, err = c.phone.WriteToUDPAddrPort(raw[:n], bridgeRTP)
		return err
	}
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SSRC: 8}, Payload: make([]byte, 160)}
	browserWrite := func() error {
		pkt.SequenceNumber++
		pkt.Timestamp += 160
		return c.browser.track.WriteRTP(pkt)
	}
	// One timer for every wait: a timer per packet would be counted.
	lost := time.After(5 * settle)
	fromPhone := func() {
		if err := phoneWrite(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.atBrowser:
		case <-lost:
			t.Fatal("phone to browser: packet lost")
		}
	}
	fromBrowser := func() {
		if err := browserWrite(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.atPhone:
		case <-lost:
			t.Fatal("browser to phone: packet lost")
		}
	}
	// Warm up: each side's DTLS may finish after the other's and the
	// tracks start with their first packet, so the first packets are
	// resent until one arrives; then pools fill.
	for _, w := range []struct {
		write func() error
		got   <-chan struct{}
	}{
		{phoneWrite, c.atBrowser},
		{browserWrite, c.atPhone},
	} {
		deadline := time.After(settle)
	resend:
		for {
			if err := w.write(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-w.got:
				break resend
			case <-time.After(100 * time.Millisecond):
			case <-deadline:
				t.Fatal("no packet through the bridge")
			}
		}
	}
	// Late copies of resent packets are drained before counting.
	for range 50 {
		fromPhone()
		fromBrowser()
	}
	for len(c.atBrowser)+len(c.atPhone) > 0 {
		select {
		case <-c.atBrowser:
		case <-c.atPhone:
		}
	}
	for _, tc := range []struct {
		name string
		send func()
		max  float64
	}{
		{"phone to browser", fromPhone, 0},
		{"browser to phone", fromBrowser, 0},
	} {
		if got := testing.AllocsPerRun(1000, tc.send); got > tc.max {
			t.Errorf("%s: %.1f allocations per packet, want ≤ %.0f", tc.name, got, tc.max)
		} else {
			t.Logf("%s: %.1f allocations per packet", tc.name, got)
		}
	}
}

// TestBridgeOneCertificate: every session presents the bridge's one DTLS
// certificate (a key and signature per call cost setup time), and a new
// one after a day on the bridge's clock.
func TestBridgeOneCertificate(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	b, err := New(Config{RTPAddress: "127.0.0.1", Loopback: true, Now: clock}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	fingerprint := func() string {
		t.Helper()
		phone, _ := phoneRTP(t)
		s, offer, err := b.ToBrowser(context.Background(), phoneSDP(phone, "0"), CallInfo{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		for line := range strings.Lines(offer) {
			if strings.HasPrefix(line, "a=fingerprint:") {
				return strings.TrimSpace(line)
			}
		}
		t.Fatalf("no fingerprint in %q", offer)
		return ""
	}
	first := fingerprint()
	if !strings.HasPrefix(first, "a=fingerprint:sha-256 ") {
		t.Fatalf("fingerprint %q", first)
	}
	if again := fingerprint(); again != first {
		t.Fatalf("second session's certificate %q, want the first's %q", again, first)
	}
	mu.Lock()
	now = now.Add(certLifetime + time.Minute)
	mu.Unlock()
	if next := fingerprint(); next == first {
		t.Fatal("same certificate after a day")
	}
	if _, c, err := b.env(); err != nil {
		t.Fatal(err)
	} else if k, ok := c.GetFingerprints(); ok != nil || len(k) == 0 {
		t.Fatalf("certificate fingerprints %v %v", k, ok)
	}
}

// TestBridgeSessionLimit: MaxSessions holds while sessions are set up in
// parallel (the slot is taken before the session is built).
func TestBridgeSessionLimit(t *testing.T) {
	b, err := New(Config{RTPAddress: "127.0.0.1", Loopback: true, MaxSessions: 2}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	phone, _ := phoneRTP(t)
	var wg sync.WaitGroup
	errs := make(chan error, 5)
	for range 5 {
		wg.Go(func() {
			_, _, err := b.ToBrowser(context.Background(), phoneSDP(phone, "0"), CallInfo{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	ok, full := 0, 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrFull):
			full++
		default:
			t.Fatal(err)
		}
	}
	if ok != 2 || full != 3 || b.Open() != 2 {
		t.Fatalf("%d sessions, %d refused, %d open; want 2, 3, 2", ok, full, b.Open())
	}
}
