//go:build race

package e2e

// raceEnabled: the programs the tests run are built with -race too.
const raceEnabled = true
