package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// peersEnv turns the test binary into the benchmark's peer process.
const peersEnv = "HOTDESK_MEDIA_PEERS"

// TestMain runs the peers of BenchmarkBridgeCalls when the benchmark
// re-executes this binary, so that the load generator does not share a
// Go scheduler, heap and GC with the bridge it measures.
func TestMain(m *testing.M) {
	if os.Getenv(peersEnv) != "" {
		os.Exit(runPeers(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// BenchmarkBridgeCalls is the media bridge's figure, not a test: N
// concurrent G.711 calls (HOTDESK_BENCH_CALLS, default 200) for
// HOTDESK_BENCH_SECONDS (default 10) of media, once without and once with
// recording. The bridge runs here, at the runtime's own GOMAXPROCS as in
// the daemon; the peers (browsers: pion with ICE and DTLS-SRTP; phones:
// plain RTP) run in a second process (this binary re-executed). It
// reports:
//   - setup: the bridge's FromBrowser (offer in to answer and plain offer
//     out, ICE gathered), 16 at a time as a burst of dials; p50/p99;
//   - connect: the peer's answer in to DTLS-SRTP connected, and its first
//     part, to ICE connected; p50/p99;
//   - loss per direction;
//   - added jitter per direction: the RFC 3550 interarrival jitter the
//     receiver measures minus the one the sender's own send times have
//     against the same RTP timestamps; p50/p99 over calls;
//   - the same for 20 control streams that skip the bridge (a loopback
//     UDP hop inside the peer process): the machine's floor;
//   - the bridge process's CPU per call (the peers' is theirs).
//
// Run (a measurement: one at a time on shared machines):
//
//	flock /tmp/s6-bench.lock go test -run '^$' -bench BridgeCalls -benchtime 1x ./sip/media/
func BenchmarkBridgeCalls(b *testing.B) {
	calls := envInt("HOTDESK_BENCH_CALLS", 200)
	secs := envInt("HOTDESK_BENCH_SECONDS", 10)
	for range b.N {
		load0 := loadAvg()
		plain := runCalls(b, calls, secs, false)
		rec := runCalls(b, calls, secs, true)
		b.ReportMetric(plain.setup.p99, "setup-p99-ms")
		b.ReportMetric(plain.loss*100, "loss-%")
		b.ReportMetric(max(plain.addedToPhone.p99, plain.addedToBrowser.p99), "added-jitter-p99-ms")
		b.ReportMetric(plain.cpuPerCall*100, "cpu-%-per-call")
		b.ReportMetric(rec.cpuPerCall*100, "cpu-%-per-call-recorded")
		fmt.Printf("bridge, %d calls × %d s, GOMAXPROCS %d, peers in a second process; load average %s → %s\n",
			calls, secs, runtime.GOMAXPROCS(0), load0, loadAvg())
		for _, r := range []struct {
			name string
			res  benchResult
		}{{"plain", plain}, {"recorded", rec}} {
			fmt.Printf("  %s: setup p50 %.1f ms p99 %.1f ms; connect p50 %.1f ms p99 %.1f ms (of which ICE p50 %.1f ms p99 %.1f ms); loss to phone %.3f %%, to browser %.3f %%\n",
				r.name, r.res.setup.p50, r.res.setup.p99, r.res.connect.p50, r.res.connect.p99, r.res.ice.p50, r.res.ice.p99,
				r.res.lossToPhone*100, r.res.lossToBrowser*100)
			fmt.Printf("    added jitter to phone p50 %.2f ms p99 %.2f ms, to browser p50 %.2f ms p99 %.2f ms "+
				"(receiver's p99 %.2f / %.2f ms, sender's p99 %.2f / %.2f ms)\n",
				r.res.addedToPhone.p50, r.res.addedToPhone.p99, r.res.addedToBrowser.p50, r.res.addedToBrowser.p99,
				r.res.rxToPhone.p99, r.res.rxToBrowser.p99, r.res.txToPhone.p99, r.res.txToBrowser.p99)
			fmt.Printf("    control (a loopback UDP hop in the peer process, no bridge): added jitter p50 %.2f ms p99 %.2f ms\n",
				r.res.addedControl.p50, r.res.addedControl.p99)
			fmt.Printf("    CPU: bridge %.3f %% of a core per call, peers %.3f %%\n", r.res.cpuPerCall*100, r.res.peerCPUPerCall*100)
		}
		fmt.Printf("  recording adds %.1f %% CPU per call\n", (rec.cpuPerCall/plain.cpuPerCall-1)*100)
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

type quantiles struct{ p50, p99 float64 }

func quantilesOf(v []float64) quantiles {
	if len(v) == 0 {
		return quantiles{}
	}
	v = slices.Clone(v)
	slices.Sort(v)
	return quantiles{p50: v[len(v)/2], p99: v[len(v)*99/100]}
}

type benchResult struct {
	setup, connect, ice          quantiles // ms
	loss, lossToPhone            float64
	lossToBrowser                float64
	addedToPhone, addedToBrowser quantiles // ms
	rxToPhone, rxToBrowser       quantiles
	txToPhone, txToBrowser       quantiles
	addedControl                 quantiles // the machine's floor
	cpuPerCall, peerCPUPerCall   float64   // cores
}

// peerMsg is one line between the benchmark and its peer process.
type peerMsg struct {
	Op     string      `json:"op"` // start, offer, answer, connected, media, result, fail
	Call   int         `json:"call,omitempty"`
	SDP    string      `json:"sdp,omitempty"`
	Port   int         `json:"port,omitempty"` // the phone's RTP port (offer), the bridge's (answer)
	Calls  int         `json:"calls,omitempty"`
	Secs   int         `json:"secs,omitempty"`
	Result *peerResult `json:"result,omitempty"`
	Err    string      `json:"err,omitempty"`
}

// peerResult is what the peers measured; jitter in ms, one per call.
type peerResult struct {
	SentToPhone, GotAtPhone     int64
	SentToBrowser, GotAtBrowser int64
	RxToPhone, TxToPhone        []float64
	RxToBrowser, TxToBrowser    []float64
	ConnectMS                   []float64
	ICEMS                       []float64 // the answer in to ICE connected: connect's first part
	RxControl, TxControl        []float64 // the control streams, without the bridge
	CPUSeconds                  float64
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
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peersEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		in.Close()
		if err := cmd.Wait(); err != nil && !b.Failed() {
			b.Errorf("peers: %v\n%s", err, stderr.String())
		}
	}()
	var encMu sync.Mutex
	enc := json.NewEncoder(in)
	send := func(m peerMsg) {
		encMu.Lock()
		defer encMu.Unlock()
		if err := enc.Encode(m); err != nil {
			b.Errorf("to peers: %v", err)
		}
	}
	dec := json.NewDecoder(bufio.NewReader(out))
	recv := func() peerMsg {
		var m peerMsg
		if err := dec.Decode(&m); err != nil {
			b.Fatalf("from peers: %v\n%s", err, stderr.String())
		}
		if m.Op == "fail" {
			b.Fatalf("peers: %s", m.Err)
		}
		return m
	}
	send(peerMsg{Op: "start", Calls: n, Secs: secs})

	// Setup: the peers send every offer, gathered; 16 workers answer them.
	offers := make(chan peerMsg, n)
	setups := make([]float64, n)
	sessions := make([]*Session, n)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range offers {
				start := time.Now()
				s, answer, _, err := br.FromBrowser(ctx, o.SDP, CallInfo{})
				setups[o.Call] = float64(time.Since(start).Microseconds()) / 1000
				if err != nil {
					b.Error(err)
					send(peerMsg{Op: "answer", Call: o.Call})
					continue
				}
				sessions[o.Call] = s
				if err := s.PhoneAnswered(fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=phone\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0\r\n", o.Port)); err != nil {
					b.Error(err)
				}
				send(peerMsg{Op: "answer", Call: o.Call, SDP: answer, Port: s.RTPAddr().Port})
			}
		}()
	}
	for range n {
		m := recv()
		if m.Op != "offer" || m.Call < 0 || m.Call >= n {
			b.Fatalf("peers sent %q for call %d, want an offer", m.Op, m.Call)
		}
		offers <- m
	}
	close(offers)
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	if m := recv(); m.Op != "connected" {
		b.Fatalf("peers sent %q, want connected", m.Op)
	}

	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	t0 := time.Now()
	send(peerMsg{Op: "media"})
	m := recv()
	wall := time.Since(t0)
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	if m.Op != "result" || m.Result == nil {
		b.Fatalf("peers sent %q, want result", m.Op)
	}
	for _, s := range sessions {
		s.Close()
	}
	r := m.Result
	cpu := time.Duration(ru1.Utime.Nano()-ru0.Utime.Nano()) + time.Duration(ru1.Stime.Nano()-ru0.Stime.Nano())
	added := func(rx, tx []float64) []float64 {
		d := make([]float64, len(rx))
		for i := range rx {
			d[i] = rx[i] - tx[i]
		}
		return d
	}
	return benchResult{
		setup: quantilesOf(setups), connect: quantilesOf(r.ConnectMS), ice: quantilesOf(r.ICEMS),
		lossToPhone:    1 - float64(r.GotAtPhone)/float64(max(r.SentToPhone, 1)),
		lossToBrowser:  1 - float64(r.GotAtBrowser)/float64(max(r.SentToBrowser, 1)),
		loss:           1 - float64(r.GotAtPhone+r.GotAtBrowser)/float64(max(r.SentToPhone+r.SentToBrowser, 1)),
		addedToPhone:   quantilesOf(added(r.RxToPhone, r.TxToPhone)),
		addedToBrowser: quantilesOf(added(r.RxToBrowser, r.TxToBrowser)),
		rxToPhone:      quantilesOf(r.RxToPhone), txToPhone: quantilesOf(r.TxToPhone),
		rxToBrowser: quantilesOf(r.RxToBrowser), txToBrowser: quantilesOf(r.TxToBrowser),
		addedControl:   quantilesOf(added(r.RxControl, r.TxControl)),
		cpuPerCall:     cpu.Seconds() / wall.Seconds() / float64(n),
		peerCPUPerCall: r.CPUSeconds / wall.Seconds() / float64(n),
	}
}
