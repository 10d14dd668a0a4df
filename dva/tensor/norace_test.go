//go:build !race

package tensor

// raceEnabled is true when the tests run under the race detector.
const raceEnabled = false
