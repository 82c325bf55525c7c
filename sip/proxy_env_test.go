package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/prometheus/client_golang/prometheus"
)

// pxPolicy: device owners in locked are locked; they may call allowed only.
type pxPolicy struct {
	locked  map[string]bool
	allowed map[string]bool
}

func (p *pxPolicy) Authorize(_ context.Context, caller Owner, target string) (Decision, error) {
	if caller.Kind != OwnerDevice || !p.locked[caller.ID] {
		return Decision{Allow: true}, nil
	}
	return Decision{Allow: p.allowed[target], Locked: true, Reason: "Log in to call\r\nX-Injected: 1"}, nil
}

// pxHandling holds call handling per user, changeable during a test.
type pxHandling struct {
	mu sync.Mutex
	h  map[string]Handling
}

func (h *pxHandling) set(user string, v Handling) {
	h.mu.Lock()
	h.h[user] = v
	h.mu.Unlock()
}

func (h *pxHandling) CallHandling(_ context.Context, user string) (Handling, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.h[user], nil
}

// pxFeatures implements *77<user>*<password> and *78.
type pxFeatures struct{}

func (pxFeatures) FeatureCode(_ context.Context, caller Owner, dialled, _ string) (int, string, bool) {
	switch {
	case strings.HasPrefix(dialled, "*77"):
		user, pw, _ := strings.Cut(dialled[3:], "*")
		if caller.Kind == OwnerDevice && user == "bob" && pw == "secret" {
			return 480, "Logged in as bob", true
		}
		return 403, "Login failed", true
	case dialled == "*78":
		return 200, "Logged out", true // a 2xx must come out as 403
	}
	return 0, "", false
}

// pxRecorder collects call records.
type pxRecorder struct {
	mu   sync.Mutex
	recs []CallRecord
}

func (r *pxRecorder) RecordCall(_ context.Context, rec CallRecord) {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
}

// last waits for the record of a stage for the Call-ID.
func (r *pxRecorder) wait(t *testing.T, callID string, stage CallStage) CallRecord {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, rec := range r.recs {
			if rec.CallID == callID && rec.Stage == stage {
				r.mu.Unlock()
				return rec
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %v record for call %s", stage, callID)
	return CallRecord{}
}

// preStore preloads bindings (the sipp UAS cannot register itself).
type preStore struct{ bs []Binding }

func (p preStore) LoadBindings(context.Context) ([]Binding, error) { return p.bs, nil }
func (p preStore) SaveBindings(context.Context, []Binding, []BindingKey) error {
	return nil
}

type pxEnv struct {
	srv      *Server
	creds    *memCreds
	handling *pxHandling
	rec      *pxRecorder
	reg      *prometheus.Registry
	udp      string
	tcp      string
	ws       string // a ws:// listener when the options add one
}

type pxOpt func(*Config, *ProxyConfig, *Deps)

func startProxyEnv(t *testing.T, opts ...pxOpt) *pxEnv {
	t.Helper()
	return startProxyEnvHook(t, nil, opts...)
}

// startProxyEnvHook lets a test adjust the proxy beyond what Validate
// allows (a short Timer C) before anything is served.
func startProxyEnvHook(t *testing.T, hook func(*proxy), opts ...pxOpt) *pxEnv {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Domain = "hotdesk.test"
	cfg.Listen = []string{"udp://127.0.0.1:0", "tcp://127.0.0.1:0"}
	cfg.UDPWorkers = 2
	pcfg := DefaultProxyConfig()
	e := &pxEnv{creds: newMemCreds(),
		handling: &pxHandling{h: map[string]Handling{}}, rec: &pxRecorder{}, reg: prometheus.NewRegistry()}
	for _, u := range []struct{ user, name string }{{"1001", "alice"}, {"1002", "bob"}, {"1003", "carol"}} {
		e.creds.add(Credential{Username: u.user, Password: u.name + "-sip", Owner: Owner{OwnerUser, u.name},
			AORs: []string{u.user}}, u.name)
	}
	e.creds.add(Credential{Username: "dev-aa", Password: "devpw", Owner: Owner{OwnerDevice, "aa"}, AORs: []string{"1009"}})
	e.creds.add(Credential{Username: "sess-1", Password: "sesspw", Owner: Owner{OwnerSession, "s1"}, AORs: []string{"1003"}})
	deps := Deps{Registerer: e.reg, Credentials: e.creds}
	for _, o := range opts {
		o(&cfg, &pcfg, &deps)
	}
	srv, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	pdeps := ProxyDeps{Registerer: e.reg, Handling: e.handling, Recorder: e.rec, Features: pxFeatures{},
		Policy: &pxPolicy{locked: map[string]bool{"aa": true}, allowed: map[string]bool{"1002": true, "112": true}}}
	p, err := srv.enableProxy(ctx, pcfg, pdeps)
	if err != nil {
		t.Fatal(err)
	}
	if hook != nil {
		hook(p)
	}
	ls, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv, e.udp, e.tcp = srv, ls.UDP[0].LocalAddr().String(), ls.TCP[0].Addr().String()
	if len(ls.WS) > 0 {
		e.ws = ls.WS[0].Addr().String()
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Serve(ctx, ls) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return")
		}
	})
	waitPooled(t, srv.UA, e.udp) // the proxy sends from its served socket
	return e
}

// ua is a sipgo phone on 127.0.0.1/UDP: it registers, calls and answers.
type ua struct {
	t         *testing.T
	name      string
	ua        *sipgo.UserAgent
	cli       *sipgo.Client
	dlg       *sipgo.DialogUA
	addr      string
	proxy     string
	transport string
	mu        sync.Mutex
	mode      string        // "answer", "busy", "ring", "redirect:<user>"
	delay     time.Duration // before answering
	invites   chan *sip.Request
	cancels   chan *sip.Request
	acks      chan *sip.Request
	byes      chan *sip.Request
	cseq      uint32
}

func newUA(t *testing.T, name, proxy, mode string) *ua {
	t.Helper()
	return newUAT(t, name, proxy, mode, "UDP")
}

// newUAT makes a phone on UDP (its own listener) or TCP (it talks over the
// connection it opens to the proxy, as desk phones on TCP do).
func newUAT(t *testing.T, name, proxy, mode, transport string) *ua {
	t.Helper()
	u := &ua{t: t, name: name, proxy: proxy, mode: mode, transport: transport, invites: make(chan *sip.Request, 10),
		cancels: make(chan *sip.Request, 10), acks: make(chan *sip.Request, 10), byes: make(chan *sip.Request, 10)}
	var err error
	if u.ua, err = sipgo.NewUA(sipgo.WithUserAgent(name)); err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(u.ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnInvite(u.onInvite)
	srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) { u.acks <- req })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		u.byes <- req
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	if transport == "TCP" {
		u.addr = "127.0.0.1:5999" // the Contact port; the proxy uses the connection
		if u.cli, err = sipgo.NewClient(u.ua, sipgo.WithClientHostname("127.0.0.1")); err != nil {
			t.Fatal(err)
		}
		u.dlg = &sipgo.DialogUA{Client: u.cli, ContactHDR: sip.ContactHeader{Address: sip.Uri{Scheme: "sip",
			User: name, Host: "127.0.0.1", Port: 5999, UriParams: sip.HeaderParams{{K: "transport", V: "tcp"}}}}}
		t.Cleanup(func() { u.ua.Close() })
		return u
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = pc.LocalAddr().String()
	if u.cli, err = sipgo.NewClient(u.ua, sipgo.WithClientConnectionAddr(u.addr)); err != nil {
		t.Fatal(err)
	}
	host, port, _ := sip.ParseAddr(u.addr)
	u.dlg = &sipgo.DialogUA{Client: u.cli, ContactHDR: sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: name, Host: host, Port: port}}}
	go srv.ServeUDP(pc)
	t.Cleanup(func() { u.ua.Close(); pc.Close() })
	waitPooled(t, u.ua, u.addr)
	return u
}

func (u *ua) setMode(mode string, delay time.Duration) {
	u.mu.Lock()
	u.mode, u.delay = mode, delay
	u.mu.Unlock()
}

// onInvite answers as the phone's mode says: busy (486), ring (180 until
// CANCEL) or answer (180, then 200 after delay).
func (u *ua) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	u.invites <- req
	u.mu.Lock()
	mode, delay := u.mode, u.delay
	u.mu.Unlock()
	if tagOf(req.To().Params) != "" || mode == "autoanswer" && honoursAutoAnswer(req) {
		mode, delay = "answer", 0 // a re-INVITE, or an auto-answer call (thirdparty_test.go)
	}
	tag := sip.GenerateTagN(8)
	mk := func(code int, reason string) *sip.Response {
		r := sip.NewResponseFromRequest(req, code, reason, nil)
		if tagOf(r.To().Params) == "" {
			r.To().Params.Add("tag", tag)
		}
		return r
	}
	switch {
	case mode == "challenge" && req.GetHeader("Proxy-Authorization") == nil:
		r := mk(407, "Proxy Authentication Required")
		r.AppendHeader(sip.NewHeader("Proxy-Authenticate", `Digest realm="trunk", nonce="n0nce", algorithm=MD5, qop="auth"`))
		tx.Respond(r)
		return
	case mode == "busy":
		tx.Respond(mk(486, "Busy Here"))
		return
	case strings.HasPrefix(mode, "redirect:"):
		r := mk(302, "Moved Temporarily")
		r.AppendHeader(sip.NewHeader("Contact", "<sip:"+mode[len("redirect:"):]+"@evil.example:5099>"))
		tx.Respond(r)
		return
	}
	cancelled := make(chan struct{})
	tx.OnCancel(func(r *sip.Request) { u.cancels <- r; close(cancelled) })
	tx.Respond(mk(180, "Ringing"))
	var answer <-chan time.Time
	if mode == "answer" || mode == "challenge" {
		answer = time.After(delay)
	}
	select {
	case <-answer:
		ok := mk(200, "OK")
		ok.AppendHeader(&u.dlg.ContactHDR)
		ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ok.SetBody([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=" + u.name + "\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
		tx.Respond(ok)
	case <-cancelled:
	case <-time.After(15 * time.Second):
		tx.Respond(mk(408, "Request Timeout"))
	}
}

// target is the Request-URI a phone dials: the user at the proxy's own
// address, as phones configured with the server's IP do. sipgo's client
// sends some in-transaction requests (a CANCEL, the ACK of a 407) by the
// Request-URI rather than the INVITE's destination, so the host must be
// where the proxy listens.
func (u *ua) target(user string) sip.Uri {
	host, port, _ := sip.ParseAddr(u.proxy)
	return sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
}

// register binds aor to this phone with digest credentials (nc=1).
func (u *ua) register(user, pass, aor string) {
	u.t.Helper()
	build := func(auth string) *sip.Request {
		host, port, _ := sip.ParseAddr(u.proxy)
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: host, Port: port})
		to := sip.Uri{Scheme: "sip", User: aor, Host: "hotdesk.test"}
		req.AppendHeader(&sip.FromHeader{Address: to, Params: tagParams()})
		req.AppendHeader(&sip.ToHeader{Address: to})
		cid := sip.CallIDHeader("reg-" + u.name + "-" + aor)
		req.AppendHeader(&cid)
		u.cseq++
		req.AppendHeader(&sip.CSeqHeader{SeqNo: u.cseq, MethodName: sip.REGISTER})
		contact := fmt.Sprintf("<sip:%s@%s>", aor, u.addr)
		if u.transport == "TCP" {
			contact = fmt.Sprintf("<sip:%s@%s;transport=tcp>", aor, u.addr)
		}
		req.AppendHeader(sip.NewHeader("Contact", contact))
		req.AppendHeader(sip.NewHeader("Expires", "600"))
		if auth != "" {
			req.AppendHeader(sip.NewHeader("Authorization", auth))
		}
		return req
	}
	res := u.do(build(""))
	if res.StatusCode != 401 {
		u.t.Fatalf("REGISTER: %d, want 401", res.StatusCode)
	}
	host, port, _ := sip.ParseAddr(u.proxy)
	auth := digestFor(u.t, res.GetHeader("WWW-Authenticate").Value(), "REGISTER",
		(&sip.Uri{Scheme: "sip", Host: host, Port: port}).String(), user, pass)
	if res = u.do(build(auth)); res.StatusCode != 200 {
		u.t.Fatalf("REGISTER with credentials: %d %s", res.StatusCode, res.Reason)
	}
}

func (u *ua) do(req *sip.Request) *sip.Response {
	u.t.Helper()
	req.SetDestination(u.proxy)
	req.SetTransport(u.transport)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := u.cli.Do(ctx, req)
	if err != nil {
		u.t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

func digestFor(t *testing.T, challenge, method, uri, user, pass string) string {
	t.Helper()
	chal, err := digest.ParseChallenge(challenge)
	if err != nil {
		t.Fatal(err)
	}
	c, err := digest.Digest(chal, digest.Options{Method: method, URI: uri, Username: user, Password: pass,
		Count: 1, Cnonce: sip.GenerateTagN(8)})
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// call places a call to user with proxy digest (a first INVITE fetches the
// 407) and returns the dialog once it is answered, or the final response.
func (u *ua) call(ctx context.Context, to, user, pass string) (*sipgo.DialogClientSession, *sip.Response, error) {
	u.t.Helper()
	from := sip.Uri{Scheme: "sip", User: user, Host: "hotdesk.test"}
	probe := sip.NewRequest(sip.INVITE, u.target(to))
	probe.AppendHeader(&sip.FromHeader{Address: from, Params: tagParams()})
	probe.AppendHeader(&u.dlg.ContactHDR)
	res := u.do(probe)
	if res.StatusCode != 407 {
		return nil, res, nil
	}
	tu := u.target(to)
	auth := digestFor(u.t, res.GetHeader("Proxy-Authenticate").Value(), "INVITE", tu.String(), user, pass)
	inv := sip.NewRequest(sip.INVITE, u.target(to))
	inv.AppendHeader(&sip.FromHeader{Address: from, Params: tagParams()})
	inv.AppendHeader(sip.NewHeader("Proxy-Authorization", auth))
	inv.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	inv.SetBody([]byte("v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4002 RTP/AVP 0\r\n"))
	inv.SetDestination(u.proxy)
	inv.SetTransport(u.transport)
	sess, err := u.dlg.WriteInvite(ctx, inv)
	if err != nil {
		return nil, nil, err
	}
	err = sess.WaitAnswer(ctx, sipgo.AnswerOptions{})
	var de *sipgo.ErrDialogResponse
	if errors.As(err, &de) {
		return nil, de.Res, nil
	}
	if err != nil {
		return nil, sess.InviteResponse, err
	}
	return sess, sess.InviteResponse, nil
}

// recv waits for a request on ch.
func recv(t *testing.T, ch chan *sip.Request, what string) *sip.Request {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s", what)
		return nil
	}
}

// none asserts nothing arrives on ch for d.
func none(t *testing.T, ch chan *sip.Request, d time.Duration, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("unexpected %s: %s", what, r.StartLine())
	case <-time.After(d):
	}
}

func tagParams() sip.HeaderParams {
	p := sip.NewParams()
	p.Add("tag", sip.GenerateTagN(6))
	return p
}
