package sipua

import (
	"context"
	"errors"
	"testing"
	"time"
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
