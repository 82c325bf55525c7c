package tftp

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pin "github.com/pin/tftp/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func pinClient(t testing.TB, addr string, blksize int, tsize bool) *pin.Client {
	t.Helper()
	c, err := pin.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetTimeout(time.Second)
	c.SetRetries(3)
	if blksize > 0 {
		c.SetBlockSize(blksize)
	}
	c.RequestTSize(tsize)
	return c
}

// get fetches name with pin/tftp's client and returns the body and the
// tsize the server announced (-1 when none).
func get(t testing.TB, c *pin.Client, name string) ([]byte, int64, error) {
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, -1, err
	}
	size := int64(-1)
	if n, ok := wt.(pin.IncomingTransfer).Size(); ok {
		size = n
	}
	var buf bytes.Buffer
	_, err = wt.WriteTo(&buf)
	return buf.Bytes(), size, err
}

func put(c *pin.Client, name string, body []byte, tsize bool) error {
	rf, err := c.Send(name, "octet")
	if err != nil {
		return err
	}
	if tsize {
		rf.(pin.OutgoingTransfer).SetSize(int64(len(body)))
	}
	_, err = rf.ReadFrom(bytes.NewReader(body))
	return err
}

func TestPinClientRead(t *testing.T) {
	body := pattern(100_000, 1)
	ts := startServer(t, testConfig(), newMemFS(map[string][]byte{
		"fw/sip.ld": body, "empty.cfg": {}, "exact512.cfg": pattern(512, 2),
	}), nil)
	tests := []struct {
		name      string
		file      string
		blksize   int
		tsize     bool
		wantTSize int64
	}{
		{"default blocks", "fw/sip.ld", 0, false, -1},
		{"leading slash", "/fw/sip.ld", 0, false, -1},
		{"blksize 1468", "fw/sip.ld", 1468, false, -1},
		{"blksize capped by config", "fw/sip.ld", 8192, false, -1},
		{"tsize", "fw/sip.ld", 0, true, 100_000},
		{"tsize and blksize", "fw/sip.ld", 1024, true, 100_000},
		{"empty file", "empty.cfg", 0, false, -1},
		{"exactly one block", "exact512.cfg", 0, false, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, size, err := get(t, pinClient(t, ts.addr, tt.blksize, tt.tsize), tt.file)
			if err != nil {
				t.Fatalf("get: %v", err)
			}
			want, _ := ts.fs.get(strings.TrimPrefix(tt.file, "/"))
			if !bytes.Equal(got, want) {
				t.Fatalf("got %d bytes, want %d identical", len(got), len(want))
			}
			if size != tt.wantTSize {
				t.Errorf("tsize = %d, want %d", size, tt.wantTSize)
			}
		})
	}
	// The server finishes its bookkeeping after the client saw the last block.
	waitFor(t, func() bool {
		return testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resOK)) == float64(len(tests))
	})
	if got := testutil.ToFloat64(ts.srv.m.bytes.WithLabelValues(opRead)); got != 6*100_000+512 {
		t.Errorf("bytes_total{read} = %v, want %d", got, 6*100_000+512)
	}
}

func TestReadErrorsLookAlike(t *testing.T) {
	fs := newMemFS(map[string][]byte{"secret.cfg": []byte("x")})
	fs.forbidden["secret.cfg"] = true
	ts := startServer(t, testConfig(), fs, nil)
	for _, name := range []string{"missing.cfg", "secret.cfg", "../etc/passwd"} {
		_, _, err := get(t, pinClient(t, ts.addr, 0, false), name)
		if err == nil || !strings.Contains(err.Error(), "code: 1, message: File not found") {
			t.Errorf("%s: err = %v, want code 1 File not found", name, err)
		}
	}
	for res, want := range map[string]float64{resNotFound: 1, resForbidden: 1, resInvalidName: 1} {
		if got := testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, res)); got != want {
			t.Errorf("requests_total{read,%s} = %v, want %v", res, got, want)
		}
	}
}

func TestPinClientWrite(t *testing.T) {
	cfg := testConfig()
	cfg.MaxUploadBytes = 10_000
	fs := newMemFS(map[string][]byte{"old.cfg": []byte("previous version")})
	fs.forbidden["locked.cfg"] = true
	ts := startServer(t, cfg, fs, nil)
	tests := []struct {
		name, file string
		size       int
		blksize    int
		tsize      bool
		wantErr    string // substring of the client's error; "" for success
	}{
		{"small", "0004f2000001-phone.cfg", 3000, 0, false, ""},
		{"exactly the limit", "limit.cfg", 10_000, 0, true, ""},
		{"blksize 1468 and tsize", "big.cfg", 9999, 1468, true, ""},
		{"empty", "empty.cfg", 0, 0, false, ""},
		{"over the limit", "old.cfg", 50_000, 0, false, "Disk full or allocation exceeded"},
		{"forbidden", "locked.cfg", 10, 0, false, "Access violation"},
		{"hostile name", "../x.cfg", 10, 0, false, "Access violation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := pattern(tt.size, 3)
			err := put(pinClient(t, ts.addr, tt.blksize, tt.tsize), tt.file, body, tt.tsize)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("put: %v", err)
			}
			if got, _ := ts.fs.get(tt.file); !bytes.Equal(got, body) {
				t.Fatalf("committed %d bytes, want %d identical", len(got), len(body))
			}
		})
	}
	// A WRQ announcing too large a tsize is refused before Create (pin's
	// client never sends tsize on writes; curl does, see peers_test.go).
	c := newRawClient(t, ts.addr)
	c.request(2, "old.cfg", "tsize", "50000")
	if msg, ok := errorMessage(c.recv(2 * time.Second)); !ok || msg != msgDiskFull {
		t.Errorf("WRQ tsize=50000: got %q (error %v), want %q", msg, ok, msgDiskFull)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opWrite, resTooLarge)) == 2 })
	// The oversized uploads left the previous version whole.
	if got, _ := ts.fs.get("old.cfg"); string(got) != "previous version" {
		t.Errorf("old.cfg = %q after refused uploads", got)
	}
	if created, aborted := ts.fs.counts(); created != 5 || aborted != 1 {
		t.Errorf("created, aborted = %d, %d; want 5, 1 (announced oversize refused before Create)", created, aborted)
	}
}

func TestConcurrentReads(t *testing.T) {
	files := map[string][]byte{}
	for i := range 8 {
		files[string(rune('a'+i))+".cfg"] = pattern(5000+i*997, byte(i))
	}
	ts := startServer(t, testConfig(), newMemFS(files), nil)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for g := range 16 {
		wg.Go(func() {
			for i := range 20 {
				name := string(rune('a'+(g+i)%8)) + ".cfg"
				got, _, err := get(t, pinClient(t, ts.addr, []int{0, 1024, 1468}[i%3], i%2 == 0), name)
				if err != nil || !bytes.Equal(got, files[name]) {
					failed.Add(1)
					t.Errorf("g%d #%d %s: err=%v len=%d", g, i, name, err, len(got))
				}
			}
		})
	}
	wg.Wait()
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resOK)) == 320 })
	if n := testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resOK)); n != 320 || failed.Load() != 0 {
		t.Errorf("ok reads = %v (failed %d), want 320", n, failed.Load())
	}
	if n := testutil.ToFloat64(ts.srv.m.active); n != 0 {
		t.Errorf("transfers_active = %v after all reads, want 0", n)
	}
}

// A client that stops acknowledging is dropped after retries resends of
// timeout each, and its slot is freed.
func TestUnresponsiveClient(t *testing.T) {
	cfg := testConfig() // 300 ms, 2 retries
	ts := startServer(t, cfg, newMemFS(map[string][]byte{"f.cfg": pattern(4000, 1)}), nil)
	c := newRawClient(t, ts.addr)
	start := time.Now()
	c.request(1, "f.cfg")
	var data, errs int
	for p := c.recv(3 * time.Second); p != nil; p = c.recv(3 * time.Second) {
		if _, ok := errorMessage(p); ok {
			errs++
			break
		}
		data++
	}
	el := time.Since(start)
	if data != cfg.Retries+1 || errs != 1 {
		t.Errorf("got %d DATA and %d ERROR, want %d DATA then 1 ERROR", data, errs, cfg.Retries+1)
	}
	if lo, hi := 3*cfg.Timeout, 3*cfg.Timeout+time.Second; el < lo || el > hi {
		t.Errorf("gave up after %v, want between %v and %v", el, lo, hi)
	}
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resError)) == 1 })
	if n := testutil.ToFloat64(ts.srv.m.active); n != 0 {
		t.Errorf("transfers_active = %v, want 0", n)
	}
	if n := testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resError)); n != 1 {
		t.Errorf("requests_total{read,error} = %v, want 1", n)
	}
}

// transfer_timeout ends a transfer however responsive the client is.
func TestTransferTimeout(t *testing.T) {
	cfg := testConfig()
	cfg.TransferTimeout = 5 * time.Second
	var ticks atomic.Int64
	base := time.Unix(1_700_000_000, 0)
	now := func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Second) }
	ts := startServer(t, cfg, newMemFS(map[string][]byte{"fw.bin": pattern(100_000, 1)}), now)
	_, _, err := get(t, pinClient(t, ts.addr, 0, false), "fw.bin")
	if err == nil || !strings.Contains(err.Error(), "Transfer timed out") {
		t.Fatalf("err = %v, want Transfer timed out", err)
	}
	// The client sees the ERROR before the handler records the outcome.
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resTimeout)) == 1 })
	if n := testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resTimeout)); n != 1 {
		t.Errorf("requests_total{read,timeout} = %v, want 1", n)
	}
}

func TestMaxTransfersPerClient(t *testing.T) {
	cfg := testConfig()
	cfg.MaxTransfersPerClient, cfg.MaxUnacknowledgedPerClient = 2, 2
	ts := startServer(t, cfg, newMemFS(map[string][]byte{"f.cfg": pattern(2000, 1)}), nil)
	// Two raw clients start transfers and never ACK: they hold both slots.
	for range 2 {
		c := newRawClient(t, ts.addr)
		c.request(1, "f.cfg")
		if p := c.recv(time.Second); p == nil || p[1] != 3 {
			t.Fatalf("want DATA, got %v", p)
		}
	}
	_, _, err := get(t, pinClient(t, ts.addr, 0, false), "f.cfg")
	if err == nil || !strings.Contains(err.Error(), "Server busy") {
		t.Fatalf("third transfer: err = %v, want Server busy", err)
	}
	// Once the stalled transfers are dropped, the client is served again.
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.active) == 0 })
	if _, _, err := get(t, pinClient(t, ts.addr, 0, false), "f.cfg"); err != nil {
		t.Fatalf("after stalled transfers ended: %v", err)
	}
}

func TestMetricsLint(t *testing.T) {
	ts := startServer(t, testConfig(), newMemFS(map[string][]byte{}), nil)
	problems, err := testutil.GatherAndLint(ts.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint %s: %s", p.Metric, p.Text)
	}
	c := newRawClient(t, ts.addr)
	c.sendRaw([]byte{0, 9, 'x'})  // no such opcode
	c.sendRaw([]byte{0, 4, 0, 1}) // ACK on the request port
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.dropped.WithLabelValues("malformed")) == 2 })
	if n := testutil.ToFloat64(ts.srv.m.dropped.WithLabelValues("malformed")); n != 2 {
		t.Errorf("dropped_total{malformed} = %v, want 2", n)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(DefaultConfig(), Deps{}); err == nil {
		t.Error("New without FS: want error")
	}
	bad := DefaultConfig()
	bad.Retries = 0
	if _, err := New(bad, Deps{FS: newMemFS(nil)}); err == nil || !strings.Contains(err.Error(), "retries") {
		t.Errorf("New with bad config: err = %v", err)
	}
}

func TestServeReturnsOnCancel(t *testing.T) {
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(DefaultConfig(), Deps{FS: newMemFS(nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // already cancelled: Serve must not block
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := conn.WriteTo([]byte{0}, conn.LocalAddr()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("conn still open after Serve returned: %v", err)
	}
}

// waitFor polls cond for up to 2 s; the caller's own assertion follows.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); !cond() && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
}
