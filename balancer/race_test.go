//go:build race

package balancer

// raceEnabled reports that the race detector is on (it slows everything
// down several times over, so latency checks relax).
const raceEnabled = true
