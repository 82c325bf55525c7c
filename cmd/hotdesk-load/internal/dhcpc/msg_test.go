package dhcpc

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

var testMAC = net.HardwareAddr{0x00, 0x04, 0xf3, 0x00, 0x00, 0x01}

// raw is a 240-byte header with the cookie, followed by opts.
func raw(opts ...byte) []byte {
	b := make([]byte, minLen, minLen+len(opts))
	b[0], b[1], b[2] = OpReply, 1, 6
	copy(b[28:], testMAC)
	copy(b[headerLen:], magicCookie[:])
	return append(b, opts...)
}

func TestParse(t *testing.T) {
	long := bytes.Repeat([]byte("a"), 300)
	overloaded := raw(OptMsgType, 1, byte(Offer), OptOverload, 1, 1, OptEnd)
	copy(overloaded[108:], []byte{OptTFTPServer, 3, 'x', '.', 'y', OptEnd})
	bothOverloaded := raw(OptOverload, 1, 3, OptEnd)
	copy(bothOverloaded[108:], []byte{OptTFTPServer, 1, 'f'})
	copy(bothOverloaded[44:], []byte{OptTFTPServer, 1, 's', OptEnd})
	tests := []struct {
		name    string
		in      []byte
		wantErr error
		check   func(t *testing.T, m *Message)
	}{
		{"short", raw()[:239], ErrShort, nil},
		{"bad cookie", func() []byte { b := raw(OptEnd); b[236] = 0; return b }(), ErrMagic, nil},
		{"no end", raw(OptMsgType, 1, 2), ErrNoEnd, nil},
		{"only pad", raw(0, 0, 0), ErrNoEnd, nil},
		{"truncated length", raw(OptMsgType), ErrTruncated, nil},
		{"truncated value", raw(OptServerID, 4, 10, 0, 0), ErrTruncated, nil},
		{"hlen", func() []byte { b := raw(OptEnd); b[2] = 17; return b }(), ErrHLen, nil},
		{"bad overload", raw(OptOverload, 1, 4, OptEnd), ErrTruncated, nil},
		{"overload truncated", func() []byte {
			b := raw(OptOverload, 1, 1, OptEnd)
			b[108+127] = OptTFTPServer
			return b
		}(), ErrTruncated, nil},
		{"empty options", raw(OptEnd), nil, func(t *testing.T, m *Message) {
			if m.Type() != 0 || len(m.Options) != 0 {
				t.Errorf("type %v options %v", m.Type(), m.Options)
			}
		}},
		{"pads then data after end ignored", raw(0, OptMsgType, 1, 5, 0, OptEnd, 0xde, 0xad), nil, func(t *testing.T, m *Message) {
			if m.Type() != Ack || len(m.Options) != 1 {
				t.Errorf("type %v options %v", m.Type(), m.Options)
			}
		}},
		{"zero-length option", raw(OptTFTPServer, 0, OptEnd), nil, func(t *testing.T, m *Message) {
			if v, ok := m.Options[OptTFTPServer]; !ok || len(v) != 0 {
				t.Errorf("option 66 = %v, %v", v, ok)
			}
		}},
		{"long option concatenated (RFC 3396)", raw(append(append(append([]byte{OptPolycomBoot, 255}, long[:255]...),
			OptPolycomBoot, 45), append(long[255:], OptEnd)...)...), nil, func(t *testing.T, m *Message) {
			if !bytes.Equal(m.Options[OptPolycomBoot], long) {
				t.Errorf("option 160 has %d bytes", len(m.Options[OptPolycomBoot]))
			}
		}},
		{"duplicate message type is no type", raw(OptMsgType, 1, 2, OptMsgType, 1, 5, OptEnd), nil, func(t *testing.T, m *Message) {
			if m.Type() != 0 {
				t.Errorf("type = %v", m.Type())
			}
		}},
		{"overload: file", overloaded, nil, func(t *testing.T, m *Message) {
			if m.Text(OptTFTPServer) != "x.y" || m.Type() != Offer {
				t.Errorf("66 = %q type %v", m.Text(OptTFTPServer), m.Type())
			}
		}},
		{"overload: file then sname", bothOverloaded, nil, func(t *testing.T, m *Message) {
			if m.Text(OptTFTPServer) != "fs" {
				t.Errorf("66 = %q", m.Text(OptTFTPServer))
			}
		}},
		{"text trims NULs", raw(OptTFTPServer, 4, 'a', 'b', 0, 0, OptEnd), nil, func(t *testing.T, m *Message) {
			if m.Text(OptTFTPServer) != "ab" {
				t.Errorf("text = %q", m.Text(OptTFTPServer))
			}
		}},
		{"addresses and seconds", raw(OptServerID, 4, 10, 77, 0, 1, OptLeaseTime, 4, 0, 0, 0x0e, 0x10, OptRouter, 3, 1, 2, 3, OptEnd), nil,
			func(t *testing.T, m *Message) {
				if a, ok := m.Addr(OptServerID); !ok || a != netip.MustParseAddr("10.77.0.1") {
					t.Errorf("54 = %v %v", a, ok)
				}
				if d, ok := m.Seconds(OptLeaseTime); !ok || d != time.Hour {
					t.Errorf("51 = %v %v", d, ok)
				}
				if _, ok := m.Addr(OptRouter); ok {
					t.Error("3-byte router parsed as an address")
				}
				if !bytes.Equal(m.HWAddr(), testMAC) {
					t.Errorf("hw = %v", m.HWAddr())
				}
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Parse(tc.in)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if tc.check != nil && err == nil {
				tc.check(t, m)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	m := &Message{Op: OpRequest, HType: 1, HLen: 6, Hops: 1, XID: 0xdeadbeef, Secs: 3, Flags: FlagBroadcast,
		CIAddr: netip.MustParseAddr("10.0.0.1"), GIAddr: netip.MustParseAddr("10.0.0.254"),
		Options: Options{OptMsgType: {byte(Request)}, OptVendorClass: []byte("Polycom-VVX400"),
			OptPolycomBoot: bytes.Repeat([]byte("u"), 600), OptParams: DefaultParams}}
	copy(m.CHAddr[:], testMAC)
	b := m.Marshal()
	if len(b) < bootpMinLen {
		t.Errorf("%d bytes, want ≥ %d", len(b), bootpMinLen)
	}
	if b[minLen] != OptMsgType {
		t.Errorf("first option %d, want 53", b[minLen])
	}
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	want := *m
	want.YIAddr, want.SIAddr = netip.AddrFrom4([4]byte{}), netip.AddrFrom4([4]byte{})
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
	}
}

// TestInterop checks the codec against github.com/insomniacslk/dhcp both
// ways: what this package writes, that one reads, and the reverse.
func TestInterop(t *testing.T) {
	c := New(Config{Conn: newNopConn(), VendorClass: "Polycom-VVX400"})
	defer c.Close()
	req := c.discover(0x01020304, testMAC, time.Now(), c.cfg.VendorClass)
	theirs, err := dhcpv4.FromBytes(req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if theirs.MessageType() != dhcpv4.MessageTypeDiscover || theirs.TransactionID != [4]byte{1, 2, 3, 4} ||
		theirs.ClientHWAddr.String() != testMAC.String() || theirs.ClassIdentifier() != "Polycom-VVX400" ||
		!theirs.IsBroadcast() || len(theirs.ParameterRequestList()) != len(DefaultParams) {
		t.Errorf("they read our DISCOVER as %s", theirs.Summary())
	}
	offer, err := dhcpv4.NewReplyFromRequest(theirs, dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer),
		dhcpv4.WithYourIP(net.IPv4(10, 77, 128, 1)), dhcpv4.WithOption(dhcpv4.OptServerIdentifier(net.IPv4(10, 77, 0, 1))),
		dhcpv4.WithOption(dhcpv4.OptTFTPServerName("http://10.77.0.1:18080/")),
		dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(160), []byte("http://10.77.0.1:18080/polycom/")))
	if err != nil {
		t.Fatal(err)
	}
	ours, err := Parse(offer.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := acceptOffer(ours); !ok || err != nil {
		t.Fatalf("offer not accepted: %v", err)
	}
	if bs, code := BootServer(ours); bs != "http://10.77.0.1:18080/polycom/" || code != 160 {
		t.Errorf("boot server %q from %d", bs, code)
	}
	if ours.XID != 0x01020304 || ours.YIAddr != netip.MustParseAddr("10.77.128.1") {
		t.Errorf("xid %x yiaddr %v", ours.XID, ours.YIAddr)
	}
	r := c.request(0x01020304, testMAC, time.Now(), ours, c.cfg.VendorClass)
	theirReq, err := dhcpv4.FromBytes(r.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !theirReq.RequestedIPAddress().Equal(net.IPv4(10, 77, 128, 1)) || !theirReq.ServerIdentifier().Equal(net.IPv4(10, 77, 0, 1)) ||
		!theirReq.ClientIPAddr.IsUnspecified() {
		t.Errorf("they read our REQUEST as %s", theirReq.Summary())
	}
}

func TestBootServerAndURL(t *testing.T) {
	tests := []struct {
		opts     Options
		want     string
		wantCode byte
		url      string
		urlErr   bool
	}{
		{Options{OptTFTPServer: []byte("http://10.77.0.1:18080/")}, "http://10.77.0.1:18080/", 66, "http://10.77.0.1:18080/", false},
		{Options{OptTFTPServer: []byte("http://a/"), OptPolycomBoot: []byte("https://b/p\x00")}, "https://b/p", 160, "https://b/p", false},
		{Options{OptTFTPServer: []byte("10.77.0.1:8080")}, "10.77.0.1:8080", 66, "http://10.77.0.1:8080", false},
		{Options{OptPolycomBoot: []byte("  "), OptTFTPServer: []byte("h")}, "h", 66, "http://h", false},
		{Options{OptTFTPServer: []byte("tftp://10.77.0.1/")}, "tftp://10.77.0.1/", 66, "", true},
		{Options{OptTFTPServer: []byte("http://")}, "http://", 66, "", true},
		{Options{}, "", 0, "", true},
	}
	for _, tc := range tests {
		m := &Message{Options: tc.opts}
		got, code := BootServer(m)
		if got != tc.want || code != tc.wantCode {
			t.Errorf("BootServer(%q) = %q, %d; want %q, %d", tc.opts, got, code, tc.want, tc.wantCode)
		}
		u, err := BootURL(got)
		if (err != nil) != tc.urlErr || u != tc.url {
			t.Errorf("BootURL(%q) = %q, %v; want %q (error %v)", got, u, err, tc.url, tc.urlErr)
		}
	}
}

func TestMsgTypeString(t *testing.T) {
	for typ, want := range map[MsgType]string{Discover: "DISCOVER", Nak: "NAK", 0: "none", 42: "type42"} {
		if got := typ.String(); got != want {
			t.Errorf("%d: %q, want %q", typ, got, want)
		}
	}
	if !strings.Contains((&Error{Kind: "nak", Err: errors.New("x")}).Error(), "nak") {
		t.Error("Error() lacks the kind")
	}
}

// nopConn is a socket whose reads block until it is closed.
type nopConn struct {
	net.PacketConn
	closed chan struct{}
}

func newNopConn() nopConn { return nopConn{closed: make(chan struct{})} }

func (c nopConn) ReadFrom([]byte) (int, net.Addr, error) { <-c.closed; return 0, nil, net.ErrClosed }
func (c nopConn) Close() error                           { close(c.closed); return nil }
