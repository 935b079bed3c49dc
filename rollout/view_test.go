package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const viewPlan = `ruleKey: shop-shop
services: [svc-a, svc-b]
new: newest
steps: [5, 25, 100]
hold: 5m
analysis: {minRequests: 200, maxErrorRate: 0.01, maxErrorRatio: 2, maxP99: 300ms, maxP99Ratio: 1.5, failures: 2}
`

func TestWhatNext(t *testing.T) {
	plan, err := ParsePlan([]byte(viewPlan))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 10, 3, 0, 0, time.UTC)
	next := time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)
	tests := []struct {
		name string
		st   State
		at   time.Time
		want NextAction
	}{
		{"before the first step", State{Phase: Running, Step: -1}, now,
			NextAction{Action: "step", Text: "write step 1 (5%) now"}},
		{"holding a middle step", State{Phase: Running, Step: 0, Next: next}, now,
			NextAction{Action: "check", At: next, Text: "check svc-a, svc-b figures over the last 5m0s at 10:05:00 UTC, then step to 25%; 2 more failed checks in a row roll back"}},
		{"one failure counted", State{Phase: Running, Step: 1, Next: next, Failures: 1}, now,
			NextAction{Action: "check", At: next, Text: "check svc-a, svc-b figures over the last 5m0s at 10:05:00 UTC, then step to 100%; a failed check rolls back"}},
		{"one inconclusive check at the step", State{Phase: Running, Step: 0, Next: next, Inconclusive: 1}, now,
			NextAction{Action: "check", At: next, Text: "check svc-a, svc-b figures over the last 5m0s at 10:05:00 UTC, then step to 25%; 2 more failed checks in a row roll back; 2 more inconclusive checks in a row pause"}},
		{"one more inconclusive check pauses", State{Phase: Running, Step: 1, Next: next, Failures: 1, Inconclusive: 2}, now,
			NextAction{Action: "check", At: next, Text: "check svc-a, svc-b figures over the last 5m0s at 10:05:00 UTC, then step to 100%; a failed check rolls back; an inconclusive check pauses"}},
		{"the last step", State{Phase: Running, Step: 2, Next: next}, now,
			NextAction{Action: "check", At: next, Text: "check svc-a, svc-b figures over the last 5m0s at 10:05:00 UTC, then promote; 2 more failed checks in a row roll back"}},
		{"overdue, another day", State{Phase: Running, Step: 2, Next: next}, next.Add(24*time.Hour + 90*time.Second + 300*time.Millisecond),
			NextAction{Action: "check", At: next, Text: "check svc-a, svc-b figures over the last 5m0s at 2026-03-01 10:05:00 UTC (due 24h1m30s ago), then promote; 2 more failed checks in a row roll back"}},
		{"paused by an edit", State{Phase: Paused, Step: 1, Left: 90 * time.Second, Reason: "the spec was edited by someone else (index 42)"}, now,
			NextAction{Action: "resume", Text: "paused: the spec was edited by someone else (index 42); waiting for resume (graylane rollout resume), then step 2 holds for the 1m30s it had left"}},
		{"paused before the first step", State{Phase: Paused, Step: -1}, now,
			NextAction{Action: "resume", Text: "paused: paused by hand; waiting for resume (graylane rollout resume)"}},
		{"promoted", State{Phase: Promoted, Step: 2, Reason: "every step passed"}, now,
			NextAction{Action: "none", Text: "done: promoted (every step passed)"}},
		{"rolled back", State{Phase: RolledBack, Step: 0, Reason: "svc-b: error rate 5.000% above the maximum 1.000%"}, now,
			NextAction{Action: "none", Text: "done: rolled back (svc-b: error rate 5.000% above the maximum 1.000%)"}},
		{"aborted without reason", State{Phase: Aborted, Step: 1}, now,
			NextAction{Action: "none", Text: "done: aborted"}},
		{"unknown phase", State{Phase: "sideways"}, now,
			NextAction{Action: "none", Text: `unknown phase "sideways"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WhatNext(&tt.st, plan, tt.at); got != tt.want {
				t.Errorf("WhatNext =\n  %+v\nwant\n  %+v", got, tt.want)
			}
		})
	}
}

func TestNewView(t *testing.T) {
	plan, err := ParsePlan([]byte(viewPlan))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	check := func(svc string, step int, at time.Time, o Outcome) Check {
		return Check{Service: svc, Step: step, At: at, Outcome: o,
			New: Figure{Requests: 400.4, Errors: 4.004, P99: 12*time.Millisecond + 345*time.Nanosecond}, Old: Figure{Requests: 7600}}
	}
	var checks []Check
	for i := range 4 { // four rounds of two services
		at := t0.Add(time.Duration(i+1) * 5 * time.Minute)
		checks = append(checks, check("svc-a", i/2, at, Pass), check("svc-b", i/2, at, Inconclusive))
	}
	drained := true
	tests := []struct {
		name string
		st   State
		want View
	}{
		{"not started", State{Phase: Running, Step: -1}, View{Step: 0, Share: 0, Next: NextAction{Action: "step"}}},
		{"running", State{Phase: Running, Step: 1, StepStart: t0, Next: t0.Add(5 * time.Minute), Failures: 1, Inconclusive: 2, Checks: checks},
			View{Step: 2, Share: 25, StepStart: t0, Failures: 1, Inconclusive: 2, Next: NextAction{Action: "check", At: t0.Add(5 * time.Minute)}, Checks: viewChecks(checks[2:]),
				Exposure: "about 25% of requests; rolled back within 10m0s of running at this step while every window has at least 200 requests" +
					" (thin windows: the step lasts at most 30m0s, then rolls back or pauses)"}},
		{"paused", State{Phase: Paused, Step: 0, StepStart: t0, Reason: "by hand", Checks: checks[:1]},
			View{Step: 1, Share: 5, StepStart: t0, Reason: "by hand", Next: NextAction{Action: "resume"}, Checks: viewChecks(checks[:1])}},
		{"promoted", State{Phase: Promoted, Step: 2, StepStart: t0, Drained: map[string]bool{"svc-a": true, "svc-b": true}},
			View{Step: 3, Share: 100, StepStart: t0, Next: NextAction{Action: "none"}}},
		{"rolled back", State{Phase: RolledBack, Step: 0, Reason: "svc-b: failed"},
			View{Step: 1, Share: 0, Reason: "svc-b: failed", Next: NextAction{Action: "none"}}},
		{"aborted", State{Phase: Aborted, Step: 1}, View{Step: 2, Share: 0, Next: NextAction{Action: "none"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.st.Versions = map[string][2]string{"svc-a": {"1.0", "1.1"}, "svc-b": {"2.0", "2.1"}}
			now := t0.Add(time.Minute)
			got := NewView(&tt.st, plan, now)
			want := tt.want
			want.RuleKey, want.Phase, want.Steps = "shop-shop", tt.st.Phase, 3
			want.Next.Text = WhatNext(&tt.st, plan, now).Text
			want.Plan = ViewPlan{
				Services: []ViewService{{Name: "svc-a", Old: "1.0", New: "1.1"}, {Name: "svc-b", Old: "2.0", New: "2.1"}},
				Steps:    []int{5, 25, 100}, Hold: "5m0s", Window: "5m0s",
				Thresholds: []string{"at least 200 requests to the new version", "error rate at most 1%", "error rate at most 2× the old version's",
					"p99 at most 300ms", "p99 at most 1.5× the old version's", "2 failed checks in a row roll back",
					"3 inconclusive checks in a row pause"},
			}
			if tt.st.Drained != nil {
				want.Plan.Services[0].Drained, want.Plan.Services[1].Drained = &drained, &drained
			}
			if !reflect.DeepEqual(got, &want) {
				g, _ := json.MarshalIndent(got, "", " ")
				w, _ := json.MarshalIndent(&want, "", " ")
				t.Errorf("NewView =\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func viewChecks(cs []Check) []ViewCheck {
	var out []ViewCheck
	for _, c := range cs {
		out = append(out, ViewCheck{Service: c.Service, Step: c.Step + 1, At: c.At, Outcome: c.Outcome, Reason: c.Reason,
			New: ViewFigure{Requests: 400, Errors: 4, ErrorRate: 0.01, P99: "12ms"}, Old: ViewFigure{Requests: 7600, P99: "0s"}})
	}
	return out
}

func TestLastRounds(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	at := func(m ...int) []Check {
		var out []Check
		for _, x := range m {
			out = append(out, Check{At: t0.Add(time.Duration(x) * time.Minute)})
		}
		return out
	}
	tests := []struct {
		give []Check
		n    int
		want int // how many of the last checks
	}{
		{nil, 3, 0},
		{at(1), 3, 1},
		{at(1, 1, 2, 2, 3, 3, 4, 4), 3, 6},
		{at(1, 2, 3, 4, 4, 4), 2, 4},
		{at(1, 2), 0, 0},
	}
	for _, tt := range tests {
		if got := lastRounds(tt.give, tt.n); len(got) != tt.want || tt.want > 0 && &got[0] != &tt.give[len(tt.give)-tt.want] {
			t.Errorf("lastRounds(%d checks, %d) = %d checks, want the last %d", len(tt.give), tt.n, len(got), tt.want)
		}
	}
}

func TestThresholdsMinimal(t *testing.T) {
	got := Thresholds(Analysis{MaxErrorRate: 0.005})
	want := []string{"at least 1 requests to the new version", "error rate at most 0.5%", "a failed check rolls back", "an inconclusive check pauses"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Thresholds = %q, want %q", got, want)
	}
}

// TestViewTimes: the View's times, read with nanoseconds from a state, are
// whole seconds in its JSON, which still parses back to the same instants.
func TestViewTimes(t *testing.T) {
	plan, err := ParsePlan([]byte(viewPlan))
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	frac := 123456789 * time.Nanosecond
	st := &State{Phase: Running, Step: 0, StepStart: t0.Add(frac), Next: t0.Add(5*time.Minute + frac),
		Versions: map[string][2]string{"svc-a": {"1.0", "1.1"}, "svc-b": {"2.0", "2.1"}},
		Checks:   []Check{{Service: "svc-a", At: t0.Add(-time.Minute + frac), Outcome: Inconclusive}, {Service: "svc-b", At: t0.Add(-time.Minute + frac), Outcome: Inconclusive}}}
	b, err := json.Marshal(NewView(st, plan, t0.Add(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	for _, want := range []string{`"stepStart":"2026-03-01T10:00:00+01:00"`, `"at":"2026-03-01T10:05:00+01:00"`, `"at":"2026-03-01T09:59:00+01:00"`} {
		if !strings.Contains(js, want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	if strings.Contains(js, ".123") {
		t.Errorf("JSON has fractions of seconds:\n%s", js)
	}
	var back View
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !back.StepStart.Equal(t0) || !back.Next.At.Equal(t0.Add(5*time.Minute)) || len(back.Checks) != 2 || !back.Checks[1].At.Equal(t0.Add(-time.Minute)) {
		t.Errorf("parsed back: stepStart %v, next %v, checks %+v", back.StepStart, back.Next.At, back.Checks)
	}
	// The zero time stays zero: left out of the JSON.
	if b, _ := json.Marshal(NewView(&State{Phase: Running, Step: -1}, plan, t0)); strings.Contains(string(b), "stepStart") || strings.Contains(string(b), `"at"`) {
		t.Errorf("not started: %s", b)
	}
}

type failingStore struct{ MemStore }

func (*failingStore) Read(context.Context) (*Snapshot, error) { return nil, errors.New("agent down") }

func TestDebugSection(t *testing.T) {
	ctx := context.Background()
	mem := NewMemStore()
	if v, err := DebugSection(mem)(ctx); err != nil || v != "no rollout" {
		t.Errorf("without a rollout: %v, %v", v, err)
	}
	st := &State{Plan: viewPlan, Phase: Running, Step: 1, Versions: map[string][2]string{"svc-a": {"1.0", "1.1"}, "svc-b": {"1.0", "1.1"}}}
	if err := mem.Commit(ctx, &Snapshot{}, Update{State: st}); err != nil {
		t.Fatal(err)
	}
	v, err := DebugSection(mem)(ctx)
	view, ok := v.(*View)
	if err != nil || !ok || view.Step != 2 || view.Share != 25 || !strings.HasPrefix(view.Next.Text, "check svc-a, svc-b") {
		t.Errorf("DebugSection = %+v, %v", v, err)
	}
	if _, err := DebugSection(&failingStore{})(ctx); err == nil || err.Error() != "agent down" {
		t.Errorf("a failing store: %v", err)
	}
	bad := &State{Plan: "steps: [1]", Phase: Running}
	if err := mem.Commit(ctx, &Snapshot{StateIndex: 1}, Update{State: bad}); err != nil {
		t.Fatal(err)
	}
	v, err = DebugSection(mem)(ctx)
	if view, ok := v.(*View); err != nil || !ok || view.Phase != Running || !strings.Contains(view.PlanError, "the state's plan") {
		t.Errorf("a bad plan: %+v, %v", v, err)
	}
	if st, plan, err := Status(ctx, mem); st == nil || st.Phase != Running || plan != nil || err == nil {
		t.Errorf("Status of a bad plan = %+v, %v, %v; want the state, no plan and the error", st, plan, err)
	}
}

// A state whose plan does not parse still shows where the rollout is: its
// phase, step, share when the phase tells it, reason, checks, and the
// error.
func TestPlanErrorView(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 10, 0, 0, 500, time.UTC)
	check := Check{Service: "svc-a", Step: 1, At: t0, Outcome: Fail, Reason: "error rate 5.00% > 1.00%"}
	planErr := errors.New("plan: steps: want at least one")
	for _, tt := range []struct {
		name  string
		st    State
		step  int
		share int
		next  string // NextAction.Action
	}{
		{"running", State{Phase: Running, Step: 1, StepStart: t0, Failures: 1, Checks: []Check{check}}, 2, -1, "unknown"},
		{"before the first step", State{Phase: Running, Step: -1}, 0, 0, "unknown"},
		{"paused", State{Phase: Paused, Step: 2, Reason: "by hand", Left: time.Minute}, 3, -1, "resume"},
		{"promoted", State{Phase: Promoted, Step: 2, Reason: "all steps passed"}, 3, 100, "none"},
		{"rolled back", State{Phase: RolledBack, Step: 1, Reason: "svc-a failed"}, 2, 0, "none"},
		{"aborted", State{Phase: Aborted, Step: 0, Reason: "by hand"}, 1, 0, "none"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.st.Plan = "steps: [1"
			v := PlanErrorView(&tt.st, planErr)
			if v.Phase != tt.st.Phase || v.Step != tt.step || v.Share != tt.share || v.Next.Action != tt.next || v.Next.Text == "" {
				t.Errorf("phase %s step %d share %d next %+v, want %s %d %d %s", v.Phase, v.Step, v.Share, v.Next, tt.st.Phase, tt.step, tt.share, tt.next)
			}
			if v.Reason != tt.st.Reason || v.Failures != tt.st.Failures || v.PlanError != planErr.Error() {
				t.Errorf("reason %q failures %d planError %q", v.Reason, v.Failures, v.PlanError)
			}
			if !v.StepStart.Equal(seconds(tt.st.StepStart)) || len(v.Checks) != len(tt.st.Checks) {
				t.Errorf("stepStart %v checks %+v", v.StepStart, v.Checks)
			}
			if len(v.Checks) == 1 && (v.Checks[0].Step != 2 || v.Checks[0].Reason != check.Reason || v.Checks[0].At != t0.Truncate(time.Second)) {
				t.Errorf("check %+v", v.Checks[0])
			}
			b, err := json.Marshal(v)
			if err != nil || !strings.Contains(string(b), `"planError":"plan: steps: want at least one"`) {
				t.Errorf("JSON %s, %v", b, err)
			}
		})
	}
}
