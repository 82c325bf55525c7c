package sip

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestTrunkRegistration: with trunk.register on, hotdesk registers with the
// trunk as the trunk account, answering its digest challenge.
func TestTrunkRegistration(t *testing.T) {
	t.Parallel()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("carrier"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	regs := make(chan *sip.Request, 10)
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		if req.GetHeader("Authorization") == nil {
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="carrier", nonce="abc123", algorithm=MD5, qop="auth"`))
			_ = tx.Respond(res)
			return
		}
		regs <- req
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if c := req.Contact(); c != nil {
			res.AppendHeader(sip.NewHeader("Contact", c.Value()+";expires=120"))
		}
		_ = tx.Respond(res)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.ServeUDP(pc) }()
	t.Cleanup(func() { ua.Close(); pc.Close() })

	e := startProxyEnv(t, func(_ *Config, pc2 *ProxyConfig, _ *Deps) {
		pc2.Trunk = TrunkConfig{Address: pc.LocalAddr().String(), Transport: "udp", Domain: "carrier.example",
			Username: "acct", Password: "pw", Register: true, Expires: 600}
	})
	select {
	case req := <-regs:
		auth := req.GetHeader("Authorization").Value()
		if !strings.Contains(auth, `username="acct"`) || req.To().Address.User != "acct" || req.To().Address.Host != "carrier.example" {
			t.Fatalf("REGISTER at the trunk: To %s, Authorization %s", req.To().Address.String(), auth)
		}
		if c := req.Contact(); c == nil || c.Address.User != "acct" || c.Address.Port == 0 {
			t.Fatalf("REGISTER Contact %v", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no authenticated REGISTER reached the trunk")
	}
	for range 100 {
		if n, err := testutil.GatherAndCount(e.reg, "hotdesk_sip_proxy_trunk_registrations_total"); err == nil && n == 1 {
			fams, _ := e.reg.Gather()
			for _, f := range fams {
				if f.GetName() == "hotdesk_sip_proxy_trunk_registered" && f.GetMetric()[0].GetGauge().GetValue() == 1 {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("hotdesk_sip_proxy_trunk_registered not 1 after the trunk's 200")
}
