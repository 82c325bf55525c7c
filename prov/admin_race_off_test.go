//go:build !race

package prov_test

const raceEnabled = false
