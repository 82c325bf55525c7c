package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"hotdesk/sip/digestserver"
)

// Deps are what the registrar needs from the rest of hotdesk.
type Deps struct {
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Now         func() time.Time
	Credentials Credentials
	Bindings    BindingStore // nil: bindings live in memory only
	OnEvent     func(Event)  // nil: no events
	// Elsewhere finds the bindings other nodes of a cluster hold, for an
	// AOR with none here (nil: one node).
	Elsewhere Elsewhere
	// Ready reports whether REGISTERs may be served (nil: always). A
	// cluster node whose view of the others is stale answers them 503
	// with Retry-After, and the phone registers with its next server.
	Ready func() bool
}

// Elsewhere is the shared location of a cluster: the bindings of an AOR
// that other nodes hold, with Local cleared (they are sent to from this
// node's own socket).
type Elsewhere interface {
	Bindings(ctx context.Context, aor string) []Binding
}

// maxUDPMessage is the largest SIP message sent over UDP (plus sipgo's 200).
const maxUDPMessage = 8192

// Server is the registrar. REGISTER and OPTIONS arriving over UDP are
// answered statelessly by its own socket readers; everything else, and all
// TCP/TLS traffic, goes through sipgo's transaction layer (UA, Server and
// Client below), which is also where the proxy plugs in.
type Server struct {
	// allow is the Allow header value: the methods served here, more
	// once the proxy is enabled.
	allow atomic.Pointer[string]
	// proxy is set by EnableProxy (click-to-dial needs it).
	proxy   atomic.Pointer[proxy]
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	creds   Credentials
	store   BindingStore
	domains []string
	algs    []string
	// sha256UAs are Config.SHA256UserAgents, lower-cased.
	sha256UAs []string
	m         *metrics

	parser *sip.Parser
	nonces *digestserver.Nonces
	ha1    *ha1Cache
	lock   *lockout
	// budget counts failures per account from every source together.
	budget *lockout
	// emergency counts the failures of emergency calls let through a
	// lockout, so that door lends a locked source no unbounded guessing.
	emergency *lockout
	loc       *location
	// guard bounds the TCP/TLS connections; authentication over one of
	// them lifts its short unauthenticated timeout.
	guard     *connGuard
	persist   *persister
	events    *eventQueue
	elsewhere Elsewhere
	ready     func() bool

	// UA, SIP and Client are sipgo's layers, shared so that requests we
	// send leave from our listening sockets (see NotifyCheckSync).
	UA     *sipgo.UserAgent
	SIP    *sipgo.Server
	Client *sipgo.Client

	serving sync.Mutex
}

// sipgo refuses to send a UDP message over UDPMTUSize-200 bytes and has no
// switch to TCP (sipgo#206). A phone's INVITE with a large SDP plus our Via
// and Record-Route passes 1,300 bytes; IP fragments it instead, as phones and
// Kamailio do. The setting is sipgo's, process-wide: raised once here, before
// any server exists, not in New (servers built at once raced on it).
func init() {
	if sip.UDPMTUSize < maxUDPMessage {
		sip.UDPMTUSize = maxUDPMessage
	}
}

// New builds a registrar; nothing listens until Serve.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sip config: %w", err)
	}
	if deps.Credentials == nil {
		return nil, errors.New("sip: Deps.Credentials is required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if deps.Registerer == nil {
		deps.Registerer = prometheus.NewRegistry()
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{cfg: cfg, log: deps.Logger, now: deps.Now, creds: deps.Credentials, store: deps.Bindings,
		domains: cfg.servedDomains(), parser: sip.NewParser(), nonces: digestserver.New(cfg.NonceTTL, maxTrackedNonces, maxUsesPerNonce),
		ha1: newHA1Cache(200000), lock: newLockout(cfg), budget: newLockout(accountBudget(cfg)),
		emergency: newLockout(cfg), elsewhere: deps.Elsewhere, ready: deps.Ready}
	for _, a := range cfg.Algorithms {
		s.algs = append(s.algs, canonicalAlg(a))
	}
	for _, ua := range cfg.SHA256UserAgents {
		s.sha256UAs = append(s.sha256UAs, strings.ToLower(strings.TrimSpace(ua)))
	}
	s.loc = newLocation(s.changed)
	s.m = newMetrics(deps.Registerer, func() float64 { return float64(s.loc.count()) })
	s.guard = newConnGuard(cfg, s.m.tcpRefused, s.log)
	s.persist = newPersister(deps.Bindings, s.log, s.m)
	s.events = newEventQueue(deps.OnEvent, s.m)
	// sipgo logs unparseable datagrams at Error with their full text; keep
	// its chatter at debug level of our logger.
	sipLog := slog.New(levelCap{deps.Logger.Handler()})
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(cfg.UserAgent), sipgo.WithUserAgentHostname(cfg.Domain),
		sipgo.WithUserAgentParser(s.parser),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(sipLog)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(sipLog),
			// A response matching no transaction (a retransmission, or
			// anyone's packet) went to sipgo's default logger at Info, one
			// line each: a flood on demand. Counted instead; the proxy
			// relays a retransmitted 2xx of a dialog it keeps.
			sip.WithTransactionLayerUnhandledResponseHandler(func(res *sip.Response) {
				if p := s.proxy.Load(); p != nil && p.strayResponse(res) {
					return
				}
				s.m.dropped.WithLabelValues("stray_response").Inc()
			})))
	if err != nil {
		return nil, fmt.Errorf("sip: ua: %w", err)
	}
	if s.SIP, err = sipgo.NewServer(ua, sipgo.WithServerLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("sip: server: %w", err)
	}
	if s.Client, err = sipgo.NewClient(ua, sipgo.WithClientLogger(sipLog)); err != nil {
		return nil, fmt.Errorf("sip: client: %w", err)
	}
	s.UA = ua
	s.SIP.OnRegister(s.txHandler)
	s.SIP.OnOptions(s.txHandler)
	s.SIP.OnNoRoute(s.noRoute)
	s.SIP.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	return s, nil
}

// changed receives every binding change from the location service.
func (s *Server) changed(evs []Event, ups []Binding, dels []BindingKey) {
	s.persist.enqueue(ups, dels)
	s.events.push(evs)
}

// Serve loads the stored bindings, serves the listeners until ctx is
// cancelled, then flushes pending binding writes. It returns nil on cancel.
func (s *Server) Serve(ctx context.Context, l Listeners) error {
	if !s.serving.TryLock() {
		l.Close()
		return errors.New("sip: Serve called twice")
	}
	if err := s.loadBindings(ctx); err != nil {
		l.Close()
		return err
	}
	if len(l.TLS) > 0 || len(l.WSS) > 0 {
		conf, err := s.cfg.tlsConfig()
		if err != nil {
			l.Close()
			return err
		}
		for i, tl := range l.TLS {
			l.TLS[i] = tlsListener(tl, conf)
		}
		for i, tl := range l.WSS {
			l.WSS[i] = tlsListener(tl, conf)
		}
	}
	bgCtx, bgCancel := context.WithCancel(context.WithoutCancel(ctx))
	var bg sync.WaitGroup
	for _, f := range []func(context.Context){s.persist.run, s.events.run, s.sweep} {
		bg.Add(1)
		go func() { defer bg.Done(); f(bgCtx) }()
	}
	err := s.serveListeners(ctx, l)
	bgCancel()
	bg.Wait()
	s.UA.Close()
	return err
}

func (s *Server) serveListeners(ctx context.Context, l Listeners) error {
	g, gctx := errgroup.WithContext(ctx)
	workers := s.cfg.UDPWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	fail := func(what string, err error) error {
		if err == nil || ctx.Err() != nil || gctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("sip: %s: %w", what, err)
	}
	for _, pc := range l.UDP {
		// Bursts of registrations outrun the default 208 KiB socket buffer;
		// the kernel caps this at net.core.rmem_max.
		if rb, ok := pc.(interface{ SetReadBuffer(int) error }); ok && s.cfg.UDPReadBuffer > 0 {
			if err := rb.SetReadBuffer(s.cfg.UDPReadBuffer); err != nil {
				s.log.Warn("setting the udp read buffer failed", "err", err)
			}
		}
		c := newUDPConn(pc, s)
		for range workers {
			g.Go(func() error { c.work(gctx); return nil })
		}
		g.Go(func() error { return fail("serve udp", s.SIP.ServeUDP(c)) })
	}
	guard := s.guard
	for _, tl := range l.TCP {
		g.Go(func() error { return fail("serve tcp", s.SIP.ServeTCP(guard.listener(gctx, tl))) })
	}
	for _, tl := range l.TLS {
		g.Go(func() error { return fail("serve tls", s.SIP.ServeTLS(guard.listener(gctx, tl))) })
	}
	for _, tl := range l.WS {
		g.Go(func() error { return fail("serve ws", s.SIP.ServeWS(guard.listener(gctx, tl))) })
	}
	for _, tl := range l.WSS {
		g.Go(func() error { return fail("serve wss", s.SIP.ServeWSS(guard.listener(gctx, tl))) })
	}
	g.Go(func() error {
		<-gctx.Done()
		l.Close()
		return nil
	})
	s.log.Info("sip registrar serving", "udp", len(l.UDP), "tcp", len(l.TCP), "tls", len(l.TLS), "ws", len(l.WS), "wss", len(l.WSS))
	return g.Wait()
}

func (s *Server) loadBindings(ctx context.Context) error {
	if s.store == nil {
		return nil
	}
	bs, err := s.store.LoadBindings(ctx)
	if err != nil {
		return fmt.Errorf("sip: load bindings: %w", err)
	}
	now := s.now()
	live := bs[:0:0]
	var dead []BindingKey
	for _, b := range bs {
		if b.Expires.After(now) {
			live = append(live, b)
		} else {
			dead = append(dead, b.Key())
		}
	}
	s.loc.load(live)
	s.persist.enqueue(nil, dead)
	s.log.Info("bindings loaded", "live", len(live), "expired", len(dead))
	return nil
}

// sweep expires bindings on time and forgets idle lockout entries.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.expireNow()
		if n++; n%60 == 0 {
			s.lock.sweep(s.now())
			s.budget.sweep(s.now())
			s.emergency.sweep(s.now())
		}
	}
}

func (s *Server) expireNow() {
	now := s.now()
	s.loc.removeIf(func(b *Binding) bool { return !b.Expires.After(now) }, Expired, now)
}

// Unbind removes every binding the owner created and returns them. It
// emits Unbound events.
func (s *Server) Unbind(ctx context.Context, owner Owner) ([]Binding, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.loc.removeOwner(owner, s.now()), nil
}

// DeviceBindings returns the live bindings that reach device, whichever
// credential made them (Credential.Device).
func (s *Server) DeviceBindings(device string) []Binding {
	if device == "" {
		return nil
	}
	return s.loc.byDevice(device, s.now())
}

// Lookup returns the live bindings of an address of record, highest q
// first. aor may be "sip:user@domain" (any alias of the user) or a bare
// user part, which means the first served domain.
func (s *Server) Lookup(ctx context.Context, aor string) []Binding {
	user, domain := aor, s.domains[0]
	var u sip.Uri
	if sip.ParseUri(aor, &u) == nil && u.Host != "" && u.User != "" {
		user, domain = u.User, lower(u.Host)
	}
	canon, ok := s.creds.CanonicalUser(ctx, user)
	if !ok {
		return nil
	}
	key := "sip:" + canon + "@" + domain
	bs := s.loc.lookup(key, s.now())
	if len(bs) == 0 && s.elsewhere != nil {
		// Registered on another node (README, "Several nodes"): a UDP
		// phone on the LAN is sent to from here; one reached only through
		// the connection it opened to its node (TCP, TLS) or the mapping
		// its NAT made toward it is handed to that node, when the nodes
		// share a secret, else not called.
		p := s.proxy.Load()
		for _, b := range s.elsewhere.Bindings(ctx, key) {
			udp := strings.EqualFold(b.Transport, "UDP") || b.Transport == ""
			handoff := p != nil && p.handoffKey.enabled()
			switch {
			case udp && !(handoff && natted(b)):
				b.Local, b.LocalHost = "", ""
				bs = append(bs, b)
			case handoff && holderAddr(b) != "" && (udp || strings.EqualFold(b.Transport, "TCP") || strings.EqualFold(b.Transport, "TLS")):
				b.Handoff = holderAddr(b)
				bs = append(bs, b)
			}
		}
		s.m.elsewhere.Add(float64(len(bs)))
	}
	return bs
}

// Release forgets bindings another node has taken over (the phone
// registered there since): no events and no writes, the row is that
// node's now.
func (s *Server) Release(keys []BindingKey) { s.loc.drop(keys) }

// Bindings returns a copy of every binding (for status pages).
func (s *Server) Bindings() []Binding { return s.loc.all() }

// BindingCount returns how many bindings are held.
func (s *Server) BindingCount() int { return s.loc.count() }

// notReadyRetry is the Retry-After (seconds) of a REGISTER refused while
// the node is not ready.
const notReadyRetry = 5

// handle validates and answers a REGISTER or OPTIONS; nil means drop.
func (s *Server) handle(ctx context.Context, req *sip.Request, local string, rawChecked bool) *sip.Response {
	start := time.Now()
	res, drop := s.validate(req, rawChecked)
	if drop {
		s.m.dropped.WithLabelValues("invalid").Inc()
		return nil
	}
	if res == nil && req.Method != sip.CANCEL && req.GetHeader("Require") != nil {
		res = s.checkRequire(req)
	}
	if res == nil {
		switch req.Method {
		case sip.REGISTER:
			var result string
			if s.ready != nil && !s.ready() {
				res, result = s.reply(req, 503, "Service Unavailable"), "unavailable"
				res.AppendHeader(sip.NewHeader("Retry-After", strconv.Itoa(notReadyRetry)))
			} else {
				res, result = s.register(ctx, req, local)
			}
			s.m.register.WithLabelValues(result).Inc()
		case sip.OPTIONS:
			res = s.options(req)
		default:
			res = s.notAllowed(req)
		}
	}
	s.m.latency.WithLabelValues(methodLabel(req.Method)).Observe(time.Since(start).Seconds())
	s.m.requests.WithLabelValues(methodLabel(req.Method), strconv.Itoa(res.StatusCode/100)+"xx").Inc()
	return res
}

// txHandler answers REGISTER/OPTIONS arriving through sipgo (TCP, TLS).
func (s *Server) txHandler(req *sip.Request, tx sip.ServerTransaction) {
	local := ""
	if t := strings.ToLower(req.Transport()); t == "tcp" || t == "tls" {
		// The listener a TCP/TLS phone registered through: another
		// cluster node hands calls for it there (Handoff).
		local = s.listenerAddr(t)
	}
	res := s.handle(context.Background(), req, local, false)
	if res == nil {
		return
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("respond failed", "method", string(req.Method), "err", err)
	}
}

// listenerAddr is the address of this server's first listener of network
// (its bound port when configured as 0); "" if none.
func (s *Server) listenerAddr(network string) string {
	as, _ := s.cfg.ListenAddrs()
	for _, a := range as {
		if a.Network != network {
			continue
		}
		h, p, err := net.SplitHostPort(a.Addr)
		if err != nil {
			return ""
		}
		if p == "0" {
			ports := s.UA.TransportLayer().ListenPorts(network)
			if len(ports) == 0 {
				return ""
			}
			p = strconv.Itoa(ports[0])
		}
		return net.JoinHostPort(h, p)
	}
	return ""
}

// noRoute answers every method nobody routes yet: 405 for the methods of
// RFC 3261 and its extensions, 501 for unknown ones; never ACK.
func (s *Server) noRoute(req *sip.Request, tx sip.ServerTransaction) {
	if req.IsAck() || tx == nil {
		return
	}
	s.txHandler(req, tx)
}

// options answers OPTIONS (keep-alive pings and capability queries).
func (s *Server) options(req *sip.Request) *sip.Response {
	if mf := req.MaxForwards(); mf != nil && mf.Val() == 0 && req.Recipient.User != "" {
		return s.reply(req, 483, "Too Many Hops")
	}
	res := s.reply(req, 200, "OK")
	res.AppendHeader(sip.NewHeader("Allow", s.allowed()))
	res.AppendHeader(sip.NewHeader("Accept", "application/sdp"))
	res.AppendHeader(sip.NewHeader("Supported", "path, outbound"))
	return res
}

// allowRegistrar and allowProxy are what the registrar alone, and with
// the proxy, answers itself or routes.
const (
	allowRegistrar = "REGISTER, OPTIONS"
	allowProxy     = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, UPDATE, INFO, REFER, MESSAGE, PRACK, SUBSCRIBE, NOTIFY"
)

func (s *Server) allowed() string {
	if a := s.allow.Load(); a != nil {
		return *a
	}
	return allowRegistrar
}

var knownMethods = map[sip.RequestMethod]bool{sip.INVITE: true, sip.ACK: true, sip.CANCEL: true, sip.BYE: true,
	sip.SUBSCRIBE: true, sip.NOTIFY: true, sip.REFER: true, sip.INFO: true, sip.MESSAGE: true,
	sip.PRACK: true, sip.UPDATE: true, sip.PUBLISH: true}

func (s *Server) notAllowed(req *sip.Request) *sip.Response {
	if !knownMethods[req.Method] {
		return s.reply(req, 501, "Not Implemented")
	}
	res := s.reply(req, 405, "Method Not Allowed")
	res.AppendHeader(sip.NewHeader("Allow", s.allowed()))
	return res
}

func methodLabel(m sip.RequestMethod) string {
	switch m {
	case sip.REGISTER, sip.OPTIONS, sip.INVITE, sip.ACK, sip.CANCEL, sip.BYE, sip.SUBSCRIBE, sip.NOTIFY:
		return string(m)
	}
	return "other"
}

// reply builds a response with a To tag derived from Call-ID and CSeq, so a
// retransmission gets a byte-identical answer.
func (s *Server) reply(req *sip.Request, code int, reason string) *sip.Response {
	if to := req.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", strconv.FormatUint(uint64(reqHash(req)), 36)+"hd")
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.SipVersion = "SIP/2.0" // never echo the peer's version text
	res.AppendHeader(sip.NewHeader("Server", s.cfg.UserAgent))
	return res
}

// reqHash hashes Call-ID and CSeq number.
func reqHash(req *sip.Request) uint32 {
	// FNV-1a, inline to stay allocation-free.
	h := uint32(2166136261)
	if c := req.CallID(); c != nil {
		for _, b := range []byte(c.Value()) {
			h = (h ^ uint32(b)) * 16777619
		}
	}
	if c := req.CSeq(); c != nil {
		for i := 24; i >= 0; i -= 8 {
			h = (h ^ (c.SeqNo >> i & 0xff)) * 16777619
		}
	}
	return h
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 32
		}
	}
	return string(b)
}

// levelCap lowers sipgo's records to debug: its Error-level logs of
// malformed peer input would otherwise flood the journal.
type levelCap struct{ slog.Handler }

func (h levelCap) Enabled(ctx context.Context, l slog.Level) bool {
	return h.Handler.Enabled(ctx, slog.LevelDebug)
}

func (h levelCap) Handle(ctx context.Context, r slog.Record) error {
	r.Level = slog.LevelDebug
	return h.Handler.Handle(ctx, r)
}

func (h levelCap) WithAttrs(a []slog.Attr) slog.Handler { return levelCap{h.Handler.WithAttrs(a)} }
func (h levelCap) WithGroup(g string) slog.Handler      { return levelCap{h.Handler.WithGroup(g)} }
