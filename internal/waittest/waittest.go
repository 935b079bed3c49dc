// Package waittest waits, in tests, for a condition that other goroutines
// or real time make true, such as a circuit breaker's state after
// gobreaker's open timeout: tests wait for the state, never for a
// duration.
package waittest

import (
	"testing"
	"time"
)

// Limit is how long Until waits before it fails the test: generous enough
// for a loaded machine, a guard against hanging rather than a measurement.
const Limit = 10 * time.Second

// Until polls cond every millisecond until it holds, failing the test
// (Fatalf, naming what it waited for) once Limit has passed.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Within(t, Limit, what, cond)
}

// Within is Until with another limit, for waits on slower parts (a Consul
// session ending, a process killed): still a guard against hanging.
func Within(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(time.Millisecond)
	}
}
