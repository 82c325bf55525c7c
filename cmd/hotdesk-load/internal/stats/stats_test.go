package stats

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"p90 of 1..100", ms(hundred...), 90, 90 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p100 is max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p50 of four rounds up rank", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p99 of four is max", ms(1, 2, 3, 4), 99, 4 * time.Millisecond},
		{"tiny p gives min", ms(5, 6, 7), 0.001, 5 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percentile(tc.in, tc.p); got != tc.want {
				t.Fatalf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
			}
		})
	}
}

func TestSummarizeAndPrint(t *testing.T) {
	r := New()
	for _, d := range []int{30, 10, 20} { // unsorted on purpose
		r.Observe("fetch", time.Duration(d)*time.Millisecond)
	}
	r.Error("timeout")
	r.Error("timeout")
	r.Error("http_500")
	r.Mark("all_registered", 2*time.Second)
	r.Mark("all_registered", time.Second) // smaller: ignored
	s := r.Summarize("storm", 3*time.Second)
	if len(s.Steps) != 1 || s.Steps[0].P50 != 20 || s.Steps[0].Max != 30 || s.Steps[0].Mean != 20 {
		t.Fatalf("steps = %+v", s.Steps)
	}
	if s.Total != 3 || s.Errors["timeout"] != 2 || s.Marks["all_registered"] != 2 {
		t.Fatalf("summary = %+v", s)
	}
	var b bytes.Buffer
	s.Print(&b)
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if lines[len(lines)-1] != "errors: 3" {
		t.Fatalf("last line %q, want errors: 3\n%s", lines[len(lines)-1], b.String())
	}
	b.Reset()
	if err := s.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var back Summary
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || back.Total != 3 {
		t.Fatalf("json round trip: %v %+v", err, back)
	}
}
