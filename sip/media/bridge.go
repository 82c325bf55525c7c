package media

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"hotdesk/sip/media/g711"
	"hotdesk/sip/media/latch"
)

// ErrNoCodec is returned for an offer without G.711 (PCMU for the
// browser; PCMU or PCMA for a phone). The proxy answers it 488.
var ErrNoCodec = errors.New("media: no G.711 in the offer")

// ErrFull is returned when Config.MaxSessions sessions are open.
var ErrFull = errors.New("media: session limit reached")

// ICEServer is one STUN or TURN server handed to both the browser and the
// bridge's own ICE agent.
type ICEServer struct {
	URLs       []string `yaml:"urls" json:"urls"`
	Username   string   `yaml:"username" json:"username,omitempty"`
	Credential string   `yaml:"credential" json:"credential,omitempty"`
}

// Config sets up the bridge.
type Config struct {
	// RTPAddress is the IP the plain-RTP sockets bind to and advertise in
	// the SDP sent to phones.
	RTPAddress string
	// ICEServers are the STUN/TURN servers (for remote browsers).
	ICEServers []ICEServer
	// PublicIPs are advertised as the bridge's ICE host candidates instead
	// of its own addresses (the appliance behind a 1:1 NAT).
	PublicIPs []string
	// Loopback lets ICE use 127.0.0.1 (the browser on the same machine).
	Loopback bool
	// MaxSessions bounds the open sessions (0: 500).
	MaxSessions int
	// GatherTimeout bounds ICE candidate gathering per offer or answer
	// (0: 5 s); a STUN server that does not answer costs this much.
	GatherTimeout time.Duration
	// Tap, when set, is asked once per session for a receiver of its audio
	// (recording); nil: not recorded.
	Tap func(c CallInfo) Tap
	// Now is the clock the DTLS certificate's rotation follows (nil:
	// time.Now).
	Now func() time.Time
}

// certLifetime is how long the bridge's one DTLS certificate is used: pion
// makes it valid for a month, browsers check only its fingerprint.
const certLifetime = 24 * time.Hour

// interfacesLifetime is how long sessions share one snapshot of the
// host's network interfaces, their ICE host candidates.
const interfacesLifetime = time.Minute

// CallInfo says whose call a session carries, for the Tap.
type CallInfo struct {
	Owner    string // the browser's credential owner ("kind:id"); for a Relay, the caller's
	Peer     string // the other party (number or user); for a Relay, the number dialled
	CallID   string
	Incoming bool // the browser was called
	// Desk marks a call between plain endpoints (a Relay): the Tap decides
	// whose recording it is from Owner and Peer, and gets the caller's
	// audio as FromBrowser.
	Desk bool
	From string // a Relay's caller (the From user)
}

// Tap receives the audio of one session, both directions, as RTP payloads
// in arrival order. Its methods are called from the packet loops and must
// not block.
type Tap interface {
	FromBrowser(payload []byte)
	FromPhone(payload []byte)
	Close()
}

// Bridge makes sessions.
type Bridge struct {
	me   *webrtc.MediaEngine
	se   webrtc.SettingEngine
	ir   *interceptor.Registry
	cfg  Config
	ice  []webrtc.ICEServer
	ip   net.IP
	log  *slog.Logger
	m    *metrics
	open atomic.Int64

	mu       sync.Mutex
	sessions map[*Session]struct{}
	relays   map[*Relay]struct{} // recorded calls between plain endpoints
	pending  int                 // sessions being built outside mu, counted against MaxSessions
	closed   bool

	envMu  sync.Mutex
	cert   webrtc.Certificate
	certAt time.Time
	api    *webrtc.API
	apiAt  time.Time
}

type metrics struct {
	sessions prometheus.Gauge
	started  *prometheus.CounterVec
	packets  *prometheus.CounterVec
	// transcoded counts packets converted between a phone's A-law and
	// the browser's µ-law.
	transcoded prometheus.Counter
	// Resolved once: a label lookup per packet costs a hash and a lock.
	toBrowser, toPhone, relayed prometheus.Counter
	// foreign counts packets dropped for coming from another host than
	// the stream's (latch).
	foreign prometheus.Counter
}

// New builds a bridge; its metrics are registered on reg.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Bridge, error) {
	ip := net.ParseIP(cfg.RTPAddress)
	if ip == nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("media: rtp_address %q: want one IP address phones can reach", cfg.RTPAddress)
	}
	if cfg.MaxSessions <= 0 {
		cfg.MaxSessions = 500
	}
	if cfg.GatherTimeout <= 0 {
		cfg.GatherTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1},
		PayloadType:        0,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	if cfg.Loopback {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	// No mDNS: browsers' .local names are not resolved on an appliance
	// either, and each agent would open and join a multicast socket.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Sender reports only: pion's default NACK, TWCC and stats interceptors
	// serve video and getStats, its receiver reports parse every incoming
	// header again (two allocations a packet); each costs a ticker per call
	// or work per packet, for nothing a browser's audio needs.
	var ir interceptor.Registry
	sr, err := report.NewSenderInterceptor()
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	ir.Add(sr)
	b := &Bridge{me: me, se: se, ir: &ir, cfg: cfg, ip: ip,
		log: log.With("component", "media"), sessions: map[*Session]struct{}{}, relays: map[*Relay]struct{}{}, m: &metrics{
			sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hotdesk_media_sessions",
				Help: "Media bridge sessions (browser to phone, or a recorded call between phones) open now."}),
			started: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_media_sessions_total",
				Help: "Media bridge sessions asked for, by result (ok, no_codec, full, failed)."}, []string{"result"}),
			packets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_media_packets_total",
				Help: "RTP packets relayed by the media bridge, by direction (to_browser, to_phone; relayed: between two phones)."}, []string{"direction"}),
			transcoded: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotdesk_media_transcoded_packets_total",
				Help: "RTP packets the media bridge transcoded between a PCMA phone and the browser's PCMU."}),
			foreign: prometheus.NewCounter(prometheus.CounterOpts{Name: "hotdesk_media_foreign_packets_total",
				Help: "RTP packets the media bridge dropped because they came from another host than the stream's learnt peer."}),
		}}
	for _, s := range cfg.ICEServers {
		b.ice = append(b.ice, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	b.m.toBrowser, b.m.toPhone = b.m.packets.WithLabelValues("to_browser"), b.m.packets.WithLabelValues("to_phone")
	b.m.relayed = b.m.packets.WithLabelValues("relayed")
	for _, c := range []prometheus.Collector{b.m.sessions, b.m.started, b.m.packets, b.m.transcoded, b.m.foreign} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("media: metrics: %w", err)
		}
	}
	if _, _, err := b.env(); err != nil {
		return nil, err
	}
	return b, nil
}

// env is what sessions are made with, shared by them rather than made per
// call on the setup path:
//   - the DTLS certificate every session presents: one per bridge, rotated
//     daily (a key and a signature per call buy nothing: the browser pins
//     the fingerprint from the SDP). ECDSA P-256, as browsers' own;
//   - the pion API and its snapshot of the network interfaces, refreshed
//     every minute: otherwise each session's ICE agent lists them over
//     netlink again.
func (b *Bridge) env() (*webrtc.API, webrtc.Certificate, error) {
	b.envMu.Lock()
	defer b.envMu.Unlock()
	now := b.cfg.Now()
	if b.certAt.IsZero() || now.Sub(b.certAt) >= certLifetime {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, webrtc.Certificate{}, fmt.Errorf("media: dtls key: %w", err)
		}
		c, err := webrtc.GenerateCertificate(key)
		if err != nil {
			return nil, webrtc.Certificate{}, fmt.Errorf("media: dtls certificate: %w", err)
		}
		b.cert, b.certAt = *c, now
	}
	if b.api == nil || now.Sub(b.apiAt) >= interfacesLifetime {
		n, err := stdnet.NewNet()
		if err != nil {
			return nil, webrtc.Certificate{}, fmt.Errorf("media: network interfaces: %w", err)
		}
		se := b.se
		se.SetNet(n)
		b.api = webrtc.NewAPI(webrtc.WithMediaEngine(b.me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(b.ir))
		b.apiAt = now
	}
	return b.api, b.cert, nil
}

// Session is one call leg pair through the bridge.
type Session struct {
	b     *Bridge
	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP
	rtp   *net.UDPConn
	peer  latch.Latch // the phone's RTP address
	// phonePT is the phone's payload type: PCMU passes through, PCMA is
	// transcoded to and from the browser's PCMU.
	phonePT atomic.Uint32
	tap     Tap
	// ToBrowser and ToPhone count relayed packets.
	ToBrowser, ToPhone atomic.Int64

	// neg serializes renegotiations; pending is the browser's answer
	// waiting for the phone's (BrowserReoffer).
	neg     sync.Mutex
	pending string
	// sessID and version name the plain SDPs this session sends (RFC 4566
	// o=): a new description has a higher version.
	sessID  int64
	version atomic.Int64

	wg        sync.WaitGroup
	closeOnce sync.Once
	done      chan struct{}
}

// FromBrowser starts a session for a call the browser places: offer is
// its WebRTC SDP. It returns the answer for the browser and the plain-RTP
// offer for the phone.
func (b *Bridge) FromBrowser(ctx context.Context, offer string, c CallInfo) (s *Session, answer, phoneOffer string, err error) {
	if !strings.Contains(offer, "PCMU/8000") {
		b.m.started.WithLabelValues("no_codec").Inc()
		return nil, "", "", ErrNoCodec
	}
	s, err = b.newSession(c)
	if err != nil {
		return nil, "", "", err
	}
	fail := func(err error) (*Session, string, string, error) {
		s.Close()
		b.m.started.WithLabelValues("failed").Inc()
		return nil, "", "", err
	}
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return fail(fmt.Errorf("media: browser offer: %w", err))
	}
	if _, err := s.pc.AddTrack(s.track); err != nil {
		return fail(fmt.Errorf("media: track: %w", err))
	}
	ans, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return fail(fmt.Errorf("media: answer: %w", err))
	}
	local, err := s.gather(ctx, ans)
	if err != nil {
		return fail(err)
	}
	s.start()
	b.m.started.WithLabelValues("ok").Inc()
	return s, local, s.plainSDPWith(SendRecv, true), nil
}

// PhoneAnswered takes the phone's answer to the plain offer of FromBrowser.
func (s *Session) PhoneAnswered(answer string) error {
	a, pt, err := plainPeer(answer)
	if err != nil {
		return err
	}
	s.phonePT.Store(uint32(pt))
	s.peer.DescribeIfUnset(a)
	return nil
}

// ToBrowser starts a session for a call to a browser: offer is the
// phone's plain SDP. It returns the WebRTC offer for the browser.
func (b *Bridge) ToBrowser(ctx context.Context, phoneOffer string, c CallInfo) (s *Session, offer string, err error) {
	peer, pt, err := plainPeer(phoneOffer)
	if err != nil {
		b.m.started.WithLabelValues("no_codec").Inc()
		return nil, "", err
	}
	s, err = b.newSession(c)
	if err != nil {
		return nil, "", err
	}
	s.peer.Describe(peer)
	s.phonePT.Store(uint32(pt))
	fail := func(err error) (*Session, string, error) {
		s.Close()
		b.m.started.WithLabelValues("failed").Inc()
		return nil, "", err
	}
	if _, err := s.pc.AddTransceiverFromTrack(s.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		return fail(fmt.Errorf("media: track: %w", err))
	}
	o, err := s.pc.CreateOffer(nil)
	if err != nil {
		return fail(fmt.Errorf("media: offer: %w", err))
	}
	local, err := s.gather(ctx, o)
	if err != nil {
		return fail(err)
	}
	b.m.started.WithLabelValues("ok").Inc()
	return s, local, nil
}

// BrowserAnswered takes the browser's answer to ToBrowser's offer and
// returns the plain answer for the phone.
func (s *Session) BrowserAnswered(answer string) (string, error) {
	if err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return "", fmt.Errorf("media: browser answer: %w", err)
	}
	s.start()
	return s.plainSDPWith(SendRecv, false), nil
}

func (b *Bridge) newSession(c CallInfo) (*Session, error) {
	// The slot is taken under mu, the session built outside it: a burst of
	// calls sets up in parallel rather than one after another.
	b.mu.Lock()
	if b.closed || len(b.sessions)+len(b.relays)+b.pending >= b.cfg.MaxSessions {
		b.mu.Unlock()
		b.m.started.WithLabelValues("full").Inc()
		return nil, ErrFull
	}
	b.pending++
	b.mu.Unlock()
	s, err := b.buildSession(c)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending--
	if err != nil {
		return nil, err
	}
	if b.closed {
		s.closeParts()
		b.m.started.WithLabelValues("full").Inc()
		return nil, ErrFull
	}
	b.sessions[s] = struct{}{}
	b.m.sessions.Inc()
	return s, nil
}

func (b *Bridge) buildSession(c CallInfo) (*Session, error) {
	api, cert, err := b.env()
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{ICEServers: b.ice, Certificates: []webrtc.Certificate{cert}})
	if err != nil {
		return nil, fmt.Errorf("media: peer connection: %w", err)
	}
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000, Channels: 1}, "audio", "hotdesk")
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("media: track: %w", err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: b.ip})
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("media: rtp socket: %w", err)
	}
	s := &Session{b: b, pc: pc, track: track, rtp: conn, done: make(chan struct{}), sessID: time.Now().UnixNano() % 1e9}
	if b.cfg.Tap != nil {
		s.tap = b.cfg.Tap(c)
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed {
			b.log.Info("browser media failed, session closed", "local_rtp", conn.LocalAddr().String())
			go s.Close()
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.browserToPhone(tr) }()
	})
	return s, nil
}

// gather sets the local description and waits for every ICE candidate,
// since SIP carries one SDP (no trickle).
func (s *Session) gather(ctx context.Context, d webrtc.SessionDescription) (string, error) {
	done := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(d); err != nil {
		return "", fmt.Errorf("media: local description: %w", err)
	}
	t := time.NewTimer(s.b.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C: // what was gathered so far is used
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return s.pc.LocalDescription().SDP, nil
}

// start runs the phone-to-browser loop (once).
func (s *Session) start() {
	s.wg.Add(1)
	go func() { defer s.wg.Done(); s.phoneToBrowser() }()
}

// RTPAddr is the bridge's plain-RTP address of this session.
func (s *Session) RTPAddr() *net.UDPAddr { return s.rtp.LocalAddr().(*net.UDPAddr) }

// plainSDPWith is the bridge's plain description: an offer lists PCMU
// and PCMA (the phone picks), an answer the phone's codec.
func (s *Session) plainSDPWith(dir string, offer bool) string {
	a := s.RTPAddr()
	id, v := strconv.FormatInt(s.sessID, 10), strconv.FormatInt(s.sessID+s.version.Add(1), 10)
	codecs := " RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000"
	if !offer && s.phonePT.Load() == g711.PCMA {
		codecs = " RTP/AVP 8\r\na=rtpmap:8 PCMA/8000"
	} else if !offer {
		codecs = " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000"
	}
	return "v=0\r\no=hotdesk " + id + " " + v + " IN IP4 " + a.IP.String() + "\r\ns=hotdesk\r\nc=IN IP4 " + a.IP.String() +
		"\r\nt=0 0\r\nm=audio " + strconv.Itoa(a.Port) + codecs + "\r\na=ptime:20\r\na=" + dir + "\r\n"
}

// The two packet loops below are the bridge's per-packet cost: each reads
// into its own buffer and packet and writes from them, so forwarding
// allocates nothing in this package (TestBridgeForwardAllocs).

// phoneToBrowser relays the phone's RTP into the browser's track. The
// phone's address is learnt from its packets (latch.Latch: symmetric RTP behind NAT).
func (s *Session) phoneToBrowser() {
	buf, ulaw := make([]byte, 1500), make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, from, err := s.rtp.ReadFromUDPAddrPort(buf)
		if err != nil {
			return // closed
		}
		if !s.peer.Heard(from) {
			s.b.m.foreign.Inc()
			continue // not the phone's: a stranger may not take the call's audio over
		}
		pt := uint8(s.phonePT.Load())
		if pkt.Unmarshal(buf[:n]) != nil || pkt.PayloadType != pt {
			continue // not the call's G.711 (RTCP, comfort noise, DTMF): not relayed
		}
		if pt == g711.PCMA {
			g711.AlawToUlaw(ulaw, pkt.Payload)
			pkt.Payload, pkt.PayloadType = ulaw[:len(pkt.Payload)], g711.PCMU
			s.b.m.transcoded.Inc()
		}
		if s.tap != nil {
			s.tap.FromPhone(pkt.Payload)
		}
		// Counted before it leaves, so whoever sees it arrive sees it counted.
		s.ToBrowser.Add(1)
		if err := s.track.WriteRTP(&pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			s.ToBrowser.Add(-1)
			continue
		}
		s.b.m.toBrowser.Inc()
	}
}

// browserToPhone relays the browser's (decrypted) RTP to the phone.
func (s *Session) browserToPhone(tr *webrtc.TrackRemote) {
	in, out, alaw := make([]byte, 1500), make([]byte, 1500), make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := tr.Read(in)
		if err != nil {
			return
		}
		peer := s.peer.Get()
		if peer == nil || pkt.Unmarshal(in[:n]) != nil {
			continue
		}
		if pkt.PayloadType != g711.PCMU || len(pkt.Payload) > len(alaw) {
			continue
		}
		if s.tap != nil {
			s.tap.FromBrowser(pkt.Payload) // µ-law, as the tap takes it
		}
		if pt := uint8(s.phonePT.Load()); pt == g711.PCMA {
			g711.UlawToAlaw(alaw, pkt.Payload)
			pkt.Payload, pkt.PayloadType = alaw[:len(pkt.Payload)], g711.PCMA
			s.b.m.transcoded.Inc()
		}
		pkt.Extension = false // the browser's header extensions mean nothing to a phone
		n, err = pkt.MarshalTo(out)
		if err != nil {
			continue
		}
		s.ToPhone.Add(1) // before it leaves, as above
		if _, err := s.rtp.WriteToUDPAddrPort(out[:n], *peer); err != nil {
			s.ToPhone.Add(-1)
			continue
		}
		s.b.m.toPhone.Inc()
	}
}

// Close ends the session and waits for its loops. Safe to call twice.
func (s *Session) Close() {
	s.closeOnce.Do(func() {
		s.closeParts()
		s.b.mu.Lock()
		delete(s.b.sessions, s)
		s.b.mu.Unlock()
		s.b.m.sessions.Dec()
	})
}

func (s *Session) closeParts() {
	close(s.done)
	s.rtp.Close()
	s.pc.Close()
	s.wg.Wait()
	if s.tap != nil {
		s.tap.Close()
	}
}

// Done is closed when the session is.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close ends every session; New sessions are refused afterwards.
func (b *Bridge) Close() {
	b.mu.Lock()
	b.closed = true
	ss := make([]*Session, 0, len(b.sessions))
	for s := range b.sessions {
		ss = append(ss, s)
	}
	rs := make([]*Relay, 0, len(b.relays))
	for r := range b.relays {
		rs = append(rs, r)
	}
	b.mu.Unlock()
	for _, s := range ss {
		s.Close()
	}
	for _, r := range rs {
		r.Close()
	}
}

// Open is the number of open sessions and relays.
func (b *Bridge) Open() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.sessions) + len(b.relays)
}

// plainPeer reads the audio address of a plain SDP and the G.711 it speaks:
// PCMU when listed (passed through), else PCMA (transcoded).
func plainPeer(body string) (netip.AddrPort, uint8, error) {
	a, formats, err := audioStream(body)
	if errors.Is(err, errNoAudio) {
		return netip.AddrPort{}, 0, ErrNoCodec
	}
	if err != nil {
		return netip.AddrPort{}, 0, err
	}
	switch {
	case slices.Contains(formats, "0"):
		return a, g711.PCMU, nil
	case slices.Contains(formats, "8"):
		return a, g711.PCMA, nil
	}
	return netip.AddrPort{}, 0, ErrNoCodec
}

// errNoAudio: a description without an audio stream.
var errNoAudio = errors.New("media: sdp: no audio stream")

// audioStream reads a plain SDP's first audio stream: where it is to be
// sent (the media-level connection address, else the session's) and its
// payload formats.
func audioStream(body string) (netip.AddrPort, []string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(body); err != nil {
		return netip.AddrPort{}, nil, fmt.Errorf("media: sdp: %w", err)
	}
	host := ""
	if d.ConnectionInformation != nil && d.ConnectionInformation.Address != nil {
		host = d.ConnectionInformation.Address.Address
	}
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" {
			continue
		}
		if m.ConnectionInformation != nil && m.ConnectionInformation.Address != nil {
			host = m.ConnectionInformation.Address.Address
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || m.MediaName.Port.Value < 0 || m.MediaName.Port.Value > 65535 {
			return netip.AddrPort{}, nil, fmt.Errorf("media: sdp: connection address %q port %d", host, m.MediaName.Port.Value)
		}
		// Unmapped: the sockets are IPv4 and are told IPv4 addresses.
		return netip.AddrPortFrom(ip.Unmap(), uint16(m.MediaName.Port.Value)), m.MediaName.Formats, nil
	}
	return netip.AddrPort{}, nil, errNoAudio
}
