package dhcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Deps are the collaborators the daemon hands to New.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock; nil = time.Now.
	Now func() time.Time
	// Leases persists leases; nil = an in-memory store (leases lost on restart).
	Leases LeaseStore
	// Observer hears every DISCOVER/REQUEST/INFORM; nil = nobody.
	Observer Observer
	// BootServer is option 66 when Config.BootServer is empty: the daemon's
	// provisioning base URL.
	BootServer string
	// Ping answers whether ip replies to an ICMP echo within timeout (for
	// ping_before_offer); nil = a raw-socket ICMP pinger.
	Ping func(ctx context.Context, ip netip.Addr, timeout time.Duration) bool
}

// Server is a DHCPv4 server or inform-only responder.
type Server struct {
	s     *settings
	log   *slog.Logger
	now   func() time.Time
	store LeaseStore
	obs   Observer
	ping  func(ctx context.Context, ip netip.Addr, timeout time.Duration) bool
	alloc *allocator
	m     *metrics
	// lastExhaustWarn (unix seconds) rate-limits the pool-exhausted warning.
	lastExhaustWarn atomic.Int64
	// shareRate bounds how often a collision with another server sharing
	// the lease table re-reads that table (learnShared).
	shareRate *rate.Limiter
}

// maxPacket is the largest datagram handled; anything longer is dropped as
// oversize (a DHCP message over Ethernet fits in 1500 bytes).
const maxPacket = 1500

// New validates cfg and builds a Server. It does not touch the network.
func New(cfg Config, deps Deps) (*Server, error) {
	s, err := compile(cfg, deps.BootServer)
	if err != nil {
		return nil, fmt.Errorf("dhcp: config: %w", err)
	}
	if s.mode == ModeOff {
		return nil, errors.New("dhcp: config: mode: off, nothing to serve")
	}
	if !s.serverID.IsValid() {
		if s.serverID, err = serverIDFor(cfg); err != nil {
			return nil, fmt.Errorf("dhcp: config: server_id: %w", err)
		}
	}
	srv := &Server{s: s, log: deps.Logger, now: deps.Now, store: deps.Leases, obs: deps.Observer, ping: deps.Ping,
		alloc: newAllocator(s.pools, s.resv), shareRate: rate.NewLimiter(rate.Every(time.Second), 1)}
	if srv.log == nil {
		srv.log = slog.New(slog.DiscardHandler)
	}
	if srv.now == nil {
		srv.now = time.Now
	}
	if srv.store == nil {
		srv.store = NewMemoryStore()
	}
	if srv.obs == nil {
		srv.obs = nopObserver{}
	}
	if srv.ping == nil {
		srv.ping = icmpPing
	}
	reg := deps.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	srv.m = newMetrics(reg, srv)
	return srv, nil
}

// serverIDFor finds option 54: the listen address if it is specific, else the
// interface's IPv4 address inside a configured subnet (or its first IPv4).
func serverIDFor(cfg Config) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(cfg.Listen); err == nil && ap.Addr().Is4() && !ap.Addr().IsUnspecified() {
		return ap.Addr(), nil
	}
	if cfg.Interface == "" {
		return netip.Addr{}, errors.New("set server_id, a specific listen address or interface")
	}
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %q: %w", cfg.Interface, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %q: %w", cfg.Interface, err)
	}
	var first netip.Addr
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP.To4())
		if !ok {
			continue
		}
		if cfg.Subnet != "" {
			if p, err := netip.ParsePrefix(cfg.Subnet); err == nil && p.Contains(ip) {
				return ip, nil
			}
		}
		if !first.IsValid() {
			first = ip
		}
	}
	if !first.IsValid() {
		return netip.Addr{}, fmt.Errorf("interface %q has no IPv4 address", cfg.Interface)
	}
	return first, nil
}

// Listen binds the UDP socket for cfg (the daemon calls it before READY):
// cfg.Listen, bound to cfg.Interface when set, broadcast allowed.
func Listen(cfg Config) (net.PacketConn, error) {
	ap, err := netip.ParseAddrPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("dhcp: listen: %w", err)
	}
	conn, err := server4.NewIPv4UDPConn(cfg.Interface, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, fmt.Errorf("dhcp: listen %s on %q: %w", ap, cfg.Interface, err)
	}
	// A burst of phones booting after a power cut must not overflow the queue.
	_ = conn.SetReadBuffer(4 << 20)
	_ = conn.SetWriteBuffer(4 << 20)
	return conn, nil
}

// Serve loads the persisted leases, then answers packets on conn until ctx is
// cancelled (it returns nil then). It does not close conn.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn) error {
	if err := s.loadLeases(ctx); err != nil {
		return err
	}
	s.log.Info("dhcp serving", "mode", s.s.mode, "listen", conn.LocalAddr().String(), "server_id", s.s.serverID.String())
	_ = conn.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	var wg sync.WaitGroup
	errc := make(chan error, s.s.workers)
	for range s.s.workers {
		wg.Go(func() { errc <- s.readLoop(ctx, conn) })
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return err
		}
	}
	return nil
}

// loadLeases restores the persisted leases (server mode only).
func (s *Server) loadLeases(ctx context.Context) error {
	if s.s.mode != ModeServer {
		return nil
	}
	leases, err := s.store.LoadLeases(ctx)
	if err != nil {
		return fmt.Errorf("dhcp: load leases: %w", err)
	}
	n := s.alloc.load(leases)
	s.log.Info("dhcp leases loaded", "stored", len(leases), "restored", n)
	return nil
}

// learnShared re-reads the lease table after another server sharing it
// bound an address this one meant to give, and takes in every address the
// others hold: the next clients are offered free addresses, instead of
// each colliding once and being NAKed (at most once a second).
func (s *Server) learnShared(ctx context.Context, now time.Time) {
	if !s.shareRate.AllowN(now, 1) {
		return
	}
	leases, err := s.store.LoadLeases(ctx)
	if err != nil {
		s.m.storeErrors.WithLabelValues("load").Inc()
		s.log.Warn("dhcp lease table not re-read after a collision", "err", err)
		return
	}
	live := leases[:0]
	for _, l := range leases {
		if l.State == StateBound && l.Expires.After(now) {
			live = append(live, l)
		}
	}
	n := s.alloc.load(live)
	s.m.sharedReads.Inc()
	s.log.Info("dhcp lease table re-read after a collision with another server", "bound", len(live), "learned", n)
}

// readLoop reads and answers packets until ctx ends or conn fails. On a
// *net.UDPConn it reads and writes with netip.AddrPort addresses: no
// *net.UDPAddr is allocated per packet.
func (s *Server) readLoop(ctx context.Context, conn net.PacketConn) error {
	buf := make([]byte, maxPacket+1)
	sc := newScratch()
	uc, _ := conn.(*net.UDPConn)
	for {
		var (
			n    int
			peer netip.AddrPort
			err  error
		)
		if uc != nil {
			n, peer, err = uc.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = conn.ReadFrom(buf)
			if u, ok := a.(*net.UDPAddr); ok {
				peer = u.AddrPort()
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // a deadline set by someone else; ctx is still live
			}
			return fmt.Errorf("dhcp: read: %w", err)
		}
		start := time.Now()
		reply, dst, typ := s.handle(ctx, buf[:n], peer, sc)
		if reply == nil {
			continue
		}
		if uc != nil {
			_, err = uc.WriteToUDPAddrPort(reply, dst)
		} else {
			_, err = conn.WriteTo(reply, net.UDPAddrFromAddrPort(dst))
		}
		if err != nil {
			s.m.dropped.WithLabelValues("send").Inc()
			s.log.Debug("dhcp send failed", "dst", dst.String(), "err", err)
			continue
		}
		if typ == dhcpv4.MessageTypeOffer {
			s.m.offerLatency.Observe(time.Since(start).Seconds())
		}
	}
}
