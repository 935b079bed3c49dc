//go:build !race

package balancer

// raceEnabled reports that the race detector is on.
const raceEnabled = false
