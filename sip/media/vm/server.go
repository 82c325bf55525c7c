package vm

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// maxCalls bounds the calls served at once (each holds an RTP socket and
// up to MaxMessage of audio); more are answered 503.
const maxCalls = 256

// Message is one stored voicemail message, as playback needs it.
type Message struct {
	ID   int64
	Path string
}

// Deposit is a message just recorded.
type Deposit struct {
	User     string // the mailbox (canonical user number)
	From     string // the caller as the INVITE's From shows them
	Path     string // the WAV file, in Config.Dir
	Duration time.Duration
	Size     int64
}

// Mailbox is implemented by prov: the mailboxes' metadata and rules.
type Mailbox interface {
	// Greeting is the WAV file a user's callers hear; "" plays the
	// built-in tone. An error is logged and the tone is played.
	Greeting(ctx context.Context, user string) (string, error)
	// Deposit stores a recorded message. An error (over budget, no such
	// user) is logged and the file is removed.
	Deposit(ctx context.Context, d Deposit) error
	// Messages are the user's messages in playback order.
	Messages(ctx context.Context, user string) ([]Message, error)
	// Heard marks a message as listened to; Delete removes it.
	Heard(ctx context.Context, user string, id int64) error
	Delete(ctx context.Context, user string, id int64) error
}

// Config is the voicemail server's.
type Config struct {
	// Listen is the SIP UDP address the proxy sends calls to (loopback).
	Listen string
	// MediaAddr is the IP the RTP sockets bind to and the SDP announces:
	// an address the phones reach.
	MediaAddr netip.Addr
	// Dir is where recordings are written (created 0700).
	Dir string
	// MaxMessage bounds one recording.
	MaxMessage time.Duration
}

// Deps are the server's collaborators.
type Deps struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Mailbox    Mailbox
	// Slots, on a cluster, shares the occupied park slots with the
	// other nodes; nil on one node.
	Slots ParkSlots
}

type metrics struct {
	calls      *prometheus.CounterVec
	messages   *prometheus.CounterVec
	rtpIn      prometheus.Counter
	rtpOut     prometheus.Counter
	rtpInvalid prometheus.Counter
	parks      *prometheus.CounterVec
	claims     *prometheus.CounterVec
	reinvites  *prometheus.CounterVec
}

// Server is the voicemail user agent.
type Server struct {
	cfg  Config
	log  *slog.Logger
	mb   Mailbox
	m    *metrics
	conn net.PacketConn
	ua   *sipgo.UserAgent
	srv  *sipgo.Server
	dlgs *sipgo.DialogServerCache
	// contact is the Contact of our answers.
	contact sip.ContactHeader
	wg      sync.WaitGroup
	slots   chan struct{}
	mu      sync.Mutex // guards closed against wg.Add
	closed  bool
	parkMu  sync.Mutex
	parks   map[string]*parked
	slotReg ParkSlots
	// calls are the answered calls by Call-ID, for their re-INVITEs.
	callMu sync.Mutex
	calls  map[string]*answered
	ctx    context.Context
	stop   context.CancelFunc
	close  sync.Once
}

// New binds the SIP socket; Serve answers on it.
func New(cfg Config, d Deps) (*Server, error) {
	if cfg.MaxMessage <= 0 {
		cfg.MaxMessage = 2 * time.Minute
	}
	if !cfg.MediaAddr.IsValid() {
		return nil, errors.New("vm: no media address")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	conn, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("vm: listen %s: %w", cfg.Listen, err)
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("hotdesk-voicemail"))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("vm: %w", err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("vm: %w", err)
	}
	cli, err := sipgo.NewClient(ua)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("vm: %w", err)
	}
	la := conn.LocalAddr().(*net.UDPAddr)
	f := promauto.With(d.Registerer)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "voicemail", Host: la.IP.String(), Port: la.Port}}
	s := &Server{cfg: cfg, log: d.Logger.With("component", "voicemail"), mb: d.Mailbox, slotReg: d.Slots, conn: conn, ua: ua, srv: srv,
		dlgs: sipgo.NewDialogServerCache(cli, contact), contact: contact,
		m: &metrics{
			calls: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_voicemail_calls_total",
				Help: "Voicemail calls by kind (deposit, listen) and result (answered, refused, busy)."}, []string{"kind", "result"}),
			messages: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_voicemail_messages_total",
				Help: "Recorded messages by result (stored, empty, refused)."}, []string{"result"}),
			rtpIn: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_voicemail_rtp_received_total",
				Help: "RTP packets received by voicemail."}),
			rtpOut: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_voicemail_rtp_sent_total",
				Help: "RTP packets sent by voicemail."}),
			rtpInvalid: f.NewCounter(prometheus.CounterOpts{Name: "hotdesk_voicemail_rtp_invalid_total",
				Help: "Packets on a voicemail RTP socket that were not RTP of the negotiated payload types, or came from another host than the caller's."}),
			reinvites: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_voicemail_reinvites_total",
				Help: "re-INVITEs (a caller's hold or resume) of voicemail and parked calls, by result (ok, refused)."}, []string{"result"}),
			parks: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_voicemail_park_total",
				Help: "Call park events by result (parked, picked_up, timed_out)."}, []string{"result"}),
			claims: f.NewCounterVec(prometheus.CounterOpts{Name: "hotdesk_voicemail_park_claims_total",
				Help: "Park slot claims in the store shared by cluster nodes, by result (claimed; taken: another node's call is parked there, the call is refused 486; failed: store error, 503)."}, []string{"result"}),
		}}
	s.slots = make(chan struct{}, maxCalls)
	s.parks = map[string]*parked{}
	s.calls = map[string]*answered{}
	s.ctx, s.stop = context.WithCancel(context.Background())
	srv.OnInvite(s.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { s.dlgs.ReadAck(req, tx) })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if err := s.dlgs.ReadBye(req, tx); err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		}
	})
	return s, nil
}

// Addr is the SIP address the proxy sends calls to.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Serve answers until ctx ends, then hangs up every call and waits for them.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.ServeUDP(s.conn) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		s.shutdown()
		return fmt.Errorf("vm: %w", err)
	}
	s.shutdown()
	<-errc
	return nil
}

// Close releases the socket of a server that never served.
func (s *Server) Close() { s.shutdown() }

func (s *Server) shutdown() {
	s.close.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.stop()
		s.wg.Wait()
		s.conn.Close()
		s.ua.Close()
	})
}

// onInvite answers "deposit.<user>" and "listen.<user>"; the proxy picks
// which and has already authorized the caller.
func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if t, _ := req.To().Params.Get("tag"); t != "" {
		s.reinvite(req, tx)
		return
	}
	kind, user, _ := strings.Cut(req.Recipient.User, ".")
	if (kind != "deposit" && kind != "listen" && kind != "park") || user == "" || strings.ContainsAny(user, "/\\.") {
		s.m.calls.WithLabelValues("unknown", "refused").Inc()
		tx.Respond(sip.NewResponseFromRequest(req, 404, "No Such Mailbox", nil))
		return
	}
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	default:
		s.m.calls.WithLabelValues(kind, "busy").Inc()
		tx.Respond(sip.NewResponseFromRequest(req, 503, "Voicemail Busy", nil))
		return
	}
	o, err := parseOffer(req.Body())
	if err != nil {
		s.m.calls.WithLabelValues(kind, "refused").Inc()
		s.log.Info("voicemail call refused", "kind", kind, "err", err)
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		tx.Respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	rc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(s.cfg.MediaAddr, 0)))
	if err != nil {
		s.log.Warn("voicemail RTP socket", "err", err)
		tx.Respond(sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil))
		return
	}
	dlg, err := s.dlgs.ReadInvite(req, tx)
	if err != nil {
		rc.Close()
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request", nil))
		return
	}
	defer dlg.Close()
	defer rc.Close()
	local := rc.LocalAddr().(*net.UDPAddr).AddrPort()
	md := newMedia(rc, o, s.m)
	call := &answered{local: local, o: o, md: md, sessID: time.Now().Unix()}
	s.callMu.Lock()
	s.calls[req.CallID().Value()] = call
	s.callMu.Unlock()
	defer func() {
		s.callMu.Lock()
		delete(s.calls, req.CallID().Value())
		s.callMu.Unlock()
	}()
	var claimed bool
	if kind == "park" {
		if claimed, err = s.claimSlot(user); errors.Is(err, ErrSlotTaken) {
			s.m.calls.WithLabelValues(kind, "refused").Inc()
			dlg.Respond(486, "Parked On Another Node", nil)
			return
		} else if err != nil {
			s.m.calls.WithLabelValues(kind, "refused").Inc()
			dlg.Respond(503, "Service Unavailable", nil)
			return
		}
	}
	if err := dlg.RespondSDP(answer(local, o, call.sessID)); err != nil {
		s.m.calls.WithLabelValues(kind, "refused").Inc()
		s.log.Info("voicemail answer not acknowledged", "kind", kind, "err", err)
		if claimed {
			s.unclaim(user)
		}
		return
	}
	s.m.calls.WithLabelValues(kind, "answered").Inc()
	go md.receive() // ends when rc is closed (deferred above)
	ctx := s.ctx
	done := dlg.Context().Done()
	var hangup bool
	switch kind {
	case "deposit":
		hangup = s.deposit(ctx, done, md, user, fromOf(req))
	case "listen":
		hangup = s.listen(ctx, done, md, user)
	default:
		hangup = s.park(ctx, done, md, user, claimed)
	}
	if !hangup {
		bctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := dlg.Bye(bctx); err != nil {
			s.log.Debug("voicemail BYE", "err", err)
		}
		cancel()
	}
}

func fromOf(req *sip.Request) string {
	f := req.From()
	if f == nil {
		return ""
	}
	u := f.Address.User
	if len(u) > 64 {
		u = u[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, u)
}

// deposit plays the greeting and a beep, records until the caller hangs
// up, presses # or the recording is full, and hands the message to the
// mailbox. It reports whether the caller hung up.
func (s *Server) deposit(ctx context.Context, done <-chan struct{}, md *media, user, from string) bool {
	greeting := tone(600, 425)
	if path, err := s.mb.Greeting(ctx, user); err != nil {
		s.log.Warn("voicemail greeting", "user", user, "err", err)
	} else if path != "" {
		if pcm, err := ReadWAVFile(path); err != nil {
			s.log.Warn("voicemail greeting unreadable", "user", user, "err", err)
		} else {
			greeting = pcm
		}
	}
	max := int(s.cfg.MaxMessage / time.Second * 8000)
	if _, err := md.play(ctx, done, append(greeting, tone(200, 1000)...), false, func() { md.record(max) }); err != nil {
		md.stopRecording()
		return errors.Is(err, errHangup)
	}
	hangup := false
	for range max / frameSamples { // bounded: one digit per frame at most
		d, err := md.wait(ctx, done, s.cfg.MaxMessage+time.Second)
		if err != nil {
			hangup = errors.Is(err, errHangup)
			break
		}
		if d == '#' || d == 0 {
			break
		}
	}
	s.store(ctx, md.stopRecording(), user, from)
	return hangup
}

// store writes a recording and hands it to the mailbox.
func (s *Server) store(ctx context.Context, pcm []int16, user, from string) {
	if len(pcm) < 8000/2 { // under half a second: a hang-up at the beep
		s.m.messages.WithLabelValues("empty").Inc()
		return
	}
	var b [8]byte
	rand.Read(b[:])
	dir := filepath.Join(s.cfg.Dir, user)
	path := filepath.Join(dir, time.Now().UTC().Format("20060102T150405")+"-"+hex.EncodeToString(b[:])+".wav")
	wav := EncodeWAV(pcm)
	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = os.WriteFile(path, wav, 0o600)
	}
	if err == nil {
		err = s.mb.Deposit(ctx, Deposit{User: user, From: from, Path: path,
			Duration: time.Duration(len(pcm)) * time.Second / 8000, Size: int64(len(wav))})
	}
	if err != nil {
		os.Remove(path)
		s.m.messages.WithLabelValues("refused").Inc()
		s.log.Warn("voicemail message not stored", "user", user, "err", err)
		return
	}
	s.m.messages.WithLabelValues("stored").Inc()
	s.log.Info("voicemail message stored", "user", user, "from", from, "seconds", len(pcm)/8000)
}

// listen plays the user's messages: 7 deletes the one playing, # or 9
// keeps it and goes on; after the last a double beep and the call ends.
// It reports whether the caller hung up.
func (s *Server) listen(ctx context.Context, done <-chan struct{}, md *media, user string) bool {
	msgs, err := s.mb.Messages(ctx, user)
	if err != nil {
		s.log.Warn("voicemail messages", "user", user, "err", err)
	}
	for _, m := range msgs {
		pcm, err := ReadWAVFile(m.Path)
		if err != nil {
			s.log.Warn("voicemail message unreadable", "user", user, "id", m.ID, "err", err)
			continue
		}
		d, err := md.play(ctx, done, append(tone(100, 1000), pcm...), true, nil)
		if err != nil {
			return errors.Is(err, errHangup)
		}
		if d == 0 { // played through: wait briefly for a choice
			if d, err = md.wait(ctx, done, 3*time.Second); err != nil {
				return errors.Is(err, errHangup)
			}
		}
		if d == '7' {
			err = s.mb.Delete(ctx, user, m.ID)
		} else {
			err = s.mb.Heard(ctx, user, m.ID)
		}
		if err != nil {
			s.log.Warn("voicemail message update", "user", user, "id", m.ID, "err", err)
		}
	}
	_, err = md.play(ctx, done, append(tone(150, 800), append(make([]int16, 800), tone(150, 800)...)...), false, nil)
	return errors.Is(err, errHangup)
}

// answered is what a call's re-INVITE needs: our address and the codec.
type answered struct {
	local   netip.AddrPort
	o       offer
	md      *media
	sessID  int64
	mu      sync.Mutex
	version int64
}

// reinvite answers a caller's new offer in a call (its hold or resume, RFC
// 3264 §8.4): same address and codec, the direction mirrored. While the
// caller does not want to hear (sendonly, inactive), nothing is sent.
func (s *Server) reinvite(req *sip.Request, tx sip.ServerTransaction) {
	s.callMu.Lock()
	c := s.calls[req.CallID().Value()]
	s.callMu.Unlock()
	if c == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil))
		return
	}
	o, err := parseOffer(req.Body())
	if err == nil && !offers(req.Body(), c.o.pt) {
		err = ErrNoCodec // the codec cannot change in the middle of a call
	}
	if err != nil {
		s.m.reinvites.WithLabelValues("refused").Inc()
		s.log.Info("voicemail re-INVITE refused", "err", err)
		tx.Respond(sip.NewResponseFromRequest(req, 488, "Not Acceptable Here", nil))
		return
	}
	dir := mirror(direction(req.Body()))
	c.mu.Lock()
	c.version++
	v := c.version
	c.mu.Unlock()
	if a := o.addr; a.Addr().IsValid() && !a.Addr().IsUnspecified() && a.Port() != 0 {
		c.md.peer.Describe(a)
	}
	c.md.mute.Store(dir == "recvonly" || dir == "inactive")
	o.pt, o.addr = c.o.pt, c.o.addr
	body := strings.Replace(string(answer(c.local, o, c.sessID)), "a=sendrecv", "a="+dir, 1)
	body = strings.Replace(body, fmt.Sprintf(" %d %d IN", c.sessID, c.sessID), fmt.Sprintf(" %d %d IN", c.sessID, c.sessID+v), 1)
	res := sip.NewResponseFromRequest(req, 200, "OK", []byte(body))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	res.AppendHeader(sip.HeaderClone(&s.contact))
	s.m.reinvites.WithLabelValues("ok").Inc()
	tx.Respond(res)
}

// offers reports whether an SDP's audio stream lists payload type pt.
func offers(body []byte, pt uint8) bool {
	for _, l := range strings.Split(string(body), "\n") {
		if f := strings.Fields(strings.TrimSpace(l)); len(f) >= 4 && f[0] == "m=audio" {
			return slices.Contains(f[3:], strconv.Itoa(int(pt)))
		}
	}
	return false
}

// direction is an SDP's audio direction (sendrecv when unsaid).
func direction(body []byte) string {
	for _, l := range strings.Split(string(body), "\n") {
		switch l = strings.TrimSpace(l); l {
		case "a=sendonly", "a=recvonly", "a=inactive", "a=sendrecv":
			return l[2:]
		}
	}
	return "sendrecv"
}

// mirror is the answer's direction to an offer's (RFC 3264 §6.1).
func mirror(dir string) string {
	switch dir {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	}
	return dir
}
