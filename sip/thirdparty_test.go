package sip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// honoursAutoAnswer is what the vendors document (AutoAnswerHeaders):
// Alert-Info ...;info=alert-autoanswer or Call-Info ...;answer-after=0.
func honoursAutoAnswer(req *sip.Request) bool {
	if h := req.GetHeader("Alert-Info"); h != nil && strings.Contains(strings.ToLower(h.Value()), "info=alert-autoanswer") {
		return true
	}
	h := req.GetHeader("Call-Info")
	return h != nil && strings.Contains(strings.ToLower(h.Value()), "answer-after=0")
}

// waitCalls waits until owner's controlled calls satisfy ok.
func waitCalls(t *testing.T, e *pxEnv, owner Owner, ok func([]ControlledCall) bool) []ControlledCall {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		cs := e.srv.ControlledCalls(owner)
		if ok(cs) {
			return cs
		}
		if time.Now().After(deadline) {
			t.Fatalf("controlled calls of %s: %+v", owner, cs)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition, not timing
	}
}

func bindingOf(t *testing.T, e *pxEnv, user string) Binding {
	t.Helper()
	bs := e.srv.Lookup(context.Background(), "sip:"+user+"@hotdesk.test")
	if len(bs) != 1 {
		t.Fatalf("bindings of %s: %+v", user, bs)
	}
	return bs[0]
}

// TestClickToDialConnects: the phone that honours the auto-answer header
// answers by itself, is parked on a black-hole answer, then gets the
// target's offer; the target gets the phone's answer in its ACK (RFC 3725
// Flow IV); HangUp sends BYE on both legs.
func TestClickToDialConnects(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "autoanswer")
	bob := newUA(t, "bob", e.udp, "answer")
	alice.register("1001", "alice-sip", "1001")
	bob.register("1002", "bob-sip", "1002")
	ctx := callCtx(t)
	cc, err := e.srv.Dial(ctx, DialRequest{Owner: Owner{OwnerUser, "1"}, Phone: bindingOf(t, e, "1001"),
		Caller: Owner{OwnerUser, "alice"}, CallerID: "1001", Target: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	inv := recv(t, alice.invites, "INVITE at the phone")
	if len(inv.Body()) != 0 || !honoursAutoAnswer(inv) {
		t.Errorf("phone INVITE: body %q, Alert-Info %v, Call-Info %v", inv.Body(), inv.GetHeader("Alert-Info"), inv.GetHeader("Call-Info"))
	}
	if inv.From().Address.User != "bob" {
		t.Errorf("phone INVITE From %s, want the target", inv.From().Address.String())
	}
	ack := recv(t, alice.acks, "ACK at the phone")
	if b := string(ack.Body()); !strings.Contains(b, "c=IN IP4 0.0.0.0") || !strings.Contains(b, "a=inactive") || !strings.Contains(b, "m=audio 9 RTP/AVP 0") {
		t.Errorf("black-hole answer %q", b)
	}
	tinv := recv(t, bob.invites, "INVITE at the target")
	if len(tinv.Body()) != 0 || tinv.From().Address.User != "1001" {
		t.Errorf("target INVITE: body %q From %s", tinv.Body(), tinv.From().Address.String())
	}
	re := recv(t, alice.invites, "re-INVITE at the phone")
	if b := string(re.Body()); !strings.Contains(b, "s=bob") || !strings.Contains(b, "o=hotdesk ") || tagOf(re.To().Params) == "" {
		t.Errorf("re-INVITE offer %q", b)
	}
	recv(t, alice.acks, "ACK of the re-INVITE")
	back := recv(t, bob.acks, "ACK at the target")
	if b := string(back.Body()); !strings.Contains(b, "s=alice") || !strings.Contains(b, "o=hotdesk ") {
		t.Errorf("target ACK answer %q", b)
	}
	waitCalls(t, e, Owner{OwnerUser, "1"}, func(cs []ControlledCall) bool { return len(cs) == 1 && cs[0].State == CallConnected })
	if cs := e.srv.ControlledCalls(Owner{OwnerUser, "2"}); len(cs) != 0 {
		t.Errorf("another owner sees %+v", cs)
	}
	if err := e.srv.HangUp(ctx, Owner{OwnerUser, "2"}, cc.ID); !errors.Is(err, ErrCallNotFound) {
		t.Errorf("HangUp by another owner: %v", err)
	}
	// Hold and resume from the portal: both legs re-INVITEd with the
	// other's description, inactive, then sendrecv.
	if err := e.srv.Hold(ctx, Owner{OwnerUser, "2"}, cc.ID, true); !errors.Is(err, ErrCallNotFound) {
		t.Errorf("Hold by another owner: %v", err)
	}
	for _, on := range []bool{true, false} {
		if err := e.srv.Hold(ctx, Owner{OwnerUser, "1"}, cc.ID, on); err != nil {
			t.Fatalf("Hold(%v): %v", on, err)
		}
		dir, state := "a=sendrecv", CallConnected
		if on {
			dir, state = "a=inactive", CallHeld
		}
		if b := string(recv(t, alice.invites, "hold re-INVITE at the phone").Body()); !strings.Contains(b, "s=bob") || !strings.Contains(b, dir) {
			t.Errorf("phone hold(%v) offer %q", on, b)
		}
		recv(t, alice.acks, "ACK of the hold re-INVITE at the phone")
		if b := string(recv(t, bob.invites, "hold re-INVITE at the target").Body()); !strings.Contains(b, "s=alice") || !strings.Contains(b, dir) {
			t.Errorf("target hold(%v) offer %q", on, b)
		}
		recv(t, bob.acks, "ACK of the hold re-INVITE at the target")
		if cs := e.srv.ControlledCalls(Owner{OwnerUser, "1"}); len(cs) != 1 || cs[0].State != state {
			t.Errorf("after Hold(%v): %+v", on, cs)
		}
	}
	// bob's answer lists no REFER in Allow: no transfer is tried.
	for target, want := range map[string]error{"1003": ErrNoTransfer, "*78": ErrNoTarget, "nobody": ErrNoTarget} {
		if err := e.srv.Transfer(ctx, Owner{OwnerUser, "1"}, cc.ID, target); !errors.Is(err, want) {
			t.Errorf("Transfer to %s: %v, want %v", target, err, want)
		}
	}
	if err := e.srv.HangUp(ctx, Owner{OwnerUser, "1"}, cc.ID); err != nil {
		t.Fatal(err)
	}
	recv(t, alice.byes, "BYE at the phone")
	recv(t, bob.byes, "BYE at the target")
	waitCalls(t, e, Owner{OwnerUser, "1"}, func(cs []ControlledCall) bool { return len(cs) == 0 })
	if n := metricValue(t, e, "hotdesk_sip_click_to_dial_total", map[string]string{"result": "connected"}); n != 1 {
		t.Errorf("connected = %v", n)
	}
}

// TestClickToDialNoAutoAnswer: a phone that ignores the header rings
// (the user would pick it up); HangUp cancels it and nothing else is called.
func TestClickToDialNoAutoAnswer(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	alice := newUA(t, "alice", e.udp, "ring")
	bob := newUA(t, "bob", e.udp, "answer")
	alice.register("1001", "alice-sip", "1001")
	bob.register("1002", "bob-sip", "1002")
	ctx := callCtx(t)
	cc, err := e.srv.Dial(ctx, DialRequest{Owner: Owner{OwnerUser, "1"}, Phone: bindingOf(t, e, "1001"),
		Caller: Owner{OwnerUser, "alice"}, CallerID: "1001", Target: "1002"})
	if err != nil {
		t.Fatal(err)
	}
	recv(t, alice.invites, "INVITE at the phone")
	waitCalls(t, e, Owner{OwnerUser, "1"}, func(cs []ControlledCall) bool { return len(cs) == 1 && cs[0].State == CallPhone })
	if err := e.srv.Hold(ctx, Owner{OwnerUser, "1"}, cc.ID, true); !errors.Is(err, ErrNotConnected) {
		t.Errorf("Hold before connecting: %v", err)
	}
	if err := e.srv.HangUp(ctx, Owner{OwnerUser, "1"}, cc.ID); err != nil {
		t.Fatal(err)
	}
	recv(t, alice.cancels, "CANCEL at the phone")
	waitCalls(t, e, Owner{OwnerUser, "1"}, func(cs []ControlledCall) bool { return len(cs) == 0 })
	none(t, bob.invites, 50*time.Millisecond, "INVITE at the target")
	if n := metricValue(t, e, "hotdesk_sip_click_to_dial_total", map[string]string{"result": "hung_up"}); n != 1 {
		t.Errorf("hung_up = %v", n)
	}
}

// TestClickToDialPolicy: a locked phone's click-to-dial goes through the
// same policy as a call dialled on it.
func TestClickToDialPolicy(t *testing.T) {
	t.Parallel()
	e := startProxyEnv(t)
	locked := newUA(t, "locked", e.udp, "autoanswer")
	locked.register("dev-aa", "devpw", "1009")
	ph := bindingOf(t, e, "1009")
	for _, tc := range []struct {
		target string
		want   error
	}{{"1003", ErrCallRefused}, {"+4930123", ErrCallRefused}, {"*78", ErrNoTarget}, {"a@b", ErrNoTarget}} {
		_, err := e.srv.Dial(callCtx(t), DialRequest{Owner: Owner{OwnerUser, "9"}, Phone: ph, Caller: ph.Owner, CallerID: "1009", Target: tc.target})
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.target, err, tc.want)
		}
	}
	none(t, locked.invites, 50*time.Millisecond, "INVITE at the locked phone")
	if n := metricValue(t, e, "hotdesk_sip_click_to_dial_total", map[string]string{"result": "refused"}); n != 2 {
		t.Errorf("refused = %v", n)
	}
}

func TestWithDirection(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, dir, want string }{
		{"v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\na=sendrecv\r\n", "inactive",
			"v=0\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 1.2.3.4\r\na=inactive\r\n"},
		{"v=0\nm=audio 1 RTP/AVP 0\nm=video 2 RTP/AVP 31\na=sendonly\n", "sendrecv",
			"v=0\r\nm=audio 1 RTP/AVP 0\r\na=sendrecv\r\nm=video 2 RTP/AVP 31\r\na=sendrecv\r\n"},
	} {
		if got := string(withDirection([]byte(tc.in), tc.dir)); got != tc.want {
			t.Errorf("withDirection(%q, %s) = %q, want %q", tc.in, tc.dir, got, tc.want)
		}
	}
}
