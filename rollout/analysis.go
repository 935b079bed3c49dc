package rollout

import (
	"fmt"
	"time"
)

// Outcome is the verdict of one check.
type Outcome string

// The outcomes of a check.
const (
	// Pass: the new version met every threshold.
	Pass Outcome = "pass"
	// Fail: it broke at least one.
	Fail Outcome = "fail"
	// Inconclusive: it served fewer requests than the plan's minimum.
	Inconclusive Outcome = "inconclusive"
)

// Check is one analysis of one service: the figures it used and its
// verdict.
type Check struct {
	Service string    `json:"service"`
	Step    int       `json:"step"`
	At      time.Time `json:"at"`
	New     Figure    `json:"new"`
	Old     Figure    `json:"old"`
	Outcome Outcome   `json:"outcome"`
	// Reason says which threshold failed, or why the check is
	// inconclusive; empty on a pass.
	Reason string `json:"reason,omitempty"`
}

// Judge applies a's thresholds to the new and old versions' figures over
// the same window. It is a pure function.
func Judge(a Analysis, nw, old Figure) (Outcome, string) {
	if nw.Requests < float64(max(a.MinRequests, 1)) {
		return Inconclusive, fmt.Sprintf("%.0f requests to the new version, fewer than the %d required", nw.Requests, max(a.MinRequests, 1))
	}
	er, oer := nw.ErrorRate(), old.ErrorRate()
	if a.MaxErrorRate > 0 && er > a.MaxErrorRate {
		return Fail, fmt.Sprintf("error rate %.3f%% above the maximum %.3f%%", 100*er, 100*a.MaxErrorRate)
	}
	if a.MaxErrorRatio > 0 && er > 0 && er > a.MaxErrorRatio*oer && !(a.MaxErrorRate > 0 && oer == 0) {
		return Fail, fmt.Sprintf("error rate %.3f%% above %g times the old version's %.3f%%", 100*er, a.MaxErrorRatio, 100*oer)
	}
	if a.MaxP99 > 0 && nw.P99 > a.MaxP99 {
		return Fail, fmt.Sprintf("p99 %v above the maximum %v", nw.P99, a.MaxP99)
	}
	if a.MaxP99Ratio > 0 && old.Requests > 0 && float64(nw.P99) > a.MaxP99Ratio*float64(old.P99) {
		return Fail, fmt.Sprintf("p99 %v above %g times the old version's %v", nw.P99, a.MaxP99Ratio, old.P99)
	}
	return Pass, ""
}
