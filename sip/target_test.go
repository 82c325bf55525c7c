package sip

import (
	"context"
	"testing"
)

func TestBindingTarget(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, contact, source, transport, want string
	}{
		{"same port", "<sip:1001@192.0.2.7:5060>", "192.0.2.7:5060", "UDP", "192.0.2.7:5060"},
		{"sends from another port", "sip:1001@192.0.2.7:5062", "192.0.2.7:40001", "UDP", "192.0.2.7:5062"},
		{"contact without port", "sip:1001@192.0.2.7", "192.0.2.7:40001", "", "192.0.2.7:5060"},
		{"behind NAT", "sip:1001@10.0.0.5:5060", "198.51.100.1:61000", "UDP", "198.51.100.1:61000"},
		{"TCP reuses the connection", "sip:1001@192.0.2.7:5060;transport=tcp", "192.0.2.7:50123", "TCP", "192.0.2.7:50123"},
		{"IPv6", "sip:1001@[2001:db8::7]:5070", "[2001:db8::7]:40001", "UDP", "[2001:db8::7]:5070"},
		{"bad contact", "not a uri", "192.0.2.7:40001", "UDP", "192.0.2.7:40001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Binding{Contact: tc.contact, Source: tc.source, Transport: tc.transport}
			if got := b.Target(); got != tc.want {
				t.Fatalf("Target() = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDeviceBindings: the registrar finds a handset through any of its
// lines, since each binding carries the device of its credential.
func TestDeviceBindings(t *testing.T) {
	t.Parallel()
	e := startEnv(t, newMemStore())
	phone := newPhone(t, "UDP", e.udp)
	e.creds.add(Credential{Username: "sess-1", Password: "s3cret", Owner: Owner{OwnerSession, "s1"}, AORs: []string{"1001"}, Device: "7"})
	e.creds.add(Credential{Username: "dev-9", Password: "devpw", Owner: Owner{OwnerDevice, "9"}, AORs: []string{"dev-9"}, Device: "9"})
	if res, _ := phone.register(t, regOpts{user: "sess-1", pass: "s3cret", to: "1001", expires: 600}); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	if res, _ := phone.register(t, regOpts{user: "dev-9", pass: "devpw", to: "dev-9", expires: 600, callID: "other"}); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	bs := e.srv.DeviceBindings("7")
	if len(bs) != 1 || bs[0].Owner.ID != "s1" || bs[0].Device != "7" || bs[0].AuthUser != "sess-1" {
		t.Fatalf("DeviceBindings(7) = %+v", bs)
	}
	if bs := e.srv.DeviceBindings(""); bs != nil {
		t.Fatalf("DeviceBindings(\"\") = %+v", bs)
	}
	if _, err := e.srv.Unbind(context.Background(), Owner{OwnerSession, "s1"}); err != nil {
		t.Fatal(err)
	}
	if bs := e.srv.DeviceBindings("7"); len(bs) != 0 {
		t.Fatalf("after unbind: %+v", bs)
	}
}
