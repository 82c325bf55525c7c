package tftp

import (
	"bytes"
	"maps"
	"strconv"
	"testing"
	"time"
)

// readRaw completes a lock-step read the rawClient started, whose first
// reply was first, and returns the file and how many DATA packets came.
func readRaw(t *testing.T, c *rawClient, first []byte, blksize int) []byte {
	t.Helper()
	var body []byte
	p := first
	if parseOACK(p) != nil {
		c.ack(0)
		p = c.recv(2 * time.Second)
	}
	for want := uint16(1); ; want++ {
		if len(p) < 4 || p[1] != 3 || uint16(p[2])<<8|uint16(p[3]) != want {
			t.Fatalf("want DATA %d, got % x", want, p[:min(len(p), 8)])
		}
		body = append(body, p[4:]...)
		c.ack(want)
		if len(p)-4 < blksize {
			return body
		}
		p = c.recv(2 * time.Second)
	}
}

// The RFC 2347 options as pin/tftp v3.1.0 answers them: blksize (RFC 2348)
// and tsize (RFC 2349) are negotiated; timeout (RFC 2349) and windowsize
// (RFC 7440) are left out of the OACK, which per RFC 2347 means refused, so
// the client falls back to its default timeout and to lock-step.
func TestOptionsOnTheWire(t *testing.T) {
	body := pattern(20_000, 9)
	ts := startServer(t, testConfig(), newMemFS(map[string][]byte{"fw.bin": body}), nil)
	tests := []struct {
		name        string
		opts        []string
		wantOACK    map[string]string // nil: no OACK, DATA 1 straight away
		wantBlksize int
	}{
		{"no options", nil, nil, 512},
		{"blksize 1468", []string{"blksize", "1468"}, map[string]string{"blksize": "1468"}, 1468},
		{"blksize capped at block_size_max", []string{"blksize", "65464"}, map[string]string{"blksize": "1468"}, 1468},
		{"blksize 8", []string{"blksize", "8"}, nil, 512}, // below 512: option dropped
		{"tsize", []string{"tsize", "0"}, map[string]string{"tsize": "20000"}, 512},
		{"timeout not honoured", []string{"timeout", "1"}, nil, 512},
		{"windowsize not honoured", []string{"windowsize", "8"}, nil, 512},
		{"all four, as curl and newer clients send", []string{"blksize", "1024", "tsize", "0", "timeout", "3", "windowsize", "4"},
			map[string]string{"blksize": "1024", "tsize": "20000"}, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, ts.addr)
			c.request(1, "fw.bin", tt.opts...)
			first := c.recv(2 * time.Second)
			oack := parseOACK(first)
			if !maps.Equal(oack, tt.wantOACK) {
				t.Fatalf("OACK = %v, want %v", oack, tt.wantOACK)
			}
			if got := readRaw(t, c, first, tt.wantBlksize); !bytes.Equal(got, body) {
				t.Fatalf("got %d bytes, want %d identical", len(got), len(body))
			}
		})
	}
}

// With windowsize refused the server must stay lock-step: one DATA per ACK.
func TestWindowsizeStaysLockStep(t *testing.T) {
	cfg := testConfig()
	cfg.Timeout, cfg.Retries = 600*time.Millisecond, 1
	ts := startServer(t, cfg, newMemFS(map[string][]byte{"fw.bin": pattern(10_000, 1)}), nil)
	c := newRawClient(t, ts.addr)
	c.request(1, "fw.bin", "windowsize", "8")
	if p := c.recv(time.Second); len(p) < 4 || p[1] != 3 || p[3] != 1 {
		t.Fatalf("want DATA 1, got %v", p)
	}
	if p := c.recv(400 * time.Millisecond); p != nil && len(p) >= 4 {
		t.Fatalf("second packet before any ACK: % x", p[:4])
	}
}

// The OACK for tsize on a write carries no tsize (pin/tftp drops it), but
// the announced size is checked against max_upload_bytes; blksize is honoured.
func TestWriteOptionsOnTheWire(t *testing.T) {
	ts := startServer(t, testConfig(), newMemFS(map[string][]byte{}), nil)
	body := pattern(3000, 4)
	c := newRawClient(t, ts.addr)
	c.request(2, "up.cfg", "blksize", "1468", "tsize", strconv.Itoa(len(body)))
	if oack := parseOACK(c.recv(time.Second)); oack["blksize"] != "1468" {
		t.Fatalf("OACK = %v, want blksize 1468", oack)
	}
	for blk, off := uint16(1), 0; ; blk++ {
		end := min(off+1468, len(body))
		c.sendRaw(append([]byte{0, 3, byte(blk >> 8), byte(blk)}, body[off:end]...))
		p := c.recv(time.Second)
		if len(p) != 4 || p[1] != 4 || p[3] != byte(blk) {
			t.Fatalf("want ACK %d, got %v", blk, p)
		}
		if off = end; end-(int(blk)-1)*1468 < 1468 {
			break
		}
	}
	waitFor(t, func() bool { _, ok := ts.fs.get("up.cfg"); return ok })
	if got, _ := ts.fs.get("up.cfg"); !bytes.Equal(got, body) {
		t.Fatalf("committed %d bytes, want %d identical", len(got), len(body))
	}
}
