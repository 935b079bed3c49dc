package balancer

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/graylane/graylane/discovery"
)

// fleet returns a snapshot of svc with n instances of each version, on
// addresses 10.0.<v>.<i>:8080, regions alternating dev/qa.
func fleet(svc string, n int, versions ...string) *discovery.Snapshot {
	var list []discovery.Instance
	for vi, v := range versions {
		for i := range n {
			region := "dev"
			if i%2 == 1 {
				region = "qa"
			}
			list = append(list, discovery.Instance{
				ID:      fmt.Sprintf("%s-%s-%d", svc, v, i),
				Service: svc,
				Address: fmt.Sprintf("10.0.%d.%d", vi, i),
				Port:    8080,
				Version: v,
				Region:  region,
			})
		}
	}
	return discovery.NewSnapshot(svc, 1, list)
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }
