package tftp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	pin "github.com/pin/tftp/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/time/rate"
)

// Deps are the server's collaborators.
type Deps struct {
	// Logger receives debug lines per transfer and warnings; nil discards.
	Logger *slog.Logger
	// Registerer receives the hotdesk_tftp_* metrics; nil uses a private
	// registry nobody scrapes.
	Registerer prometheus.Registerer
	// FS is the namespace served; required.
	FS FileSystem
	// Now is the clock for transfer deadlines and durations; nil is time.Now.
	Now func() time.Time
}

// Server answers TFTP read and write requests from a FileSystem.
type Server struct {
	cfg Config
	log *slog.Logger
	fs  FileSystem
	now func() time.Time
	m   *metrics

	// bufs holds *bufio.Reader for reads: pin/tftp reads one block per
	// call, and a syscall per 512 bytes cost more than the block's send.
	bufs sync.Pool

	mu        sync.Mutex // guards active, peers and lastSweep
	active    int        // transfers in progress
	peers     map[netip.Addr]*peer
	lastSweep time.Time
}

// peer is what the server remembers of one client IP address: its request
// throttle and its transfers in progress. An entry that holds nothing a
// fresh one would not is dropped.
type peer struct {
	lim     *rate.Limiter
	active  int // transfers in progress
	unacked int // reads whose first block is not yet acknowledged
}

// readBufSize is the read-ahead per transfer: a whole typical config in
// one read, 8 MiB held at max_transfers' default of 512.
const readBufSize = 16 << 10

// maxPeers bounds the peer table; spoofed sources cannot grow it further.
const maxPeers = 65536

// New checks cfg and deps and returns a Server ready to Serve.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("tftp config: %w", err)
	}
	if deps.FS == nil {
		return nil, errors.New("tftp: Deps.FS is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	return &Server{
		cfg:   cfg,
		log:   deps.Logger,
		fs:    deps.FS,
		now:   deps.Now,
		m:     newMetrics(deps.Registerer),
		peers: make(map[netip.Addr]*peer),
		bufs:  sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }},
	}, nil
}

// Serve answers requests arriving on conn, a UDP socket the daemon bound
// (normally :69), until ctx is cancelled; then it closes conn, lets the
// transfers in progress finish (each bounded by transfer_timeout) and
// returns nil. Each transfer uses its own ephemeral UDP port, as RFC 1350
// intends. conn belongs to Serve from the call on: it must be a
// *net.UDPConn for blksize above 512 (pin/tftp reads the interface MTU from
// the packet's control message). Stop it only through ctx: pin/tftp v3.1.0
// retries a failed read forever, so a conn closed behind its back makes its
// loop spin. Serve may be called on several sockets.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	enablePacketInfo(conn)
	// Transfers outlive ctx by design (graceful drain), but not the daemon's
	// values; their own deadline comes from transfer_timeout.
	base := context.WithoutCancel(ctx)
	srv := pin.NewServer(
		func(name string, rf io.ReaderFrom) error { return s.read(base, name, rf) },
		func(name string, wt io.WriterTo) error { return s.write(base, name, wt) },
	)
	srv.SetTimeout(s.cfg.Timeout)
	srv.SetRetries(s.cfg.Retries)
	srv.SetBlockSize(s.cfg.BlockSizeMax)
	// The default backoff sleeps a random 0–1 s on top of the timeout before
	// each resend; the timeout alone is the wait we want.
	srv.SetBackoff(func(int) time.Duration { return 0 })
	srv.SetHook(hook{s})

	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-ctx.Done():
		case <-stop:
		}
		srv.Shutdown()
	}()
	err := srv.Serve(conn)
	close(stop)
	<-done
	// pin/tftp closes conn on Shutdown only once its Serve has started; a
	// ctx cancelled before that would leave the socket bound.
	_ = conn.Close()
	if ctx.Err() != nil {
		return nil
	}
	if err != nil {
		return fmt.Errorf("tftp serve: %w", err)
	}
	return nil
}

// hook counts datagrams pin/tftp refused before any handler ran.
type hook struct{ s *Server }

func (hook) OnSuccess(pin.TransferStats) {}

// OnFailure is also called for failed transfers; those carry the client's
// address and are already counted by the handlers.
func (h hook) OnFailure(st pin.TransferStats, err error) {
	if st.RemoteAddr != nil {
		return
	}
	h.s.m.dropped.WithLabelValues("malformed").Inc()
	h.s.log.Debug("tftp datagram dropped", "err", err)
}

// admit reserves a transfer slot for addr, or says why there is none. A
// read counts as unacknowledged until settle; refusals consume no token.
func (s *Server) admit(addr netip.Addr, read bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	p := s.peers[addr]
	if p == nil {
		if len(s.peers) >= maxPeers {
			s.sweep(now)
		}
		if len(s.peers) >= maxPeers {
			return errRateLimited
		}
		p = &peer{lim: rate.NewLimiter(rate.Limit(s.cfg.RequestRatePerClient), s.cfg.RequestBurstPerClient)}
		s.peers[addr] = p
	}
	var err error
	switch {
	case s.active >= s.cfg.MaxTransfers || p.active >= s.cfg.MaxTransfersPerClient:
		err = errBusy
	case read && p.unacked >= s.cfg.MaxUnacknowledgedPerClient:
		err = errUnacknowledged
	case !p.lim.AllowN(now, 1):
		err = errRateLimited
	}
	if err != nil {
		s.forget(addr, p, now)
		return err
	}
	s.active++
	p.active++
	if read {
		p.unacked++
	}
	s.m.active.Inc()
	return nil
}

// settle records that a read's first block was acknowledged (or that the
// read ended): the client answers from its address, so it is no reflection
// victim, and may start its next transfer.
func (s *Server) settle(addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.peers[addr]; p != nil && p.unacked > 0 {
		p.unacked--
	}
}

func (s *Server) release(addr netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.active--
	s.m.active.Dec()
	if p := s.peers[addr]; p != nil {
		p.active--
		s.forget(addr, p, s.now())
	}
}

// forget drops p when it is idle and its bucket full, the state a new
// entry starts in. Called with mu held.
func (s *Server) forget(addr netip.Addr, p *peer, now time.Time) {
	if p.active == 0 && p.unacked == 0 && p.lim.TokensAt(now) >= float64(s.cfg.RequestBurstPerClient) {
		delete(s.peers, addr)
	}
}

// sweep drops every forgettable peer, at most once a second so a full
// table under a spoofed flood does not cost a scan per request. Called
// with mu held.
func (s *Server) sweep(now time.Time) {
	if now.Sub(s.lastSweep) < time.Second {
		return
	}
	s.lastSweep = now
	for addr, p := range s.peers {
		s.forget(addr, p, now)
	}
}

// remoteOf returns the client address pin/tftp exposes on both directions.
func remoteOf(t any) netip.AddrPort {
	type remoter interface{ RemoteAddr() net.UDPAddr }
	r, ok := t.(remoter)
	if !ok {
		return netip.AddrPort{}
	}
	ua := r.RemoteAddr()
	ap := ua.AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// enablePacketInfo turns on IP_PKTINFO at once. pin/tftp does it too, but
// only after its own setup; a request that arrived before would carry no
// interface index and get blksize 512.
func enablePacketInfo(conn net.PacketConn) {
	uc, ok := conn.(*net.UDPConn)
	if !ok {
		return
	}
	if la, ok := uc.LocalAddr().(*net.UDPAddr); ok && la.IP.To4() == nil {
		_ = ipv6.NewPacketConn(uc).SetControlMessage(ipv6.FlagDst|ipv6.FlagInterface, true)
		return
	}
	_ = ipv4.NewPacketConn(uc).SetControlMessage(ipv4.FlagDst|ipv4.FlagInterface, true)
}

// refused counts a request admit turned away for reflection reasons.
func (s *Server) refused(err error) {
	switch {
	case errors.Is(err, errRateLimited):
		s.m.refused.WithLabelValues(reasonRateLimited).Inc()
	case errors.Is(err, errUnacknowledged):
		s.m.refused.WithLabelValues(reasonUnacknowledged).Inc()
	}
}
