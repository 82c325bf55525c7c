// Package stats records per-step latencies and errors of a load run and
// summarises them as nearest-rank percentiles.
package stats
