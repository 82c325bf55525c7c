package dhcp

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// recObserver records what the server reports.
type recObserver struct {
	mu   sync.Mutex
	seen []Seen
}

func (r *recObserver) Observe(_ context.Context, s Seen) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, s)
}

func (r *recObserver) all() []Seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Seen(nil), r.seen...)
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// harness is a Server driven packet by packet through handle.
type harness struct {
	t     *testing.T
	srv   *Server
	obs   *recObserver
	reg   *prometheus.Registry
	clk   *clock
	store *MemoryStore
}

const testServerID = "10.0.0.1"

func baseConfig() Config {
	c := DefaultConfig()
	c.Mode = ModeServer
	c.ServerID = testServerID
	c.Subnet = "10.0.0.0/24"
	c.Range = []string{"10.0.0.100", "10.0.0.199"}
	c.Router = "10.0.0.1"
	c.DNS = []string{"10.0.0.2"}
	c.NTP = []string{"10.0.0.3"}
	c.Domain = "office.test"
	c.LeaseTime = time.Hour
	return c
}

func newHarness(t *testing.T, cfg Config, store *MemoryStore) *harness {
	t.Helper()
	if store == nil {
		store = NewMemoryStore()
	}
	return newHarnessWith(t, cfg, store, store)
}

// newHarnessWith is newHarness over any lease store (mem may be nil).
func newHarnessWith(t *testing.T, cfg Config, leases LeaseStore, mem *MemoryStore) *harness {
	t.Helper()
	h := &harness{t: t, obs: &recObserver{}, reg: prometheus.NewRegistry(), store: mem,
		clk: &clock{t: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}}
	srv, err := New(cfg, Deps{Registerer: h.reg, Now: h.clk.now, Leases: leases, Observer: h.obs,
		BootServer: "http://10.0.0.1:8080/prov/",
		Ping:       func(context.Context, netip.Addr, time.Duration) bool { return false }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.loadLeases(context.Background()); err != nil {
		t.Fatalf("load leases: %v", err)
	}
	h.srv = srv
	return h
}

// send runs one packet through the server and returns the parsed reply.
func (h *harness) send(m *dhcpv4.DHCPv4) (*dhcpv4.DHCPv4, netip.AddrPort) {
	h.t.Helper()
	return handleMsg(h.t, h.srv, m.ToBytes(), netip.MustParseAddrPort("0.0.0.0:68"))
}

// handleMsg runs pkt through srv.handle and parses the reply, checking that
// its bytes are what dhcpv4 itself writes for the parsed message; nil when
// there is none. Safe for concurrent use.
func handleMsg(t testing.TB, srv *Server, pkt []byte, peer netip.AddrPort) (*dhcpv4.DHCPv4, netip.AddrPort) {
	t.Helper()
	raw, dst, typ := srv.handle(context.Background(), pkt, peer, newScratch())
	if raw == nil {
		return nil, dst
	}
	back, err := dhcpv4.FromBytes(raw)
	if err != nil {
		t.Fatalf("reply does not parse: %v", err)
	}
	if again := back.ToBytes(); !bytes.Equal(again, raw) {
		t.Fatalf("reply bytes differ from dhcpv4's for the same message:\n got %x\nwant %x", raw, again)
	}
	if back.MessageType() != typ || !dst.IsValid() {
		t.Fatalf("reply %v reported as %v to %v", back.MessageType(), typ, dst)
	}
	return back, dst
}

// counter reads hotdesk_dhcp_packets_total{type,result}.
func (h *harness) counter(typ, result string) float64 {
	return testutil.ToFloat64(h.srv.m.packets.WithLabelValues(typ, result))
}

func (h *harness) dropped(reason string) float64 {
	return testutil.ToFloat64(h.srv.m.dropped.WithLabelValues(reason))
}

func mac(i int) net.HardwareAddr {
	return net.HardwareAddr{0x00, 0x04, 0xf2, byte(i >> 16), byte(i >> 8), byte(i)}
}

func mustMsg(t testing.TB, m *dhcpv4.DHCPv4, err error) *dhcpv4.DHCPv4 {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func discoverMsg(t testing.TB, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.NewDiscovery(hw, mods...)
	return mustMsg(t, m, err)
}

// requestMsg builds a SELECTING-state REQUEST for ip from server sid.
func requestMsg(t testing.TB, hw net.HardwareAddr, ip, sid string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	base := []dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)}
	if ip != "" {
		base = append(base, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.ParseIP(ip))))
	}
	if sid != "" {
		base = append(base, dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.ParseIP(sid))))
	}
	m, err := dhcpv4.New(append(base, mods...)...)
	return mustMsg(t, m, err)
}

func msgOf(t testing.TB, typ dhcpv4.MessageType, hw net.HardwareAddr, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	m, err := dhcpv4.New(append([]dhcpv4.Modifier{dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(typ)}, mods...)...)
	return mustMsg(t, m, err)
}

// bind runs DISCOVER+REQUEST and returns the acknowledged address.
func (h *harness) bind(hw net.HardwareAddr, mods ...dhcpv4.Modifier) string {
	h.t.Helper()
	offer, _ := h.send(discoverMsg(h.t, hw, mods...))
	if offer == nil || offer.MessageType() != dhcpv4.MessageTypeOffer {
		h.t.Fatalf("%s: no offer: %v", hw, offer)
	}
	ip := offer.YourIPAddr.String()
	ack, _ := h.send(requestMsg(h.t, hw, ip, testServerID, mods...))
	if ack == nil || ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != ip {
		h.t.Fatalf("%s: want ACK for %s, got %v", hw, ip, ack)
	}
	return ip
}

func optStr(m *dhcpv4.DHCPv4, code uint8) string {
	return string(m.Options.Get(dhcpv4.GenericOptionCode(code)))
}

func prl(codes ...uint8) dhcpv4.Modifier {
	oc := make([]dhcpv4.OptionCode, len(codes))
	for i, c := range codes {
		oc[i] = dhcpv4.GenericOptionCode(c)
	}
	return dhcpv4.WithOption(dhcpv4.OptParameterRequestList(oc...))
}

func vendor(v string) dhcpv4.Modifier {
	return dhcpv4.WithOption(dhcpv4.OptClassIdentifier(v))
}
