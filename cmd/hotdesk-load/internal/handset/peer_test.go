package handset

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// peer is a small provisioning server and registrar for the handset
// tests: the lines it serves and the credentials it accepts are set by
// the test, and every REGISTER it accepts or refuses is reported on regs.
type peer struct {
	t     *testing.T
	realm string
	mac   string
	http  *httptest.Server
	sip   string
	cl    *sipgo.Client

	mu      sync.Mutex
	lines   map[int][3]string // line → address user, auth user, password
	creds   map[string]string // live auth user → password
	grant   int               // expires granted (0: as asked)
	fetched map[string]int    // file → GETs
	regs    chan reg
}

// reg is one REGISTER the peer answered.
type reg struct {
	user, authUser, callID string
	expires, status        int
	source                 string
	contact                sip.Uri
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	p := &peer{t: t, realm: "peer.lan", mac: "0004f3000042", lines: map[int][3]string{}, creds: map[string]string{},
		fetched: map[string]int{}, regs: make(chan reg, 256)}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("peer"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	if p.cl, err = sipgo.NewClient(ua); err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(p.onRegister)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.sip = pc.LocalAddr().String()
	go func() { _ = srv.ServeUDP(pc) }()
	p.http = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.http.Close()
		_ = srv.Close()
		_ = ua.Close()
	})
	return p
}

// setLines replaces the configured lines; each line's credentials become
// valid at the registrar (old ones stay valid until revoke).
func (p *peer) setLines(lines map[int][3]string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines = lines
	for _, l := range lines {
		p.creds[l[1]] = l[2]
	}
}

func (p *peer) revoke(authUser string) {
	p.mu.Lock()
	delete(p.creds, authUser)
	p.mu.Unlock()
}

func (p *peer) fetches(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fetched[name]
}

func (p *peer) serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, "/")
	p.mu.Lock()
	p.fetched[name]++
	lines := p.lines
	p.mu.Unlock()
	switch name {
	case p.mac + ".cfg":
		fmt.Fprintf(w, `<APPLICATION CONFIG_FILES="[PHONE_MAC_ADDRESS]-lines.cfg"/>`)
	case p.mac + "-lines.cfg":
		host, port, _ := net.SplitHostPort(p.sip)
		var b strings.Builder
		fmt.Fprintf(&b, `<polycomConfig><voIpProt voIpProt.server.1.address="%s" voIpProt.server.1.port="%s"/><reg`, host, port)
		for n, l := range lines {
			fmt.Fprintf(&b, ` reg.%d.address="%s@%s" reg.%d.auth.userId="%s" reg.%d.auth.password="%s"`, n, l[0], p.realm, n, l[1], n, l[2])
		}
		b.WriteString(` reg.9.address=""/></polycomConfig>`)
		fmt.Fprint(w, b.String())
	default:
		http.NotFound(w, r)
	}
}

func (p *peer) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	h := req.GetHeader("Authorization")
	if h == nil {
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="`+p.realm+`", qop="auth", algorithm=MD5, nonce="`+nonce()+`"`))
		_ = tx.Respond(res)
		return
	}
	c, err := digest.ParseCredentials(h.Value())
	exp := 3600
	if e := req.GetHeader("Expires"); e != nil {
		exp, _ = strconv.Atoi(e.Value())
	}
	r := reg{user: req.To().Address.User, callID: req.CallID().Value(), expires: exp, source: req.Source()}
	if ct := req.Contact(); ct != nil {
		r.contact = ct.Address
	}
	p.mu.Lock()
	pass, known := "", false
	if err == nil {
		r.authUser = c.Username
		pass, known = p.creds[c.Username]
	}
	grant := p.grant
	p.mu.Unlock()
	if err != nil || !known || !verify(c, "REGISTER", pass) {
		r.status = 403
		p.regs <- r
		_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
		return
	}
	if grant > 0 && exp > 0 {
		exp = grant
	}
	r.status = 200
	p.regs <- r
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	if ct := req.Contact(); ct != nil {
		res.AppendHeader(sip.NewHeader("Contact", "<"+ct.Address.String()+">;expires="+strconv.Itoa(exp)))
	}
	_ = tx.Respond(res)
}

// next returns the next REGISTER the peer answered (bounded wait).
func (p *peer) next() reg {
	p.t.Helper()
	select {
	case r := <-p.regs:
		return r
	case <-time.After(5 * time.Second):
		p.t.Fatal("no REGISTER within 5 s")
	}
	return reg{}
}

// drain empties the REGISTER log.
func (p *peer) drain() {
	for {
		select {
		case <-p.regs:
		default:
			return
		}
	}
}

// notify sends NOTIFY with event to the line user at addr and answers a
// 401 with authUser/password unless authUser is "". It returns the first
// answer and the final one.
func (p *peer) notify(addr *net.UDPAddr, user, event, authUser, password string) (first, final *sip.Response) {
	p.t.Helper()
	req := sip.NewRequest(sip.NOTIFY, sip.Uri{Scheme: "sip", User: user, Host: addr.IP.String(), Port: addr.Port})
	req.SetDestination(addr.String())
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.realm}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Subscription-State", "terminated"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first, err := p.cl.Do(ctx, req)
	if err != nil {
		p.t.Fatalf("NOTIFY: %v", err)
	}
	if first.StatusCode != 401 || authUser == "" {
		return first, first
	}
	final, err = p.cl.DoDigestAuth(ctx, req, first, sipgo.DigestAuth{Username: authUser, Password: password})
	if err != nil {
		p.t.Fatalf("NOTIFY with digest: %v", err)
	}
	return first, final
}

func verify(c *digest.Credentials, method, pass string) bool {
	want, err := digest.Digest(&digest.Challenge{Realm: c.Realm, Nonce: c.Nonce, Algorithm: c.Algorithm,
		QOP: []string{c.QOP}, Opaque: c.Opaque}, digest.Options{Method: method, URI: c.URI,
		Username: c.Username, Password: pass, Cnonce: c.Cnonce, Count: c.Nc})
	return err == nil && want.Response == c.Response
}

func nonce() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// start boots a handset against the peer and closes it at the end.
func (p *peer) start(cfg Config) (*Handset, Event) {
	p.t.Helper()
	cfg.MAC, cfg.ProvBase, cfg.LocalIP = p.mac, p.http.URL, "127.0.0.1"
	h := New(cfg)
	p.t.Cleanup(h.Close)
	ctx, cancel := context.WithCancel(context.Background())
	p.t.Cleanup(cancel)
	ev, err := h.Start(ctx)
	if err != nil {
		p.t.Fatalf("start: %v", err)
	}
	return h, ev
}

// wait returns the handset's next event of kind (bounded wait).
func wait(t *testing.T, h *Handset, kind EventKind) Event {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case ev := <-h.Events():
			if ev.Kind == kind {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within 5 s", kind)
		}
	}
}
