//go:build race

package provhttp

// raceEnabled: the race detector drops sync.Pool items at random and
// allocates beside the code, so allocation counts are not asserted under it.
const raceEnabled = true
