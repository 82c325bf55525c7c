package sip

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestProxyShedsOverMaxCalls: with max_calls 1 and one call ringing, a new
// INVITE gets 503 with Retry-After at once, is counted, and never reaches
// the callee; the ringing call goes on and can still be cancelled.
func TestProxyShedsOverMaxCalls(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t, func(_ *Config, pc *ProxyConfig, _ *Deps) {
		pc.MaxCalls = 1
		pc.TrustedSources = []string{"127.0.0.1"} // no 407 round: one INVITE, one slot
	})
	alice := newUA(t, "alice", e.udp, "answer")
	carol := newUA(t, "carol", e.udp, "answer")
	bob := newUA(t, "bob", e.udp, "ring")
	bob.register("1002", "bob-sip", "1002")

	invite := func(u *ua) *sip.Request {
		req := sip.NewRequest(sip.INVITE, u.target("1002"))
		req.AppendHeader(&sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "+4930123", Host: "carrier.example"},
			Params: tagParams()})
		req.AppendHeader(&u.dlg.ContactHDR)
		req.SetDestination(u.proxy)
		req.SetTransport(u.transport)
		return req
	}
	ctx, cancel := context.WithCancel(callCtx(t))
	defer cancel()
	sess, err := alice.dlg.WriteInvite(ctx, invite(alice))
	if err != nil {
		t.Fatal(err)
	}
	ringing := make(chan error, 1)
	go func() { ringing <- sess.WaitAnswer(ctx, sipgo.AnswerOptions{}) }()
	recv(t, bob.invites, "the first INVITE at bob")

	res := carol.do(invite(carol))
	if res.StatusCode != 503 {
		t.Fatalf("INVITE over max_calls: %d %s, want 503", res.StatusCode, res.Reason)
	}
	if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "5" {
		t.Errorf("Retry-After = %v, want 5 (the default retry_after)", ra)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_shed_total", map[string]string{"reason": "calls"}); n != 1 {
		t.Errorf("shed{calls} = %v, want 1", n)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_calls_held", nil); n != 1 {
		t.Errorf("calls held = %v, want 1 (the ringing call)", n)
	}

	cancel() // the caller hangs up: CANCEL reaches bob
	recv(t, bob.cancels, "CANCEL at bob")
	<-ringing
	select {
	case r := <-bob.invites:
		t.Fatalf("the shed INVITE reached bob: %s", r.CallID().Value())
	default:
	}
}

// oneSlotProxy is a proxy with one max_calls slot, a trusted caller and
// bob's binding on a raw callee; tune adjusts the proxy's configuration.
func oneSlotProxy(t *testing.T, tune func(*ProxyConfig)) (uac, uas *rawPeer, e *pxEnv, proxy *net.UDPAddr) {
	t.Helper()
	uac, uas = newRawPeer(t), newRawPeer(t)
	store := preStore{bs: []Binding{{AOR: "sip:1002@hotdesk.test", Contact: "sip:1002@" + uas.addr(),
		Source: uas.addr(), Transport: "UDP", Expires: time.Now().Add(time.Hour), Owner: Owner{OwnerUser, "bob"}}}}
	e = startProxyEnv(t, func(_ *Config, pc *ProxyConfig, d *Deps) {
		d.Bindings = store
		pc.TrustedSources = []string{"127.0.0.1"}
		pc.MaxCalls = 1
		tune(pc)
	})
	proxy, err := net.ResolveUDPAddr("udp", e.udp)
	if err != nil {
		t.Fatal(err)
	}
	return uac, uas, e, proxy
}

// TestProxyCallLeavesMaxCallsAtACK: a call holds its max_calls slot from
// the INVITE until its ACK passes, not tx_linger longer (which made
// max_calls cap the call rate at max_calls / tx_linger); a 2xx the callee
// retransmits after that (its ACK lost) still reaches the caller,
// relayed statelessly, and the caller's new ACK reaches the callee; an
// INVITE retransmission arriving after the ACK is absorbed, not a new
// call.
func TestProxyCallLeavesMaxCallsAtACK(t *testing.T) {
	uac, uas, e, proxy := oneSlotProxy(t, func(pc *ProxyConfig) {
		pc.TxLinger = 32 * time.Second // before: the slot stayed this long after the ACK
	})
	var rc rawCall
	for i := range 3 { // one slot, three calls in a row
		rc.invite(t, uac, uas, proxy, i)
		rc.answer(t, uas, proxy, i)
		rc.ack(t, uac, uas, proxy, i)
		// The slot is free once the ACK passed (polled: the gauge drops
		// right after the ACK is written; tx_linger is 32 s).
		deadline := time.Now().Add(10 * time.Second)
		for metricValue(t, e, "hotdesk_sip_proxy_calls_held", nil) != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("call %d: still held after its ACK", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if i == 0 { // the callee missed the ACK: it sends its 200 again
			rc.send200(t, uas, proxy)
			rc.ack(t, uac, uas, proxy, i)
		}
		if i == 1 { // an INVITE retransmission that crossed our 100
			rc.sendInvite(t, uac, proxy, i)
			deadline := time.Now().Add(10 * time.Second)
			for metricValue(t, e, "hotdesk_sip_proxy_dropped_total", map[string]string{"reason": "retransmission"}) != 1 {
				if time.Now().After(deadline) {
					t.Fatal("the late INVITE retransmission was not absorbed")
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		rc.bye(t, uac, uas, proxy, i)
	}
	if n := metricValue(t, e, "hotdesk_sip_proxy_shed_total", map[string]string{"reason": "calls"}); n != 0 {
		t.Errorf("shed{calls} = %v, want 0", n)
	}
}
