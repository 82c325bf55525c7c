package sipua

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Two UAs talk directly (no proxy): A calls B, B answers; A sends a
// NOTIFY-less call flow INVITE → 200 → ACK → BYE → 200 and B sees it.
func TestCallUAToUA(t *testing.T) {
	b, err := New(Config{Local: "127.0.0.1:0", Server: "127.0.0.1:9", AcceptCalls: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := New(Config{Local: "127.0.0.1:0", Server: b.LocalAddr().String(), T1: 50 * time.Millisecond, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := a.Call(ctx, Account{User: "1001", Domain: "d.lan", AuthUser: "1001", Password: "x"}, "1002", 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.Setup <= 0 || r.Teardown <= 0 {
		t.Fatalf("result %+v", r)
	}
	for _, m := range []string{"INVITE", "BYE"} {
		if _, err := b.WaitEvent(ctx, m, ""); err != nil {
			t.Fatalf("callee did not see %s: %v", m, err)
		}
	}
}

// A UA that refuses calls answers 486, and the caller reports it.
func TestCallBusy(t *testing.T) {
	b, err := New(Config{Local: "127.0.0.1:0", Server: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, err := New(Config{Local: "127.0.0.1:0", Server: b.LocalAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = a.Call(ctx, Account{User: "1", Domain: "d"}, "2", 0)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 486 {
		t.Fatalf("err = %v, want 486", err)
	}
}

// Nobody answers: the transaction ends with ErrTimeout after retransmits.
func TestRegisterTimeout(t *testing.T) {
	sink, err := New(Config{Local: "127.0.0.1:0", Server: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	addr := sink.LocalAddr().String()
	sink.Close() // nothing listens there now (ICMP is ignored for UDP reads)
	a, err := New(Config{Local: "127.0.0.1:0", Server: addr, T1: 20 * time.Millisecond, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.Register(context.Background(), NewRegistration(Account{User: "u", Domain: "d"}), 60)
	if err == nil || !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
}

// Validation: no Authorization → 401 with a fresh MD5 challenge; an
// Authorization with a nonce the UA never issued → 401 stale=true; a line
// nobody has → 403.
func TestValidationChallenges(t *testing.T) {
	u, err := New(Config{Local: "127.0.0.1:0", Server: "127.0.0.1:9", Validation: &Validation{Realm: "r.lan",
		Creds: func(user string) (string, string, bool) { return "a" + user, "pw", user == "100" }}})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	c, err := net.DialUDP("udp", nil, u.LocalAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	notify := func(user, authz string) string {
		return "NOTIFY sip:" + user + "@" + u.LocalAddr().String() + " SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() +
			";branch=z9hG4bK" + sip.GenerateTagN(8) + "\r\nFrom: <sip:x@r.lan>;tag=a\r\nTo: <sip:" + user + "@r.lan>\r\n" +
			"Call-ID: " + sip.GenerateTagN(8) + "\r\nCSeq: 1 NOTIFY\r\nEvent: check-sync\r\n" + authz + "Content-Length: 0\r\n\r\n"
	}
	send := func(msg string) string {
		t.Helper()
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return string(buf[:n])
	}
	ask := func(user, authz string) string { t.Helper(); return send(notify(user, authz)) }
	got := ask("100", "")
	if !strings.HasPrefix(got, "SIP/2.0 401") || !strings.Contains(got, `algorithm=MD5, qop="auth"`) || strings.Contains(got, "stale") {
		t.Errorf("no Authorization: %q", got)
	}
	_, after, _ := strings.Cut(got, `nonce="`)
	nonce, _, _ := strings.Cut(after, `"`)
	stale := `Authorization: Digest username="a100", realm="r.lan", nonce="never", uri="sip:100@x", response="00", qop=auth, nc=00000001, cnonce="c"` + "\r\n"
	if got := ask("100", stale); !strings.HasPrefix(got, "SIP/2.0 401") || !strings.Contains(got, "stale=true") {
		t.Errorf("unknown nonce: %q", got)
	}
	if got := ask("999", `Authorization: Digest username="a999", realm="r.lan", nonce="`+nonce+`", uri="sip:999@x", response="00", qop=auth, nc=00000001, cnonce="c"`+"\r\n"); !strings.HasPrefix(got, "SIP/2.0 403") {
		t.Errorf("a line the phone does not have: %q", got)
	}
	if st := u.Stats(); st.Challenged != 2 || st.Refused != 1 {
		t.Errorf("stats %+v", st)
	}
	// A NOTIFY retransmitted (a loaded server's Timer A) is answered again
	// and is still one challenge.
	msg := notify("100", "")
	for range 2 {
		if got := send(msg); !strings.HasPrefix(got, "SIP/2.0 401") {
			t.Errorf("retransmitted NOTIFY: %q", got)
		}
	}
	if st := u.Stats(); st.Challenged != 3 {
		t.Errorf("a retransmission counted as another challenge: %+v", st)
	}
}
