package media

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkBridgeCalls is the media bridge's figure, not a test: N
// concurrent G.711 calls (HOTDESK_BENCH_CALLS, default 200) between
// simulated browsers (pion, DTLS-SRTP on loopback) and plain-RTP phones,
// for HOTDESK_BENCH_SECONDS (default 10) of media, once without and once
// with recording. It reports call setup through the bridge (offer in to
// answer and plain offer out, ICE gathered) p50/p99, packet loss both ways,
// the transit jitter the path adds (RFC 3550 interarrival jitter of send-to-
// receive time, mean over calls) and the process CPU per call, whose
// difference is what recording costs. Run:
//
//	go test -run '^$' -bench BridgeCalls -benchtime 1x ./sip/media/
func BenchmarkBridgeCalls(b *testing.B) {
	calls := envInt("HOTDESK_BENCH_CALLS", 200)
	secs := envInt("HOTDESK_BENCH_SECONDS", 10)
	for range b.N {
		plain := runCalls(b, calls, secs, false)
		rec := runCalls(b, calls, secs, true)
		b.ReportMetric(float64(plain.setupP99.Microseconds())/1000, "setup-p99-ms")
		b.ReportMetric(plain.loss*100, "loss-%")
		b.ReportMetric(plain.jitterMS, "jitter-ms")
		b.ReportMetric(plain.cpuPerCall*100, "cpu-%-per-call")
		b.ReportMetric(rec.cpuPerCall*100, "cpu-%-per-call-recorded")
		fmt.Printf("bridge, %d calls × %d s: setup p50 %v p99 %v; loss %.3f %% (to phone %.3f %%, to browser %.3f %%); "+
			"added jitter %.2f ms (worst call %.2f ms); CPU %.2f %% of a core per call (whole harness)\n",
			calls, secs, plain.setupP50, plain.setupP99, plain.loss*100, plain.lossToPhone*100, plain.lossToBrowser*100,
			plain.jitterMS, plain.jitterMax, plain.cpuPerCall*100)
		fmt.Printf("recorded: loss %.3f %%, jitter %.2f ms, CPU %.2f %% per call: recording adds %.1f %% CPU per call\n",
			rec.loss*100, rec.jitterMS, rec.cpuPerCall*100, (rec.cpuPerCall/plain.cpuPerCall-1)*100)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type benchResult struct {
	setupP50, setupP99  time.Duration
	loss, lossToPhone   float64
	lossToBrowser       float64
	jitterMS, jitterMax float64
	cpuPerCall          float64 // cores
}

// jitterMeter is RFC 3550's interarrival jitter of transit times; the
// sender puts its send time (ns) in the first 8 payload bytes.
type jitterMeter struct {
	mu       sync.Mutex
	got      int64
	last     int64 // previous transit, ns
	jitter   float64
	measured bool
}

func (j *jitterMeter) packet(payload []byte, at time.Time) {
	if len(payload) < 8 {
		return
	}
	transit := at.UnixNano() - int64(binary.BigEndian.Uint64(payload))
	j.mu.Lock()
	defer j.mu.Unlock()
	j.got++
	if j.measured {
		d := float64(transit - j.last)
		if d < 0 {
			d = -d
		}
		j.jitter += (d - j.jitter) / 16
	}
	j.last, j.measured = transit, true
}

func runCalls(b *testing.B, n, secs int, record bool) benchResult {
	b.Helper()
	dir := b.TempDir()
	var tap func(CallInfo) Tap
	if record {
		var seq atomic.Int64
		tap = func(CallInfo) Tap {
			w, err := NewWAVTap(filepath.Join(dir, strconv.FormatInt(seq.Add(1), 10)+".wav"), 0, nil)
			if err != nil {
				b.Error(err)
				return nil
			}
			return w
		}
	}
	br, err := New(Config{RTPAddress: "127.0.0.1", Loopback: true, MaxSessions: n, Tap: tap},
		slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	type leg struct {
		pc          *webrtc.PeerConnection
		track       *webrtc.TrackLocalStaticRTP
		phone       *net.UDPConn
		s           *Session
		toPhone     jitterMeter
		toBrowser   jitterMeter
		sentPhone   atomic.Int64
		sentBrowser atomic.Int64
	}
	legs := make([]*leg, n)
	setups := make([]time.Duration, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // calls set up 16 at a time, as a burst of dials would
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			l := &leg{}
			legs[i] = l
			me := &webrtc.MediaEngine{}
			_ = me.RegisterDefaultCodecs()
			var se webrtc.SettingEngine
			se.SetIncludeLoopbackCandidate(true)
			se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
			var err error
			if l.pc, err = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{}); err != nil {
				b.Error(err)
				return
			}
			l.track, _ = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "b")
			_, _ = l.pc.AddTrack(l.track)
			l.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
				for {
					p, _, err := tr.ReadRTP()
					if err != nil {
						return
					}
					l.toBrowser.packet(p.Payload, time.Now())
				}
			})
			o, _ := l.pc.CreateOffer(nil)
			done := webrtc.GatheringCompletePromise(l.pc)
			_ = l.pc.SetLocalDescription(o)
			<-done
			l.phone, _ = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			start := time.Now()
			s, answer, _, err := br.FromBrowser(context.Background(), l.pc.LocalDescription().SDP, CallInfo{})
			setups[i] = time.Since(start)
			if err != nil {
				b.Error(err)
				return
			}
			l.s = s
			_ = l.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer})
			_ = s.PhoneAnswered(fmt.Sprintf("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio %d RTP/AVP 0\r\n", l.phone.LocalAddr().(*net.UDPAddr).Port))
			go func() {
				buf := make([]byte, 1500)
				var p rtp.Packet
				for {
					k, err := l.phone.Read(buf)
					if err != nil {
						return
					}
					if p.Unmarshal(buf[:k]) == nil {
						l.toPhone.packet(p.Payload, time.Now())
					}
				}
			}()
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	// Media: every call sends 50 packets/s each way (one ticker for all,
	// as a media server's clock would).
	time.Sleep(2 * time.Second) // ICE and DTLS finish before counting (a benchmark, not a test)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	tk := time.NewTicker(20 * time.Millisecond)
	payload := make([]byte, 160)
	for seq := 0; seq < secs*50; seq++ {
		<-tk.C
		for _, l := range legs {
			binary.BigEndian.PutUint64(payload, uint64(time.Now().UnixNano()))
			p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: uint16(seq), Timestamp: uint32(seq * 160), SSRC: 9}, Payload: payload}
			if l.track.WriteRTP(p) == nil {
				l.sentPhone.Add(1)
			}
			raw, _ := p.Marshal()
			if _, err := l.phone.WriteToUDP(raw, l.s.RTPAddr()); err == nil {
				l.sentBrowser.Add(1)
			}
		}
	}
	tk.Stop()
	time.Sleep(500 * time.Millisecond) // the last packets in flight arrive
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	wall := time.Since(t0)
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	var res benchResult
	var sentP, sentB, gotP, gotB int64
	var jit []float64
	for _, l := range legs {
		sentP += l.sentPhone.Load()
		sentB += l.sentBrowser.Load()
		l.toPhone.mu.Lock()
		l.toBrowser.mu.Lock()
		gotP += l.toPhone.got
		gotB += l.toBrowser.got
		jit = append(jit, l.toPhone.jitter/1e6, l.toBrowser.jitter/1e6)
		l.toBrowser.mu.Unlock()
		l.toPhone.mu.Unlock()
		l.s.Close()
		l.pc.Close()
		l.phone.Close()
	}
	slices.Sort(setups)
	res.setupP50, res.setupP99 = setups[len(setups)/2], setups[len(setups)*99/100]
	res.lossToPhone = 1 - float64(gotP)/float64(max(sentP, 1))
	res.lossToBrowser = 1 - float64(gotB)/float64(max(sentB, 1))
	res.loss = 1 - float64(gotP+gotB)/float64(max(sentP+sentB, 1))
	for _, j := range jit {
		res.jitterMS += j / float64(len(jit))
		res.jitterMax = max(res.jitterMax, j)
	}
	res.cpuPerCall = cpu.Seconds() / wall.Seconds() / float64(n)
	return res
}
