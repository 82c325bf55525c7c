package media

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// epoch is the peers' monotonic time base.
var epoch = time.Now()

// jitter is RFC 3550's interarrival jitter (A.8) of one RTP stream at
// 8 kHz, in ns: fed arrival times it is the receiver's figure, fed send
// times it is the jitter the sender itself put in.
type jitter struct {
	mu   sync.Mutex
	n    int64
	last int64 // previous time minus timestamp, ns
	j    float64
}

func (j *jitter) at(t time.Time, ts uint32) {
	rel := int64(t.Sub(epoch)) - int64(ts)*(int64(time.Second)/8000)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.n > 0 {
		d := float64(rel - j.last)
		if d < 0 {
			d = -d
		}
		j.j += (d - j.j) / 16
	}
	j.n++
	j.last = rel
}

func (j *jitter) read() (n int64, ms float64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.n, j.j / 1e6
}

// benchPeer is one call's far ends: a browser and a phone.
type benchPeer struct {
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticRTP
	phone     *net.UDPConn
	bridge    *net.UDPAddr // the bridge's plain-RTP address
	answerAt  time.Time
	connectMS float64
	iceUS     atomic.Int64 // answer in to ICE connected, µs
	offer     string

	txToPhone, rxToPhone     jitter
	txToBrowser, rxToBrowser jitter
	sentToPhone, sentToBrwsr int64 // sender goroutine only
}

// control is a plain UDP stream on loopback inside the peer process, sent
// and received beside the calls but not through the bridge: the jitter it
// adds is the machine's floor (scheduling, the loopback hop), to set the
// bridge's figure against.
type control struct {
	a, b   *net.UDPConn
	tx, rx jitter
	sent   int64
}

func newControl() (*control, error) {
	c := &control{}
	var err error
	if c.a, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		return nil, err
	}
	if c.b, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		c.a.Close()
		return nil, err
	}
	go func() {
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			k, err := c.b.Read(buf)
			if err != nil {
				return
			}
			at := time.Now()
			if _, err := h.Unmarshal(buf[:k]); err == nil {
				c.rx.at(at, h.Timestamp)
			}
		}
	}()
	return c, nil
}

func (c *control) close() { c.a.Close(); c.b.Close() }

// runPeers is the peer process of BenchmarkBridgeCalls, driven over r/w
// with peerMsg lines.
func runPeers(r io.Reader, w io.Writer) int {
	dec := json.NewDecoder(bufio.NewReader(r))
	enc := json.NewEncoder(w)
	fail := func(err error) int {
		_ = enc.Encode(peerMsg{Op: "fail", Err: err.Error()})
		return 1
	}
	var start peerMsg
	if err := dec.Decode(&start); err != nil || start.Op != "start" {
		return fail(fmt.Errorf("want start: %v", err))
	}
	n := start.Calls
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return fail(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(0)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))

	peers := make([]*benchPeer, n)
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.pc.Close()
				p.phone.Close()
			}
		}
	}()
	controls := make([]*control, mediaGroups)
	for g := range controls {
		c, err := newControl()
		if err != nil {
			return fail(err)
		}
		defer c.close()
		controls[g] = c
	}
	var connected sync.WaitGroup
	connected.Add(n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p, offer, err := newBenchPeer(api, &connected)
			if err != nil {
				errs <- err
				return
			}
			peers[i] = p
			p.offer = offer
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fail(err)
	default:
	}
	for i, p := range peers {
		if err := enc.Encode(peerMsg{Op: "offer", Call: i, SDP: p.offer, Port: p.phone.LocalAddr().(*net.UDPAddr).Port}); err != nil {
			return 1
		}
	}
	for range n {
		var a peerMsg
		if err := dec.Decode(&a); err != nil || a.Op != "answer" || a.Call < 0 || a.Call >= n {
			return fail(fmt.Errorf("want an answer: %v", err))
		}
		if a.SDP == "" {
			return fail(fmt.Errorf("call %d not answered", a.Call))
		}
		p := peers[a.Call]
		p.bridge = &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: a.Port}
		p.answerAt = time.Now()
		if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a.SDP}); err != nil {
			return fail(err)
		}
	}
	allUp := make(chan struct{})
	go func() { connected.Wait(); close(allUp) }()
	select {
	case <-allUp:
	case <-time.After(60 * time.Second):
		return fail(errors.New("not every call connected within 60 s"))
	}
	if err := enc.Encode(peerMsg{Op: "connected"}); err != nil {
		return 1
	}
	var m peerMsg
	if err := dec.Decode(&m); err != nil || m.Op != "media" {
		return fail(fmt.Errorf("want media: %v", err))
	}
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	sendMedia(peers, controls, start.Secs)
	drain(peers)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	res := &peerResult{CPUSeconds: time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano()).Seconds()}
	for _, p := range peers {
		gotP, rxP := p.rxToPhone.read()
		gotB, rxB := p.rxToBrowser.read()
		_, txP := p.txToPhone.read()
		_, txB := p.txToBrowser.read()
		res.SentToPhone += p.sentToPhone
		res.SentToBrowser += p.sentToBrwsr
		res.GotAtPhone += gotP
		res.GotAtBrowser += gotB
		res.RxToPhone, res.TxToPhone = append(res.RxToPhone, rxP), append(res.TxToPhone, txP)
		res.RxToBrowser, res.TxToBrowser = append(res.RxToBrowser, rxB), append(res.TxToBrowser, txB)
		res.ConnectMS = append(res.ConnectMS, p.connectMS)
		res.ICEMS = append(res.ICEMS, float64(p.iceUS.Load())/1000)
	}
	for _, c := range controls {
		_, rx := c.rx.read()
		_, tx := c.tx.read()
		res.RxControl, res.TxControl = append(res.RxControl, rx), append(res.TxControl, tx)
	}
	if err := enc.Encode(peerMsg{Op: "result", Result: res}); err != nil {
		return 1
	}
	_, _ = io.Copy(io.Discard, r) // until the benchmark closes our stdin
	return 0
}

func newBenchPeer(api *webrtc.API, connected *sync.WaitGroup) (*benchPeer, string, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, "", err
	}
	p := &benchPeer{pc: pc}
	if p.phone, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		pc.Close()
		return nil, "", err
	}
	if p.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "browser"); err != nil {
		return nil, "", err
	}
	if _, err := pc.AddTrack(p.track); err != nil {
		return nil, "", err
	}
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s == webrtc.ICEConnectionStateConnected {
			p.iceUS.CompareAndSwap(0, time.Since(p.answerAt).Microseconds())
		}
	})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() {
				p.connectMS = float64(time.Since(p.answerAt).Microseconds()) / 1000
				connected.Done()
			})
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			k, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			at := time.Now()
			if _, err := h.Unmarshal(buf[:k]); err == nil {
				p.rxToBrowser.at(at, h.Timestamp)
			}
		}
	})
	go func() {
		buf := make([]byte, 1500)
		var h rtp.Header
		for {
			k, err := p.phone.Read(buf)
			if err != nil {
				return
			}
			at := time.Now()
			if _, err := h.Unmarshal(buf[:k]); err == nil {
				p.rxToPhone.at(at, h.Timestamp)
			}
		}
	}()
	o, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, "", err
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		return nil, "", err
	}
	<-done
	return p, pc.LocalDescription().SDP, nil
}

// mediaGroups spread the calls' packets over the 20 ms period.
const mediaGroups = 20

// sendMedia sends 50 packets a second each way on every call for secs.
// Calls are spread over groups 1 ms apart, as independent phones' clocks
// are, not all in one burst; each group also sends its control stream.
func sendMedia(peers []*benchPeer, controls []*control, secs int) {
	const groups = mediaGroups
	var wg sync.WaitGroup
	t0 := time.Now().Add(10 * time.Millisecond)
	for g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(t0.Add(time.Duration(g) * time.Millisecond)))
			tk := time.NewTicker(20 * time.Millisecond)
			defer tk.Stop()
			payload := make([]byte, 160)
			raw := make([]byte, 1500)
			ctl := controls[g]
			for seq := range secs * 50 {
				cp := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(seq),
					Timestamp: uint32(seq * 160), SSRC: 1 << 20}, Payload: payload}
				k, _ := cp.MarshalTo(raw)
				ctl.tx.at(time.Now(), cp.Timestamp)
				if _, err := ctl.a.WriteToUDP(raw[:k], ctl.b.LocalAddr().(*net.UDPAddr)); err == nil {
					ctl.sent++
				}
				for i := g; i < len(peers); i += groups {
					p := peers[i]
					pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(seq),
						Timestamp: uint32(seq * 160), SSRC: uint32(i + 1)}, Payload: payload}
					p.txToPhone.at(time.Now(), pkt.Timestamp)
					if p.track.WriteRTP(&pkt) == nil {
						p.sentToPhone++
					}
					k, _ := pkt.MarshalTo(raw)
					p.txToBrowser.at(time.Now(), pkt.Timestamp)
					if _, err := p.phone.WriteToUDP(raw[:k], p.bridge); err == nil {
						p.sentToBrwsr++
					}
				}
				<-tk.C
			}
		}()
	}
	wg.Wait()
}

// drain waits (at most 1 s) for the packets still in flight.
func drain(peers []*benchPeer) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		missing := false
		for _, p := range peers {
			gotP, _ := p.rxToPhone.read()
			gotB, _ := p.rxToBrowser.read()
			if gotP < p.sentToPhone || gotB < p.sentToBrwsr {
				missing = true
				break
			}
		}
		if !missing {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
