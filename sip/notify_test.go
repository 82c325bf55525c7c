package sip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestUnbindAndNotify(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		transport string
		reboot    bool
		challenge bool
	}{{"UDP", false, false}, {"TCP", true, false}, {"UDP", false, true}} {
		t.Run(fmt.Sprintf("%s/challenge=%v", tc.transport, tc.challenge), func(t *testing.T) {
			e := startEnv(t, newMemStore())
			target := e.udp
			if tc.transport == "TCP" {
				target = e.tcp
			}
			phone := newPhone(t, tc.transport, target)
			phone.challenge.Store(tc.challenge)
			// A device-owned binding and a session-owned binding on the same AOR.
			e.creds.add(Credential{Username: "sess-1", Password: "s3cret", Owner: Owner{OwnerSession, "s1"}, AORs: []string{"1001"}})
			if res, _ := phone.register(t, regOpts{user: "sess-1", pass: "s3cret", to: "1001", expires: 600}); res.StatusCode != 200 {
				t.Fatal(res.Short())
			}
			other := regOpts{user: "dev-aa", pass: "devpw", to: "1001", expires: 600, callID: "dev-call",
				contacts: []string{"<sip:1001@10.9.9.9:5060>"}}
			if res, _ := phone.register(t, other); res.StatusCode != 200 {
				t.Fatal(res.Short())
			}
			removed, err := e.srv.Unbind(context.Background(), Owner{OwnerSession, "s1"})
			if err != nil || len(removed) != 1 {
				t.Fatalf("Unbind: %v %+v", err, removed)
			}
			if bs := e.srv.Lookup(context.Background(), "1001"); len(bs) != 1 || bs[0].Owner.Kind != OwnerDevice {
				t.Fatalf("left: %+v", bs)
			}
			e.nextEvent(t, Unbound)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := e.srv.NotifyCheckSync(ctx, removed[0], "", tc.reboot); err != nil {
				t.Fatalf("NotifyCheckSync: %v", err)
			}
			select {
			case n := <-phone.notifies:
				want := "check-sync"
				if tc.reboot {
					want += ";reboot=true"
				}
				if ev := n.GetHeader("Event"); ev == nil || ev.Value() != want {
					t.Fatalf("Event: %v", ev)
				}
				if a := n.GetHeader("Authorization"); tc.challenge && (a == nil || !strings.Contains(a.Value(), `username="sess-1"`)) {
					t.Fatalf("Authorization: %v", a)
				}
				// It came from the registrar's own listening port.
				if tc.transport == "UDP" && n.Source() != e.udp {
					t.Fatalf("NOTIFY from %s, want %s", n.Source(), e.udp)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no NOTIFY arrived")
			}
		})
	}
}

func TestNotifyUnreachable(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	b := Binding{AOR: "sip:1001@hotdesk.test", Contact: "sip:1001@127.0.0.1:9", Source: "127.0.0.1:9", Transport: "UDP", Local: e.udp}
	if err := e.srv.NotifyCheckSync(ctx, b, "", false); err == nil {
		t.Fatal("NOTIFY to a dead port succeeded")
	}
	b.Contact = "not a uri\r\n"
	if err := e.srv.NotifyCheckSync(ctx, b, "", false); err == nil {
		t.Fatal("bad contact accepted")
	}
}

// TestNotifyWildcardListener: with the registrar bound to 0.0.0.0 the
// NOTIFY still leaves from the listening port and names a usable Via host.
func TestNotifyWildcardListener(t *testing.T) {
	t.Parallel()
	e := startEnv(t, nil, func(c *Config, _ *Deps) { c.Listen = []string{"udp://0.0.0.0:0", "tcp://127.0.0.1:0"} })
	_, port, _ := strings.Cut(e.udp, "]:")
	if port == "" {
		_, port, _ = strings.Cut(e.udp, ":")
	}
	phone := newPhone(t, "UDP", "127.0.0.1:"+port)
	if res, _ := phone.register(t, regOpts{user: "1001", pass: "alice-sip", to: "1001", expires: 600}); res.StatusCode != 200 {
		t.Fatal(res.Short())
	}
	bs := e.srv.Lookup(context.Background(), "1001")
	if len(bs) != 1 {
		t.Fatalf("bindings %+v", bs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.srv.NotifyCheckSync(ctx, bs[0], "", false); err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-phone.notifies:
		if !strings.HasSuffix(n.Source(), ":"+port) || n.Via().Host != "127.0.0.1" {
			t.Fatalf("NOTIFY from %s, Via %s", n.Source(), n.Via().Host)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no NOTIFY")
	}
}
