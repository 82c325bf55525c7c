package sip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/sip/media"
)

// ProxyConfig is the `sip.proxy:` section of hotdesk.yaml.
type ProxyConfig struct {
	// Advertise is the host[:port] put in our Via and Record-Route headers;
	// phones must reach it. "" uses the host of the first listen address
	// (Domain when that is a wildcard) and the port of each transport.
	Advertise string `yaml:"advertise"`
	// TimerC cancels a ringing branch that gets no final answer (RFC 3261
	// §16.6 step 11, more than 3 minutes).
	TimerC time.Duration `yaml:"timer_c"`
	// MaxBranches bounds the parallel branches of one call.
	MaxBranches int `yaml:"max_branches"`
	// MaxRedirects bounds forwards and 3xx recursions of one call.
	MaxRedirects int `yaml:"max_redirects"`
	// DialogTTL forgets an answered call that never saw its BYE.
	DialogTTL time.Duration `yaml:"dialog_ttl"`
	// TxLinger is how long a finished non-INVITE transaction (a BYE's)
	// over UDP stays to absorb retransmissions, instead of sipgo's 32 s
	// (Timer J); Kamailio's tm waits 5 s. Over a reliable transport it ends
	// at once (Timer J is 0). An answered INVITE's transactions end when the ACK
	// passes (RFC 3261 §17.2.1); later 2xx retransmissions are relayed
	// statelessly for the dialog (strayResponse).
	TxLinger time.Duration `yaml:"tx_linger"`
	// MaxCalls caps the INVITE transactions held at once: a call counts
	// from its INVITE until its transactions end (when its ACK passes;
	// ~14 KB each), so it bounds calls being set up, not the call rate. Beyond it new INVITEs get 503 with Retry-After,
	// answered without keeping a transaction, so a burst costs CPU but no
	// memory.
	MaxCalls int `yaml:"max_calls"`
	// MaxDialogs caps answered calls kept (until BYE or DialogTTL); beyond
	// it new INVITEs get the same 503.
	MaxDialogs int `yaml:"max_dialogs"`
	// QueueDelay sheds new INVITEs over UDP, at the socket, while those
	// taken last waited longer than this before the proxy got them (0:
	// never): the backlog's memory and the callers' retransmissions (T1
	// is 500 ms) grow with that wait, so a burst is shed before either.
	QueueDelay time.Duration `yaml:"queue_delay"`
	// RetryAfter is the Retry-After of those 503s.
	RetryAfter time.Duration `yaml:"retry_after"`
	// TrustedSources are IPs or CIDRs whose INVITEs are not challenged
	// (the trunk); such calls may reach hotdesk users only.
	TrustedSources []string `yaml:"trusted_sources"`
	// Trunk is the upstream outbound proxy for numbers that are not users.
	Trunk TrunkConfig `yaml:"trunk"`
}

// TrunkConfig is the upstream trunk (`sip.proxy.trunk:`).
type TrunkConfig struct {
	// Address is host:port of the outbound proxy; "" means no trunk (404).
	Address string `yaml:"address"`
	// Transport is "udp" or "tcp".
	Transport string `yaml:"transport"`
	// Domain is the Request-URI host of calls sent to the trunk ("" = Address host).
	Domain string `yaml:"domain"`
	// Username and Password answer the trunk's 401/407 challenges.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Register keeps hotdesk registered with the trunk as Username (so
	// inbound calls find it); Expires is the expiry asked for, in seconds.
	Register bool `yaml:"register"`
	Expires  int  `yaml:"expires"`
}

// DefaultProxyConfig returns the defaults: Timer C 3 min, no trunk.
func DefaultProxyConfig() ProxyConfig {
	return ProxyConfig{TimerC: 3*time.Minute + time.Second, MaxBranches: 10, MaxRedirects: 3,
		DialogTTL: 12 * time.Hour, TxLinger: 5 * time.Second, MaxCalls: 3000, MaxDialogs: 20000,
		QueueDelay: 200 * time.Millisecond, RetryAfter: 5 * time.Second, Trunk: TrunkConfig{Transport: "udp", Expires: 3600}}
}

// Validate checks the section; errors name the key.
func (c ProxyConfig) Validate() error {
	var errs []error
	if c.Advertise != "" {
		if h, _, err := net.SplitHostPort(c.Advertise); err != nil && !validDomain(c.Advertise) || err == nil && !validDomain(h) {
			errs = append(errs, fmt.Errorf("advertise: %q: want host or host:port", c.Advertise))
		}
	}
	if c.TimerC < 3*time.Minute {
		errs = append(errs, errors.New("timer_c: must be more than 3m (RFC 3261 §16.6)"))
	}
	if c.MaxBranches < 1 || c.MaxBranches > 64 {
		errs = append(errs, errors.New("max_branches: must be within 1..64"))
	}
	if c.MaxRedirects < 0 || c.MaxRedirects > 10 {
		errs = append(errs, errors.New("max_redirects: must be within 0..10"))
	}
	if c.DialogTTL < time.Minute {
		errs = append(errs, errors.New("dialog_ttl: must be at least 1m"))
	}
	if c.TxLinger < 0 || c.TxLinger > 32*time.Second {
		errs = append(errs, errors.New("tx_linger: must be within 0..32s"))
	}
	if c.MaxCalls < 1 || c.MaxCalls > 1000000 {
		errs = append(errs, errors.New("max_calls: must be within 1..1000000"))
	}
	if c.MaxDialogs < 1 || c.MaxDialogs > 1000000 {
		errs = append(errs, errors.New("max_dialogs: must be within 1..1000000"))
	}
	if c.QueueDelay < 0 || c.QueueDelay > 2*time.Second {
		errs = append(errs, errors.New("queue_delay: must be within 0..2s"))
	}
	if c.RetryAfter < time.Second || c.RetryAfter > time.Hour || c.RetryAfter%time.Second != 0 {
		errs = append(errs, errors.New("retry_after: must be whole seconds within 1s..1h"))
	}
	if _, err := parsePrefixes(c.TrustedSources); err != nil {
		errs = append(errs, err)
	}
	if c.Trunk.Address != "" {
		if _, _, err := net.SplitHostPort(c.Trunk.Address); err != nil {
			errs = append(errs, fmt.Errorf("trunk.address: %q: want host:port", c.Trunk.Address))
		}
	}
	if t := strings.ToLower(c.Trunk.Transport); t != "" && t != "udp" && t != "tcp" {
		errs = append(errs, fmt.Errorf("trunk.transport: %q: want udp or tcp", c.Trunk.Transport))
	}
	if c.Trunk.Register && (c.Trunk.Address == "" || c.Trunk.Username == "") {
		errs = append(errs, errors.New("trunk.register: needs trunk.address and trunk.username"))
	}
	if c.Trunk.Register && (c.Trunk.Expires < 60 || c.Trunk.Expires > 86400) {
		errs = append(errs, fmt.Errorf("trunk.expires: %d: want 60..86400 seconds", c.Trunk.Expires))
	}
	if c.Trunk.Domain != "" && !validDomain(c.Trunk.Domain) {
		errs = append(errs, fmt.Errorf("trunk.domain: %q is not a host name", c.Trunk.Domain))
	}
	return errors.Join(errs...)
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for i, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted_sources[%d]: %q: want an IP or CIDR", i, s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ProxyDeps are what the proxy needs from prov; every interface is optional
// (nil: allow every call, no call handling, no feature codes, no records).
type ProxyDeps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	Policy     CallPolicy
	Handling   CallHandling
	Features   FeatureCodes
	Recorder   CallRecorder
	// Emergency tells emergency numbers, which a lockout never refuses.
	Emergency EmergencyNumbers
	// Mailboxes and VoicemailAddr (the voicemail server's SIP UDP
	// address, sip/media/vm) enable voicemail: unanswered calls of users
	// whose Handling says so, the mailbox code and message-summary
	// subscriptions. Both nil/"": no voicemail.
	Mailboxes     Mailboxes
	VoicemailAddr string
	// Parking enables call park on the voicemail server (needs
	// VoicemailAddr): a park code parks a call or picks it up, and a BLF
	// subscription to it shows the slot busy.
	Parking Parking
	// ParkHolders, on a cluster, names the node a slot's call is parked
	// on: a park code dialled here for it is handed to that node (with
	// Handoff; without, answered 486). nil: one node.
	ParkHolders ParkHolders
	// Trunks picks a caller's site trunk (nil: ProxyConfig.Trunk for all).
	Trunks Trunks
	// Media anchors calls between browsers (SIP over WebSocket) and plain
	// RTP (nil: no bridge; such calls fail on media).
	Media *media.Bridge
	// Recording tells the calls between phones to be recorded: they are
	// anchored on Media too (nil: none; other calls keep direct media).
	Recording RecordRule
	// Handoff lets this node hand calls to the cluster node holding the
	// callee's binding, and take theirs (zero: none).
	Handoff Handoff
}

// RecordRule tells whether a call between plain-RTP endpoints is
// recorded (per user or per number).
type RecordRule interface {
	RecordsCall(ctx context.Context, caller Owner, dialled string) bool
}

// proxy is the stateful proxy core on the registrar's sipgo layers.
type proxy struct {
	s        *Server
	cfg      ProxyConfig
	log      *slog.Logger
	now      func() time.Time
	policy   CallPolicy
	handling CallHandling
	features FeatureCodes
	// emergency may be nil: no number is exempt from a lockout.
	emergency EmergencyNumbers
	mailboxes Mailboxes
	vmAddr    string
	parking   Parking
	parkHeld  ParkHolders
	trunks    Trunks
	// sitePeers are the site trunks' addresses calls went to, answered as
	// known peers like ProxyConfig.Trunk (at most one per site).
	sitePeers sync.Map
	m         *proxyMetrics
	records   *recordQueue
	dialogs   *dialogTable
	answered  *answeredSet // INVITEs whose transactions ended at the ACK
	admit     *admission   // new INVITEs over UDP, taken or shed at the reader
	// dlg answers dialog event (BLF) subscriptions from the call records.
	dlg     *dialogEvents
	held    atomic.Int64 // initial INVITE transactions not yet ended (max_calls)
	trusted []netip.Prefix

	advHost string
	advPort int // 0: the listen port of the transport
	// localIPs are this host's addresses: a Route naming any of them is us
	// (phones may be configured with the IP while we advertise a name).
	localIPs map[netip.Addr]bool

	udpMu    sync.Mutex
	udpLocal sip.Addr // the UDP listener, so requests leave from it

	tp *thirdParty // click-to-dial calls (thirdparty.go)
	// media is the WebRTC bridge (nil: none).
	media     *media.Bridge
	recording RecordRule
	// handoffKey signs and checks hand-offs between cluster nodes.
	handoffKey Handoff
}

// EnableProxy turns the registrar into a registrar + stateful proxy: it
// routes INVITE, ACK, CANCEL, BYE, UPDATE, INFO, REFER, MESSAGE, PRACK and
// in-dialog SUBSCRIBE/NOTIFY. Call it after New and before Serve; its
// background work (call records, dialog expiry) stops when ctx ends.
func (s *Server) EnableProxy(ctx context.Context, cfg ProxyConfig, deps ProxyDeps) error {
	_, err := s.enableProxy(ctx, cfg, deps)
	return err
}

func (s *Server) enableProxy(ctx context.Context, cfg ProxyConfig, deps ProxyDeps) (*proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sip proxy config: %w", err)
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
	trusted, _ := parsePrefixes(cfg.TrustedSources)
	p := &proxy{s: s, cfg: cfg, log: deps.Logger, now: deps.Now, policy: deps.Policy, handling: deps.Handling,
		features: deps.Features, emergency: deps.Emergency, trunks: deps.Trunks, trusted: trusted, media: deps.Media,
		recording: deps.Recording, handoffKey: deps.Handoff}
	if deps.Mailboxes != nil && deps.VoicemailAddr != "" {
		p.mailboxes, p.vmAddr = deps.Mailboxes, deps.VoicemailAddr
	}
	if deps.Parking != nil && deps.VoicemailAddr != "" {
		p.parking, p.vmAddr, p.parkHeld = deps.Parking, deps.VoicemailAddr, deps.ParkHolders
	}
	p.dialogs = newDialogTable()
	p.answered = newAnsweredSet(max(cfg.TxLinger, time.Second))
	p.admit = newAdmission(cfg.QueueDelay)
	p.m = newProxyMetrics(deps.Registerer, func() float64 { return float64(p.dialogs.len()) },
		func() float64 { return float64(p.held.Load()) })
	p.records = newRecordQueue(deps.Recorder, p.log, p.m.recordsDropped.Inc)
	p.dlg = newDialogEvents(p, deps.Registerer, p.log)
	p.records.tap = p.dlg.observe
	p.advHost, p.advPort = p.advertise()
	p.localIPs = localIPs()
	p.tp = newThirdParty(ctx, p, deps.Registerer)
	s.proxy.Store(p)
	allow := allowProxy
	s.allow.Store(&allow)
	s.SIP.OnInvite(p.guard(p.onInvite))
	s.SIP.OnAck(p.guard(p.onAck))
	s.SIP.OnCancel(p.guard(p.onCancel))
	for _, m := range []sip.RequestMethod{sip.BYE, sip.UPDATE, sip.INFO, sip.REFER, sip.MESSAGE, sip.PRACK,
		sip.SUBSCRIBE, sip.NOTIFY} {
		s.SIP.OnRequest(m, p.guard(p.onRequest))
	}
	go p.records.run(ctx)
	go p.dlg.run(ctx)
	go p.expireDialogs(ctx)
	go p.registerTrunk(ctx)
	return p, nil
}

// guard keeps a peer's bytes from killing the process and makes sure a
// request never leaves its handler unanswered.
func (p *proxy) guard(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		defer func() {
			if r := recover(); r != nil {
				p.m.dropped.WithLabelValues("panic").Inc()
				p.log.Warn("recovered from a panic in the proxy", "method", string(req.Method), "panic", r)
				if tx != nil && !req.IsAck() {
					tx.Respond(p.reply(req, 500, "Server Internal Error"))
				}
			}
		}()
		h(req, tx)
	}
}

// advertise derives the Via/Record-Route host and port.
func (p *proxy) advertise() (string, int) {
	if p.cfg.Advertise != "" {
		if h, port, err := net.SplitHostPort(p.cfg.Advertise); err == nil {
			n, _ := strconv.Atoi(port)
			return h, n
		}
		return p.cfg.Advertise, 0
	}
	if as, err := p.s.cfg.ListenAddrs(); err == nil && len(as) > 0 {
		if h, _, err := net.SplitHostPort(as[0].Addr); err == nil {
			if ip, err := netip.ParseAddr(h); err == nil && !ip.IsUnspecified() || err != nil && h != "" {
				return h, 0
			}
		}
	}
	return p.s.cfg.Domain, 0
}

// port is the advertised port for a transport.
func (p *proxy) port(transport string) int {
	if p.advPort != 0 {
		return p.advPort
	}
	// ListenPorts locks; sipgo's GetListenPort reads the map unguarded.
	if ports := p.s.UA.TransportLayer().ListenPorts(sip.NetworkToLower(transport)); len(ports) > 0 {
		return ports[0]
	}
	return 0
}

// udpListener is the local address of the UDP listener: sipgo pools it
// under that address, so setting it as Laddr makes requests leave from
// 5060 instead of an ephemeral port phones would not accept.
func (p *proxy) udpListener() sip.Addr {
	p.udpMu.Lock()
	defer p.udpMu.Unlock()
	if p.udpLocal.IP != nil {
		return p.udpLocal
	}
	ports := p.s.UA.TransportLayer().ListenPorts("udp")
	as, _ := p.s.cfg.ListenAddrs()
	for _, a := range as {
		if a.Network != "udp" || len(ports) == 0 {
			continue
		}
		h, _, _ := net.SplitHostPort(a.Addr)
		ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(h, strconv.Itoa(ports[0])))
		if err != nil {
			break
		}
		ip := ua.IP
		if ip == nil {
			ip = net.IPv4zero
		}
		p.udpLocal = sip.Addr{IP: ip, Port: ua.Port, Hostname: ip.String()}
		break
	}
	return p.udpLocal
}

// isUs reports whether a URI names this proxy (a Route we put there, or a
// Request-URI host we serve).
func (p *proxy) isUs(u *sip.Uri) bool {
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	if host != strings.ToLower(strings.Trim(p.advHost, "[]")) && !p.servedDomain(host) {
		ip, err := netip.ParseAddr(host)
		if err != nil || !p.localIPs[ip.Unmap()] {
			return false
		}
	}
	if u.Port == 0 {
		return true
	}
	for _, n := range []string{"udp", "tcp", "tls"} {
		if u.Port == p.port(n) {
			return true
		}
	}
	return false
}

// localIPs lists the addresses of this host's interfaces.
func localIPs() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	as, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range as {
		if pf, err := netip.ParsePrefix(a.String()); err == nil {
			out[pf.Addr().Unmap()] = true
		}
	}
	return out
}

func (p *proxy) servedDomain(host string) bool {
	for _, d := range p.s.domains {
		if d == host {
			return true
		}
	}
	return false
}

func (p *proxy) trustedSource(src string) bool {
	a, err := netip.ParseAddr(hostOf(src))
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, pf := range p.trusted {
		if pf.Contains(a) {
			return true
		}
	}
	return false
}

// reply builds a response of ours; reason is stripped of CR/LF.
func (p *proxy) reply(req *sip.Request, code int, reason string) *sip.Response {
	res := sip.NewResponseFromRequest(req, code, stripCRLF(reason), nil)
	res.SipVersion = "SIP/2.0"
	res.AppendHeader(sip.NewHeader("Server", p.s.cfg.UserAgent))
	return res
}

// respond answers req on tx and counts it.
func (p *proxy) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	if tx == nil {
		return
	}
	if err := tx.Respond(p.reply(req, code, reason)); err != nil {
		p.log.Debug("respond failed", "method", string(req.Method), "code", code, "err", err)
	}
}

// onCancel answers a CANCEL that matched no INVITE transaction (the
// transaction layer answers matching ones and tells the fork).
func (p *proxy) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	if res, drop := p.s.validate(req, false); drop || res != nil {
		if res != nil {
			tx.Respond(res)
		}
		return
	}
	p.respond(req, tx, 481, "Call/Transaction Does Not Exist")
}
