package auth

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestHasherWaitsForASlot: when every slot is taken, a verification waits
// (its 19 MiB is not allocated) until one frees, then answers correctly.
func TestHasherWaitsForASlot(t *testing.T) {
	h := NewHasher(Argon2Params{Memory: 64, Time: 1, Threads: 1}, 2)
	hash, err := h.Hash("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{}
	h.slots <- struct{}{}
	got := make(chan bool, 2)
	go func() { got <- h.Verify(hash, "correct horse") }()
	go func() { got <- h.Verify(hash, "wrong") }()
	select {
	case <-got:
		t.Fatal("a verification ran while every slot was taken")
	case <-time.After(50 * time.Millisecond):
	}
	<-h.slots // one slot frees: both run, one after the other
	a, b := <-got, <-got
	if a == b {
		t.Errorf("verdicts %v and %v: want one match and one refusal", a, b)
	}
	<-h.slots
	if h.VerifyNobody("correct horse") {
		t.Error("VerifyNobody accepted a password")
	}
	if len(h.slots) != 0 {
		t.Errorf("%d slots still held after every call returned", len(h.slots))
	}
}

func TestNewHasherDefaultsToOneSlotPerCPU(t *testing.T) {
	if h := NewHasher(DefaultArgon2, 0); cap(h.slots) < 1 {
		t.Errorf("slots %d", cap(h.slots))
	}
}

// TestHasherVerifyContextGivesUpWhenTheCallerGoes: a caller whose request
// was dropped while every slot was busy gets ctx's error at once, holds no
// slot and costs no hash.
func TestHasherVerifyContextGivesUpWhenTheCallerGoes(t *testing.T) {
	h := NewHasher(Argon2Params{Memory: 64, Time: 1, Threads: 1}, 1)
	hash, err := h.Hash("pw")
	if err != nil {
		t.Fatal(err)
	}
	h.slots <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	runs := h.Runs()
	go func() { _, err := h.VerifyContext(ctx, hash, "pw"); done <- err }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("VerifyContext kept waiting after its caller went away")
	}
	if h.Runs() != runs || h.Waiting() != 0 || len(h.slots) != 1 {
		t.Errorf("runs %d→%d, waiting %d, slots held %d: the abandoned check left traces", runs, h.Runs(), h.Waiting(), len(h.slots))
	}
	<-h.slots
	if ok, err := h.VerifyContext(context.Background(), hash, "pw"); !ok || err != nil {
		t.Errorf("with a free slot: %v %v", ok, err)
	}
	if err := h.VerifyNobodyContext(context.Background(), "pw"); err != nil {
		t.Errorf("VerifyNobodyContext: %v", err)
	}
}
