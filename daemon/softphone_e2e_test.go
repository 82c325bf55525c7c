package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"hotdesk/prov"
	"hotdesk/sip/media"
)

// rtpPhone is a simulated desk phone with media: a sipgo UA that answers
// every call, and an RTP socket on loopback that sends a PCMU packet every
// 20 ms to the address the other side's SDP names and counts what it gets.
type rtpPhone struct {
	*handset
	ua      *sipgo.UserAgent
	rtp     *net.UDPConn
	got     atomic.Int64
	peer    atomic.Pointer[net.UDPAddr]
	invites chan *sip.Request
	// reinvites gets the re-INVITEs of its calls (answered with the
	// direction mirrored, RFC 3264 §6.1), refers the REFERs (202).
	reinvites chan *sip.Request
	refers    chan *sip.Request
	// answered is the 200 it sent to each INVITE it answered, by Call-ID.
	answered sync.Map
	byes     chan *sip.Request
	answers  chan string // SDP the phone received in a 2xx (its own calls)
	dialogs  *sipgo.DialogClientCache
	stopSend chan struct{}
	// pcma makes it a phone that speaks A-law only (set before its calls).
	pcma atomic.Bool
	// counting, when set, fills packet i with byte base+i%100, so a
	// recording can be compared with what was sent (0: silence).
	counting atomic.Int32
}

func newRTPPhone(t *testing.T, registrar string) *rtpPhone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Yealink SIP-T46S 66.86.0.15"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	p := &rtpPhone{ua: ua, rtp: conn, invites: make(chan *sip.Request, 4), byes: make(chan *sip.Request, 4),
		reinvites: make(chan *sip.Request, 8), refers: make(chan *sip.Request, 4),
		answers: make(chan string, 4), stopSend: make(chan struct{}),
		handset: &handset{domain: "test.lan", notifies: make(chan string, 64), arrivals: make(chan notifyArrival, 64),
			invites: make(chan string, 4), callIDs: map[string]string{}}}
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		p.byes <- req
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	srv.OnRefer(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 202, "Accepted", nil))
		p.refers <- req
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = pc.LocalAddr().String()
	go func() { _ = srv.ServeUDP(pc) }()
	waitPooled(t, ua, p.addr)
	done := make(chan struct{})
	go p.receive(done)
	go p.send()
	t.Cleanup(func() { close(p.stopSend); conn.Close(); <-done; pc.Close(); ua.Close() })
	if p.cli, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(p.addr)); err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(p.addr)
	pn, _ := strconv.Atoi(port)
	p.dialogs = sipgo.NewDialogClientCache(p.cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: host, Port: pn}})
	rh, rp, _ := net.SplitHostPort(registrar)
	p.registrar = sip.Uri{Scheme: "sip", Host: rh}
	fmt.Sscan(rp, &p.registrar.Port)
	return p
}

func (p *rtpPhone) sdp() []byte {
	a := p.rtp.LocalAddr().(*net.UDPAddr)
	if p.pcma.Load() {
		return []byte(fmt.Sprintf("v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=desk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", a.Port))
	}
	return []byte(fmt.Sprintf("v=0\r\no=- 5 5 IN IP4 127.0.0.1\r\ns=desk\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio %d RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n", a.Port))
}

// learn takes the RTP address of the other side's SDP.
func (p *rtpPhone) learn(t *testing.T, body []byte) {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.Unmarshal(body); err != nil || len(d.MediaDescriptions) == 0 || d.ConnectionInformation == nil {
		t.Errorf("the phone got SDP it cannot use: %q (%v)", body, err)
		return
	}
	m := d.MediaDescriptions[0]
	if want := "RTP/AVP 0"; m.MediaName.Protos[0] != "RTP" || !strings.Contains(string(body), want) && !p.pcma.Load() ||
		p.pcma.Load() && !strings.Contains(string(body), " 8") {
		t.Errorf("the phone got %q, want plain RTP with its codec", body)
	}
	p.peer.Store(&net.UDPAddr{IP: net.ParseIP(d.ConnectionInformation.Address.Address), Port: m.MediaName.Port.Value})
}

func (p *rtpPhone) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if tagOfTo(req) != "" {
		dir := map[string]string{"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}[media.Direction(string(req.Body()))]
		if dir == "" {
			dir = "sendrecv"
		}
		res := sip.NewResponseFromRequest(req, 200, "OK", []byte(strings.Replace(string(p.sdp()), "a=sendrecv", "a="+dir, 1)))
		res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		_ = tx.Respond(res)
		p.reinvites <- req
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", p.sdp())
	res.To().Params.Add("tag", sip.GenerateTagN(8))
	res.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, REFER, NOTIFY"))
	p.answered.Store(req.CallID().Value(), res)
	host, port, _ := sip.ParseAddr(p.addr)
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: host, Port: port}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	p.invites <- req // after the answer is stored: the test reads it on receipt
	_ = tx.Respond(res)
}

// pt is the phone's payload type: 8 (PCMA) or 0 (PCMU).
func (p *rtpPhone) pt() uint8 {
	if p.pcma.Load() {
		return 8
	}
	return 0
}

func tagOfTo(req *sip.Request) string {
	t, _ := req.To().Params.Get("tag")
	return t
}

// inDialog builds a request of the phone in a call it answered (inv, its
// 200 res): toward the caller's Contact along the Record-Route set.
func (p *rtpPhone) inDialog(inv *sip.Request, res *sip.Response, method sip.RequestMethod, cseq uint32) *sip.Request {
	req := sip.NewRequest(method, inv.Contact().Address)
	for _, rr := range inv.GetHeaders("Record-Route") {
		req.AppendHeader(sip.NewHeader("Route", rr.Value()))
	}
	req.AppendHeader(&sip.FromHeader{Address: res.To().Address, Params: res.To().Params.Clone()})
	req.AppendHeader(&sip.ToHeader{Address: inv.From().Address, Params: inv.From().Params.Clone()})
	req.AppendHeader(sip.HeaderClone(inv.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: method})
	host, port, _ := sip.ParseAddr(p.addr)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "1002", Host: host, Port: port}})
	req.SetDestination(p.registrar.Host + ":" + strconv.Itoa(p.registrar.Port))
	return req
}

func (p *rtpPhone) receive(done chan struct{}) {
	defer close(done)
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, err := p.rtp.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) == nil && pkt.PayloadType == p.pt() {
			p.got.Add(1)
		}
	}
}

// send streams PCMU (a 20 ms tick is the media clock, not a wait).
func (p *rtpPhone) send() {
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	payload := make([]byte, 160)
	for i := 0; ; i++ {
		select {
		case <-p.stopSend:
			return
		case <-tk.C:
		}
		to := p.peer.Load()
		if to == nil {
			continue
		}
		if base := p.counting.Load(); base != 0 {
			for j := range payload {
				payload[j] = byte(int(base) + i%100)
			}
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: p.pt(), SequenceNumber: uint16(i), Timestamp: uint32(i * 160), SSRC: 7}, Payload: payload}
		raw, _ := pkt.Marshal()
		_, _ = p.rtp.WriteToUDP(raw, to)
	}
}

// call INVITEs target from the phone (1002), waits for the answer and
// ACKs it; it runs beside the browser's actions, so it returns errors.
func (p *rtpPhone) call(target string) (*sipgo.DialogClientSession, error) {
	return p.callAs(target, "1002", "bob-sip")
}

// callAs is call with another account.
func (p *rtpPhone) callAs(target, user, password string) (*sipgo.DialogClientSession, error) {
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: target, Host: p.domain})
	req.SetDestination(p.registrar.Host + ":" + strconv.Itoa(p.registrar.Port))
	req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.domain}, Params: sip.NewParams()})
	req.From().Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: target, Host: p.domain}, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(p.sdp())
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	s, err := p.dialogs.WriteInvite(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("INVITE %s: %w", target, err)
	}
	if err := s.WaitAnswer(ctx, sipgo.AnswerOptions{Username: user, Password: password}); err != nil {
		return nil, fmt.Errorf("call to %s: %w", target, err)
	}
	if err := s.Ack(ctx); err != nil {
		return nil, fmt.Errorf("ACK: %w", err)
	}
	return s, nil
}

// TestSoftphoneInBrowser: alice's portal softphone in the real Chromium
// (fake microphone) registers over SIP over WebSocket with a credential
// minted for her portal session, calls bob's desk phone and is called by
// it; the media bridge carries RTP both ways (packets counted at the phone
// and in the browser's WebRTC stats); signing out revokes the credential.
func TestSoftphoneInBrowser(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.SIP.Listen = append(cfg.SIP.Listen, "ws://127.0.0.1:0")
	cfg.SIP.WebRTC.RTPAddress, cfg.SIP.WebRTC.Loopback = "127.0.0.1", true
	// Recorded by number: bob's 1002, alice's "record calls" stays off.
	cfg.SIP.WebRTC.RecordNumbers = []string{"1002"}
	cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
		"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
	var a *app
	addrs, _ := startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { a = x }})
	ctx := context.Background()
	base := "http://" + addrs.Admin
	if len(addrs.SIPWS) != 1 {
		t.Fatalf("ws listeners %v", addrs.SIPWS)
	}
	u, err := a.store.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	pa := u.Portal
	pa.CallOperations, pa.Recordings = prov.CallOpsBoth, prov.AccessWrite
	if _, err := a.svc.manager.UpdateUser(ctx, "alice", prov.UserPatch{Portal: &pa}, prov.Actor{Name: "admin:test"}); err != nil {
		t.Fatal(err)
	}
	bob := newRTPPhone(t, addrs.SIPUDP[0])
	if code := bob.register(t, "1002", "1002", "bob-sip", 600); code != 200 {
		t.Fatalf("bob REGISTER = %d", code)
	}

	ch := newDaemonChrome(t, chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true), chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	ch.run("sign in", chromedp.Navigate(base+"/"), chromedp.WaitVisible(`#f-username`, chromedp.ByQuery),
		chromedp.SendKeys(`#f-username`, "alice", chromedp.ByQuery),
		chromedp.SendKeys(`#f-password`, "alice-demo", chromedp.ByQuery),
		chromedp.Submit(`#f-password`, chromedp.ByQuery), chromedp.WaitVisible(`nav`, chromedp.ByQuery))
	// The mode picker offers what the admin allows; she keeps Both.
	var modes string
	ch.run("home", chromedp.Navigate(base+"/me/"), chromedp.Text(`#f-call_mode`, &modes, chromedp.ByQuery))
	if !strings.Contains(modes, "Softphone") || !strings.Contains(modes, "Call Control") {
		t.Fatalf("mode picker offers %q", modes)
	}
	ch.run("softphone", chromedp.Navigate(base+"/me/softphone"),
		chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
	var ws bool
	for _, b := range a.svc.sip.Lookup(ctx, "1001") {
		ws = ws || b.Transport == "WS"
	}
	if !ws {
		t.Fatalf("no WebSocket binding for 1001: %+v", a.svc.sip.Lookup(ctx, "1001"))
	}

	// The browser calls the desk phone.
	ch.run("dial", chromedp.SendKeys(`#sp-target`, "1002", chromedp.ByQuery), chromedp.Click(`#sp-call`, chromedp.ByQuery))
	inv := recvReq(t, bob.invites, "INVITE at the desk phone")
	bob.learn(t, inv.Body())
	ch.run("in call", chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	expectMedia(t, ch, bob, "browser → desk phone")
	ch.shotHere("me-softphone")
	ch.run("hang up", chromedp.Click(`#sp-hangup`, chromedp.ByQuery),
		chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
	recvReq(t, bob.byes, "BYE at the desk phone")
	if !eventually(func() bool { return a.svc.bridge.Open() == 0 }) {
		t.Fatalf("%d bridge sessions open after the BYE", a.svc.bridge.Open())
	}

	// The desk phone calls the browser; she answers.
	bob.got.Store(0)
	type result struct {
		s   *sipgo.DialogClientSession
		err error
	}
	answered := make(chan result, 1)
	go func() { s, err := bob.call("1001"); answered <- result{s, err} }()
	ch.run("ringing", chromedp.WaitVisible(`#softphone[data-state="ringing"]`, chromedp.ByQuery),
		chromedp.Click(`#sp-answer`, chromedp.ByQuery),
		chromedp.WaitVisible(`#softphone[data-state="incall"]`, chromedp.ByQuery))
	var s *sipgo.DialogClientSession
	select {
	case r := <-answered:
		if r.err != nil {
			t.Fatal(r.err)
		}
		s = r.s
	case <-time.After(settleTimeout):
		t.Fatal("the desk phone's call was not answered")
	}
	bob.learn(t, s.InviteResponse.Body())
	expectMedia(t, ch, bob, "desk phone → browser")
	bye, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	if err := s.Bye(bye); err != nil {
		t.Fatalf("BYE from the desk phone: %v", err)
	}
	ch.run("hung up", chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))
	if !eventually(func() bool { return a.svc.bridge.Open() == 0 }) {
		t.Fatalf("%d bridge sessions open after the BYE", a.svc.bridge.Open())
	}
	if n := metricValue(t, a, "hotdesk_media_packets_total"); n < 50 {
		t.Errorf("hotdesk_media_packets_total = %v, want the packets of both calls", n)
	}

	// Both calls (with 1002, a recorded number) were recorded; she replays
	// one and downloads it, audited.
	var recs []prov.Recording
	if !eventually(func() bool { recs, _ = a.store.ListRecordings(ctx, u.ID, 0); return len(recs) == 2 }) {
		t.Fatalf("recordings %+v, want both calls", recs)
	}
	for _, r := range recs {
		st, err := os.Stat(filepath.Join(cfg.DataDir, "recordings", r.File))
		if err != nil || st.Size() != r.Bytes || r.Bytes < 44+8000*4/2 || r.DurationMS < 500 {
			t.Fatalf("recording %+v: file %v %v, want half a second or more of stereo audio", r, st, err)
		}
	}
	if !recs[0].Incoming || recs[1].Incoming || recs[1].Peer != "1002" {
		t.Errorf("recordings %+v, want the outgoing call to 1002, then the incoming one", recs)
	}
	var played float64
	ch.run("replay", chromedp.Navigate(base+"/me/recordings"), chromedp.WaitVisible(`#recordings audio`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#recordings audio').play().then(() => 0)`, nil, awaitPromise))
	if !eventually(func() bool {
		ch.run("position", chromedp.Evaluate(`document.querySelector('#recordings audio').currentTime`, &played))
		return played > 0.2
	}) {
		t.Fatalf("the recording did not play (at %.2f s)", played)
	}
	ch.shotHere("me-recordings")
	var dl string
	ch.run("download", chromedp.Evaluate(`fetch(document.querySelector('#recordings a.download').href).then(r =>
		r.status + " " + r.headers.get("Content-Disposition") + " " + r.headers.get("Content-Type"))`, &dl, awaitPromise))
	if !strings.HasPrefix(dl, "200 attachment") || !strings.HasSuffix(dl, "audio/wav") {
		t.Fatalf("download = %q", dl)
	}
	ch.run("back to the softphone", chromedp.Navigate(base+"/me/softphone"),
		chromedp.WaitVisible(`#softphone[data-state="ready"]`, chromedp.ByQuery))

	// Signing out revokes the softphone's credential and its binding.
	ch.run("sign out", chromedp.Click(`.signout button`, chromedp.ByQuery), chromedp.WaitVisible(`#f-username`, chromedp.ByQuery))
	if !eventually(func() bool {
		for _, b := range a.svc.sip.Lookup(ctx, "1001") {
			if b.Transport == "WS" {
				return false
			}
		}
		return true
	}) {
		t.Fatal("the softphone's binding outlived the portal session")
	}
	evs, err := a.store.ListAudit(ctx, prov.AuditQuery{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range evs {
		if e.Actor == "user:alice" {
			count[e.Action]++
		}
	}
	if count["softphone.credential"] == 0 || count["recording.replay"] == 0 || count["recording.download"] != 1 {
		t.Errorf("audited %v, want the credential, the replay and the download", count)
	}
}

// awaitPromise makes Evaluate wait for the promise the script returns.
func awaitPromise(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams {
	return p.WithAwaitPromise(true)
}

// shotHere saves a screenshot of the page as it is (no reload: that would
// end the call) into $HOTDESK_SCREENSHOTS (if set).
func (c *daemonChrome) shotHere(name string) {
	c.t.Helper()
	var buf []byte
	c.run("screenshot "+name, chromedp.FullScreenshot(&buf, 100))
	if dir := os.Getenv("HOTDESK_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
			c.t.Fatal(err)
		}
	}
}

// expectMedia waits for RTP both ways: the phone receives the browser's
// (fake microphone) packets and the browser's stats count the phone's.
func expectMedia(t *testing.T, ch *daemonChrome, phone *rtpPhone, what string) {
	t.Helper()
	if !eventually(func() bool { return phone.got.Load() >= 25 }) {
		t.Fatalf("%s: the desk phone received %d RTP packets from the browser", what, phone.got.Load())
	}
	var in int
	if !eventually(func() bool {
		ch.run("stats", chromedp.Evaluate(`window.hotdeskSoftphone.packetsReceived`, &in))
		return in >= 25
	}) {
		t.Fatalf("%s: the browser received %d RTP packets from the desk phone", what, in)
	}
}
