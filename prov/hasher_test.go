package prov

import (
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
