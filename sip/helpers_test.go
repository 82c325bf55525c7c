package sip

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"
)

// memCreds stands in for prov: accounts by username and user aliases.
type memCreds struct {
	mu      sync.Mutex
	creds   map[string]Credential
	aliases map[string]string // alias → canonical
}

func newMemCreds() *memCreds {
	return &memCreds{creds: map[string]Credential{}, aliases: map[string]string{}}
}

func (m *memCreds) add(c Credential, aliases ...string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creds[c.Username] = c
	for _, a := range c.AORs {
		// An AOR that is already another name's alias keeps that meaning.
		if _, ok := m.aliases[a]; !ok {
			m.aliases[a] = a
		}
	}
	for _, a := range aliases {
		m.aliases[a] = c.AORs[0]
	}
}

func (m *memCreds) revoke(user string) {
	m.mu.Lock()
	delete(m.creds, user)
	m.mu.Unlock()
}

func (m *memCreds) Credential(_ context.Context, u string) (Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.creds[u]
	if !ok {
		return Credential{}, fmt.Errorf("lookup %q: %w", u, ErrUnknownUser)
	}
	return c, nil
}

func (m *memCreds) CanonicalUser(_ context.Context, u string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.aliases[u]
	return c, ok
}

// memStore stands in for prov/store.
type memStore struct {
	mu    sync.Mutex
	rows  map[BindingKey]Binding
	saves int
	fail  bool
}

func newMemStore() *memStore { return &memStore{rows: map[BindingKey]Binding{}} }

func (m *memStore) LoadBindings(context.Context) ([]Binding, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Binding
	for _, b := range m.rows {
		out = append(out, b)
	}
	return out, nil
}

func (m *memStore) SaveBindings(_ context.Context, ups []Binding, dels []BindingKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("store down")
	}
	m.saves++
	for _, k := range dels {
		delete(m.rows, k)
	}
	for _, b := range ups {
		m.rows[b.Key()] = b
	}
	return nil
}

func (m *memStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// testEnv is one running registrar on 127.0.0.1.
type testEnv struct {
	srv     *Server
	creds   *memCreds
	store   *memStore
	clock   *fakeClock
	reg     *prometheus.Registry
	udp     string
	tcp     string
	tls     string
	ws      string
	events  chan Event
	stop    func()
	stopped chan error
}

type envOpt func(*Config, *Deps)

func startEnv(t *testing.T, store *memStore, opts ...envOpt) *testEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Domain = "hotdesk.test"
	cfg.Listen = []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}
	cfg.UDPWorkers = 2
	e := &testEnv{creds: newMemCreds(), store: store, clock: &fakeClock{t: time.Unix(1_800_000_000, 0)},
		reg: prometheus.NewRegistry(), events: make(chan Event, 1000), stopped: make(chan error, 1)}
	e.creds.add(Credential{Username: "1001", Password: "alice-sip", Owner: Owner{OwnerUser, "alice"}, AORs: []string{"1001"}}, "alice")
	e.creds.add(Credential{Username: "dev-aa", Password: "devpw", Owner: Owner{OwnerDevice, "aa"}, AORs: []string{"1001", "1002"}})
	e.creds.add(Credential{Username: "1002", Password: "bob-sip", Owner: Owner{OwnerUser, "bob"}, AORs: []string{"1002"}}, "bob")
	deps := Deps{Registerer: e.reg, Now: e.clock.Now, Credentials: e.creds,
		OnEvent: func(ev Event) { e.events <- ev }}
	if store != nil {
		deps.Bindings = store
	}
	for _, o := range opts {
		o(&cfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.udp, e.tcp = srv, ls.UDP[0].LocalAddr().String(), ls.TCP[0].Addr().String()
	if len(ls.TLS) > 0 {
		e.tls = ls.TLS[0].Addr().String()
	}
	if len(ls.WS) > 0 {
		e.ws = ls.WS[0].Addr().String()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { e.stopped <- srv.Serve(ctx, ls) }()
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-e.stopped:
				if err != nil {
					t.Errorf("Serve: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Serve did not return after cancel")
			}
		})
	}
	t.Cleanup(e.stop)
	return e
}

// nextEvent waits for an event of the given kind.
func (e *testEnv) nextEvent(t *testing.T, kind EventKind) Event {
	t.Helper()
	deadline := time.After(3 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event", kind)
		}
	}
}

// phone is a sipgo UA acting as a handset: it listens (so it can receive
// NOTIFY) and sends its REGISTERs from that same socket.
type phone struct {
	ua        *sipgo.UserAgent
	cli       *sipgo.Client
	transport string
	addr      string // the phone's own listening address
	target    sip.Uri
	notifies  chan *sip.Request
	challenge atomic.Bool // answer a NOTIFY without Authorization with 401
	callID    string
	cseq      uint32
}

func newPhone(t *testing.T, transport, target string) *phone {
	t.Helper()
	return newPhoneAt(t, transport, target, "127.0.0.1")
}

// newPhoneAt is a phone sending from localIP (UDP), another host on loopback.
func newPhoneAt(t *testing.T, transport, target, localIP string) *phone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("testphone"),
		sipgo.WithUserAgenTLSConfig(&tls.Config{InsecureSkipVerify: true})) // test peer only
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &phone{ua: ua, transport: strings.ToUpper(transport), notifies: make(chan *sip.Request, 10),
		callID: fmt.Sprintf("call-%d@test", time.Now().UnixNano())}
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		if p.challenge.Load() && req.GetHeader("Authorization") == nil {
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="phone", nonce="n0nce", qop="auth"`))
			tx.Respond(res)
			return
		}
		p.notifies <- req
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); ua.Close() })
	if p.transport == "UDP" {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(localIP, "0"))
		if err != nil {
			t.Fatal(err)
		}
		p.addr = pc.LocalAddr().String()
		go srv.ServeUDP(pc)
		go func() { <-ctx.Done(); pc.Close() }()
		waitPooled(t, ua, p.addr)
		p.cli, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(p.addr))
	} else {
		p.cli, err = sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
		p.addr = "127.0.0.1:5999"
	}
	if err != nil {
		t.Fatal(err)
	}
	h, port, _ := net.SplitHostPort(target)
	p.target = sip.Uri{Scheme: "sip", Host: h}
	fmt.Sscan(port, &p.target.Port)
	return p
}

// regOpts shape one REGISTER.
type regOpts struct {
	user, pass string // digest credentials ("" = no auth attempt after 401)
	to         string // AOR user part
	domain     string
	contacts   []string // raw Contact values; nil = the phone's own
	expires    int      // -1 = no Expires header
	callID     string
	cseq       uint32
	ua         string // User-Agent ("" = testphone/1.0, "-" = none)
}

func (p *phone) request(o regOpts, auth string) *sip.Request {
	req := sip.NewRequest(sip.REGISTER, p.target)
	req.SetTransport(p.transport)
	dom := o.domain
	if dom == "" {
		dom = "hotdesk.test"
	}
	aor := sip.Uri{Scheme: "sip", User: o.to, Host: dom}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", "ft"+o.callID)
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	cid := sip.CallIDHeader(o.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: o.cseq, MethodName: sip.REGISTER})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	contacts := o.contacts
	if contacts == nil {
		contacts = []string{fmt.Sprintf("<sip:%s@%s>", o.to, p.addr)}
		if p.transport != "UDP" {
			contacts[0] = fmt.Sprintf("<sip:%s@%s;transport=%s>", o.to, p.addr, strings.ToLower(p.transport))
		}
	}
	for _, c := range contacts {
		req.AppendHeader(sip.NewHeader("Contact", c))
	}
	if o.expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(o.expires)))
	}
	if auth != "" {
		req.AppendHeader(sip.NewHeader("Authorization", auth))
	}
	switch o.ua {
	case "":
		req.AppendHeader(sip.NewHeader("User-Agent", "testphone/1.0"))
	case "-":
	default:
		req.AppendHeader(sip.NewHeader("User-Agent", o.ua))
	}
	return req
}

// do sends one request and returns the final response.
func (p *phone) do(t *testing.T, req *sip.Request) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

// register runs REGISTER → 401 → REGISTER with credentials (nc=1) and
// returns the final response and the challenge used.
func (p *phone) register(t *testing.T, o regOpts) (*sip.Response, *digest.Challenge) {
	t.Helper()
	if o.callID == "" {
		o.callID = p.callID
	}
	if o.cseq == 0 {
		p.cseq++
		o.cseq = p.cseq
	}
	res := p.do(t, p.request(o, ""))
	if res.StatusCode != 401 || o.user == "" {
		return res, nil
	}
	chal := challengeOf(t, res, "MD5")
	p.cseq++
	o.cseq = p.cseq
	return p.do(t, p.request(o, authFor(t, chal, o.user, o.pass, p.target.String(), 1))), chal
}

func challengeOf(t *testing.T, res *sip.Response, alg string) *digest.Challenge {
	t.Helper()
	for _, h := range res.GetHeaders("WWW-Authenticate") {
		c, err := digest.ParseChallenge(h.Value())
		if err != nil {
			t.Fatalf("challenge %q: %v", h.Value(), err)
		}
		if c.Algorithm == alg {
			return c
		}
	}
	t.Fatalf("no %s challenge in %s", alg, res.Short())
	return nil
}

func authFor(t *testing.T, chal *digest.Challenge, user, pass, uri string, nc int) string {
	t.Helper()
	c, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: uri, Username: user,
		Password: pass, Count: nc, Cnonce: "0a4f113b"})
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// waitPooled returns once ua's transport has the socket served on addr in
// its pool, so a client bound to that address sends from it. sipgo pools a
// served socket from the serving goroutine, with no signal to wait on.
func waitPooled(t testing.TB, ua *sipgo.UserAgent, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := ua.TransportLayer().GetConnection("udp", addr); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket %s never entered the UA's pool", addr)
		}
		time.Sleep(time.Millisecond)
	}
}
