package main

import "testing"

// TestBenchConfigIsValid: the harness starts (its configuration once broke
// a validation rule added later, and make bench lost its REGISTER row).
func TestBenchConfigIsValid(t *testing.T) {
	if err := benchConfig("udp://127.0.0.1:0", "bench.lan").Validate(); err != nil {
		t.Fatal(err)
	}
}
