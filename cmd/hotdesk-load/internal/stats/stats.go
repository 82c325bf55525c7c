package stats

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"time"
)

// Recorder collects samples from many goroutines.
type Recorder struct {
	mu     sync.Mutex
	order  []string
	steps  map[string][]time.Duration
	errors map[string]int
	marks  map[string]time.Duration
}

// New returns an empty recorder.
func New() *Recorder {
	return &Recorder{steps: map[string][]time.Duration{}, errors: map[string]int{}, marks: map[string]time.Duration{}}
}

// Observe adds one latency sample of step.
func (r *Recorder) Observe(step string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.steps[step]; !ok {
		r.order = append(r.order, step)
	}
	r.steps[step] = append(r.steps[step], d)
}

// Error counts one error of kind (a short, bounded label).
func (r *Recorder) Error(kind string) {
	r.mu.Lock()
	r.errors[kind]++
	r.mu.Unlock()
}

// Mark keeps the largest d seen for name (e.g. time to all registered).
func (r *Recorder) Mark(name string, d time.Duration) {
	r.mu.Lock()
	if d > r.marks[name] {
		r.marks[name] = d
	}
	r.mu.Unlock()
}

// Count returns the samples of step so far.
func (r *Recorder) Count(step string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.steps[step])
}

// Errors returns the total error count.
func (r *Recorder) Errors() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.errors {
		n += v
	}
	return n
}

// Step is the summary of one step's samples, in milliseconds.
type Step struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
}

// Summary is what a run prints and writes as JSON.
type Summary struct {
	Command  string             `json:"command"`
	Wall     float64            `json:"wall_s"`
	Steps    []Step             `json:"steps"`
	Errors   map[string]int     `json:"errors"`
	Total    int                `json:"errors_total"`
	Marks    map[string]float64 `json:"marks_s"`
	Counters map[string]float64 `json:"figures,omitempty"`
	Notes    []string           `json:"notes,omitempty"`
}

// Percentile returns the nearest-rank p-th percentile (0 < p ≤ 100) of
// sorted; 0 for no samples.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summarize computes the summary; wall is the run's duration.
func (r *Recorder) Summarize(command string, wall time.Duration) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{Command: command, Wall: wall.Seconds(), Errors: map[string]int{}, Marks: map[string]float64{},
		Counters: map[string]float64{}}
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
	for _, name := range r.order {
		v := slices.Clone(r.steps[name])
		slices.Sort(v)
		var sum time.Duration
		for _, d := range v {
			sum += d
		}
		s.Steps = append(s.Steps, Step{Name: name, Count: len(v), P50: ms(Percentile(v, 50)),
			P90: ms(Percentile(v, 90)), P99: ms(Percentile(v, 99)), Max: ms(v[len(v)-1]),
			Mean: ms(sum / time.Duration(len(v)))})
	}
	for k, v := range r.errors {
		s.Errors[k] = v
		s.Total += v
	}
	for k, v := range r.marks {
		s.Marks[k] = v.Seconds()
	}
	return s
}

// Print writes the human-readable report; the last line is "errors: N".
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "%s: wall %.3f s\n", s.Command, s.Wall)
	fmt.Fprintf(w, "%-26s %8s %9s %9s %9s %9s\n", "step", "count", "p50 ms", "p90 ms", "p99 ms", "max ms")
	for _, st := range s.Steps {
		fmt.Fprintf(w, "%-26s %8d %9.2f %9.2f %9.2f %9.2f\n", st.Name, st.Count, st.P50, st.P90, st.P99, st.Max)
	}
	for _, k := range sortedKeys(s.Marks) {
		fmt.Fprintf(w, "%-40s %.3f s\n", k+":", s.Marks[k])
	}
	for _, k := range sortedKeys(s.Counters) {
		fmt.Fprintf(w, "%-40s %.1f\n", k+":", s.Counters[k])
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	for _, k := range sortedKeys(s.Errors) {
		fmt.Fprintf(w, "error %-34s %d\n", k+":", s.Errors[k])
	}
	fmt.Fprintf(w, "errors: %d\n", s.Total)
}

// WriteJSON writes the summary as indented JSON.
func (s Summary) WriteJSON(w io.Writer) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(s)
}

func sortedKeys[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
