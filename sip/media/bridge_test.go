package media

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// settle bounds every wait for the other side's packets or state.
const settle = 30 * time.Second

func newTestBridge(t *testing.T, tap func(CallInfo) Tap) *Bridge {
	t.Helper()
	b, err := New(Config{RTPAddress: "127.0.0.1", Loopback: true, Tap: tap}, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// browserPeer is a WebRTC endpoint standing in for the browser: pion with
// PCMU on loopback, sending a packet every 20 ms and counting what it gets.
type browserPeer struct {
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	got   chan struct{}
}

func newBrowserPeer(t *testing.T) *browserPeer {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "browser")
	if err != nil {
		t.Fatal(err)
	}
	p := &browserPeer{pc: pc, track: track, got: make(chan struct{}, 1000)}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			select {
			case p.got <- struct{}{}:
			default:
			}
		}
	})
	return p
}

func gathered(t *testing.T, pc *webrtc.PeerConnection, d webrtc.SessionDescription) string {
	t.Helper()
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

// send writes n PCMU packets, one per tick of a 20 ms ticker (the media
// clock), or until stop.
func sendRTP(n int, write func(*rtp.Packet) error, stop <-chan struct{}) {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for i := range n {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 42},
			Payload: make([]byte, 160)}
		if write(p) != nil {
			return
		}
		select {
		case <-tk.C:
		case <-stop:
			return
		}
	}
}

func waitN(t *testing.T, ch <-chan struct{}, n int, what string) {
	t.Helper()
	deadline := time.After(settle)
	for range n {
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%s: fewer than %d packets", what, n)
		}
	}
}

// phoneRTP is the plain-RTP side: a UDP socket on loopback.
func phoneRTP(t *testing.T) (*net.UDPConn, chan struct{}) {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan struct{}, 1000)
	go func() {
		buf := make([]byte, 1500)
		var p rtp.Packet
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:n]) == nil && p.PayloadType == 0 {
				select {
				case got <- struct{}{}:
				default:
				}
			}
		}
	}()
	return c, got
}

func phoneSDP(c *net.UDPConn, pts string) string {
	a := c.LocalAddr().(*net.UDPAddr)
	return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=phone\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " +
		strconv.Itoa(a.Port) + " RTP/AVP " + pts + "\r\n"
}

// TestBridgeBothWays: a call the browser places and one it receives; RTP
// flows both ways through the bridge (packets counted at each end).
func TestBridgeBothWays(t *testing.T) {
	for _, dir := range []string{"from_browser", "to_browser"} {
		t.Run(dir, func(t *testing.T) {
			// Recorded: the tap sees both directions.
			path := filepath.Join(t.TempDir(), dir+".wav")
			recorded := make(chan float64, 1)
			b := newTestBridge(t, func(c CallInfo) Tap {
				if c.Owner != "browser:7" || c.Incoming != (dir == "to_browser") {
					t.Errorf("tap asked for %+v", c)
				}
				w, err := NewWAVTap(path, 0, func(_ int64, secs float64, _ error) { recorded <- secs })
				if err != nil {
					t.Error(err)
					return nil
				}
				return w
			})
			info := CallInfo{Owner: "browser:7", Incoming: dir == "to_browser"}
			br := newBrowserPeer(t)
			phone, phoneGot := phoneRTP(t)
			ctx := context.Background()
			var s *Session
			if dir == "from_browser" {
				if _, err := br.pc.AddTrack(br.track); err != nil {
					t.Fatal(err)
				}
				o, err := br.pc.CreateOffer(nil)
				if err != nil {
					t.Fatal(err)
				}
				var answer, plain string
				s, answer, plain, err = b.FromBrowser(ctx, gathered(t, br.pc, o), info)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(plain, "RTP/AVP 0") || !strings.Contains(plain, "c=IN IP4 127.0.0.1") {
					t.Fatalf("plain offer %q", plain)
				}
				if err := br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
					t.Fatal(err)
				}
				if err := s.PhoneAnswered(phoneSDP(phone, "0 8")); err != nil {
					t.Fatal(err)
				}
			} else {
				var offer string
				var err error
				s, offer, err = b.ToBrowser(ctx, phoneSDP(phone, "8 0 101"), info)
				if err != nil {
					t.Fatal(err)
				}
				if err := br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
					t.Fatal(err)
				}
				if _, err := br.pc.AddTrack(br.track); err != nil {
					t.Fatal(err)
				}
				a, err := br.pc.CreateAnswer(nil)
				if err != nil {
					t.Fatal(err)
				}
				plain, err := s.BrowserAnswered(gathered(t, br.pc, a))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(plain, "RTP/AVP 0") {
					t.Fatalf("plain answer %q", plain)
				}
			}
			stop := make(chan struct{})
			defer close(stop)
			go sendRTP(2000, br.track.WriteRTP, stop)
			go sendRTP(2000, func(p *rtp.Packet) error {
				raw, _ := p.Marshal()
				_, err := phone.WriteToUDP(raw, s.RTPAddr())
				return err
			}, stop)
			waitN(t, phoneGot, 25, "browser to phone")
			waitN(t, br.got, 25, "phone to browser")
			if s.ToPhone.Load() < 25 || s.ToBrowser.Load() < 25 {
				t.Fatalf("counters %d to phone, %d to browser", s.ToPhone.Load(), s.ToBrowser.Load())
			}
			s.Close()
			if b.Open() != 0 {
				t.Fatalf("%d sessions open after Close", b.Open())
			}
			if secs := <-recorded; secs < 0.4 {
				t.Fatalf("recorded %.2f s, want 0.4 s at least (25 packets each way)", secs)
			}
		})
	}
}

// TestBridgeRefusesWithoutG711: a phone's offer without PCMU or PCMA, or a
// browser's without PCMU, is refused with ErrNoCodec (the proxy's 488).
func TestBridgeRefusesWithoutG711(t *testing.T) {
	b := newTestBridge(t, nil)
	phone, _ := phoneRTP(t)
	if _, _, err := b.ToBrowser(context.Background(), phoneSDP(phone, "18 9"), CallInfo{}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("ToBrowser(G.729, G.722) = %v, want ErrNoCodec", err)
	}
	if _, _, _, err := b.FromBrowser(context.Background(), "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", CallInfo{}); !errors.Is(err, ErrNoCodec) {
		t.Fatalf("FromBrowser(opus only) = %v, want ErrNoCodec", err)
	}
	if _, err := New(Config{RTPAddress: "0.0.0.0"}, slog.Default(), prometheus.NewRegistry()); err == nil {
		t.Fatal("New accepted the wildcard rtp_address")
	}
}
