package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotdesk/prov"
	"hotdesk/prov/portal/chrometest"
)

// ccPhone is a simulated phone for click-to-dial. Mode "auto" answers a
// call at once when the INVITE carries the vendor's auto-answer header
// (Alert-Info ...;info=alert-autoanswer, Call-Info ...;answer-after=0) as
// the vendors document, "answer" answers every call (a person picking up),
// "ring" rings until CANCEL; every re-INVITE is answered.
type ccPhone struct {
	*handset
	name    string
	mode    string
	invites chan *sip.Request
	acks    chan *sip.Request
	byes    chan *sip.Request
	cancels chan *sip.Request
	refers  chan *sip.Request
}

func newCCPhone(t *testing.T, registrar, name, userAgent, mode string) *ccPhone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(userAgent))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &ccPhone{name: name, mode: mode, invites: make(chan *sip.Request, 8), acks: make(chan *sip.Request, 8),
		byes: make(chan *sip.Request, 8), cancels: make(chan *sip.Request, 8), refers: make(chan *sip.Request, 8),
		handset: &handset{domain: "test.lan", notifies: make(chan string, 64), arrivals: make(chan notifyArrival, 64),
			invites: make(chan string, 1), callIDs: map[string]string{}}}
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *sip.Request, _ sip.ServerTransaction) { p.acks <- req })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.byes <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) { // blind transfer: accepted
		p.refers <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
	})
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = pc.LocalAddr().String()
	go func() { _ = srv.ServeUDP(pc) }()
	waitPooled(t, ua, p.addr)
	t.Cleanup(func() { pc.Close(); ua.Close() })
	if p.cli, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(p.addr)); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(registrar)
	p.registrar = sip.Uri{Scheme: "sip", Host: host}
	fmt.Sscan(port, &p.registrar.Port)
	return p
}

func autoAnswerAsked(req *sip.Request) bool {
	if h := req.GetHeader("Alert-Info"); h != nil && strings.Contains(h.Value(), "info=alert-autoanswer") {
		return true
	}
	h := req.GetHeader("Call-Info")
	return h != nil && strings.Contains(h.Value(), "answer-after=0")
}

func (p *ccPhone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	p.invites <- req
	tag := sip.GenerateTagN(8)
	mk := func(code int, reason string) *sip.Response {
		r := sip.NewResponseFromRequest(req, code, reason, nil)
		if _, ok := r.To().Params.Get("tag"); !ok {
			r.To().Params.Add("tag", tag)
		}
		return r
	}
	_, inDialog := req.To().Params.Get("tag")
	if inDialog || p.mode == "answer" || p.mode == "auto" && autoAnswerAsked(req) {
		ok := mk(200, "OK")
		host, port, _ := sip.ParseAddr(p.addr)
		ok.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.name, Host: host, Port: port}})
		ok.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, REFER, NOTIFY, OPTIONS"))
		ok.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		ok.SetBody([]byte("v=0\r\no=- 7 7 IN IP4 127.0.0.1\r\ns=" + p.name + "\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"))
		_ = tx.Respond(ok)
		return
	}
	cancelled := make(chan struct{})
	tx.OnCancel(func(r *sip.Request) { p.cancels <- r; close(cancelled) })
	_ = tx.Respond(mk(180, "Ringing"))
	select {
	case <-cancelled:
	case <-time.After(settleTimeout):
		_ = tx.Respond(mk(480, "Temporarily Unavailable"))
	}
}

func recvReq(t *testing.T, ch chan *sip.Request, what string) *sip.Request {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(settleTimeout):
		t.Fatalf("no %s", what)
		return nil
	}
}

// expectConnected checks the SIP of one click-to-dial call (RFC 3725 Flow
// IV) between phone and target and returns once both legs are up.
func expectConnected(t *testing.T, phone, target *ccPhone, targetUser string) {
	t.Helper()
	inv := recvReq(t, phone.invites, "INVITE at the desk phone")
	if len(inv.Body()) != 0 || !autoAnswerAsked(inv) {
		t.Fatalf("desk phone INVITE: body %q, no auto-answer header", inv.Body())
	}
	// The ACK of this INVITE: an earlier call's re-INVITE ACK may still be
	// queued (it can arrive after that call's checks returned).
	a := recvReq(t, phone.acks, "ACK at the desk phone")
	for a.CallID().Value() != inv.CallID().Value() || a.CSeq().SeqNo != inv.CSeq().SeqNo {
		a = recvReq(t, phone.acks, "ACK at the desk phone")
	}
	if !strings.Contains(string(a.Body()), "a=inactive") {
		t.Fatalf("black-hole answer %q", a.Body())
	}
	if ti := recvReq(t, target.invites, "INVITE at the target"); ti.Recipient.User != targetUser || len(ti.Body()) != 0 {
		t.Fatalf("target INVITE %s body %q", ti.Recipient.String(), ti.Body())
	}
	if re := recvReq(t, phone.invites, "re-INVITE at the desk phone"); !strings.Contains(string(re.Body()), "s="+target.name) {
		t.Fatalf("re-INVITE offer %q, want the target's", re.Body())
	}
	recvReq(t, phone.acks, "ACK of the re-INVITE")
	if a := recvReq(t, target.acks, "ACK at the target"); !strings.Contains(string(a.Body()), "s="+phone.name) {
		t.Fatalf("target's ACK answer %q, want the desk phone's", a.Body())
	}
}

// expectReinvites checks one Hold or Resume: both legs re-INVITEd with
// the other's description in direction dir, and ACKed.
func expectReinvites(t *testing.T, phone, target *ccPhone, dir string) {
	t.Helper()
	for _, p := range []struct{ at, other *ccPhone }{{phone, target}, {target, phone}} {
		re := recvReq(t, p.at.invites, "hold re-INVITE at "+p.at.name)
		if b := string(re.Body()); !strings.Contains(b, "s="+p.other.name) || !strings.Contains(b, dir) {
			t.Fatalf("re-INVITE at %s: %q, want %s's description with %s", p.at.name, b, p.other.name, dir)
		}
		recvReq(t, p.at.acks, "ACK of the re-INVITE at "+p.at.name)
	}
}

type myCalls struct {
	Calls []prov.ControlledCall `json:"calls"`
	CSRF  string                `json:"csrf_token"`
}

func getMyCalls(t *testing.T, c *http.Client, base string) (int, myCalls) {
	t.Helper()
	code, body := fetch(t, c, "GET", base+"/api/v1/me/calls", nil)
	var v myCalls
	if code == 200 {
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
	}
	return code, v
}

func callJSON(t *testing.T, c *http.Client, method, u, csrf, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-CSRF-Token", csrf)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestClickToDial: alice, logged in on a desk phone that honours the
// auto-answer header, clicks to dial bob from the API and from the
// browser: both legs answer, SDP is exchanged per RFC 3725 Flow IV and
// Hang up sends BYE to both. Without the admin's Call Control she gets
// 403; on her locked phone the policy refuses what the lock refuses.
func TestClickToDial(t *testing.T) {
	a, addrs := demoDaemon(t)
	ctx := context.Background()
	base := "http://" + addrs.Admin
	admin := prov.Actor{Kind: prov.ActorAdmin, Name: "test"}
	dev, err := a.store.GetDevice(ctx, demoDevices[0])
	if err != nil {
		t.Fatal(err)
	}
	desk := newCCPhone(t, addrs.SIPUDP[0], "desk", "Yealink SIP-T46S 66.86.0.15", "auto")
	bob := newCCPhone(t, addrs.SIPUDP[0], "bob", "Linphone/5.2", "answer")
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER = %d", code)
	}
	if code := desk.register(t, dev.SIPUser, dev.SIPUser, dev.SIPPassword, 600); code != 200 {
		t.Fatalf("desk phone REGISTER = %d", code)
	}
	c := browser(t)
	if code, loc := signIn(t, c, base, "alice", "alice-demo"); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/me") {
		t.Fatalf("sign-in = %d %s", code, loc)
	}
	// Without the admin's Call Control: 403 on the page and the API.
	if code, _ := getMyCalls(t, c, base); code != http.StatusForbidden {
		t.Fatalf("GET /api/v1/me/calls without the right = %d, want 403", code)
	}
	if code, _ := fetch(t, c, "GET", base+"/me/call-control", nil); code != http.StatusForbidden {
		t.Fatalf("GET /me/call-control without the right = %d, want 403", code)
	}
	u, _ := a.store.GetUser(ctx, "alice")
	pa := u.Portal
	pa.CallOperations = prov.CallOpsControl
	if _, err := a.svc.manager.UpdateUser(ctx, "alice", prov.UserPatch{Portal: &pa}, admin); err != nil {
		t.Fatal(err)
	}
	if _, err := a.svc.manager.AssignDevice(ctx, prov.AssignInput{MAC: dev.MAC, Username: "alice"}, admin); err != nil {
		t.Fatalf("assign: %v", err)
	}
	// Assigning logs her in on it; logged out, the phone is locked.
	if s, ok, _ := a.svc.sessions.ActiveOn(ctx, dev.ID); ok {
		if err := a.svc.sessions.End(ctx, s.ID, prov.EndLogout, prov.AdminActor(admin.Name, "")); err != nil {
			t.Fatal(err)
		}
	}
	_, mine := getMyCalls(t, c, base)
	if mine.CSRF == "" {
		t.Fatal("no CSRF token for the API")
	}
	// Her phone is still locked (its device account): the lock's policy.
	code, body := callJSON(t, c, "POST", base+"/api/v1/me/calls", mine.CSRF, `{"target":"1002"}`)
	if code != http.StatusForbidden || !strings.Contains(body, prov.LockedReason) {
		t.Fatalf("locked phone click-to-dial 1002 = %d %s, want 403 %q", code, body, prov.LockedReason)
	}
	if code, _ := callJSON(t, c, "POST", base+"/api/v1/me/calls", "wrong", `{"target":"1002"}`); code != http.StatusForbidden {
		t.Fatalf("POST without the CSRF token = %d, want 403", code)
	}
	select {
	case r := <-desk.invites:
		t.Fatalf("a refused click-to-dial rang the phone: %s", r.StartLine())
	default:
	}
	// Logged in on the phone, she calls freely.
	sess, err := a.svc.sessions.Login(ctx, prov.LoginRequest{MAC: dev.MAC, Username: "alice", Door: prov.DoorAPI,
		Verified: true, Privileged: true, Actor: prov.AdminActor(admin.Name, "")})
	if err != nil {
		t.Fatal(err)
	}
	if code := desk.register(t, "1001", sess.SIPUser, sess.SIPPassword, 600); code != 200 {
		t.Fatalf("alice's line REGISTER = %d", code)
	}
	code, body = callJSON(t, c, "POST", base+"/api/v1/me/calls", mine.CSRF, `{"target":"1002"}`)
	if code != http.StatusCreated {
		t.Fatalf("click-to-dial = %d %s", code, body)
	}
	var cc prov.ControlledCall
	_ = json.Unmarshal([]byte(body), &cc)
	expectConnected(t, desk, bob, "1002")
	if !eventually(func() bool {
		_, v := getMyCalls(t, c, base)
		return len(v.Calls) == 1 && v.Calls[0].State == "connected"
	}) {
		t.Fatal("call not connected in the API")
	}
	for _, op := range []string{"hold", "resume"} {
		if code, body := callJSON(t, c, "POST", base+"/api/v1/me/calls/"+cc.ID+"/"+op, mine.CSRF, ""); code != http.StatusNoContent {
			t.Fatalf("%s = %d %s", op, code, body)
		}
		expectReinvites(t, desk, bob, map[string]string{"hold": "a=inactive", "resume": "a=sendrecv"}[op])
	}
	if code, body := callJSON(t, c, "DELETE", base+"/api/v1/me/calls/"+cc.ID, mine.CSRF, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", code, body)
	}
	recvReq(t, desk.byes, "BYE at the desk phone")
	recvReq(t, bob.byes, "BYE at the target")

	// The same from the browser.
	ch := newDaemonChrome(t)
	ch.run("sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#f-username`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-username`, "alice", chromedp.ByQuery),
		chromedp.SendKeys(`#f-password`, "alice-demo", chromedp.ByQuery),
		chromedp.Submit(`#f-password`, chromedp.ByQuery), chromedp.WaitVisible(`nav`, chromedp.ByQuery))
	ch.run("dial", chromedp.Navigate(base+"/me/call-control"), chromedp.WaitVisible(`#f-target`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-target`, "bob", chromedp.ByQuery), chrometest.ClickToPage(`#dial`, `.flash`))
	expectConnected(t, desk, bob, "1002")
	var state string
	if !eventually(func() bool {
		ch.run("reload", chromedp.Navigate(base+"/me/call-control"),
			chromedp.Text(`#active tbody`, &state, chromedp.ByQuery))
		return strings.Contains(state, "Connected")
	}) {
		t.Fatalf("the Calls page shows %q, want Connected", state)
	}
	ch.shot("me-call-control", 1280, 900)
	ch.shot("me-call-control-phone", 390, 844)
	ch.run("hold", chromedp.EmulateViewport(1280, 900), chromedp.Click(`.hold`, chromedp.ByQuery),
		chromedp.WaitVisible(`.resume`, chromedp.ByQuery))
	expectReinvites(t, desk, bob, "a=inactive")
	ch.run("hang up", chrometest.ClickToPage(`.hangup`, `.flash`))
	recvReq(t, desk.byes, "BYE at the desk phone (browser)")
	recvReq(t, bob.byes, "BYE at the target (browser)")

	// Blind transfer from the API: bob's phone accepts REFER to carol's
	// number, then both of hotdesk's legs end.
	code, body = callJSON(t, c, "POST", base+"/api/v1/me/calls", mine.CSRF, `{"target":"1002"}`)
	if code != http.StatusCreated {
		t.Fatalf("click-to-dial = %d %s", code, body)
	}
	_ = json.Unmarshal([]byte(body), &cc)
	expectConnected(t, desk, bob, "1002")
	if !eventually(func() bool {
		_, v := getMyCalls(t, c, base)
		return len(v.Calls) == 1 && v.Calls[0].State == "connected"
	}) {
		t.Fatal("call not connected in the API")
	}
	if code, body := callJSON(t, c, "POST", base+"/api/v1/me/calls/"+cc.ID+"/transfer", mine.CSRF, `{"target":"1003"}`); code != http.StatusNoContent {
		t.Fatalf("transfer = %d %s", code, body)
	}
	ref := recvReq(t, bob.refers, "REFER at the target")
	if rt := ref.GetHeader("Refer-To"); rt == nil || !strings.Contains(rt.Value(), "sip:1003@") {
		t.Errorf("Refer-To %v, want carol's number", rt)
	}
	if rb := ref.GetHeader("Referred-By"); rb == nil || !strings.Contains(rb.Value(), "sip:1001@") {
		t.Errorf("Referred-By %v, want alice's number", rb)
	}
	recvReq(t, desk.byes, "BYE at the desk phone after the transfer")
	recvReq(t, bob.byes, "BYE at the target after the transfer")
	if n := metricValue(t, a, "hotdesk_sip_click_to_dial_total"); n < 4 {
		t.Errorf("hotdesk_sip_click_to_dial_total = %v, want the refusal and two calls", n)
	}
	evs, err := a.store.ListAudit(ctx, prov.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	dials := 0
	for _, e := range evs {
		if e.Action == "call.dial" && e.Actor == "user:alice" {
			dials++
		}
	}
	if dials < 3 {
		t.Errorf("audited click-to-dials = %d, want 3", dials)
	}
}

// daemonChrome drives Debian's Chromium headless (the portal tests' browser).
type daemonChrome struct {
	t   *testing.T
	ctx context.Context
}

func newDaemonChrome(t *testing.T, extra ...chromedp.ExecAllocatorOption) *daemonChrome {
	t.Helper()
	return &daemonChrome{t: t, ctx: chrometest.Start(t, extra...)}
}

func (c *daemonChrome) run(name string, actions ...chromedp.Action) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, settleTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var body string
		lctx, lcancel := context.WithTimeout(c.ctx, 3*time.Second)
		_ = chromedp.Run(lctx, chromedp.Text("main", &body, chromedp.ByQuery))
		lcancel()
		c.t.Fatalf("%s: %v (%.400s)", name, err, body)
	}
}

// shot saves a screenshot at a width into $HOTDESK_SCREENSHOTS (if set).
func (c *daemonChrome) shot(name string, w, h int64) {
	c.t.Helper()
	dir := os.Getenv("HOTDESK_SCREENSHOTS")
	var buf []byte
	c.run("screenshot "+name, chromedp.EmulateViewport(w, h), chromedp.Navigate(chromedpLocation(c)),
		chromedp.FullScreenshot(&buf, 100)) // 100: PNG
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func chromedpLocation(c *daemonChrome) string {
	var loc string
	c.run("location", chromedp.Location(&loc))
	return loc
}
