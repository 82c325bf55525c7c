package sip

import (
	"context"
	"testing"

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
