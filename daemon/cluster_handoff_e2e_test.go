package daemon

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"hotdesk/prov/store"
)

// startClusterWith is startCluster with each node's configuration
// adjusted by mod.
func startClusterWith(t *testing.T, n int, mod func(*Config)) []*clusterNode {
	t.Helper()
	dsn := postgresDB(t)
	var nodes []*clusterNode
	for i := range n {
		cfg := testConfig(t, t.TempDir())
		cfg.explicit = map[string]bool{"data_dir": true, "admin.listen": true, "provisioning.http_listen": true,
			"provisioning.tftp_listen": true, "sip.listen": true, "admin.initial_password": true, "sip.domain": true}
		cfg.Store = store.Config{Driver: store.DriverPostgres, DSN: dsn}
		cfg.Cluster.Node = "n" + string(rune('1'+i))
		mod(&cfg)
		nd := &clusterNode{name: cfg.Cluster.Node}
		nd.addrs, nd.stop = startDaemon(t, cfg, Options{Demo: true, onBuilt: func(x *app) { nd.a = x }})
		nodes = append(nodes, nd)
	}
	return nodes
}

// TestClusterCallHandedToHoldingNode: bob's phone registers over TCP with
// n2, alice's over UDP from behind a NAT (its Contact is not the address
// it sends from); carol, on n1, calls each. Only n2 reaches them
// (through the connection bob opened, the mapping alice's NAT made toward
// n2), so n1 hands the INVITE to n2, signed with the cluster secret; n2
// record-routes and delivers it over the phone's own flow. Each call is
// answered, ACKed and hung up across both nodes. A hand-off not signed
// with the secret is refused.
func TestClusterCallHandedToHoldingNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	const secret = "test-cluster-secret-0123456789"
	nodes := startClusterWith(t, 2, func(c *Config) { c.Cluster.Secret = secret })
	n1, n2 := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	carol := newVMPhone(t, n1.addrs.SIPUDP[0], "1003")
	var bob *flowPhone
	for i, tc := range []struct{ user, pass, transport, registrar string }{
		{"1002", "bob-sip", "tcp", n2.addrs.SIPTCP[0]},
		{"1001", "alice-sip", "udp", n2.addrs.SIPUDP[0]},
	} {
		callee := newFlowPhone(t, tc.user, tc.transport)
		if tc.transport == "tcp" {
			bob = callee
		}
		if code := callee.register(t, ctx, tc.registrar, tc.pass); code != 200 {
			t.Fatalf("%s REGISTER over %s on n2 = %d", tc.user, tc.transport, code)
		}
		aor := "sip:" + tc.user + "@test.lan"
		waitFor(t, tc.user+"'s binding in the shared store, held by n2", func() bool {
			bs, err := n1.a.cluster.AORBindings(ctx, aor, time.Now())
			return err == nil && len(bs) == 1 && bs[0].Holder == "n2" && strings.EqualFold(bs[0].Transport, tc.transport)
		})

		to := sip.Uri{Scheme: "sip", User: tc.user, Host: "test.lan"}
		req := sip.NewRequest(sip.INVITE, to)
		req.SetDestination(carol.registrar.HostPort())
		from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "1003", Host: "test.lan"}, Params: sip.NewParams()}
		from.Params.Add("tag", sip.GenerateTagN(8))
		req.AppendHeader(from)
		req.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
		d, err := carol.dc.WriteInvite(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.WaitAnswer(ctx, sipgo.AnswerOptions{Username: "1003", Password: "carol-sip"}); err != nil {
			t.Fatalf("carol on n1 calling %s on n2: %v (handoffs sent %v, n2 accepted %v gone %v refused %v)", tc.user, err,
				metricVec(t, n1, "hotdesk_sip_proxy_handoffs_total", "sent"), metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "accepted"),
				metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "gone"), metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "refused"))
		}
		inv := <-callee.invites
		if inv.GetHeader("X-Hotdesk-Handoff") != nil {
			t.Error("the hand-off signature reached the phone")
		}
		if tc.transport == "udp" && inv.Source() != n2.addrs.SIPUDP[0] {
			t.Errorf("%s's INVITE came from %s, want n2's socket %s (the NAT mapping leads there)", tc.user, inv.Source(), n2.addrs.SIPUDP[0])
		}
		var rr []string
		for _, h := range inv.GetHeaders("Record-Route") {
			rr = append(rr, h.Value())
		}
		n2addr := n2.addrs.SIPUDP[0]
		if tc.transport == "tcp" {
			n2addr = n2.addrs.SIPTCP[0]
		}
		if len(rr) < 2 || !strings.Contains(rr[0], portString(t, n2addr)) {
			t.Errorf("%s's INVITE Record-Route %v: want n2 (%s) first, then n1", tc.user, rr, n2addr)
		}
		if err := d.Ack(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case <-callee.acks:
		case <-ctx.Done():
			t.Fatalf("%s never got the ACK", tc.user)
		}
		if err := d.Bye(ctx); err != nil {
			t.Fatalf("carol's BYE across the nodes: %v", err)
		}
		select {
		case <-callee.byes:
		case <-ctx.Done():
			t.Fatalf("%s never got the BYE", tc.user)
		}
		if got := metricVec(t, n1, "hotdesk_sip_proxy_handoffs_total", "sent"); got != float64(i+1) {
			t.Errorf("n1 handoffs sent = %v, want %d", got, i+1)
		}
		if got := metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "accepted"); got != float64(i+1) {
			t.Errorf("n2 handoffs accepted = %v, want %d", got, i+1)
		}
	}

	// An outsider posing as a node: an INVITE for bob's contact whose
	// hand-off header is not signed with the secret.
	to := sip.Uri{Scheme: "sip", User: "1002", Host: "test.lan"}
	forged := sip.NewRequest(sip.INVITE, bob.contact())
	forged.SetDestination(n2.addrs.SIPTCP[0])
	ff := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "mallory", Host: "test.lan"}, Params: sip.NewParams()}
	ff.Params.Add("tag", sip.GenerateTagN(8))
	forged.AppendHeader(ff)
	forged.AppendHeader(&sip.ToHeader{Address: to, Params: sip.NewParams()})
	forged.AppendHeader(sip.NewHeader("X-Hotdesk-Handoff", fmt.Sprintf("node=n1;aor=sip%%3A1002%%40test.lan;t=%d;sig=%064x",
		time.Now().Unix(), 1)))
	res, err := bob.cli.Do(ctx, forged)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 403 {
		t.Fatalf("forged hand-off to n2 = %d %s, want 403", res.StatusCode, res.Reason)
	}
	if got := metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "refused"); got != 1 {
		t.Errorf("n2 handoffs refused = %v, want 1", got)
	}
	select {
	case r := <-bob.invites:
		t.Fatalf("bob was rung by the forged hand-off: %s", r.StartLine())
	default:
	}
}

// metricVec reads one labelled child of a node's counter.
func metricVec(t *testing.T, nd *clusterNode, name, label string) float64 {
	t.Helper()
	mfs, err := nd.a.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func portString(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return ":" + p
}

// flowPhone is a phone only the node it registered with reaches: over
// TCP it answers calls on the connection it opened (its Contact names a
// port nothing listens on); over UDP it sits behind a NAT (its Contact
// names an address it does not send from), reached only at its source.
type flowPhone struct {
	user, transport string
	ua              *sipgo.UserAgent
	cli             *sipgo.Client
	invites         chan *sip.Request
	acks            chan struct{}
	byes            chan struct{}
}

func newFlowPhone(t *testing.T, user, transport string) *flowPhone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("Yealink SIP-T46S 66.86.0.15"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &flowPhone{user: user, transport: transport, ua: ua, invites: make(chan *sip.Request, 4),
		acks: make(chan struct{}, 4), byes: make(chan struct{}, 4)}
	srv.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
		p.invites <- req
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		res.To().Params.Add("tag", sip.GenerateTagN(8))
		res.AppendHeader(&sip.ContactHeader{Address: p.contact()})
		_ = tx.Respond(res)
	})
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) { p.acks <- struct{}{} })
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		p.byes <- struct{}{}
	})
	if transport == "tcp" {
		if p.cli, err = sipgo.NewClient(ua); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() { _ = srv.ServeUDP(pc) }()
	waitPooled(t, ua, pc.LocalAddr().String())
	if p.cli, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(pc.LocalAddr().String())); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *flowPhone) contact() sip.Uri {
	if p.transport == "udp" {
		// Its address inside the NAT (TEST-NET-1: reaches nothing here).
		return sip.Uri{Scheme: "sip", User: p.user, Host: "192.0.2.10", Port: 5060}
	}
	u := sip.Uri{Scheme: "sip", User: p.user, Host: "127.0.0.1", Port: 9, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", "tcp")
	return u
}

func (p *flowPhone) register(t *testing.T, ctx context.Context, registrar, pass string) int {
	t.Helper()
	host, port, _ := net.SplitHostPort(registrar)
	ru := sip.Uri{Scheme: "sip", Host: host, UriParams: sip.NewParams()}
	fmt.Sscan(port, &ru.Port)
	if p.transport == "tcp" {
		ru.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(sip.REGISTER, ru)
	aor := sip.Uri{Scheme: "sip", User: p.user, Host: "test.lan"}
	from := &sip.FromHeader{Address: aor, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: aor, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: p.contact()})
	req.AppendHeader(sip.NewHeader("Expires", "300"))
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER over %s: %v", p.transport, err)
	}
	if res.StatusCode == 401 {
		req.CSeq().SeqNo++
		if res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.user, Password: pass}); err != nil {
			t.Fatalf("REGISTER over %s with auth: %v", p.transport, err)
		}
	}
	return res.StatusCode
}
