package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotdesk/prov"
	"hotdesk/sip/media/vm"
	"hotdesk/sip/media/vm/vmtest"
)

// vmPhone is a simulated phone for voicemail: it rings until CANCEL,
// records the message-summary NOTIFYs it gets (in a subscription or
// unsolicited), and places calls with SDP through the proxy.
type vmPhone struct {
	*handset
	ua      *sipgo.UserAgent
	dc      *sipgo.DialogClientCache
	rings   chan struct{}
	mwi     chan mwiNotify
	blf     chan string // dialog-info bodies
	byes    chan struct{}
	cancels chan struct{}
}

type mwiNotify struct {
	body     string
	inDialog bool
	state    string // Subscription-State
}

func newVMPhone(t *testing.T, registrar, user string) *vmPhone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Yealink SIP-T46S 66.86.0.15"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &vmPhone{ua: ua, rings: make(chan struct{}, 8), mwi: make(chan mwiNotify, 16), byes: make(chan struct{}, 4),
		blf:     make(chan string, 16),
		cancels: make(chan struct{}, 4),
		handset: &handset{domain: "test.lan", notifies: make(chan string, 64), arrivals: make(chan notifyArrival, 64),
			invites: make(chan string, 8), callIDs: map[string]string{}}}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		r := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
		r.To().Params.Add("tag", sip.GenerateTagN(8))
		cancelled := make(chan struct{})
		tx.OnCancel(func(*sip.Request) { close(cancelled) })
		_ = tx.Respond(r)
		p.rings <- struct{}{}
		select {
		case <-cancelled:
			p.cancels <- struct{}{}
		case <-time.After(settleTimeout):
		}
	})
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		if ev := req.GetHeader("Event"); ev != nil && ev.Value() == "message-summary" {
			ct := req.GetHeader("Content-Type")
			if ct == nil || ct.Value() != "application/simple-message-summary" {
				t.Errorf("message-summary NOTIFY with Content-Type %v", ct)
			}
			state := ""
			if h := req.GetHeader("Subscription-State"); h != nil {
				state = h.Value()
			}
			p.mwi <- mwiNotify{body: string(req.Body()), inDialog: req.To().Params.Has("tag") && req.CallID().Value() != "",
				state: state}
		}
		if ev := req.GetHeader("Event"); ev != nil && ev.Value() == "dialog" {
			p.blf <- string(req.Body())
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		if p.dc.ReadBye(req, tx) == nil {
			p.byes <- struct{}{}
		}
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
	lh, lp, _ := sip.ParseAddr(p.addr)
	p.dc = sipgo.NewDialogClientCache(p.cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: lh, Port: lp}})
	return p
}

// dial calls target through the proxy with an SDP offer from peer, as
// user/pass, and returns the answered dialog.
func (p *vmPhone) dial(t *testing.T, ctx context.Context, target, user, pass string, peer *vmtest.Peer) *sipgo.DialogClientSession {
	t.Helper()
	to := sip.Uri{Scheme: "sip", User: target, Host: p.domain}
	req := sip.NewRequest(sip.INVITE, to)
	req.SetDestination(p.registrar.HostPort())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(peer.Offer())
	d, err := p.dc.WriteInvite(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: pass}); err != nil {
		t.Fatalf("call to %s: %v", target, err)
	}
	if err := peer.Answer(d.InviteResponse.Body()); err != nil {
		t.Fatal(err)
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// try calls target and returns the final status: 200 (then hangs up
// at once) or the error response's code.
func (p *vmPhone) try(t *testing.T, ctx context.Context, target, user, pass string) int {
	t.Helper()
	peer, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	to := sip.Uri{Scheme: "sip", User: target, Host: p.domain}
	req := sip.NewRequest(sip.INVITE, to)
	req.SetDestination(p.registrar.HostPort())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(peer.Offer())
	d, err := p.dc.WriteInvite(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: pass})
	var de *sipgo.ErrDialogResponse
	switch {
	case err == nil:
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.Bye(ctx); err != nil {
			t.Fatalf("BYE to %s: %v", target, err)
		}
		return 200
	case errors.As(err, &de):
		return de.Res.StatusCode
	}
	t.Fatalf("call to %s: %v", target, err)
	return 0
}

// subscribeMWI subscribes to the phone's own mailbox and returns the code.
func (p *vmPhone) subscribeMWI(t *testing.T, ctx context.Context, aor, user, pass string) int {
	t.Helper()
	return p.subscribe(t, ctx, "message-summary", aor, user, pass)
}

func (p *vmPhone) subscribe(t *testing.T, ctx context.Context, event, aor, user, pass string) int {
	t.Helper()
	to := sip.Uri{Scheme: "sip", User: aor, Host: p.domain}
	req := sip.NewRequest(sip.SUBSCRIBE, to)
	req.SetDestination(p.registrar.HostPort())
	from := &sip.FromHeader{Address: to, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Event", event))
	req.AppendHeader(sip.NewHeader("Expires", "3600"))
	req.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:%s@%s>", aor, p.addr)))
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode == 407 || res.StatusCode == 401 {
		req.CSeq().SeqNo++
		if res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: user, Password: pass}); err != nil {
			t.Fatal(err)
		}
	}
	return res.StatusCode
}

func (p *vmPhone) nextMWI(t *testing.T) mwiNotify {
	t.Helper()
	select {
	case n := <-p.mwi:
		return n
	case <-time.After(settleTimeout):
		t.Fatal("no message-summary NOTIFY")
		return mwiNotify{}
	}
}

func voicemailDaemon(t *testing.T) (*app, Addrs) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	cfg.SIP.Voicemail.Enabled, cfg.SIP.Voicemail.MediaAddress = true, "127.0.0.1"
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	var a *app
	addrs, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	return a, addrs
}

// TestVoicemailEndToEnd: alice calls bob, whose phone rings unanswered;
// after his no-answer time the call goes to his mailbox, alice hears the
// greeting and leaves a message over RTP; bob's subscribed phone gets the
// message-waiting NOTIFY in its subscription and his other phone an
// unsolicited one; bob dials *97 and hears the message (compared frame by
// frame), deletes it with DTMF 7, and the lamp goes off.
func TestVoicemailEndToEnd(t *testing.T) {
	a, addrs := voicemailDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*settleTimeout)
	defer cancel()
	bobUser, err := a.store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	ch := bobUser.CallHandling
	ch.NoAnswerSeconds = 5
	if _, err := a.svc.manager.SetCallHandling(ctx, "bob", ch, prov.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}

	bob := newVMPhone(t, addrs.SIPUDP[0], "1002")
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER = %d", code)
	}
	if code := bob.subscribeMWI(t, ctx, "1002", "1002", "bob-sip"); code != 200 {
		t.Fatalf("bob's message-summary SUBSCRIBE = %d", code)
	}
	if n := bob.nextMWI(t); !strings.Contains(n.body, "Messages-Waiting: no") || !strings.Contains(n.body, "Voice-Message: 0/0") {
		t.Fatalf("first NOTIFY of the subscription: %q", n.body)
	}
	// Alice may not watch bob's mailbox.
	alice := newVMPhone(t, addrs.SIPUDP[0], "1001")
	if code := alice.subscribeMWI(t, ctx, "1002", "1001", "alice-sip"); code != 403 {
		t.Fatalf("alice subscribing to bob's mailbox = %d, want 403", code)
	}
	// Bob's second phone does not subscribe: it is told unsolicited.
	bob2 := newVMPhone(t, addrs.SIPUDP[0], "1002")
	if code := bob2.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob's second phone REGISTER = %d", code)
	}

	peer, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	alice.dial(t, ctx, "1002", "1001", "alice-sip", peer)
	for _, ph := range []*vmPhone{bob, bob2} {
		select {
		case <-ph.rings:
		default:
			t.Fatal("bob's phone was not rung before voicemail answered")
		}
		select {
		case <-ph.cancels:
		case <-ctx.Done():
			t.Fatal("bob's ringing phone was not cancelled")
		}
	}
	// The built-in greeting (600 ms) and the beep (200 ms): 40 frames.
	if got := peer.Received(40, settleTimeout); len(got) < 40 {
		t.Fatalf("alice heard %d frames of greeting, want 40", len(got))
	}
	msg := vmtest.Ramp(50*160, 7)
	if err := peer.Send(vm.PCMUFrames(msg)); err != nil {
		t.Fatal(err)
	}
	if err := peer.Digit('#'); err != nil {
		t.Fatal(err)
	}
	select {
	case <-alice.byes:
	case <-ctx.Done():
		t.Fatal("voicemail did not hang up on alice after #")
	}
	n := bob.nextMWI(t)
	if !n.inDialog || !strings.Contains(n.body, "Messages-Waiting: yes") || !strings.Contains(n.body, "Voice-Message: 1/0") {
		t.Fatalf("bob's NOTIFY after the message: %+v", n)
	}
	// The unsolicited NOTIFY says "active", as phones take it (see sip/mwi.go).
	if n := bob2.nextMWI(t); !strings.Contains(n.body, "Voice-Message: 1/0") ||
		!strings.Contains(n.body, "Message-Account: sip:1002@test.lan") || n.state != "active" {
		t.Fatalf("bob's second phone's unsolicited NOTIFY: %+v", n)
	}
	msgs, err := a.svc.voicemails.List(ctx, bobUser.ID)
	if err != nil || len(msgs) != 1 || msgs[0].From != "1001" || msgs[0].Duration != time.Second {
		t.Fatalf("bob's mailbox: %+v, %v", msgs, err)
	}

	// Bob's portal lists the message and plays it (HTTP, as the page's
	// audio player fetches it); alice cannot fetch it.
	base := "http://" + addrs.Admin
	web := browser(t)
	if code, loc := signIn(t, web, base, "bob", "bob-demo"); code != http.StatusSeeOther || !strings.HasPrefix(loc, "/me") {
		t.Fatalf("bob's sign-in = %d %s", code, loc)
	}
	audio := fmt.Sprintf("/me/voicemail/%d/audio", msgs[0].ID)
	code, body := fetch(t, web, "GET", base+"/me/voicemail", nil)
	if code != 200 || !strings.Contains(body, "1 new") || !strings.Contains(body, audio) || !strings.Contains(body, "1001") {
		t.Fatalf("bob's voicemail page = %d:\n%s", code, body)
	}
	code, body = fetch(t, web, "GET", base+audio, nil)
	played, err := vm.ReadWAV(strings.NewReader(body))
	if code != 200 || err != nil || !slices.Equal(played, vm.DecodePCMU(vm.PCMUFrames(msg))) {
		t.Fatalf("playing the message in the portal = %d, %v", code, err)
	}
	if ev, err := a.store.ListAudit(ctx, prov.AuditQuery{Action: "voicemail.play"}); err != nil || len(ev) != 1 ||
		!strings.HasSuffix(ev[0].Actor, "bob") {
		t.Fatalf("playback audit: %+v, %v", ev, err)
	}
	if n := bob.nextMWI(t); !strings.Contains(n.body, "Messages-Waiting: no") || !strings.Contains(n.body, "Voice-Message: 0/1") {
		t.Fatalf("bob's NOTIFY after playing it in the portal: %+v", n)
	}
	aliceWeb := browser(t)
	if code, _ := signIn(t, aliceWeb, base, "alice", "alice-demo"); code != http.StatusSeeOther {
		t.Fatalf("alice's sign-in = %d", code)
	}
	if code, _ := fetch(t, aliceWeb, "GET", base+audio, nil); code != http.StatusNotFound {
		t.Fatalf("alice fetching bob's message = %d, want 404", code)
	}
	// A greeting upload: a WAV is kept, anything else refused.
	tok := formCSRF(t, web, base+"/me/voicemail")
	if code, body := uploadGreeting(t, web, base, tok, []byte("not a wav")); code != http.StatusBadRequest ||
		!strings.Contains(body, "WAV") {
		t.Fatalf("uploading a non-WAV greeting = %d:\n%s", code, body)
	}
	greeting := vm.EncodeWAV(vmtest.Ramp(800, 3))
	if code, _ := uploadGreeting(t, web, base, tok, greeting); code != http.StatusSeeOther {
		t.Fatalf("uploading a greeting = %d", code)
	}
	if p, err := a.svc.voicemails.Greeting(ctx, "1002"); err != nil || p == "" {
		t.Fatalf("greeting not kept: %q, %v", p, err)
	} else if b, _ := os.ReadFile(p); !bytes.Equal(b, greeting) {
		t.Fatal("the greeting kept is not the one uploaded")
	}

	// Bob listens from his phone.
	peer2, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer peer2.Close()
	bob.dial(t, ctx, "*97", "1002", "bob-sip", peer2)
	got := peer2.Received(55, settleTimeout) // a 100 ms beep, then the message
	if len(got) < 55 || !slices.EqualFunc(got[5:55], vm.PCMUFrames(msg), bytes.Equal) {
		t.Fatalf("bob heard %d frames, not alice's message", len(got))
	}
	if err := peer2.Digit('7'); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bob.byes:
	case <-ctx.Done():
		t.Fatal("voicemail did not hang up after the last message")
	}
	for {
		n := bob.nextMWI(t)
		if strings.Contains(n.body, "Voice-Message: 0/0") && strings.Contains(n.body, "Messages-Waiting: no") {
			break
		}
	}
	if msgs, err := a.svc.voicemails.List(ctx, bobUser.ID); err != nil || len(msgs) != 0 {
		t.Fatalf("bob's mailbox after 7: %+v, %v", msgs, err)
	}

	// Busy: carol's phone answers 486, voicemail takes the call.
	carol := newHandset(t, addrs.SIPUDP[0], "test.lan")
	if code := carol.register(t, "1003", "1003", "carol-sip", 600); code != 200 {
		t.Fatalf("carol REGISTER = %d", code)
	}
	if code := alice.try(t, ctx, "1003", "1001", "alice-sip"); code != 200 {
		t.Fatalf("alice calling busy carol = %d, want voicemail's 200", code)
	}
	if u := <-carol.invites; u == "" {
		t.Fatal("carol's phone not rung")
	}
	// No phone: alice has none registered; voicemail answers at once.
	if code := bob.try(t, ctx, "1001", "1002", "bob-sip"); code != 200 {
		t.Fatalf("bob calling alice (no phone) = %d, want voicemail's 200", code)
	}
	// Voicemail off in carol's call handling: the caller hears busy.
	carolUser, _ := a.store.GetUser(ctx, "carol")
	ch = carolUser.CallHandling
	ch.VoicemailOff = true
	if _, err := a.svc.manager.SetCallHandling(ctx, "carol", ch, prov.Actor{Name: "test"}); err != nil {
		t.Fatal(err)
	}
	if code := alice.try(t, ctx, "1003", "1001", "alice-sip"); code != 486 {
		t.Fatalf("alice calling busy carol without voicemail = %d, want 486", code)
	}
}

func uploadGreeting(t *testing.T, c *http.Client, base, tok string, wav []byte) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("csrf", tok)
	fw, _ := mw.CreateFormFile("greeting", "greeting.wav")
	fw.Write(wav)
	mw.Close()
	req, _ := http.NewRequest("POST", base+"/me/voicemail/greeting", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func (p *vmPhone) nextBLF(t *testing.T, want string) {
	t.Helper()
	for {
		select {
		case b := <-p.blf:
			if strings.Contains(b, want) {
				return
			}
		case <-time.After(settleTimeout):
			t.Fatalf("no BLF NOTIFY with %q", want)
		}
	}
}

// TestCallParkEndToEnd: bob's call is parked on slot 1 (his phone calls
// the park code, as it does after a blind transfer to it); carol's BLF key
// on the slot lights; carol dials the slot and talks with bob (RTP both
// ways through the voicemail server); when she hangs up bob is hung up and
// the lamp goes off.
func TestCallParkEndToEnd(t *testing.T) {
	_, addrs := voicemailDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*settleTimeout)
	defer cancel()
	bob := newVMPhone(t, addrs.SIPUDP[0], "1002")
	carol := newVMPhone(t, addrs.SIPUDP[0], "1003")
	if code := carol.register(t, "1003", "1003", "carol-sip", 600); code != 200 {
		t.Fatalf("carol REGISTER = %d", code)
	}
	if code := carol.subscribe(t, ctx, "dialog", "*701", "1003", "carol-sip"); code != 200 {
		t.Fatalf("carol's BLF SUBSCRIBE to the park slot = %d", code)
	}
	carol.nextBLF(t, "dialog-info")
	if code := carol.subscribe(t, ctx, "dialog", "*700", "1003", "carol-sip"); code != 404 {
		t.Fatalf("BLF SUBSCRIBE to a slot that is none = %d, want 404", code)
	}

	bobPeer, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer bobPeer.Close()
	bob.dial(t, ctx, "*701", "1002", "bob-sip", bobPeer)
	if got := bobPeer.Received(1, settleTimeout); len(got) == 0 {
		t.Fatal("the parked call hears nothing")
	}
	carol.nextBLF(t, "<state>confirmed</state>")

	carolPeer, err := vmtest.NewPeer()
	if err != nil {
		t.Fatal(err)
	}
	defer carolPeer.Close()
	d := carol.dial(t, ctx, "*701", "1003", "carol-sip", carolPeer)
	one, two := vm.PCMUFrames(vmtest.Ramp(10*160, 8)), vm.PCMUFrames(vmtest.Ramp(10*160, 9))
	for _, dir := range []struct {
		from, to *vmtest.Peer
		frames   [][]byte
		what     string
	}{{bobPeer, carolPeer, one, "bob's audio to carol"}, {carolPeer, bobPeer, two, "carol's audio to bob"}} {
		ok := false
		for range 50 { // the first frames may race the bridge
			if err := dir.from.Send(dir.frames); err != nil {
				t.Fatal(err)
			}
			if containsRun(dir.to.Received(1<<20, 200*time.Millisecond), dir.frames) {
				ok = true
				break
			}
		}
		if !ok {
			t.Fatalf("%s not relayed", dir.what)
		}
	}
	if err := d.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bob.byes:
	case <-ctx.Done():
		t.Fatal("the parked call was not hung up when carol hung up")
	}
	carol.nextBLF(t, "<state>terminated</state>")
}

// containsRun reports whether got holds want as consecutive frames.
func containsRun(got, want [][]byte) bool {
	for i := 0; i+len(want) <= len(got); i++ {
		if slices.EqualFunc(got[i:i+len(want)], want, bytes.Equal) {
			return true
		}
	}
	return false
}
