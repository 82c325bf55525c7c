package dhcp

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestDORA(t *testing.T) {
	h := newHarness(t, baseConfig(), nil)
	hw := mac(1)
	offer, dst := h.send(discoverMsg(t, hw, dhcpv4.WithOption(dhcpv4.OptHostName("vvx-1"))))
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		t.Fatalf("want OFFER, got %v", offer)
	}
	if got := offer.YourIPAddr.String(); got != "10.0.0.100" {
		t.Errorf("yiaddr = %s, want 10.0.0.100", got)
	}
	if got := offer.ServerIdentifier().String(); got != testServerID {
		t.Errorf("server id = %s", got)
	}
	if got := offer.IPAddressLeaseTime(0); got != time.Hour {
		t.Errorf("lease time = %v", got)
	}
	if got := net.IP(offer.SubnetMask()).String(); got != "255.255.255.0" {
		t.Errorf("mask = %s", got)
	}
	if dst.String() != "255.255.255.255:68" {
		t.Errorf("offer to %s, want broadcast", dst)
	}
	ack, _ := h.send(requestMsg(t, hw, "10.0.0.100", testServerID))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != "10.0.0.100" {
		t.Fatalf("want ACK 10.0.0.100, got %v", ack)
	}
	leases, _ := h.store.LoadLeases(context.Background())
	if len(leases) != 1 || leases[0].MAC != hw.String() || leases[0].IP.String() != "10.0.0.100" ||
		leases[0].State != StateBound || !leases[0].Expires.Equal(h.clk.now().Add(time.Hour)) {
		t.Errorf("stored leases = %+v", leases)
	}
	seen := h.obs.all()
	if len(seen) != 2 || seen[0].MsgType != MsgDiscover || seen[1].MsgType != MsgRequest ||
		seen[0].Hostname != "vvx-1" || seen[1].IP.String() != "10.0.0.100" || seen[1].MAC != hw.String() {
		t.Errorf("observer saw %+v", seen)
	}
	if h.counter("discover", "offer") != 1 || h.counter("request", "ack") != 1 {
		t.Errorf("packet counters wrong")
	}
}

func TestVendorClassAndOption55(t *testing.T) {
	cfg := baseConfig()
	cfg.Option150 = []string{"10.0.0.5", "10.0.0.6"}
	cfg.Option43 = map[int]string{1: "abc", 2: "hex:0102"}
	cfg.TimeOffset = -5 * time.Hour
	cfg.TZPosix = "EST5EDT"
	cfg.TZName = "America/New_York"
	cfg.VendorClasses = []VendorClass{
		{Match: "Polycom-*", Options: map[int]string{160: "http://10.0.0.1:8080/polycom/"}},
		{Match: "yealink", Options: map[int]string{66: "https://prov.office.test/yealink/"}},
		{Match: "Cisco Systems", Option43: map[int]string{9: "cisco"}},
	}
	h := newHarness(t, cfg, nil)
	tests := []struct {
		name string
		mods []dhcpv4.Modifier
		want map[uint8]string // "" = must be absent
	}{
		{"polycom gets forced 160 and requested 66", []dhcpv4.Modifier{vendor("Polycom-VVX400"), prl(1, 3, 66)},
			map[uint8]string{66: "http://10.0.0.1:8080/prov/", 160: "http://10.0.0.1:8080/polycom/", 150: "", 42: "", 3: "\x0a\x00\x00\x01"}},
		{"glob is case-insensitive", []dhcpv4.Modifier{vendor("polycom-trio8800"), prl(1)},
			map[uint8]string{160: "http://10.0.0.1:8080/polycom/", 66: ""}},
		{"yealink substring overrides 66", []dhcpv4.Modifier{vendor("yealink SIP-T46U"), prl(1, 66)},
			map[uint8]string{66: "https://prov.office.test/yealink/", 160: ""}},
		{"cisco 150 by option 55, 43 by class", []dhcpv4.Modifier{vendor("Cisco Systems, Inc. IP Phone CP-7941G"), prl(150)},
			map[uint8]string{150: "\x0a\x00\x00\x05\x0a\x00\x00\x06", 43: "\x09\x05cisco", 66: ""}},
		{"unknown class asks nothing special", []dhcpv4.Modifier{vendor("MSFT 5.0"), prl(1, 3, 6)},
			map[uint8]string{66: "", 160: "", 150: "", 43: "", 6: "\x0a\x00\x00\x02", 15: "office.test"}},
		{"option 55 picks 42/2/100/101/43", []dhcpv4.Modifier{prl(42, 2, 100, 101, 43)},
			map[uint8]string{42: "\x0a\x00\x00\x03", 2: "\xff\xff\xb9\xb0", 100: "EST5EDT", 101: "America/New_York",
				43: "\x01\x03abc\x02\x02\x01\x02", 66: ""}},
		{"no option 55 gets everything configured", []dhcpv4.Modifier{dhcpv4.WithoutOption(dhcpv4.OptionParameterRequestList)},
			map[uint8]string{66: "http://10.0.0.1:8080/prov/", 150: "\x0a\x00\x00\x05\x0a\x00\x00\x06", 42: "\x0a\x00\x00\x03", 160: ""}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, typ := range []string{"offer", "inform"} {
				var reply *dhcpv4.DHCPv4
				if typ == "offer" {
					reply, _ = h.send(discoverMsg(t, mac(100+i), tc.mods...))
				} else {
					reply, _ = h.send(msgOf(t, dhcpv4.MessageTypeInform, mac(100+i),
						append([]dhcpv4.Modifier{dhcpv4.WithClientIP(net.ParseIP("10.0.0.50"))}, tc.mods...)...))
				}
				if reply == nil {
					t.Fatalf("%s: no reply", typ)
				}
				for code, want := range tc.want {
					if got := optStr(reply, code); got != want {
						t.Errorf("%s: option %d = %q, want %q", typ, code, got, want)
					}
				}
			}
		})
	}
}

func TestReservations(t *testing.T) {
	cfg := baseConfig()
	cfg.Range = []string{"10.0.0.100", "10.0.0.101"}
	cfg.Reservations = []Reservation{
		{MAC: "00:04:F2:AA:BB:CC", Address: "10.0.0.101", Hostname: "lobby"}, // inside the range
		{MAC: "00:04:f2:aa:bb:cd", Address: "10.0.0.20"},                     // outside it
	}
	h := newHarness(t, cfg, nil)
	resv := net.HardwareAddr{0x00, 0x04, 0xf2, 0xaa, 0xbb, 0xcc}
	if ip := h.bind(resv); ip != "10.0.0.101" {
		t.Errorf("reserved MAC got %s", ip)
	}
	if ip := h.bind(net.HardwareAddr{0x00, 0x04, 0xf2, 0xaa, 0xbb, 0xcd}); ip != "10.0.0.20" {
		t.Errorf("reservation outside range got %s", ip)
	}
	offer, _ := h.send(discoverMsg(t, resv))
	if optStr(offer, 12) != "lobby" {
		t.Errorf("hostname option = %q", optStr(offer, 12))
	}
	// Two ordinary clients: one gets .100, the other finds the pool exhausted
	// because .101 is reserved.
	if ip := h.bind(mac(1)); ip != "10.0.0.100" {
		t.Errorf("dynamic client got %s", ip)
	}
	if offer, _ := h.send(discoverMsg(t, mac(2))); offer != nil {
		t.Errorf("reserved address offered to a stranger: %s", offer.YourIPAddr)
	}
	// A stranger asking for the reserved address by INIT-REBOOT is refused.
	if nak, _ := h.send(requestMsg(t, mac(3), "10.0.0.101", "")); nak == nil || nak.MessageType() != dhcpv4.MessageTypeNak {
		t.Errorf("want NAK for a reserved address, got %v", nak)
	}
}

func TestExhaustionAndOfferHold(t *testing.T) {
	cfg := baseConfig()
	cfg.Range = []string{"10.0.0.100", "10.0.0.102"}
	h := newHarness(t, cfg, nil)
	for i := range 3 {
		if offer, _ := h.send(discoverMsg(t, mac(i))); offer == nil {
			t.Fatalf("client %d: no offer", i)
		}
	}
	if offer, _ := h.send(discoverMsg(t, mac(9))); offer != nil {
		t.Fatalf("offered %s from an exhausted pool", offer.YourIPAddr)
	}
	if h.counter("discover", "exhausted") != 1 {
		t.Errorf("exhausted not counted")
	}
	h.clk.add(cfg.OfferHold + time.Second) // untaken offers lapse
	if offer, _ := h.send(discoverMsg(t, mac(9))); offer == nil {
		t.Fatalf("no offer after the offer hold lapsed")
	}
}

func TestDecline(t *testing.T) {
	cfg := baseConfig()
	cfg.Range = []string{"10.0.0.100", "10.0.0.100"}
	cfg.DeclineHold = 10 * time.Minute
	h := newHarness(t, cfg, nil)
	ip := h.bind(mac(1))
	declineFrom := func(sid string) {
		h.send(msgOf(t, dhcpv4.MessageTypeDecline, mac(1),
			dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip))),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(sid)))))
	}
	declineFrom("10.9.9.9") // spoofed server id: dropped, lease kept
	if h.dropped("server_id") != 1 {
		t.Errorf("spoofed DECLINE not dropped")
	}
	declineFrom(testServerID)
	if h.counter("decline", "declined") != 1 {
		t.Fatalf("DECLINE not counted")
	}
	for _, m := range []net.HardwareAddr{mac(1), mac(2)} {
		if offer, _ := h.send(discoverMsg(t, m)); offer != nil {
			t.Errorf("declined address offered to %s", m)
		}
	}
	leases, _ := h.store.LoadLeases(context.Background())
	if len(leases) != 1 || leases[0].State != StateDeclined {
		t.Errorf("stored = %+v, want one declined", leases)
	}
	h.clk.add(cfg.DeclineHold + time.Second)
	if offer, _ := h.send(discoverMsg(t, mac(2))); offer == nil || offer.YourIPAddr.String() != ip {
		t.Errorf("address not back after decline_hold: %v", offer)
	}
}

func TestRelease(t *testing.T) {
	cfg := baseConfig()
	cfg.Range = []string{"10.0.0.100", "10.0.0.100"}
	h := newHarness(t, cfg, nil)
	ip := h.bind(mac(1))
	if offer, _ := h.send(discoverMsg(t, mac(2))); offer != nil {
		t.Fatalf("bound address offered to another client")
	}
	h.send(msgOf(t, dhcpv4.MessageTypeRelease, mac(1), dhcpv4.WithClientIP(net.ParseIP(ip)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(testServerID)))))
	if h.counter("release", "released") != 1 {
		t.Fatalf("RELEASE not counted")
	}
	if leases, _ := h.store.LoadLeases(context.Background()); len(leases) != 0 {
		t.Errorf("lease still stored: %+v", leases)
	}
	if got := h.bind(mac(2)); got != ip {
		t.Errorf("released address not reused: %s", got)
	}
}

func TestRequestStates(t *testing.T) {
	h := newHarness(t, baseConfig(), nil)
	ip := h.bind(mac(1))
	type tc struct {
		name string
		msg  *dhcpv4.DHCPv4
		want dhcpv4.MessageType // MessageTypeNone = no reply
	}
	for _, c := range []tc{
		{"init-reboot own address", requestMsg(t, mac(1), ip, ""), dhcpv4.MessageTypeAck},
		{"init-reboot foreign subnet", requestMsg(t, mac(1), "192.168.1.50", ""), dhcpv4.MessageTypeNak},
		{"init-reboot address of another client", requestMsg(t, mac(2), ip, ""), dhcpv4.MessageTypeNak},
		{"init-reboot subnet address outside range", requestMsg(t, mac(3), "10.0.0.30", ""), dhcpv4.MessageTypeNak},
		{"renewing", msgOf(t, dhcpv4.MessageTypeRequest, mac(1), dhcpv4.WithClientIP(net.ParseIP(ip))), dhcpv4.MessageTypeAck},
		{"renewing someone else's", msgOf(t, dhcpv4.MessageTypeRequest, mac(4), dhcpv4.WithClientIP(net.ParseIP(ip))), dhcpv4.MessageTypeNak},
		{"selecting another server", requestMsg(t, mac(5), "10.0.0.150", "10.0.0.254"), dhcpv4.MessageTypeNone},
		{"selecting without offer but free address", requestMsg(t, mac(6), "10.0.0.150", testServerID), dhcpv4.MessageTypeAck},
	} {
		t.Run(c.name, func(t *testing.T) {
			reply, dst := h.send(c.msg)
			switch {
			case c.want == dhcpv4.MessageTypeNone && reply != nil:
				t.Fatalf("want silence, got %s", reply.MessageType())
			case c.want != dhcpv4.MessageTypeNone && (reply == nil || reply.MessageType() != c.want):
				t.Fatalf("want %s, got %v", c.want, reply)
			case c.want == dhcpv4.MessageTypeNak && (dst.String() != "255.255.255.255:68" || !reply.YourIPAddr.IsUnspecified()):
				t.Errorf("NAK to %s with yiaddr %s", dst, reply.YourIPAddr)
			}
		})
	}
	// The client that selected another server loses its offer.
	offer, _ := h.send(discoverMsg(t, mac(7)))
	h.send(requestMsg(t, mac(7), offer.YourIPAddr.String(), "10.0.0.254"))
	if offer2, _ := h.send(discoverMsg(t, mac(8), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)))); offer2 == nil || !offer2.YourIPAddr.Equal(offer.YourIPAddr) {
		t.Errorf("offer not freed after the client chose another server")
	}
}

func TestInformOnlyNeverOffers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = ModeInform
	cfg.ServerID = "10.0.0.9"
	cfg.VendorClasses = []VendorClass{{Match: "Polycom-*", Options: map[int]string{160: "http://prov/polycom"}}}
	h := newHarness(t, cfg, nil)
	if r, _ := h.send(discoverMsg(t, mac(1), vendor("Polycom-VVX400"))); r != nil {
		t.Fatalf("inform mode answered a DISCOVER")
	}
	if r, _ := h.send(requestMsg(t, mac(1), "10.0.0.100", "")); r != nil {
		t.Fatalf("inform mode answered a REQUEST")
	}
	inf := msgOf(t, dhcpv4.MessageTypeInform, mac(1), vendor("Polycom-VVX400"), prl(66, 160),
		dhcpv4.WithClientIP(net.ParseIP("192.168.5.20")))
	ack, dst := h.send(inf)
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("want INFORM ACK, got %v", ack)
	}
	if !ack.YourIPAddr.IsUnspecified() || ack.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		t.Errorf("INFORM ACK carries an address or a lease time")
	}
	if optStr(ack, 66) != "http://10.0.0.1:8080/prov/" || optStr(ack, 160) != "http://prov/polycom" {
		t.Errorf("options 66/160 = %q %q", optStr(ack, 66), optStr(ack, 160))
	}
	if dst.String() != "192.168.5.20:68" {
		t.Errorf("INFORM ACK sent to %s, want the client's ciaddr", dst)
	}
	if seen := h.obs.all(); len(seen) != 3 || seen[2].MsgType != MsgInform || seen[2].IP.String() != "192.168.5.20" ||
		seen[0].VendorClass != "Polycom-VVX400" {
		t.Errorf("observer saw %+v", seen)
	}
	if h.counter("discover", "ignored") != 1 || h.counter("inform", "ack") != 1 {
		t.Errorf("counters wrong")
	}
}

func TestConcurrentDiscoversNeverShare(t *testing.T) {
	cfg := baseConfig()
	cfg.Range = []string{"10.0.0.10", "10.0.0.209"} // 200 addresses, 300 clients
	h := newHarness(t, cfg, nil)
	const clients, rounds = 300, 3
	var mu sync.Mutex
	owner := map[string]string{}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			hw := mac(i)
			for range rounds {
				raw, _ := handleMsg(t, h.srv, discoverMsg(t, hw).ToBytes(), netip.AddrPort{})
				if raw == nil {
					continue
				}
				ip := raw.YourIPAddr.String()
				ack, _ := handleMsg(t, h.srv, requestMsg(t, hw, ip, testServerID).ToBytes(), netip.AddrPort{})
				if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck {
					continue
				}
				mu.Lock()
				if o, taken := owner[ip]; taken && o != hw.String() {
					t.Errorf("%s acknowledged to %s and %s", ip, o, hw)
				}
				owner[ip] = hw.String()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(owner) != 200 {
		t.Errorf("%d addresses bound, want all 200", len(owner))
	}
	leases, _ := h.store.LoadLeases(context.Background())
	byIP := map[netip.Addr]string{}
	for _, l := range leases {
		if o, dup := byIP[l.IP]; dup {
			t.Errorf("store holds %s for %s and %s", l.IP, o, l.MAC)
		}
		byIP[l.IP] = l.MAC
	}
}

func TestRestartKeepsLeases(t *testing.T) {
	store := NewMemoryStore()
	h1 := newHarness(t, baseConfig(), store)
	got := map[string]string{}
	for i := range 20 {
		got[mac(i).String()] = h1.bind(mac(i))
	}
	h2 := newHarness(t, baseConfig(), store) // a restarted daemon on the same store
	for i := range 20 {
		offer, _ := h2.send(discoverMsg(t, mac(i)))
		if offer == nil || offer.YourIPAddr.String() != got[mac(i).String()] {
			t.Errorf("%s: offered %v after restart, had %s", mac(i), offer, got[mac(i).String()])
		}
	}
	offer, _ := h2.send(discoverMsg(t, mac(999)))
	for m, ip := range got {
		if offer.YourIPAddr.String() == ip {
			t.Errorf("new client offered %s, still leased to %s", ip, m)
		}
	}
	// Lease expiry: after the lease time, a returning client still gets its old
	// address back if nobody took it.
	h2.clk.add(2 * time.Hour)
	if offer, _ := h2.send(discoverMsg(t, mac(3))); offer == nil || offer.YourIPAddr.String() != got[mac(3).String()] {
		t.Errorf("expired lease not preferred for its old owner")
	}
}

func TestHostilePacketsDropped(t *testing.T) {
	h := newHarness(t, baseConfig(), nil)
	good := discoverMsg(t, mac(1)).ToBytes()
	reply := func() []byte {
		m := discoverMsg(t, mac(1))
		m.OpCode = dhcpv4.OpcodeBootReply
		return m.ToBytes()
	}()
	ethHW := func(mod func(*dhcpv4.DHCPv4)) []byte { m := discoverMsg(t, mac(1)); mod(m); return m.ToBytes() }
	hugePRL := discoverMsg(t, mac(1))
	codes := make([]dhcpv4.OptionCode, 255)
	for i := range codes {
		codes[i] = dhcpv4.GenericOptionCode(uint8(i))
	}
	hugePRL.UpdateOption(dhcpv4.OptParameterRequestList(codes...))
	for i := 200; i < 254; i++ {
		hugePRL.UpdateOption(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(uint8(i)), bytes.Repeat([]byte{'x'}, 200)))
	}
	for _, c := range []struct {
		name, reason string
		pkt          []byte
	}{
		{"truncated", "malformed", good[:100]},
		{"no end option", "malformed", good[:241]},
		{"bad cookie", "malformed", append(append(append([]byte{}, good[:236]...), 1, 2, 3, 4), good[240:]...)},
		{"wrong op", "op", reply},
		{"not ethernet", "hwtype", ethHW(func(m *dhcpv4.DHCPv4) { m.HWType = 6 })},
		{"long hwaddr", "hwtype", ethHW(func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = append(m.ClientHWAddr, 1, 2) })},
		{"multicast chaddr", "chaddr", ethHW(func(m *dhcpv4.DHCPv4) { m.ClientHWAddr = net.HardwareAddr{1, 0, 0x5e, 0, 0, 1} })},
		{"no message type", "no_type", ethHW(func(m *dhcpv4.DHCPv4) { m.Options.Del(dhcpv4.OptionDHCPMessageType) })},
		{"server message", "type", ethHW(func(m *dhcpv4.DHCPv4) { m.UpdateOption(dhcpv4.OptMessageType(dhcpv4.MessageTypeOffer)) })},
		{"hop loop", "hops", ethHW(func(m *dhcpv4.DHCPv4) { m.HopCount = 200 })},
		{"huge option list", "oversize", hugePRL.ToBytes()},
		{"relay from unknown subnet", "no_subnet", ethHW(func(m *dhcpv4.DHCPv4) { m.GatewayIPAddr = net.ParseIP("172.16.0.1") })},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := h.dropped(c.reason)
			if r, _, _ := h.srv.handle(context.Background(), c.pkt, netip.AddrPort{}, newScratch()); r != nil {
				t.Fatalf("answered a hostile packet")
			}
			if h.dropped(c.reason) != before+1 {
				t.Errorf("reason %q not counted", c.reason)
			}
		})
	}
	// The server still works afterwards.
	if ip := h.bind(mac(2)); ip == "" {
		t.Fatal("server stopped working")
	}
}

func TestMetricsLint(t *testing.T) {
	h := newHarness(t, baseConfig(), nil)
	h.bind(mac(1))
	problems, err := testutil.GatherAndLint(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	n, err := testutil.GatherAndCount(h.reg, "hotdesk_dhcp_leases")
	if err != nil || n != 2 {
		t.Errorf("hotdesk_dhcp_leases series = %d, %v", n, err)
	}
	want := `
# HELP hotdesk_dhcp_leases Addresses of each pool's dynamic range in use (offered, bound, declined or reserved) and free.
# TYPE hotdesk_dhcp_leases gauge
hotdesk_dhcp_leases{pool="0",state="free"} 99
hotdesk_dhcp_leases{pool="0",state="used"} 1
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "hotdesk_dhcp_leases"); err != nil {
		t.Error(err)
	}
}

func TestPingBeforeOffer(t *testing.T) {
	cfg := baseConfig()
	cfg.PingBeforeOffer = true
	cfg.Range = []string{"10.0.0.100", "10.0.0.101"}
	h := newHarness(t, cfg, nil)
	h.srv.ping = func(_ context.Context, ip netip.Addr, _ time.Duration) bool { return ip.String() == "10.0.0.100" }
	offer, _ := h.send(discoverMsg(t, mac(1)))
	if offer == nil || offer.YourIPAddr.String() != "10.0.0.101" {
		t.Fatalf("want 10.0.0.101 (10.0.0.100 answers ping), got %v", offer)
	}
	if testutil.ToFloat64(h.srv.m.conflicts) != 1 {
		t.Errorf("conflict not counted")
	}
}

func TestServeOnSocket(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Mode = ModeInform
	cfg.Listen = "127.0.0.1:0"
	cfg.Workers = 2
	conn, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	srv, err := New(cfg, Deps{BootServer: "http://127.0.0.1/prov/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, conn) }()
	cli, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	inf := msgOf(t, dhcpv4.MessageTypeInform, mac(1), prl(66))
	if _, err := cli.WriteTo(inf.ToBytes(), conn.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = cli.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, _, err := cli.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	ack, err := dhcpv4.FromBytes(buf[:n])
	if err != nil || ack.MessageType() != dhcpv4.MessageTypeAck || optStr(ack, 66) != "http://127.0.0.1/prov/" {
		t.Fatalf("reply %v, %v", ack, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

// TestReplyEchoesRequest: a reply copies what RFC 2131, 3046 and 6842 say it
// must from the request (xid, flags, chaddr, giaddr, relay agent
// information, client identifier): the reply is built without drawing a
// transaction ID of its own.
func TestReplyEchoesRequest(t *testing.T) {
	h := newHarness(t, baseConfig(), nil)
	hw := mac(7)
	relay := dhcpv4.OptRelayAgentInfo(dhcpv4.OptGeneric(dhcpv4.GenericOptionCode(1), []byte("port7")))
	cid := dhcpv4.OptClientIdentifier([]byte{1, 0, 0, 0, 0, 0, 7})
	req := discoverMsg(t, hw, dhcpv4.WithOption(relay), dhcpv4.WithOption(cid),
		dhcpv4.WithBroadcast(true), dhcpv4.WithTransactionID(dhcpv4.TransactionID{1, 2, 3, 4}))
	offer, _ := h.send(req)
	if offer == nil {
		t.Fatal("no OFFER")
	}
	for _, c := range []struct {
		name      string
		got, want string
	}{
		{"op", offer.OpCode.String(), dhcpv4.OpcodeBootReply.String()},
		{"xid", offer.TransactionID.String(), req.TransactionID.String()},
		{"flags", fmt.Sprint(offer.Flags), fmt.Sprint(req.Flags)},
		{"chaddr", offer.ClientHWAddr.String(), hw.String()},
		{"giaddr", offer.GatewayIPAddr.String(), req.GatewayIPAddr.String()},
		{"option 82", fmt.Sprintf("%x", offer.Options.Get(dhcpv4.OptionRelayAgentInformation)), fmt.Sprintf("%x", relay.Value.ToBytes())},
		{"option 61", fmt.Sprintf("%x", offer.Options.Get(dhcpv4.OptionClientIdentifier)), "01000000000007"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.name, c.got, c.want)
		}
	}
}
