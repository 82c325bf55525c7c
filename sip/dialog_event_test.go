package sip

import (
	"context"
	"encoding/xml"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// watcher is a phone with BLF keys: it subscribes to the dialog event
// package and collects the NOTIFYs, answering each 200.
type watcher struct {
	t        *testing.T
	cli      *sipgo.Client
	addr     string
	proxy    string
	notifies chan *sip.Request
	cseq     uint32
}

func newWatcher(t *testing.T, proxy string) *watcher {
	t.Helper()
	w := &watcher{t: t, proxy: proxy, notifies: make(chan *sip.Request, 32)}
	u, err := sipgo.NewUA(sipgo.WithUserAgent("watcher"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(u)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
		w.notifies <- req
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.addr = pc.LocalAddr().String()
	if w.cli, err = sipgo.NewClient(u, sipgo.WithClientConnectionAddr(w.addr)); err != nil {
		t.Fatal(err)
	}
	go srv.ServeUDP(pc)
	t.Cleanup(func() { u.Close(); pc.Close() })
	for i := 0; i < 200 && len(u.TransportLayer().ListenPorts("udp")) == 0; i++ {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(5 * time.Millisecond)
	return w
}

// subscribe sends a dialog SUBSCRIBE for user (authenticating as
// authUser when challenged) within the dialog callID/fromTag/toTag, and
// returns the final answer.
func (w *watcher) subscribe(user, authUser, pass, callID, fromTag, toTag string, expires string) *sip.Response {
	w.t.Helper()
	host, port, _ := sip.ParseAddr(w.proxy)
	target := sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
	build := func(auth string) *sip.Request {
		req := sip.NewRequest(sip.SUBSCRIBE, target)
		fp := sip.NewParams()
		fp.Add("tag", fromTag)
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: authUser, Host: "hotdesk.test"}, Params: fp})
		tp := sip.NewParams()
		if toTag != "" {
			tp.Add("tag", toTag)
		}
		req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "hotdesk.test"}, Params: tp})
		cid := sip.CallIDHeader(callID)
		req.AppendHeader(&cid)
		w.cseq++
		req.AppendHeader(&sip.CSeqHeader{SeqNo: w.cseq, MethodName: sip.SUBSCRIBE})
		h, p, _ := sip.ParseAddr(w.addr)
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: authUser, Host: h, Port: p}})
		req.AppendHeader(sip.NewHeader("Event", "dialog"))
		req.AppendHeader(sip.NewHeader("Accept", dialogInfoType))
		req.AppendHeader(sip.NewHeader("Expires", expires))
		if auth != "" {
			req.AppendHeader(sip.NewHeader("Proxy-Authorization", auth))
		}
		req.SetDestination(w.proxy)
		req.SetTransport("UDP")
		return req
	}
	do := func(req *sip.Request) *sip.Response {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		res, err := w.cli.Do(ctx, req)
		if err != nil {
			w.t.Fatalf("SUBSCRIBE: %v", err)
		}
		return res
	}
	res := do(build(""))
	if res.StatusCode != 407 {
		return res
	}
	if authUser == "" {
		return res
	}
	auth := digestFor(w.t, res.GetHeader("Proxy-Authenticate").Value(), "SUBSCRIBE", target.String(), authUser, pass)
	return do(build(auth))
}

type dialogInfo struct {
	Version int    `xml:"version,attr"`
	State   string `xml:"state,attr"`
	Entity  string `xml:"entity,attr"`
	Dialogs []struct {
		ID        string `xml:"id,attr"`
		CallID    string `xml:"call-id,attr"`
		Direction string `xml:"direction,attr"`
		State     string `xml:"state"`
	} `xml:"dialog"`
}

// next returns the next NOTIFY about entity user and its body.
func (w *watcher) next(user string) (*sip.Request, dialogInfo) {
	w.t.Helper()
	for {
		req := recv(w.t, w.notifies, "NOTIFY about "+user)
		if req.From().Address.User != user {
			continue
		}
		var di dialogInfo
		if err := xml.Unmarshal(req.Body(), &di); err != nil {
			w.t.Fatalf("NOTIFY body: %v\n%s", err, req.Body())
		}
		return req, di
	}
}

// TestDialogEventBLF: a phone with a BLF key (carol) subscribes to a
// colleague's dialog state (bob, 1002) and, as alice's call rings bob,
// is answered and hung up, receives early, confirmed and terminated
// NOTIFYs (RFC 4235) carrying dialog-info+xml; a SUBSCRIBE without
// credentials is challenged, a too brief one refused, an unknown user
// not found, and Expires: 0 ends the subscription with a final NOTIFY.
func TestDialogEventBLF(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "answer")
	bob.setMode("answer", 200*time.Millisecond)
	bob.register("1002", "bob-sip", "1002")
	carol := newWatcher(t, e.udp)

	if res := carol.subscribe("1002", "", "", "blf-anon", "t0", "", "600"); res.StatusCode != 407 {
		t.Fatalf("SUBSCRIBE without credentials = %d, want 407", res.StatusCode)
	}
	if res := carol.subscribe("1002", "1003", "carol-sip", "blf-brief", "t1", "", "10"); res.StatusCode != 423 ||
		res.GetHeader("Min-Expires") == nil {
		t.Fatalf("SUBSCRIBE for 10 s = %d, want 423 with Min-Expires", res.StatusCode)
	}
	if res := carol.subscribe("nobody", "1003", "carol-sip", "blf-none", "t2", "", "600"); res.StatusCode != 404 {
		t.Fatalf("SUBSCRIBE to an unknown user = %d, want 404", res.StatusCode)
	}
	res := carol.subscribe("bob", "1003", "carol-sip", "blf-1", "t3", "", "600")
	if res.StatusCode != 200 || tagOf(res.To().Params) == "" || res.GetHeader("Expires").Value() != "600" {
		t.Fatalf("SUBSCRIBE = %d %v", res.StatusCode, res)
	}
	ourTag := tagOf(res.To().Params)
	req, di := carol.next("1002")
	if ev := req.GetHeader("Event"); ev == nil || ev.Value() != "dialog" ||
		!strings.HasPrefix(req.GetHeader("Subscription-State").Value(), "active;expires=") ||
		req.GetHeader("Content-Type").Value() != dialogInfoType || tagOf(req.From().Params) != ourTag ||
		req.CallID().Value() != "blf-1" || di.State != "full" || len(di.Dialogs) != 0 || di.Entity != "sip:1002@hotdesk.test" {
		t.Fatalf("first NOTIFY (our tag %q): %v\n%+v", ourTag, req, di)
	}
	if n := metricValue(t, e, "hotdesk_sip_dialog_subscriptions", nil); n != 1 {
		t.Errorf("subscriptions gauge %v, want 1", n)
	}

	sess, inv, err := alice.call(callCtx(t), "bob", "1001", "alice-sip")
	if err != nil || sess == nil {
		t.Fatalf("call: %v %v", err, inv)
	}
	callID := inv.CallID().Value()
	for _, want := range []string{"early", "confirmed"} {
		_, di := carol.next("1002")
		if len(di.Dialogs) != 1 || di.Dialogs[0].State != want || di.Dialogs[0].CallID != callID ||
			di.Dialogs[0].Direction != "recipient" {
			t.Fatalf("want %s: %+v", want, di)
		}
	}
	if err := sess.Ack(callCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := sess.Bye(callCtx(t)); err != nil {
		t.Fatal(err)
	}
	recv(t, bob.byes, "BYE at bob")
	_, di = carol.next("1002")
	if len(di.Dialogs) != 1 || di.Dialogs[0].State != "terminated" {
		t.Fatalf("want terminated: %+v", di)
	}

	// The caller's side: carol watches alice too; alice's next call shows
	// her as the initiator.
	if res := carol.subscribe("1001", "1003", "carol-sip", "blf-2", "t4", "", "600"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE to alice = %d", res.StatusCode)
	}
	carol.next("1001")
	bob.setMode("busy", 0)
	if _, res, _ := alice.call(callCtx(t), "bob", "1001", "alice-sip"); res == nil || res.StatusCode != 486 {
		t.Fatalf("busy call: %v", res)
	}
	for _, want := range []string{"early", "terminated"} {
		_, di := carol.next("1001")
		if len(di.Dialogs) != 1 || di.Dialogs[0].State != want || di.Dialogs[0].Direction != "initiator" {
			t.Fatalf("alice, want %s: %+v", want, di)
		}
	}

	// Unsubscribe: 200, a final NOTIFY, nothing held.
	if res := carol.subscribe("bob", "1003", "carol-sip", "blf-1", "t3", ourTag, "0"); res.StatusCode != 200 {
		t.Fatalf("unsubscribe = %d", res.StatusCode)
	}
	for {
		req, _ := carol.next("1002")
		if strings.HasPrefix(req.GetHeader("Subscription-State").Value(), "terminated") {
			break
		}
	}
	if n := metricValue(t, e, "hotdesk_sip_dialog_subscriptions", nil); n != 1 {
		t.Errorf("subscriptions gauge %v after one unsubscribe, want 1", n)
	}
	// A refresh of the ended subscription is no longer ours to answer.
	if res := carol.subscribe("bob", "1003", "carol-sip", "blf-1", "t3", ourTag, "600"); res.StatusCode == 200 {
		t.Fatalf("refresh after unsubscribe = %d", res.StatusCode)
	}
}

// TestDialogEventExpiry: a subscription that is not refreshed ends at its
// time with a last NOTIFY (reason timeout) and is no longer held; one
// subscriber cannot hold more than its share.
func TestDialogEventExpiry(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var px *proxy
	e := startProxyEnvHook(t, func(p *proxy) { p.now, px = clock, p })
	carol := newWatcher(t, e.udp)
	if res := carol.subscribe("1002", "1003", "carol-sip", "blf-exp", "x1", "", "60"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE = %d", res.StatusCode)
	}
	carol.next("1002")
	px.dlg.expire(clock()) // not yet
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	px.dlg.expire(clock())
	req, _ := carol.next("1002")
	if got := req.GetHeader("Subscription-State").Value(); got != "terminated;reason=timeout" {
		t.Fatalf("Subscription-State %q", got)
	}
	if n := metricValue(t, e, "hotdesk_sip_dialog_subscriptions", nil); n != 0 {
		t.Fatalf("subscriptions gauge %v after expiry, want 0", n)
	}

	// The per-credential bound.
	px.dlg.mu.Lock()
	px.dlg.byOwner[Owner{OwnerUser, "carol"}] = maxDialogSubsPerOwner
	px.dlg.mu.Unlock()
	if res := carol.subscribe("1002", "1003", "carol-sip", "blf-full", "x2", "", "600"); res.StatusCode != 503 {
		t.Fatalf("SUBSCRIBE over the bound = %d, want 503", res.StatusCode)
	}
}
