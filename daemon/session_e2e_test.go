package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotdesk/prov"
)

// handset is a sipgo UA standing in for a desk phone: it registers from
// its own UDP socket and answers the NOTIFYs it receives.
type handset struct {
	cli       *sipgo.Client
	addr      string
	registrar sip.Uri
	domain    string
	notifies  chan string
	// arrivals gets the To user and arrival time of each NOTIFY (dropped
	// when full: only the benchmark reads them).
	arrivals chan notifyArrival
	invites  chan string
	callIDs  map[string]string
	cseq     uint32

	// With validate set (validateNotify) the handset challenges every
	// NOTIFY, as a phone with request validation does, and accepts only
	// one signed with the addressed line's credentials, those it last
	// registered that line with; refused counts the others.
	mu       sync.Mutex
	validate bool
	creds    map[string][2]string // AOR user → auth user, password
	refused  []string
}

// validateNotify makes h challenge NOTIFYs from now on; the test fails if
// h refused one (a NOTIFY not signed with the addressed line's credentials).
func (h *handset) validateNotify(t testing.TB) {
	h.mu.Lock()
	h.validate = true
	h.mu.Unlock()
	t.Cleanup(func() {
		if r := h.refusedNotifies(); len(r) > 0 {
			t.Errorf("a handset refused %d NOTIFYs: %v", len(r), r)
		}
	})
}

// noteCreds remembers what aor registered with: a NOTIFY to it must be
// signed with them.
func (h *handset) noteCreds(aor, user, pass string) {
	h.mu.Lock()
	if h.creds == nil { // the handsets other tests build (callctl, softphone, voicemail) have none yet
		h.creds = map[string][2]string{}
	}
	h.creds[aor] = [2]string{user, pass}
	h.mu.Unlock()
}

// refusedNotifies is what h refused, with why.
func (h *handset) refusedNotifies() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.refused...)
}

// checkNotify answers req's challenge step when h validates NOTIFYs: it
// reports whether req may be acted on (else it has been answered).
func (h *handset) checkNotify(req *sip.Request, tx sip.ServerTransaction) bool {
	h.mu.Lock()
	validate := h.validate
	cred, known := h.creds[req.To().Address.User]
	h.mu.Unlock()
	if !validate {
		return true
	}
	ah := req.GetHeader("Authorization")
	if ah == nil {
		challengeNotify(req, tx)
		return false
	}
	why := ""
	if !known {
		why = "no line of that user"
	} else if !signedBy(ah, cred[0], cred[1]) {
		why = "not signed with the line's credentials (" + cred[0] + ")"
	}
	if why == "" {
		return true
	}
	h.mu.Lock()
	h.refused = append(h.refused, req.To().Address.User+": "+why)
	h.mu.Unlock()
	_ = tx.Respond(sip.NewResponseFromRequest(req, 403, "Forbidden", nil))
	return false
}

// notifyArrival is one NOTIFY as the handset received it.
type notifyArrival struct {
	user string
	at   time.Time
}

func newHandset(t testing.TB, registrar, domain string) *handset {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("PolycomVVX-VVX_400-UA/6.4.0"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	h := &handset{domain: domain, notifies: make(chan string, 16384), arrivals: make(chan notifyArrival, 32768), invites: make(chan string, 16), callIDs: map[string]string{},
		creds: map[string][2]string{}}
	// A handset that is called answers busy: enough to see who rang.
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		h.invites <- req.Recipient.User
		_ = tx.Respond(sip.NewResponseFromRequest(req, 486, "Busy Here", nil))
	})
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		if !h.checkNotify(req, tx) {
			return
		}
		select {
		case h.arrivals <- notifyArrival{user: req.To().Address.User, at: time.Now()}:
		default: // nobody reads them
		}
		if ev := req.GetHeader("Event"); ev != nil {
			h.notifies <- ev.Value()
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = pc.LocalAddr().String()
	go func() { _ = srv.ServeUDP(pc) }()
	// The client reuses the served socket once sipgo has pooled it.
	waitPooled(t, ua, h.addr)
	t.Cleanup(func() { pc.Close(); ua.Close() })
	if h.cli, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(h.addr)); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(registrar)
	h.registrar = sip.Uri{Scheme: "sip", Host: host}
	fmt.Sscan(port, &h.registrar.Port)
	return h
}

// register REGISTERs aor (user part) with digest credentials and returns
// the final status code.
func (h *handset) register(t testing.TB, aor, user, pass string, expires int) int {
	t.Helper()
	if h.callIDs[aor] == "" {
		h.callIDs[aor] = fmt.Sprintf("%s-%d@handset", aor, time.Now().UnixNano())
	}
	h.noteCreds(aor, user, pass)
	h.cseq++
	req := sip.NewRequest(sip.REGISTER, h.registrar)
	to := sip.Uri{Scheme: "sip", User: aor, Host: h.domain}
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", fmt.Sprint(h.cseq))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	cid := sip.CallIDHeader(h.callIDs[aor])
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: h.cseq, MethodName: sip.REGISTER})
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s>", aor, h.addr)))
	req.AppendHeader(sip.NewHeader("Expires", fmt.Sprint(expires)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := h.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER %s: %v", aor, err)
	}
	if res.StatusCode == 401 {
		h.cseq++
		req.CSeq().SeqNo = h.cseq
		res, err = h.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass})
		if err != nil {
			t.Fatalf("REGISTER %s with auth: %v", aor, err)
		}
	}
	return res.StatusCode
}

// call sends an INVITE to target as user/pass (answering the proxy's 407)
// and returns the final status and reason.
func (h *handset) call(t testing.TB, target, user, pass string) (int, string) {
	t.Helper()
	h.cseq++
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: target, Host: h.domain})
	req.SetDestination(h.registrar.Host + ":" + fmt.Sprint(h.registrar.Port))
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: h.domain}, Params: sip.NewParams()}
	from.Params.Add("tag", fmt.Sprint("c", h.cseq))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: h.domain}, Params: sip.NewParams()})
	cid := sip.CallIDHeader(fmt.Sprintf("call-%d-%d@handset", h.cseq, time.Now().UnixNano()))
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: h.cseq, MethodName: sip.INVITE})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s>", user, h.addr)))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := h.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("INVITE %s: %v", target, err)
	}
	if res.StatusCode == 407 || res.StatusCode == 401 {
		h.cseq++
		req.CSeq().SeqNo = h.cseq
		if res, err = h.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass}); err != nil {
			t.Fatalf("INVITE %s with auth: %v", target, err)
		}
	}
	return res.StatusCode, res.Reason
}

func (h *handset) waitNotify(t *testing.T, want string) {
	t.Helper()
	select {
	case ev := <-h.notifies:
		if !strings.HasPrefix(ev, want) {
			t.Fatalf("NOTIFY Event = %q, want %q", ev, want)
		}
	case <-time.After(settleTimeout):
		t.Fatalf("no NOTIFY %s within %v", want, settleTimeout)
	}
}

// TestLoginSessionOwnsRegistration is the README's one idea end to end: a
// login mints credentials the registrar accepts; logout revokes them,
// removes exactly the session's binding and sends check-sync.
func TestLoginSessionOwnsRegistration(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	var a *app
	addrs, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	ctx := context.Background()
	dev, err := a.store.GetDevice(ctx, "0004f2000001")
	if err != nil {
		t.Fatal(err)
	}
	phone := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := phone.register(t, dev.SIPUser, dev.SIPUser, dev.SIPPassword, 600); code != 200 {
		t.Fatalf("device account REGISTER = %d", code)
	}
	if code := phone.register(t, "1002", "1002", "wrong-password", 600); code != 401 && code != 403 {
		t.Fatalf("wrong password REGISTER = %d", code)
	}

	sess, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: dev.MAC, Username: "alice", Secret: "alice-demo", Door: prov.DoorAPI, Privileged: true})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	phone.waitNotify(t, "check-sync")
	if code := phone.register(t, "1001", sess.SIPUser, sess.SIPPassword, 600); code != 200 {
		t.Fatalf("session line REGISTER = %d", code)
	}
	if bs := a.svc.sip.Lookup(ctx, "sip:1001@test.lan"); len(bs) != 1 || bs[0].Owner.ID != sess.ID {
		t.Fatalf("bindings of 1001 after login = %+v", bs)
	}
	// alice's softphone on her permanent account is a binding of its own.
	soft := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := soft.register(t, "alice", "1001", "alice-sip", 600); code != 200 {
		t.Fatalf("permanent account REGISTER = %d", code)
	}

	if err := a.svc.sessions.End(ctx, sess.ID, prov.EndLogout, prov.Actor{}); err != nil {
		t.Fatalf("logout: %v", err)
	}
	phone.waitNotify(t, "check-sync")
	bs := a.svc.sip.Lookup(ctx, "sip:1001@test.lan")
	if len(bs) != 1 || bs[0].Owner.Kind != "user" {
		t.Fatalf("after logout 1001 should keep only the softphone binding, got %+v", bs)
	}
	phone.callIDs["1001"] = "" // a new registration attempt, as after a reboot
	if code := phone.register(t, "1001", sess.SIPUser, sess.SIPPassword, 600); code == 200 {
		t.Fatal("REGISTER with the ended session's credentials accepted")
	}
	if code := phone.register(t, dev.SIPUser, dev.SIPUser, dev.SIPPassword, 600); code != 200 {
		t.Fatalf("device account after logout = %d", code)
	}
	got, _ := a.store.GetSession(ctx, sess.ID)
	if got.Active() || got.EndReason != prov.EndLogout {
		t.Fatalf("stored session after logout = %+v", got)
	}
}

// TestAPIDoorLoginLogout logs in through POST /api/v1/sessions as an admin
// (no user password) and as the user (with it), and logs out with DELETE.
func TestAPIDoorLoginLogout(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	_, phone := lockedPhone(t, a, addrs, "0004f2000002")
	api := "http://" + addrs.Admin + "/api/v1/sessions"
	post := func(body, user, pass string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", api, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	// The user with a wrong password, then an unknown user: the same answer.
	c1, b1 := post(`{"device":"0004f2000002","user":"bob","password":"nope-nope"}`, "", "")
	c2, b2 := post(`{"device":"0004f2000002","user":"mallory","password":"nope-nope"}`, "", "")
	if c1 != c2 || c1 < 400 || fmt.Sprint(b1["error"]) != fmt.Sprint(b2["error"]) {
		t.Fatalf("wrong password %d %v vs unknown user %d %v: must look the same", c1, b1, c2, b2)
	}
	mark := phone.mark()
	code, body := post(`{"device":"0004f2000002","user":"bob","password":"bob-demo"}`, "", "")
	if code != 201 {
		t.Fatalf("user login via API = %d %v", code, body)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{"1002"}); len(got) != 1 || got[0] != "1002" {
		t.Fatalf("after bob's login the phone registers %v", got)
	}
	mark = phone.mark()
	code, body = post(`{"device":"0004f2000002","user":"carol"}`, "admin", "test-admin-pw")
	if code != 201 {
		t.Fatalf("admin login of carol = %d %v", code, body)
	}
	phone.waitResync(mark)
	if got := phone.settle([]string{"1003"}); len(got) != 1 || got[0] != "1003" {
		t.Fatalf("after carol's login the phone registers %v", got)
	}
	mark = phone.mark()
	id, _ := body["id"].(string)
	req, _ := http.NewRequest("DELETE", api+"/"+id, nil)
	req.SetBasicAuth("admin", "test-admin-pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("DELETE session = %d", resp.StatusCode)
	}
	phone.waitResync(mark)
	got, _ := a.store.GetSession(ctx, id)
	if got.Active() || got.EndReason != prov.EndAdmin {
		t.Fatalf("after DELETE: %+v", got)
	}
}

// TestSessionSurvivesDaemonRestart: a persistent login outlives the
// daemon's restart; its credentials and bindings are still good after it.
func TestSessionSurvivesDaemonRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	var a *app
	addrs, stop := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	ctx := context.Background()
	sess, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: "0004f2000001", Username: "bob", Secret: "bob-demo", Door: prov.DoorAPI, Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	phone := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := phone.register(t, "1002", sess.SIPUser, sess.SIPPassword, 600); code != 200 {
		t.Fatalf("session line REGISTER = %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Same ports are not guaranteed; the phone re-registers to the new address.
	addrs2, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	got, err := a.store.GetSession(ctx, sess.ID)
	if err != nil || !got.Active() {
		t.Fatalf("session after restart: %+v, %v", got, err)
	}
	if bs := a.svc.sip.Lookup(ctx, "sip:1002@test.lan"); len(bs) != 1 || bs[0].Owner.ID != sess.ID {
		t.Fatalf("binding after restart: %+v", bs)
	}
	phone2 := newHandset(t, addrs2.SIPUDP[0], "test.lan")
	if code := phone2.register(t, "1002", sess.SIPUser, sess.SIPPassword, 600); code != 200 {
		t.Fatalf("session credentials after restart = %d", code)
	}
}

// settleTimeout bounds every wait for something the daemon does on its own
// goroutines (events, NOTIFYs, stored signals). It only decides how long a
// failing test takes: on a loaded machine these lag by seconds, and a
// tight bound would fail a correct daemon.
const settleTimeout = 60 * time.Second

// eventually polls cond until it holds (true) or settleTimeout passes (false).
func eventually(cond func() bool) bool {
	for deadline := time.Now().Add(settleTimeout); ; {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
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
