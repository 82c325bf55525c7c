//go:build !race

package digestserver

const raceEnabled = false
