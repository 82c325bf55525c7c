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
// n2; carol, on n1, calls him. Only n2 reaches bob (through the
// connection he opened), so n1 hands the INVITE to n2, signed with the
// cluster secret; n2 record-routes and delivers it over bob's connection.
// The call is answered, ACKed and hung up across both nodes. A hand-off
// not signed with the secret is refused.
func TestClusterCallHandedToHoldingNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and two daemons")
	}
	const secret = "test-cluster-secret-0123456789"
	nodes := startClusterWith(t, 2, func(c *Config) { c.Cluster.Secret = secret })
	n1, n2 := nodes[0], nodes[1]
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()

	bob := newTCPPhone(t, "1002")
	if code := bob.register(t, ctx, n2.addrs.SIPTCP[0], "bob-sip"); code != 200 {
		t.Fatalf("bob REGISTER over TCP on n2 = %d", code)
	}
	waitFor(t, "bob's TCP binding in the shared store, held by n2", func() bool {
		bs, err := n1.a.cluster.AORBindings(ctx, "sip:1002@test.lan", time.Now())
		return err == nil && len(bs) == 1 && bs[0].Holder == "n2" && strings.EqualFold(bs[0].Transport, "TCP")
	})

	carol := newVMPhone(t, n1.addrs.SIPUDP[0], "1003")
	to := sip.Uri{Scheme: "sip", User: "1002", Host: "test.lan"}
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
		bs, _ := n1.a.cluster.AORBindings(ctx, "sip:1002@test.lan", time.Now())
		t.Fatalf("carol on n1 calling bob on n2: %v (bindings %+v; handoffs sent %v, n2 accepted %v gone %v refused %v)", err, bs,
			metricVec(t, n1, "hotdesk_sip_proxy_handoffs_total", "sent"), metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "accepted"),
			metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "gone"), metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "refused"))
	}
	inv := <-bob.invites
	if inv.GetHeader("X-Hotdesk-Handoff") != nil {
		t.Error("the hand-off signature reached the phone")
	}
	var rr []string
	for _, h := range inv.GetHeaders("Record-Route") {
		rr = append(rr, h.Value())
	}
	if len(rr) < 2 || !strings.Contains(rr[0], portString(t, n2.addrs.SIPTCP[0])) {
		t.Errorf("bob's INVITE Record-Route %v: want n2 (%s) first, then n1", rr, n2.addrs.SIPTCP[0])
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-bob.acks:
	case <-ctx.Done():
		t.Fatal("bob never got the ACK")
	}
	if err := d.Bye(ctx); err != nil {
		t.Fatalf("carol's BYE across the nodes: %v", err)
	}
	select {
	case <-bob.byes:
	case <-ctx.Done():
		t.Fatal("bob never got the BYE")
	}
	if got := metricVec(t, n1, "hotdesk_sip_proxy_handoffs_total", "sent"); got != 1 {
		t.Errorf("n1 handoffs sent = %v, want 1", got)
	}
	if got := metricVec(t, n2, "hotdesk_sip_proxy_handoffs_total", "accepted"); got != 1 {
		t.Errorf("n2 handoffs accepted = %v, want 1", got)
	}

	// An outsider posing as a node: the same INVITE, but its hand-off
	// header is not signed with the secret.
	forged := sip.NewRequest(sip.INVITE, inv.Recipient)
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

// tcpPhone registers over a TCP connection it opens and answers calls on
// it: its Contact names a port nothing listens on, so only that
// connection reaches it.
type tcpPhone struct {
	user    string
	ua      *sipgo.UserAgent
	cli     *sipgo.Client
	invites chan *sip.Request
	acks    chan struct{}
	byes    chan struct{}
}

func newTCPPhone(t *testing.T, user string) *tcpPhone {
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
	p := &tcpPhone{user: user, ua: ua, invites: make(chan *sip.Request, 4), acks: make(chan struct{}, 4),
		byes: make(chan struct{}, 4)}
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
	if p.cli, err = sipgo.NewClient(ua); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *tcpPhone) contact() sip.Uri {
	u := sip.Uri{Scheme: "sip", User: p.user, Host: "127.0.0.1", Port: 9, UriParams: sip.NewParams()}
	u.UriParams.Add("transport", "tcp")
	return u
}

func (p *tcpPhone) register(t *testing.T, ctx context.Context, registrar, pass string) int {
	t.Helper()
	host, port, _ := net.SplitHostPort(registrar)
	ru := sip.Uri{Scheme: "sip", Host: host, UriParams: sip.NewParams()}
	fmt.Sscan(port, &ru.Port)
	ru.UriParams.Add("transport", "tcp")
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
		t.Fatalf("REGISTER over TCP: %v", err)
	}
	if res.StatusCode == 401 {
		req.CSeq().SeqNo++
		if res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.user, Password: pass}); err != nil {
			t.Fatalf("REGISTER over TCP with auth: %v", err)
		}
	}
	return res.StatusCode
}
