package tftp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// memFS is an in-memory FileSystem that records every name it was asked for.
type memFS struct {
	mu        sync.Mutex
	files     map[string][]byte
	forbidden map[string]bool
	seen      []string
	created   int
	aborted   int
}

func newMemFS(files map[string][]byte) *memFS {
	return &memFS{files: files, forbidden: map[string]bool{}}
}

func (m *memFS) Open(_ context.Context, name string, _ netip.AddrPort) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, name)
	if m.forbidden[name] {
		return nil, fmt.Errorf("%q: %w", name, ErrForbidden)
	}
	b, ok := m.files[name]
	if !ok {
		return nil, fmt.Errorf("%q: %w", name, ErrNotFound)
	}
	return &memFile{Reader: bytes.NewReader(b), size: int64(len(b))}, nil
}

func (m *memFS) Create(_ context.Context, name string, _ netip.AddrPort) (Upload, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seen = append(m.seen, name)
	if m.forbidden[name] {
		return nil, fmt.Errorf("%q: %w", name, ErrForbidden)
	}
	m.created++
	return &memUpload{fs: m, name: name}, nil
}

func (m *memFS) get(name string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[name]
	return b, ok
}

// counts returns how many uploads were created and aborted.
func (m *memFS) counts() (created, aborted int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.created, m.aborted
}

func (m *memFS) seenNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.seen)
}

type memFile struct {
	*bytes.Reader
	size int64
}

func (f *memFile) Close() error { return nil }
func (f *memFile) Size() int64  { return f.size }

type memUpload struct {
	fs   *memFS
	name string
	buf  bytes.Buffer
}

func (u *memUpload) Write(p []byte) (int, error) { return u.buf.Write(p) }
func (u *memUpload) Commit() error {
	u.fs.mu.Lock()
	defer u.fs.mu.Unlock()
	u.fs.files[u.name] = bytes.Clone(u.buf.Bytes())
	return nil
}
func (u *memUpload) Abort() {
	u.fs.mu.Lock()
	defer u.fs.mu.Unlock()
	u.fs.aborted++
}

// testConfig is DefaultConfig with short timers so failure paths end fast.
func testConfig() Config {
	c := DefaultConfig()
	c.Timeout = 300 * time.Millisecond
	c.Retries = 2
	// Many concurrent transfers from 127.0.0.1; the reflection limits have
	// their own tests.
	c.RequestRatePerClient, c.RequestBurstPerClient = 100000, 100000
	c.MaxUnacknowledgedPerClient = c.MaxTransfersPerClient
	return c
}

// pattern returns n deterministic bytes, different per seed.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed
	}
	return b
}

type testServer struct {
	addr string
	srv  *Server
	reg  *prometheus.Registry
	fs   *memFS
}

// startServer runs a Server on 127.0.0.1:0 until the test ends and checks
// that Serve returns nil promptly on cancel.
func startServer(t testing.TB, cfg Config, fsys *memFS, now func() time.Time) *testServer {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(cfg, Deps{Logger: log, Registerer: reg, FS: fsys, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	// As the daemon does: the socket is ready for requests before Serve runs
	// (enablePacketInfo is what Serve calls first; done here so the first
	// test packet cannot race it).
	enablePacketInfo(conn)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, conn) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("Serve returned %v after cancel, want nil", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return &testServer{addr: conn.LocalAddr().String(), srv: srv, reg: reg, fs: fsys}
}

// rawClient speaks TFTP by hand, to look at the packets themselves.
type rawClient struct {
	t    testing.TB
	conn *net.UDPConn
	srv  *net.UDPAddr // the listening port, then the transfer's port
}

func newRawClient(t testing.TB, addr string) *rawClient {
	t.Helper()
	ua, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, srv: ua}
}

// request sends an RRQ (op 1) or WRQ (op 2) with name-value option pairs.
func (c *rawClient) request(op uint16, name string, opts ...string) {
	p := []byte{0, byte(op)}
	p = append(p, name...)
	p = append(p, 0)
	p = append(p, "octet"...)
	p = append(p, 0)
	for _, o := range opts {
		p = append(p, o...)
		p = append(p, 0)
	}
	c.sendRaw(p)
}

func (c *rawClient) sendRaw(p []byte) {
	if _, err := c.conn.WriteToUDP(p, c.srv); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) ack(block uint16) {
	c.sendRaw([]byte{0, 4, byte(block >> 8), byte(block)})
}

// recv returns the next packet within d, or nil on timeout. It switches
// c.srv to the transfer's port (the server's TID).
func (c *rawClient) recv(d time.Duration) []byte {
	buf := make([]byte, 65536)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		return nil
	}
	c.srv = from
	return buf[:n]
}

// parseOACK returns the options of an OACK packet, or nil if p is none.
func parseOACK(p []byte) map[string]string {
	if len(p) < 2 || p[1] != 6 {
		return nil
	}
	fields := bytes.Split(p[2:], []byte{0})
	m := map[string]string{}
	for i := 0; i+1 < len(fields); i += 2 {
		m[string(fields[i])] = string(fields[i+1])
	}
	return m
}

// errorMessage returns the text of an ERROR packet and whether p is one.
func errorMessage(p []byte) (string, bool) {
	if len(p) < 4 || p[1] != 5 {
		return "", false
	}
	return string(bytes.TrimRight(p[4:], "\x00")), true
}
