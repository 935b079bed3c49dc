package rollout_test

import (
	"fmt"
	"time"

	"github.com/graylane/graylane/rollout"
)

// What a rollout does next, in the words graylane rollout status and the
// debug page print.
func ExampleWhatNext() {
	plan, _ := rollout.ParsePlan([]byte(`ruleKey: shop-shop
services: [svc-a, svc-b]
new: newest
steps: [5, 25, 100]
hold: 5m
analysis: {minRequests: 200, maxErrorRate: 0.01}
`))
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	for _, st := range []rollout.State{
		{Phase: rollout.Running, Step: -1},
		{Phase: rollout.Running, Step: 0, StepStart: t0, Next: t0.Add(5 * time.Minute)},
		{Phase: rollout.Paused, Step: 1, Left: 3 * time.Minute, Reason: "by hand"},
		{Phase: rollout.RolledBack, Step: 0, Reason: "svc-b: error rate 5.000% above the maximum 1.000%"},
	} {
		fmt.Println(rollout.WhatNext(&st, plan, t0.Add(time.Minute)).Text)
	}
	// Output:
	// write step 1 (5%) now
	// check svc-a, svc-b figures over the last 5m0s at 10:05:00 UTC, then step to 25%; a failed check rolls back
	// paused: by hand; waiting for resume (graylane rollout resume), then step 2 holds for the 3m0s it had left
	// done: rolled back (svc-b: error rate 5.000% above the maximum 1.000%)
}
