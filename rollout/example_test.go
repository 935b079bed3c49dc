package rollout_test

import (
	"context"
	"fmt"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rollout"
)

// manual is a clock moved by hand.
type manual struct{ now time.Time }

func (m *manual) Now() time.Time                       { return m.now }
func (m *manual) After(time.Duration) <-chan time.Time { return nil }

// A rollout of one service in memory: the controller writes each step's
// share, and after each hold judges the figures the servers recorded.
func Example() {
	ctx := context.Background()
	reg := discovery.NewStatic()
	reg.Set("svc-a",
		discovery.Instance{Address: "10.0.0.1", Port: 80, Version: "1.0"},
		discovery.Instance{Address: "10.0.0.2", Port: 80, Version: "1.1"})
	store := rollout.NewMemStore()
	store.Publish([]byte("service: [svc-a]\ngray:\n  - {weight: [100, 0]}\n"), nil, 0)
	plan := `ruleKey: demo-svc-a
services: [svc-a]
new: newest
steps: [10, 100]
hold: 5m
analysis: {minRequests: 50, maxErrorRate: 0.01}
`
	if _, err := rollout.Start(ctx, store, reg, []byte(plan)); err != nil {
		fmt.Println(err)
		return
	}
	clock := &manual{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	rec := rollout.NewRecorder()
	ctl, _ := rollout.NewController(store, reg, rec, rollout.WithClock(clock),
		rollout.WithEvents(func(e rollout.Event) { fmt.Println(e) }))
	for range 3 {
		next, err := ctl.Tick(ctx)
		if err != nil || next.IsZero() {
			break
		}
		// The step's traffic: 1,000 requests, the new version's share of
		// them to 1.1, none failing.
		st, p, _ := rollout.Status(ctx, store)
		for i := range 1000 {
			v := "1.0"
			if i < 10*st.Share(p) {
				v = "1.1"
			}
			rec.Record("svc-a", v, clock.now.Add(time.Minute), 20*time.Millisecond, false)
		}
		clock.now = next
	}
	st, _, _ := rollout.Status(ctx, store)
	fmt.Println(st.Phase, "old version drained:", st.Drained["svc-a"])
	// Output:
	// 12:00:00 step 1/2  10%  step
	// 12:05:00 step 1/2  10%  check    svc-a new 100 req, 0.00% err, p99 20ms / old 900 req, 0.00% err, p99 20ms: pass
	// 12:05:00 step 2/2 100%  step
	// 12:10:00 step 2/2 100%  check    svc-a new 1000 req, 0.00% err, p99 20ms / old 0 req, 0.00% err, p99 0s: pass
	// 12:10:00 step 2/2 100%  promote  (every step passed)
	// promoted old version drained: true
}
