package media

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"hotdesk/sip/media/g711"
)

// TestBridgePCMA: a phone that speaks only A-law (PCMA) is bridged to the
// browser's µ-law (PCMU) both ways, in a call the browser places (the
// bridge offers PCMU and PCMA, the phone answers PCMA) and one it receives
// (the phone offers PCMA only): each payload arrives transcoded sample by
// sample, and the descriptions name PCMA toward the phone.
func TestBridgePCMA(t *testing.T) {
	ramp := make([]byte, 160)
	for i := range ramp {
		ramp[i] = byte(i)
	}
	toA, toU := make([]byte, 160), make([]byte, 160)
	g711.UlawToAlaw(toA, ramp)
	g711.AlawToUlaw(toU, ramp)
	for _, dir := range []string{"from_browser", "to_browser"} {
		t.Run(dir, func(t *testing.T) {
			b := newTestBridge(t, nil)
			br := newBrowserPeer(t)
			browserGot := make(chan []byte, 100)
			br.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				for {
					p, _, err := tr.ReadRTP()
					if err != nil {
						return
					}
					select {
					case browserGot <- append([]byte(nil), p.Payload...):
					default:
					}
				}
			})
			phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer phone.Close()
			phoneGot := make(chan rtp.Packet, 100)
			go func() {
				buf := make([]byte, 1500)
				for {
					n, err := phone.Read(buf)
					if err != nil {
						return
					}
					var p rtp.Packet
					if p.Unmarshal(append([]byte(nil), buf[:n]...)) == nil {
						select {
						case phoneGot <- p:
						default:
						}
					}
				}
			}()
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
				s, answer, plain, err = b.FromBrowser(ctx, gathered(t, br.pc, o), CallInfo{})
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(plain, "RTP/AVP 0 8") || !strings.Contains(plain, "a=rtpmap:8 PCMA/8000") {
					t.Fatalf("plain offer %q, want PCMU and PCMA", plain)
				}
				if err := br.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
					t.Fatal(err)
				}
				if err := s.PhoneAnswered(phoneSDP(phone, "8")); err != nil {
					t.Fatal(err)
				}
			} else {
				var offer string
				s, offer, err = b.ToBrowser(ctx, phoneSDP(phone, "8 101"), CallInfo{})
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
				if !strings.Contains(plain, "RTP/AVP 8\r\n") {
					t.Fatalf("plain answer %q, want PCMA", plain)
				}
			}
			stop := make(chan struct{})
			defer close(stop)
			go sendRTP(2000, func(p *rtp.Packet) error { p.Payload = ramp; return br.track.WriteRTP(p) }, stop)
			go sendRTP(2000, func(p *rtp.Packet) error {
				p.PayloadType, p.Payload = 8, ramp
				raw, _ := p.Marshal()
				_, err := phone.WriteToUDP(raw, s.RTPAddr())
				return err
			}, stop)
			for i := 0; i < 10; i++ {
				select {
				case p := <-phoneGot:
					if p.PayloadType != 8 || !bytes.Equal(p.Payload, toA) {
						t.Fatalf("the phone got PT %d %x, want PCMA %x", p.PayloadType, p.Payload[:8], toA[:8])
					}
				case <-stopAfter(t):
					t.Fatal("the phone got nothing")
				}
				select {
				case got := <-browserGot:
					if !bytes.Equal(got, toU) {
						t.Fatalf("the browser got %x, want the phone's A-law as µ-law %x", got[:8], toU[:8])
					}
				case <-stopAfter(t):
					t.Fatal("the browser got nothing")
				}
			}
			s.Close()
		})
	}
}

func stopAfter(t *testing.T) <-chan struct{} {
	ctx, cancel := context.WithTimeout(context.Background(), settle)
	t.Cleanup(cancel)
	return ctx.Done()
}
