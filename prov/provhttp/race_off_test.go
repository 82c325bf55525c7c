//go:build !race

package provhttp

const raceEnabled = false
