package daemon

import (
	"context"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotdesk/prov"
	"hotdesk/sip/media"
	"hotdesk/sip/media/g711"
)

// startSoftphone starts the daemon with the WebSocket listener and the
// bridge, lets alice use the softphone, and opens it in Chromium.
func startSoftphone(t *testing.T) (*app, Addrs, *daemonChrome) {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.SIP.Listen = append(cfg.SIP.Listen, "ws://127.0.0.1:0")
	cfg.SIP.WebRTC.RTPAddress, cfg.SIP.WebRTC.Loopback = "127.0.0.1", true
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	var a *app
	addrs, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	ctx := context.Background()
	u, err := a.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	pa := u.Portal
	pa.CallOperations = prov.CallOpsBoth
	if _, err := a.svc.manager.UpdateUser(ctx, "alice", prov.UserPatch{Portal: &pa}, prov.Actor{Name: "admin:test"}); err != nil {
		t.Fatal(err)
	}
	ch := newDaemonChrome(t, chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true), chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	base := "http://" + addrs.Admin
	ch.run("sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#f-username`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-username`, "alice", chromedp.ByQuery),
		chromedp.SendKeys(`#f-password`, "alice-demo", chromedp.ByQuery),
		chromedp.Submit(`#f-password`, chromedp.ByQuery), chromedp.WaitVisible(`nav`, chromedp.ByQuery))
	ch.run("softphone", chromedp.Navigate(base+"/me/softphone"),
		chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
	return a, addrs, ch
}

// expectMediaAgain waits for 25 more RTP packets each way than counted so
// far: media flows again after a resume.
func expectMediaAgain(t *testing.T, ch *daemonChrome, phone *rtpPhone, what string) {
	t.Helper()
	var before int
	ch.run("stats", chromedp.Evaluate(`window.hotdeskSoftphone.packetsReceived`, &before))
	phone.got.Store(0)
	if !eventually(func() bool { return phone.got.Load() >= 25 }) {
		t.Fatalf("%s: the desk phone received %d RTP packets from the browser", what, phone.got.Load())
	}
	var in int
	if !eventually(func() bool {
		ch.run("stats", chromedp.Evaluate(`window.hotdeskSoftphone.packetsReceived`, &in))
		return in >= before+25
	}) {
		t.Fatalf("%s: the browser received %d RTP packets from the desk phone (%d before)", what, in-before, before)
	}
}

// reinviteFromPhone sends the phone's re-INVITE with its SDP in direction
// dir in the call it answered, checks the answer and ACKs it.
func reinviteFromPhone(t *testing.T, phone *rtpPhone, inv *sip.Request, ok *sip.Response, cseq uint32, dir, want string) {
	t.Helper()
	req := phone.inDialog(inv, ok, sip.INVITE, cseq)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte(strings.Replace(string(phone.sdp()), "a=sendrecv", "a="+dir, 1)))
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	tx, err := phone.cli.TransactionRequest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	var res *sip.Response
	for res == nil {
		select {
		case r := <-tx.Responses():
			if !r.IsProvisional() {
				res = r
			}
		case <-tx.Done():
			t.Fatalf("re-INVITE %s: %v", dir, tx.Err())
		}
	}
	if res.StatusCode != 200 {
		t.Fatalf("re-INVITE %s from the desk phone = %d %s, want 200", dir, res.StatusCode, res.Reason)
	}
	if body := string(res.Body()); !strings.Contains(body, "RTP/AVP 0") || media.Direction(body) != want {
		t.Fatalf("re-INVITE %s answered with %q, want plain RTP, %s", dir, body, want)
	}
	ack := phone.inDialog(inv, ok, sip.ACK, cseq)
	if err := phone.cli.WriteRequest(ack); err != nil {
		t.Fatal(err)
	}
}

// TestSoftphoneHoldResumeTransfer: a call between alice's browser
// softphone (the real Chromium) and bob's desk phone through the media
// bridge is held and resumed from the browser (Hold / Resume: re-INVITEs
// sendonly / sendrecv mirrored to the phone as plain SDP) and from the desk
// phone (its re-INVITE mirrored to the browser, answered recvonly); media
// flows again after each resume. Then she transfers bob to carol (blind
// REFER): bob calls carol directly, his NOTIFY reports the answer, her
// softphone hangs up, the bridge session ends and bob and carol exchange
// RTP with each other, not through the bridge.
func TestSoftphoneHoldResumeTransfer(t *testing.T) {
	a, addrs, ch := startSoftphone(t)
	bob := newRTPPhone(t, addrs.SIPUDP[0])
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER = %d", code)
	}
	carol := newRTPPhone(t, addrs.SIPUDP[0])
	if code := carol.register(t, "1003", "1003", "carol-sip", 600); code != 200 {
		t.Fatalf("carol REGISTER = %d", code)
	}

	ch.run("dial", chromedp.SendKeys(`#sp-target`, "1002", chromedp.ByQuery), chromedp.Click(`#sp-call`, chromedp.ByQuery))
	inv := recvReq(t, bob.invites, "INVITE at the desk phone")
	bob.learn(t, inv.Body())
	v, _ := bob.answered.Load(inv.CallID().Value())
	ok := v.(*sip.Response)
	ch.run("in call", chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	expectMedia(t, ch, bob, "browser → desk phone")

	// Hold and resume from the browser.
	ch.run("hold", chromedp.Click(`#sp-hold`, chromedp.ByQuery))
	re := recvReq(t, bob.reinvites, "re-INVITE (hold) at the desk phone")
	if body := string(re.Body()); !strings.Contains(body, "RTP/AVP 0") || media.Direction(body) != media.SendOnly {
		t.Fatalf("the desk phone got hold as %q, want plain RTP, sendonly", body)
	}
	ch.run("held", chromedp.WaitVisible(`#softphone[data-state="held"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#sp-resume`, chromedp.ByQuery))
	ch.shotHere("me-softphone-held")
	ch.run("resume", chromedp.Click(`#sp-resume`, chromedp.ByQuery))
	re = recvReq(t, bob.reinvites, "re-INVITE (resume) at the desk phone")
	if d := media.Direction(string(re.Body())); d != media.SendRecv {
		t.Fatalf("the desk phone got resume as %s, want sendrecv", d)
	}
	ch.run("resumed", chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	expectMediaAgain(t, ch, bob, "resumed from the browser")

	// Hold and resume from the desk phone.
	reinviteFromPhone(t, bob, inv, ok, 100, media.SendOnly, media.RecvOnly)
	var held bool
	if !eventually(func() bool {
		ch.run("remote hold", chromedp.Evaluate(`!!window.hotdeskSoftphone.remoteHeld`, &held))
		return held
	}) {
		t.Fatal("the browser did not take the desk phone's hold")
	}
	reinviteFromPhone(t, bob, inv, ok, 101, media.SendRecv, media.SendRecv)
	if !eventually(func() bool {
		ch.run("remote resume", chromedp.Evaluate(`!!window.hotdeskSoftphone.remoteHeld`, &held))
		return !held
	}) {
		t.Fatal("the browser did not take the desk phone's resume")
	}
	expectMediaAgain(t, ch, bob, "resumed from the desk phone")
	if n := metricValue(t, a, "hotdesk_sip_proxy_bridged_reinvites_total"); n != 4 {
		t.Errorf("hotdesk_sip_proxy_bridged_reinvites_total = %v, want 4", n)
	}

	// Blind transfer of bob to carol.
	ch.run("transfer", chromedp.SetValue(`#sp-target`, "1003", chromedp.ByQuery), chromedp.Click(`#sp-transfer`, chromedp.ByQuery))
	refer := recvReq(t, bob.refers, "REFER at the desk phone")
	if rt := refer.GetHeader("Refer-To"); rt == nil || !strings.Contains(rt.Value(), "sip:1003@") {
		t.Fatalf("REFER with Refer-To %v, want carol's 1003", rt)
	}
	s, err := bob.call("1003")
	if err != nil {
		t.Fatal(err)
	}
	cinv := recvReq(t, carol.invites, "INVITE at carol's phone")
	carol.learn(t, cinv.Body())
	bob.learn(t, s.InviteResponse.Body())
	if want := bob.rtp.LocalAddr().String(); carol.peer.Load().String() != want {
		t.Fatalf("carol's phone sends RTP to %v, want bob's phone %s directly", carol.peer.Load(), want)
	}
	notify := bob.inDialog(inv, ok, sip.NOTIFY, 102)
	notify.AppendHeader(sip.NewHeader("Event", "refer"))
	notify.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason=noresource"))
	notify.AppendHeader(sip.NewHeader("Content-Type", "message/sipfrag"))
	notify.SetBody([]byte("SIP/2.0 200 OK\r\n"))
	nctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	tx, err := bob.cli.TransactionRequest(nctx, notify)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	recvReq(t, bob.byes, "BYE at bob's phone once the transfer succeeded")
	ch.run("transferred", chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
	if !eventually(func() bool { return a.svc.bridge.Open() == 0 }) {
		t.Fatalf("%d bridge sessions open after the transfer", a.svc.bridge.Open())
	}
	carol.got.Store(0)
	if !eventually(func() bool { return carol.got.Load() >= 25 }) {
		t.Fatalf("carol's phone received %d RTP packets from bob's", carol.got.Load())
	}
	bctx, bcancel := context.WithTimeout(context.Background(), settleTimeout)
	defer bcancel()
	if err := s.Bye(bctx); err != nil {
		t.Fatalf("BYE bob → carol: %v", err)
	}
}

// TestSoftphonePCMAPhone: a desk phone that speaks only A-law calls the
// browser softphone and is called by it; the bridge transcodes to and from
// the browser's µ-law instead of refusing the call (488), and RTP flows
// both ways.
func TestSoftphonePCMAPhone(t *testing.T) {
	a, addrs, ch := startSoftphone(t)
	bob := newRTPPhone(t, addrs.SIPUDP[0])
	bob.pcma.Store(true)
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER = %d", code)
	}
	ch.run("dial", chromedp.SendKeys(`#sp-target`, "1002", chromedp.ByQuery), chromedp.Click(`#sp-call`, chromedp.ByQuery))
	inv := recvReq(t, bob.invites, "INVITE at the desk phone")
	bob.learn(t, inv.Body())
	ch.run("in call", chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	expectMedia(t, ch, bob, "browser → A-law phone")
	ch.run("hang up", chromedp.Click(`#sp-hangup`, chromedp.ByQuery),
		chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
	recvReq(t, bob.byes, "BYE at the desk phone")

	answered := make(chan error, 1)
	var s *sipgo.DialogClientSession
	go func() {
		var err error
		s, err = bob.call("1001")
		answered <- err
	}()
	ch.run("ringing", chromedp.WaitVisible(`#softphone[data-state="ringing"]`, chromedp.ByQuery),
		chromedp.Click(`#sp-answer`, chromedp.ByQuery),
		chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	if body := string(s.InviteResponse.Body()); !strings.Contains(body, "RTP/AVP 8\r\n") {
		t.Fatalf("the A-law phone's call answered with %q, want PCMA", body)
	}
	bob.learn(t, s.InviteResponse.Body())
	expectMediaAgain(t, ch, bob, "A-law phone → browser")
	if n := metricValue(t, a, "hotdesk_media_transcoded_packets_total"); n < 100 {
		t.Errorf("hotdesk_media_transcoded_packets_total = %v, want both calls' packets", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	ch.run("hung up", chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
}

// TestSoftphoneCallWaiting: while alice's browser softphone is in a call
// with bob's desk phone, carol's call rings as call waiting (not 486);
// answering it holds bob (re-INVITE sendonly at his phone) and connects
// carol with media; when carol's call ends, bob's comes back held, and
// Resume brings his media back.
func TestSoftphoneCallWaiting(t *testing.T) {
	_, addrs, ch := startSoftphone(t)
	bob := newRTPPhone(t, addrs.SIPUDP[0])
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER = %d", code)
	}
	carol := newRTPPhone(t, addrs.SIPUDP[0])
	if code := carol.register(t, "1003", "1003", "carol-sip", 600); code != 200 {
		t.Fatalf("carol REGISTER = %d", code)
	}
	ch.run("dial", chromedp.SendKeys(`#sp-target`, "1002", chromedp.ByQuery), chromedp.Click(`#sp-call`, chromedp.ByQuery))
	inv := recvReq(t, bob.invites, "INVITE at bob's phone")
	bob.learn(t, inv.Body())
	ch.run("in call", chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	expectMedia(t, ch, bob, "browser → bob")

	answered := make(chan error, 1)
	var s *sipgo.DialogClientSession
	go func() {
		var err error
		s, err = carol.callAs("1001", "1003", "carol-sip")
		answered <- err
	}()
	ch.run("call waiting", chromedp.WaitVisible(`#sp-waiting`, chromedp.ByQuery))
	var waiting string
	ch.run("waiting peer", chromedp.Text(`#sp-waiting-peer`, &waiting, chromedp.ByQuery))
	if !strings.Contains(waiting, "1003") {
		t.Errorf("call waiting shows %q, want carol's 1003", waiting)
	}
	ch.shotHere("me-softphone-waiting")
	ch.run("answer waiting", chromedp.Click(`#sp-answer-waiting`, chromedp.ByQuery))
	re := recvReq(t, bob.reinvites, "re-INVITE (hold) at bob's phone")
	if d := media.Direction(string(re.Body())); d != media.SendOnly {
		t.Fatalf("bob's call held as %s, want sendonly", d)
	}
	if err := <-answered; err != nil {
		t.Fatal(err)
	}
	carol.learn(t, s.InviteResponse.Body())
	ch.run("with carol", chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery),
		chromedp.WaitNotVisible(`#sp-waiting`, chromedp.ByQuery))
	expectMedia(t, ch, carol, "browser ↔ carol")
	var calls int
	ch.run("two calls", chromedp.Evaluate(`window.hotdeskSoftphone.calls`, &calls))
	if calls != 2 {
		t.Fatalf("the softphone holds %d calls, want 2", calls)
	}

	ch.run("hang up carol", chromedp.Click(`#sp-hangup`, chromedp.ByQuery),
		chromedp.WaitVisible(`#softphone[data-state="held"]`, chromedp.ByQuery))
	recvReq(t, carol.byes, "BYE at carol's phone")
	ch.run("resume bob", chromedp.Click(`#sp-resume`, chromedp.ByQuery))
	re = recvReq(t, bob.reinvites, "re-INVITE (resume) at bob's phone")
	if d := media.Direction(string(re.Body())); d != media.SendRecv {
		t.Fatalf("bob's call resumed as %s, want sendrecv", d)
	}
	ch.run("back with bob", chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	expectMediaAgain(t, ch, bob, "browser ↔ bob again")
	ch.run("hang up bob", chromedp.Click(`#sp-hangup`, chromedp.ByQuery),
		chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
	recvReq(t, bob.byes, "BYE at bob's phone")
}

// TestDeskCallRecorded: with bob's number 1002 recorded, carol's desk phone
// calling bob's is anchored on the bridge (each phone is given the
// bridge's address, not the other's) and recorded: the WAV has bob's audio
// on the left and carol's on the right, packet for packet as they sent it,
// under bob's recordings (incoming, from 1003). A call between two
// unrecorded phones (alice's and carol's) keeps direct media.
func TestDeskCallRecorded(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SIP.Listen = append(cfg.SIP.Listen, "ws://127.0.0.1:0")
	cfg.SIP.WebRTC.RTPAddress, cfg.SIP.WebRTC.Loopback = "127.0.0.1", true
	cfg.SIP.WebRTC.RecordNumbers = []string{"1002"}
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	var a *app
	addrs, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	ctx := context.Background()
	phones := map[string]*rtpPhone{}
	for _, u := range []struct{ num, pass string }{{"1001", "alice-sip"}, {"1002", "bob-sip"}, {"1003", "carol-sip"}} {
		p := newRTPPhone(t, addrs.SIPUDP[0])
		if code := p.register(t, u.num, u.num, u.pass, 600); code != 200 {
			t.Fatalf("%s REGISTER = %d", u.num, code)
		}
		phones[u.num] = p
	}
	alice, bob, carol := phones["1001"], phones["1002"], phones["1003"]
	port := func(p *rtpPhone) string { _, pt, _ := net.SplitHostPort(p.rtp.LocalAddr().String()); return pt }

	// Unrecorded: direct media.
	s, err := alice.callAs("1003", "1001", "alice-sip")
	if err != nil {
		t.Fatal(err)
	}
	inv := recvReq(t, carol.invites, "alice's INVITE at carol's phone")
	if !strings.Contains(string(inv.Body()), "m=audio "+port(alice)+" ") {
		t.Fatalf("an unrecorded call was anchored: carol got %q", inv.Body())
	}
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	recvReq(t, carol.byes, "BYE at carol's phone")

	// Recorded: through the bridge.
	bob.counting.Store(1)     // µ-law 0x01…0x64: negative samples
	carol.counting.Store(129) // 0x81…0xe4: positive samples
	s, err = carol.callAs("1002", "1003", "carol-sip")
	if err != nil {
		t.Fatal(err)
	}
	inv = recvReq(t, bob.invites, "carol's INVITE at bob's phone")
	if strings.Contains(string(inv.Body()), "m=audio "+port(carol)+" ") {
		t.Fatalf("a recorded call was not anchored: bob got carol's address in %q", inv.Body())
	}
	if strings.Contains(string(s.InviteResponse.Body()), "m=audio "+port(bob)+" ") {
		t.Fatalf("a recorded call was not anchored: carol got bob's address in %q", s.InviteResponse.Body())
	}
	bob.learn(t, inv.Body())
	carol.learn(t, s.InviteResponse.Body())
	if !eventually(func() bool { return bob.got.Load() >= 50 && carol.got.Load() >= 50 }) {
		t.Fatalf("through the bridge bob got %d packets, carol %d", bob.got.Load(), carol.got.Load())
	}
	if err := s.Bye(ctx); err != nil {
		t.Fatal(err)
	}
	recvReq(t, bob.byes, "BYE at bob's phone")
	if !eventually(func() bool { return a.svc.bridge.Open() == 0 }) {
		t.Fatalf("%d bridge sessions open after the BYE", a.svc.bridge.Open())
	}
	u, err := a.store.GetUser(ctx, "bob")
	if err != nil {
		t.Fatal(err)
	}
	var recs []prov.Recording
	if !eventually(func() bool { recs, _ = a.store.ListRecordings(ctx, u.ID, 0); return len(recs) == 1 }) {
		t.Fatalf("bob's recordings %+v, want the call from carol", recs)
	}
	if r := recs[0]; !r.Incoming || r.Peer != "1003" {
		t.Errorf("recording %+v, want incoming from 1003", r)
	}
	wav, err := os.ReadFile(filepath.Join(cfg.DataDir, "recordings", recs[0].File))
	if err != nil {
		t.Fatal(err)
	}
	left, right := sentBytes(t, wav)
	for _, ch := range []struct {
		name string
		got  []byte
		base byte
	}{{"left (bob)", left, 1}, {"right (carol)", right, 129}} {
		if len(ch.got) < 25 {
			t.Fatalf("%s: %d packets recorded, want 25 at least", ch.name, len(ch.got))
		}
		for i, b := range ch.got {
			if b < ch.base || b >= ch.base+100 {
				t.Fatalf("%s: packet %d is %#x, not one the phone sent", ch.name, i, b)
			}
			if i > 0 && b != ch.base+(ch.got[i-1]-ch.base+1)%100 {
				t.Fatalf("%s: packet %d is %#x after %#x: the recording is not what was sent, in order", ch.name, i, b, ch.got[i-1])
			}
		}
	}
}

// sentBytes reads a recording made of counting packets: each 20 ms block
// of each channel is one µ-law byte repeated (or silence), given back in
// order per channel, silence left out.
func sentBytes(t *testing.T, wav []byte) (left, right []byte) {
	t.Helper()
	if len(wav) < 44 || string(wav[:4]) != "RIFF" || (len(wav)-44)%(160*4) != 0 {
		t.Fatalf("recording of %d bytes is not whole 20 ms stereo blocks", len(wav))
	}
	pcm := wav[44:]
	for blk := 0; blk < len(pcm); blk += 160 * 4 {
		for c, out := range []*[]byte{&left, &right} {
			first := int16(binary.LittleEndian.Uint16(pcm[blk+2*c:]))
			for i := range 160 {
				if v := int16(binary.LittleEndian.Uint16(pcm[blk+i*4+2*c:])); v != first {
					t.Fatalf("block %d channel %d: sample %d is %d, want %d throughout", blk/640, c, i, v, first)
				}
			}
			if first != 0 {
				*out = append(*out, g711.UlawEncode(first))
			}
		}
	}
	return left, right
}

// TestSoftphoneUserDisabled: disabling a user whose browser softphone is
// registered drops its credential and unbinds its binding at once, not
// when the registration expires.
func TestSoftphoneUserDisabled(t *testing.T) {
	a, _, _ := startSoftphone(t)
	ctx := context.Background()
	authUser := ""
	for _, b := range a.svc.sip.Lookup(ctx, "1001") {
		if b.Transport == "WS" {
			authUser = b.AuthUser
		}
	}
	if authUser == "" {
		t.Fatal("no WebSocket binding for 1001")
	}
	if _, ok := a.svc.credentials.Lookup(authUser); !ok {
		t.Fatalf("the softphone's credential %q is not there", authUser)
	}
	if _, err := a.svc.manager.DisableUser(ctx, "alice", prov.Actor{Name: "admin:test"}); err != nil {
		t.Fatal(err)
	}
	for _, b := range a.svc.sip.Bindings() { // all of them: her number is unassigned now
		if b.AuthUser == authUser {
			t.Fatalf("the disabled user's softphone is still bound: %+v", b)
		}
	}
	if _, ok := a.svc.credentials.Lookup(authUser); ok {
		t.Fatal("the disabled user's softphone credential still works")
	}
}
