package tftp

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A reflection attack: RRQs without options carrying a victim's address
// (here a socket that never acknowledges) each made the server send a first
// DATA block, retransmitted, at the victim. Only one unacknowledged read per
// address is started; the others get an ERROR no bigger than a request.
func TestSpoofedReadRequestsReflectOneBlock(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Timeout = 30 * time.Second // no retransmit within the test
	cfg.Retries = 1
	ts := startServer(t, cfg, newMemFS(map[string][]byte{"fw.bin": pattern(100_000, 1)}), nil)
	victim := newRawClient(t, ts.addr)
	listen := victim.srv
	const requests = 20
	for range requests {
		victim.srv = listen
		victim.request(1, "fw.bin") // 15 bytes of request
	}
	var data, errs, dataBytes int
	var tid = victim.srv
	for range requests {
		p := victim.recv(10 * time.Second)
		if p == nil {
			t.Fatalf("after %d DATA, %d ERROR: no more replies", data, errs)
		}
		if msg, ok := errorMessage(p); ok {
			errs++
			if msg != msgBusy || len(p) > 32 {
				t.Errorf("refusal = %q (%d bytes), want %q in at most 32 bytes", msg, len(p), msgBusy)
			}
			continue
		}
		data++
		dataBytes += len(p)
		tid = victim.srv
	}
	if data != 1 || errs != requests-1 {
		t.Errorf("victim got %d DATA (%d bytes) and %d ERROR, want 1 DATA and %d ERROR", data, dataBytes, errs, requests-1)
	}
	if n := testutil.ToFloat64(ts.srv.m.refused.WithLabelValues(reasonUnacknowledged)); n != requests-1 {
		t.Errorf("refused_total{unacknowledged} = %v, want %d", n, requests-1)
	}
	if n := testutil.ToFloat64(ts.srv.m.requests.WithLabelValues(opRead, resRefused)); n != requests-1 {
		t.Errorf("requests_total{read,refused} = %v, want %d", n, requests-1)
	}

	// A real client acknowledges block 1 and may then start another read.
	victim.srv = tid
	victim.ack(1)
	if p := victim.recv(10 * time.Second); p == nil || p[1] != 3 || p[3] != 2 {
		t.Fatalf("after ACK 1: %v, want DATA 2", p)
	}
	second := newRawClient(t, ts.addr)
	second.request(1, "fw.bin")
	if p := second.recv(10 * time.Second); p == nil || p[1] != 3 {
		t.Fatalf("read after an acknowledged one: %v, want DATA 1", p)
	}
	// End both transfers so the server drains at once.
	victim.sendRaw([]byte{0, 5, 0, 0, 0})
	second.sendRaw([]byte{0, 5, 0, 0, 0})
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.active) == 0 })
}

// New transfers from one address beyond request_rate_per_client are
// refused until the bucket refills; a sweep forgets a quiet address.
func TestRequestRatePerClient(t *testing.T) {
	cfg := testConfig()
	cfg.RequestRatePerClient, cfg.RequestBurstPerClient = 1, 3
	var offset atomic.Int64
	base := time.Unix(1_700_000_000, 0)
	now := func() time.Time { return base.Add(time.Duration(offset.Load())) }
	ts := startServer(t, cfg, newMemFS(map[string][]byte{"a.cfg": pattern(3000, 1)}), now)
	for i := range 3 {
		if _, _, err := get(t, pinClient(t, ts.addr, 0, false), "a.cfg"); err != nil {
			t.Fatalf("read %d within the burst: %v", i, err)
		}
	}
	_, _, err := get(t, pinClient(t, ts.addr, 0, false), "a.cfg")
	if err == nil || !strings.Contains(err.Error(), msgBusy) {
		t.Fatalf("read beyond the burst: err = %v, want %s", err, msgBusy)
	}
	if err := put(pinClient(t, ts.addr, 0, false), "up.cfg", []byte("x"), false); err == nil {
		t.Fatalf("write beyond the burst succeeded")
	}
	if n := testutil.ToFloat64(ts.srv.m.refused.WithLabelValues(reasonRateLimited)); n != 2 {
		t.Errorf("refused_total{rate_limited} = %v, want 2", n)
	}
	offset.Add(int64(time.Second))
	if _, _, err := get(t, pinClient(t, ts.addr, 0, false), "a.cfg"); err != nil {
		t.Fatalf("read after a second: %v", err)
	}
	offset.Add(int64(time.Minute))
	waitFor(t, func() bool { return testutil.ToFloat64(ts.srv.m.active) == 0 })
	// A sweep (run when the table is full) drops the refilled bucket.
	ts.srv.mu.Lock()
	ts.srv.sweep(now())
	n := len(ts.srv.peers)
	ts.srv.mu.Unlock()
	if n != 0 {
		t.Errorf("peer table holds %d entries for a quiet client, want 0", n)
	}
}
