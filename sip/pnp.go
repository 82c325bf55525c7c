package sip

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/time/rate"
)

// SIP plug-and-play (draft-ietf-sipping-config-framework, as Yealink, Snom,
// Grandstream, Fanvil, Gigaset and others implement it): a phone without a
// provisioning URL multicasts SUBSCRIBE (Event: ua-profile) to
// 224.0.1.75:5060; the server answers 200 and sends a NOTIFY whose body
// (application/url) is the URL the phone then fetches its configuration from.

// PnPGroup and PnPPort are the sip.mcast.net group phones send to.
const (
	PnPGroup = "224.0.1.75"
	PnPPort  = 5060
)

// PnPConfig is the `sip.pnp` section.
type PnPConfig struct {
	// Enabled turns the plug-and-play listener on.
	Enabled bool `yaml:"enabled"`
	// Interface is the network interface whose segment the phones are on;
	// the group is joined there and NOTIFYs leave from its IPv4 address.
	Interface string `yaml:"interface"`
}

// Validate checks the section; errors name the key.
func (c PnPConfig) Validate() error {
	if !c.Enabled {
		return nil
	}
	if c.Interface == "" || len(c.Interface) > 15 || strings.ContainsAny(c.Interface, "/ \t") {
		return fmt.Errorf("pnp.interface: %q: an interface name is required when pnp.enabled is true", c.Interface)
	}
	return nil
}

// PnPDevice is what a phone's SUBSCRIBE says about it.
type PnPDevice struct {
	MAC       string // 12 lower-case hex digits
	Vendor    string // the Event header's vendor parameter, as sent
	Model     string
	Version   string
	UserAgent string
	Source    netip.Addr
}

// ErrPnPDenied is returned by a PnPProvisioner whose policy refuses the device.
var ErrPnPDenied = errors.New("sip: plug-and-play device denied by policy")

// PnPProvisioner is implemented by the daemon with prov: it enrols the device
// by the same policy as provisioning (auto, approve, deny) and returns the
// provisioning URL for that vendor and MAC, or an error wrapping
// ErrPnPDenied.
type PnPProvisioner interface {
	PnPEnrol(ctx context.Context, d PnPDevice) (url string, err error)
}

// PnPDeps are what the plug-and-play responder needs.
type PnPDeps struct {
	Logger      *slog.Logger
	Registerer  prometheus.Registerer
	Now         func() time.Time
	Provisioner PnPProvisioner
	// UserAgent goes into Server/User-Agent headers.
	UserAgent string
}

// PnPListeners are the plug-and-play sockets: Group receives the multicast
// SUBSCRIBEs (and answers them), Unicast sends the NOTIFYs and receives
// their responses.
type PnPListeners struct {
	Group   net.PacketConn
	Unicast net.PacketConn
}

// Close closes both sockets.
func (l PnPListeners) Close() {
	if l.Group != nil {
		l.Group.Close()
	}
	if l.Unicast != nil {
		l.Unicast.Close()
	}
}

// Limits of the responder: everything it keeps is bounded.
const (
	pnpMaxDatagram = 4096
	// pnpWindow: phones repeat their SUBSCRIBE for about 5 s (Grandstream
	// sends five); one NOTIFY per phone per window.
	pnpWindow        = 30 * time.Second
	pnpMaxPhones     = 4096 // remembered answers
	pnpMaxSources    = 4096 // rate limiters
	pnpMaxInFlight   = 128  // NOTIFY transactions at once
	pnpEnrolTimeout  = 5 * time.Second
	pnpSourceRate    = 2 // SUBSCRIBEs per second per source address...
	pnpSourceBurst   = 10
	pnpNotifyT1      = 500 * time.Millisecond
	pnpNotifyT2      = 4 * time.Second
	pnpNotifyTimeout = 32 * time.Second // RFC 3261 Timer F
	pnpMaxURL        = 1024
)

// PnP answers SIP plug-and-play SUBSCRIBEs.
type PnP struct {
	log    *slog.Logger
	now    func() time.Time
	prov   PnPProvisioner
	ua     string
	parser *sip.Parser
	m      pnpMetrics

	mu      sync.Mutex
	phones  map[string]pnpAnswer // by MAC
	sources map[netip.Addr]*rate.Limiter
	pending map[string]chan *sip.Response // NOTIFY branch → its responses

	slots chan struct{}
	wg    sync.WaitGroup
}

// pnpAnswer is what a phone was told, repeated to its retransmissions.
type pnpAnswer struct {
	at     time.Time
	status int
}

type pnpMetrics struct {
	subscribes *prometheus.CounterVec
	notifies   *prometheus.CounterVec
}

// NewPnP builds the responder; nothing listens until Serve.
func NewPnP(deps PnPDeps) (*PnP, error) {
	if deps.Provisioner == nil {
		return nil, errors.New("sip: PnPDeps.Provisioner is required")
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
	if deps.UserAgent == "" {
		deps.UserAgent = "hotdesk"
	}
	f := promauto.With(deps.Registerer)
	return &PnP{log: deps.Logger.With("component", "sip-pnp"), now: deps.Now, prov: deps.Provisioner,
		ua: deps.UserAgent, parser: sip.NewParser(),
		m: pnpMetrics{
			subscribes: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_pnp_subscribes_total",
				Help: "SIP plug-and-play SUBSCRIBEs by result (notified, repeat, denied, error, bad_request, rate_limited)."},
				[]string{"result"}),
			notifies: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_sip_pnp_notifies_total",
				Help: "SIP plug-and-play NOTIFYs carrying a provisioning URL, by result (ok, rejected, timeout, error)."},
				[]string{"result"}),
		},
		phones: map[string]pnpAnswer{}, sources: map[netip.Addr]*rate.Limiter{},
		pending: map[string]chan *sip.Response{}, slots: make(chan struct{}, pnpMaxInFlight)}, nil
}

// Serve answers SUBSCRIBEs on ls until ctx is cancelled, then waits for the
// NOTIFY transactions under way. It closes ls.
func (p *PnP) Serve(ctx context.Context, ls PnPListeners) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, ls.Close)
	defer stop()
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { defer readers.Done(); p.readResponses(ls.Unicast) }()
	p.log.Info("sip plug-and-play serving", "group", ls.Group.LocalAddr().String(),
		"notify_from", ls.Unicast.LocalAddr().String())
	buf := make([]byte, pnpMaxDatagram+1)
	var err error
	for {
		n, from, rerr := ls.Group.ReadFrom(buf)
		if rerr != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("sip pnp: read: %w", rerr)
			}
			break
		}
		p.handle(ctx, ls, buf[:n], from)
	}
	cancel()
	ls.Close()
	p.wg.Wait()
	readers.Wait()
	return err
}

// handle answers one datagram from the group socket.
func (p *PnP) handle(ctx context.Context, ls PnPListeners, data []byte, from net.Addr) {
	ua, ok := from.(*net.UDPAddr)
	if !ok {
		return
	}
	src := ua.AddrPort().Addr().Unmap()
	if !p.allow(src) {
		p.m.subscribes.WithLabelValues("rate_limited").Inc()
		return
	}
	if len(data) > pnpMaxDatagram {
		p.bad(src, errors.New("datagram too large"))
		return
	}
	req, dev, err := p.parse(data)
	if err != nil {
		p.bad(src, err)
		return
	}
	dev.Source = src
	req.SetSource(ua.String())
	dst := replyAddr(req, ua)
	now := p.now()
	p.mu.Lock()
	prev, seen := p.phones[dev.MAC]
	p.mu.Unlock()
	if seen && now.Sub(prev.at) < pnpWindow {
		p.m.subscribes.WithLabelValues("repeat").Inc()
		p.respond(ls.Group, req, prev.status, dst, ls.Unicast.LocalAddr())
		return
	}
	ectx, cancel := context.WithTimeout(ctx, pnpEnrolTimeout)
	url, err := p.prov.PnPEnrol(ectx, dev)
	cancel()
	status, result := 200, "notified"
	switch {
	case errors.Is(err, ErrPnPDenied):
		status, result = 403, "denied"
		p.log.Info("plug-and-play phone denied by policy", "mac", dev.MAC, "vendor", dev.Vendor, "source", src.String())
	case err != nil:
		status, result = 500, "error"
		p.log.Warn("plug-and-play enrolment failed", "mac", dev.MAC, "err", err)
	case url == "" || len(url) > pnpMaxURL || strings.ContainsAny(url, "\r\n"):
		status, result = 500, "error"
		p.log.Warn("plug-and-play: no usable provisioning URL for the phone", "mac", dev.MAC, "vendor", dev.Vendor)
	}
	p.remember(dev.MAC, pnpAnswer{at: now, status: status})
	p.m.subscribes.WithLabelValues(result).Inc()
	p.respond(ls.Group, req, status, dst, ls.Unicast.LocalAddr())
	if status != 200 {
		return
	}
	select {
	case p.slots <- struct{}{}:
	default:
		p.m.notifies.WithLabelValues("error").Inc()
		p.log.Warn("plug-and-play NOTIFY not sent: too many under way", "mac", dev.MAC)
		return
	}
	p.log.Info("plug-and-play phone pointed at its provisioning URL", "mac", dev.MAC, "vendor", dev.Vendor,
		"model", dev.Model, "source", src.String(), "url", url)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() { <-p.slots }()
		p.notify(ctx, ls.Unicast, req, ua, url)
	}()
}

func (p *PnP) bad(src netip.Addr, err error) {
	p.m.subscribes.WithLabelValues("bad_request").Inc()
	p.log.Info("plug-and-play request ignored", "source", src.String(), "err", err)
}

// allow applies the per-source rate limit (bounded: the table starts over
// when full).
func (p *PnP) allow(src netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.sources[src]
	if l == nil {
		if len(p.sources) >= pnpMaxSources {
			clear(p.sources)
		}
		l = rate.NewLimiter(pnpSourceRate, pnpSourceBurst)
		p.sources[src] = l
	}
	return l.AllowN(p.now(), 1)
}

func (p *PnP) remember(mac string, a pnpAnswer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.phones) >= pnpMaxPhones {
		for k, v := range p.phones {
			if a.at.Sub(v.at) >= pnpWindow {
				delete(p.phones, k)
			}
		}
		if len(p.phones) >= pnpMaxPhones {
			clear(p.phones)
		}
	}
	p.phones[mac] = a
}

// parse checks a plug-and-play SUBSCRIBE and extracts the device.
func (p *PnP) parse(data []byte) (*sip.Request, PnPDevice, error) {
	msg, err := p.parser.ParseSIP(data)
	if err != nil {
		return nil, PnPDevice{}, fmt.Errorf("unparseable: %w", err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		return nil, PnPDevice{}, errors.New("not a request")
	}
	dev, err := parsePnPSubscribe(req)
	return req, dev, err
}

// parsePnPSubscribe validates the request and reads the device from it.
func parsePnPSubscribe(req *sip.Request) (PnPDevice, error) {
	var d PnPDevice
	if req.Method != sip.SUBSCRIBE {
		return d, fmt.Errorf("method %s", stripCRLF(string(req.Method)))
	}
	if req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil || req.CSeq() == nil {
		return d, errors.New("missing Via, From, To, Call-ID or CSeq")
	}
	ev := req.GetHeader("Event")
	if ev == nil {
		return d, errors.New("no Event header")
	}
	event, params := parseEventHeader(ev.Value())
	if event != "ua-profile" {
		return d, fmt.Errorf("event %q", stripCRLF(event))
	}
	if pt := params["profile-type"]; pt != "device" {
		return d, fmt.Errorf("profile-type %q", stripCRLF(pt))
	}
	d.Vendor, d.Model, d.Version = params["vendor"], params["model"], params["version"]
	mac, ok := pnpMAC(req.From().Address.User)
	if !ok {
		if mac, ok = pnpMAC(req.To().Address.User); !ok {
			return d, fmt.Errorf("no MAC in From %q", stripCRLF(req.From().Address.User))
		}
	}
	d.MAC = mac
	if h := req.GetHeader("User-Agent"); h != nil {
		d.UserAgent = h.Value()
	}
	for _, s := range []*string{&d.Vendor, &d.Model, &d.Version, &d.UserAgent} {
		if len(*s) > 128 {
			*s = (*s)[:128]
		}
		*s = stripCRLF(*s)
	}
	return d, nil
}

// parseEventHeader splits `ua-profile;profile-type="device";vendor="x"` into
// the lower-cased event and its parameters (keys lower-cased, values
// unquoted).
func parseEventHeader(v string) (string, map[string]string) {
	parts := strings.Split(v, ";")
	params := make(map[string]string, len(parts))
	for _, part := range parts[1:] {
		k, val, _ := strings.Cut(part, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "" || len(params) >= 16 {
			continue
		}
		params[k] = strings.Trim(strings.TrimSpace(val), `"`)
	}
	return strings.ToLower(strings.TrimSpace(parts[0])), params
}

// pnpMAC reads "MAC%3a001565aabbcc" (or "MAC:00:15:65:…", any case) and
// returns the 12 lower-case hex digits.
func pnpMAC(user string) (string, bool) {
	u := strings.ToLower(user)
	switch {
	case strings.HasPrefix(u, "mac%3a"):
		u = u[6:]
	case strings.HasPrefix(u, "mac:"):
		u = u[4:]
	default:
		return "", false
	}
	if len(u) == 17 {
		u = strings.NewReplacer(":", "", "-", "", "%3a", "").Replace(u)
	}
	u = strings.ReplaceAll(u, "%3a", "")
	if len(u) != 12 {
		return "", false
	}
	if _, err := hex.DecodeString(u); err != nil {
		return "", false
	}
	return u, true
}

// replyAddr is where the responses to req go (RFC 3261 §18.2.2, RFC 3581):
// the source port when the Via asks for rport, else the Via's sent-by port.
func replyAddr(req *sip.Request, from *net.UDPAddr) *net.UDPAddr {
	via := req.Via()
	if via == nil || via.Params.Has("rport") || via.Port == 0 {
		return from
	}
	return &net.UDPAddr{IP: from.IP, Port: via.Port}
}

// respond sends the final answer to a SUBSCRIBE; its To tag is derived
// from the request, so retransmissions get the same one.
func (p *PnP) respond(pc net.PacketConn, req *sip.Request, status int, dst *net.UDPAddr, local net.Addr) {
	reason := map[int]string{200: "OK", 403: "Forbidden", 500: "Server Internal Error"}[status]
	if to := req.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", pnpTag(req))
	}
	res := sip.NewResponseFromRequest(req, status, reason, nil)
	res.SipVersion = "SIP/2.0"
	res.AppendHeader(sip.NewHeader("Server", p.ua))
	if status == 200 {
		res.AppendHeader(sip.NewHeader("Expires", "0"))
		res.AppendHeader(sip.NewHeader("Contact", "<sip:"+local.String()+">"))
	}
	if _, err := pc.WriteTo([]byte(res.String()), dst); err != nil {
		p.log.Debug("plug-and-play response not sent", "err", err)
	}
}

func pnpTag(req *sip.Request) string {
	return strconv.FormatUint(uint64(reqHash(req)), 36) + "pnp"
}

// notify sends the NOTIFY carrying url in the subscription's dialog and
// retransmits it (RFC 3261 timers E and F) until a final response.
func (p *PnP) notify(ctx context.Context, pc net.PacketConn, sub *sip.Request, from *net.UDPAddr, url string) {
	dst, target := notifyTarget(sub, from)
	var b [12]byte
	rand.Read(b[:])
	branch := "z9hG4bK" + hex.EncodeToString(b[:])
	local := pc.LocalAddr().String()
	n := sip.NewRequest(sip.NOTIFY, target)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Params: sip.NewParams()}
	if ap, err := netip.ParseAddrPort(local); err == nil {
		via.Host, via.Port = ap.Addr().String(), int(ap.Port())
	}
	via.Params.Add("branch", branch)
	via.Params.Add("rport", "")
	n.AppendHeader(via)
	mf := sip.MaxForwardsHeader(70)
	n.AppendHeader(&mf)
	// In the subscription's dialog: our From is its To (with our tag), our
	// To its From.
	n.AppendHeader(&sip.FromHeader{Address: sub.To().Address, Params: sub.To().Params.Clone()})
	n.AppendHeader(&sip.ToHeader{Address: sub.From().Address, Params: sub.From().Params.Clone()})
	n.AppendHeader(sip.HeaderClone(sub.CallID()))
	n.AppendHeader(&sip.CSeqHeader{SeqNo: 1, MethodName: sip.NOTIFY})
	n.AppendHeader(sip.NewHeader("Contact", "<sip:"+local+">"))
	n.AppendHeader(sip.NewHeader("Event", sub.GetHeader("Event").Value()))
	n.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason=timeout"))
	n.AppendHeader(sip.NewHeader("User-Agent", p.ua))
	n.AppendHeader(sip.NewHeader("Content-Type", "application/url"))
	n.SetBody([]byte(url))
	raw := []byte(n.String())

	ch := make(chan *sip.Response, 4)
	p.mu.Lock()
	p.pending[branch] = ch
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.pending, branch)
		p.mu.Unlock()
	}()
	giveUp := time.NewTimer(pnpNotifyTimeout)
	defer giveUp.Stop()
	interval := pnpNotifyT1
	retx := time.NewTimer(0)
	defer retx.Stop()
	for {
		select {
		case <-ctx.Done():
			p.m.notifies.WithLabelValues("error").Inc()
			return
		case <-giveUp.C:
			p.m.notifies.WithLabelValues("timeout").Inc()
			p.log.Info("plug-and-play NOTIFY unanswered", "to", dst.String())
			return
		case <-retx.C:
			if _, err := pc.WriteTo(raw, dst); err != nil {
				p.m.notifies.WithLabelValues("error").Inc()
				p.log.Info("plug-and-play NOTIFY not sent", "to", dst.String(), "err", err)
				return
			}
			retx.Reset(interval)
			interval = min(2*interval, pnpNotifyT2)
		case res := <-ch:
			if res.StatusCode < 200 {
				interval = pnpNotifyT2 // provisional: only Timer E at T2 (RFC 3261 §17.1.2.2)
				continue
			}
			if res.StatusCode < 300 {
				p.m.notifies.WithLabelValues("ok").Inc()
			} else {
				p.m.notifies.WithLabelValues("rejected").Inc()
				p.log.Info("plug-and-play NOTIFY refused by the phone", "to", dst.String(), "status", res.StatusCode)
			}
			return
		}
	}
}

// notifyTarget is where the NOTIFY goes: the SUBSCRIBE's Contact when its
// host is the address the SUBSCRIBE came from (the phone listens there),
// else that source address (NAT, or a Contact naming another host).
func notifyTarget(sub *sip.Request, from *net.UDPAddr) (*net.UDPAddr, sip.Uri) {
	target := sip.Uri{Scheme: "sip", Host: from.IP.String(), Port: from.Port}
	b := Binding{Source: from.String(), Transport: "UDP"}
	if c := sub.Contact(); c != nil {
		target = *c.Address.Clone()
		b.Contact = c.Address.String()
	} else {
		b.Contact = target.String()
	}
	dst := from
	if a, err := net.ResolveUDPAddr("udp", b.Target()); err == nil && a.IP != nil {
		dst = a
	}
	return dst, target
}

// readResponses hands the responses to our NOTIFYs to their transactions.
func (p *PnP) readResponses(pc net.PacketConn) {
	buf := make([]byte, pnpMaxDatagram)
	for {
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			return // closed by Serve
		}
		msg, err := p.parser.ParseSIP(buf[:n])
		if err != nil {
			continue
		}
		res, ok := msg.(*sip.Response)
		if !ok || res.Via() == nil {
			continue // a phone's request to our NOTIFY socket: nothing to answer
		}
		branch, _ := res.Via().Params.Get("branch")
		p.mu.Lock()
		ch := p.pending[branch]
		p.mu.Unlock()
		if ch != nil {
			select {
			case ch <- res:
			default:
			}
		}
	}
}
