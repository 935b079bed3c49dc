package rollout

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// NextAction is what a rollout does next and when, for people: graylane
// rollout status and the balancer's debug page ([DebugSection]) print its
// Text.
type NextAction struct {
	// Action is "step" (write the first step's weights), "check" (judge
	// the figures, then step, promote or roll back), "resume" (a paused
	// rollout waits for a person), "none" (done) or "unknown" (a running
	// rollout whose plan does not parse, [PlanErrorView]).
	Action string `json:"action"`
	// At is when the controller acts; zero when it acts as soon as it
	// runs, or waits for a person, or is done.
	At time.Time `json:"at,omitzero"`
	// Text says it in words, e.g. "check svc-a, svc-b figures over the
	// last 5m at 10:05:00 UTC, then step to 25%; a failed check rolls
	// back".
	Text string `json:"text"`
}

// WhatNext says what the rollout in st (of plan) does next, seen at now.
// It is a pure function.
func WhatNext(st *State, plan *Plan, now time.Time) NextAction {
	switch st.Phase {
	case Promoted:
		return NextAction{Action: "none", Text: done("promoted", st.Reason)}
	case RolledBack:
		return NextAction{Action: "none", Text: done("rolled back", st.Reason)}
	case Aborted:
		return NextAction{Action: "none", Text: done("aborted", st.Reason)}
	case Paused:
		why := st.Reason
		if why == "" {
			why = "paused by hand"
		}
		t := "paused: " + why + "; waiting for resume (graylane rollout resume)"
		if st.Step >= 0 {
			t += fmt.Sprintf(", then step %d holds for the %v it had left", st.Step+1, st.Left)
		}
		return NextAction{Action: "resume", Text: t}
	case Running:
	default:
		return NextAction{Action: "none", Text: "unknown phase " + strconv.Quote(string(st.Phase))}
	}
	if st.Step < 0 || len(plan.Steps) == 0 {
		return NextAction{Action: "step", Text: fmt.Sprintf("write step 1 (%d%%) now", first(plan.Steps))}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "check %s figures over the last %v at %s", strings.Join(plan.Services, ", "), plan.Analysis.Window, clockTime(st.Next, now))
	if late := now.Sub(st.Next).Truncate(time.Second); late > 0 {
		fmt.Fprintf(&b, " (due %v ago)", late)
	}
	if st.Step >= len(plan.Steps)-1 {
		b.WriteString(", then promote")
	} else {
		fmt.Fprintf(&b, ", then step to %d%%", plan.Steps[st.Step+1])
	}
	switch left := plan.Analysis.Failures - st.Failures; {
	case left <= 1:
		b.WriteString("; a failed check rolls back")
	default:
		fmt.Fprintf(&b, "; %d more failed checks in a row roll back", left)
	}
	if st.Inconclusive > 0 {
		switch left := max(plan.Analysis.MaxInconclusive, 1) - st.Inconclusive; {
		case left <= 1:
			b.WriteString("; an inconclusive check pauses")
		default:
			fmt.Fprintf(&b, "; %d more inconclusive checks in a row pause", left)
		}
	}
	return NextAction{Action: "check", At: st.Next, Text: b.String()}
}

func done(what, why string) string {
	if why == "" {
		return "done: " + what
	}
	return "done: " + what + " (" + why + ")"
}

func first(steps []int) int {
	if len(steps) == 0 {
		return 0
	}
	return steps[0]
}

// clockTime formats t as a time of day, with its date when it is not
// now's day.
func clockTime(t, now time.Time) string {
	y, m, d := t.Date()
	if ny, nm, nd := now.In(t.Location()).Date(); ny != y || nm != m || nd != d {
		return t.Format("2006-01-02 15:04:05 MST")
	}
	return t.Format("15:04:05 MST")
}

// View is a rollout as people read it: the plan in brief, where the
// rollout is, what it does next and the latest checks with the figures
// they used. graylane rollout status prints it; the balancer's debug page
// shows it as JSON and HTML ([DebugSection]). Its times are truncated to
// whole seconds, so that its JSON shows them as RFC 3339 without a
// fraction ("2026-03-01T10:05:00Z"), as people read them and machines
// parse them.
type View struct {
	RuleKey string `json:"ruleKey"`
	Phase   Phase  `json:"phase"`
	// Step is the current step, 1-based (0: none written yet), of Steps.
	Step  int `json:"step"`
	Steps int `json:"steps"`
	// Share is the new version's share now, in percent; -1 when it is
	// unknown (the plan does not parse and the phase does not tell it).
	Share int `json:"share"`
	// StepStart is when the current step's weights were written.
	StepStart time.Time  `json:"stepStart,omitzero"`
	Next      NextAction `json:"next"`
	// Reason says why the rollout paused, or ended as it did.
	Reason string `json:"reason,omitempty"`
	// Failures counts the failed checks in a row.
	Failures int `json:"failures"`
	// Inconclusive counts the inconclusive checks in a row at the current
	// step (the plan's analysis.maxInconclusive of them pause).
	Inconclusive int `json:"inconclusive"`
	// Exposure says, while the rollout runs at a step, what a new version
	// that fails its checks is exposed to there ([Plan.Exposure]), e.g.
	// "about 25% of requests; rolled back within 10m0s of running at this
	// step while every window has at least 200 requests (thin windows:
	// the step lasts at most 30m0s, then rolls back or pauses)".
	Exposure string   `json:"exposure,omitempty"`
	Plan     ViewPlan `json:"plan"`
	// Checks are the checks of the latest check rounds (at most
	// ViewRounds), oldest first.
	Checks []ViewCheck `json:"checks,omitempty"`
	// PlanError says why the state's plan does not parse ([PlanErrorView]);
	// the view then shows what the state alone tells: the plan's brief,
	// the rule key, the number of steps and what comes next are unknown.
	PlanError string `json:"planError,omitempty"`
}

// ViewRounds is how many of the latest check rounds a View shows.
const ViewRounds = 3

// ViewPlan is the plan in brief.
type ViewPlan struct {
	Services []ViewService `json:"services"`
	// Steps are the new version's shares, in percent.
	Steps  []int  `json:"steps"`
	Hold   string `json:"hold"`
	Window string `json:"window"`
	// Thresholds are the analysis' requirements, in words.
	Thresholds []string `json:"thresholds"`
}

// ViewService is one service of the plan and its versions.
type ViewService struct {
	Name string `json:"name"`
	Old  string `json:"old"`
	New  string `json:"new"`
	// Drained reports, after promotion, whether the drain gate sees the
	// old version drained.
	Drained *bool `json:"drained,omitempty"`
}

// ViewCheck is one check: the figures it used and its verdict.
type ViewCheck struct {
	Service string    `json:"service"`
	Step    int       `json:"step"` // 1-based
	At      time.Time `json:"at"`
	Outcome Outcome   `json:"outcome"`
	// New and Old are the figures of the new and old versions over the
	// window.
	New ViewFigure `json:"new"`
	Old ViewFigure `json:"old"`
	// Reason says which threshold failed, or why the check is
	// inconclusive.
	Reason string `json:"reason,omitempty"`
}

// ViewFigure is a [Figure] with its rate and latency spelt out; the
// counts are rounded to whole requests (Prometheus extrapolates them).
type ViewFigure struct {
	Requests  float64 `json:"requests"`
	Errors    float64 `json:"errors"`
	ErrorRate float64 `json:"errorRate"` // 0 to 1
	P99       string  `json:"p99"`
}

// NewView returns the view of the rollout in st (of plan) at now. It is a
// pure function.
func NewView(st *State, plan *Plan, now time.Time) *View {
	v := &View{
		RuleKey:      plan.RuleKey,
		Phase:        st.Phase,
		Step:         st.Step + 1,
		Steps:        len(plan.Steps),
		Share:        st.Share(plan),
		StepStart:    seconds(st.StepStart),
		Next:         WhatNext(st, plan, now),
		Reason:       st.Reason,
		Failures:     st.Failures,
		Inconclusive: st.Inconclusive,
		Plan: ViewPlan{
			Steps:      plan.Steps,
			Hold:       plan.Hold.String(),
			Window:     plan.Analysis.Window.String(),
			Thresholds: Thresholds(plan.Analysis),
		},
	}
	v.Next.At = seconds(v.Next.At)
	if st.Step < 0 {
		v.Step = 0
	}
	if st.Phase == Running && st.Step >= 0 {
		v.Exposure = stepExposure(plan, st.Step)
	}
	for _, svc := range plan.Services {
		vs := st.Versions[svc]
		s := ViewService{Name: svc, Old: vs[0], New: vs[1]}
		if d, ok := st.Drained[svc]; ok {
			s.Drained = &d
		}
		v.Plan.Services = append(v.Plan.Services, s)
	}
	for _, c := range lastRounds(st.Checks, ViewRounds) {
		v.Checks = append(v.Checks, viewCheck(c))
	}
	return v
}

// PlanErrorView returns the view of the rollout in st whose plan does not
// parse (planErr says why): its phase, step, share when the phase tells it
// (promoted: 100; rolled back, aborted or before the first step: 0;
// otherwise -1, unknown), what comes next unless it is running, reason,
// counts and latest checks, and the error, so that a person still sees
// where the rollout is. It is a pure function.
func PlanErrorView(st *State, planErr error) *View {
	v := &View{
		Phase:        st.Phase,
		Step:         max(st.Step+1, 0),
		Share:        -1,
		StepStart:    seconds(st.StepStart),
		Next:         NextAction{Action: "unknown", Text: "unknown: the state's plan does not parse"},
		Reason:       st.Reason,
		Failures:     st.Failures,
		Inconclusive: st.Inconclusive,
		PlanError:    planErr.Error(),
	}
	if st.Phase.Done() || st.Step < 0 {
		v.Share = st.Share(nil) // told by the phase: the plan is not read
	}
	if st.Phase != Running {
		v.Next = WhatNext(st, nil, time.Time{}) // reads no plan but a running one's
	}
	for _, c := range lastRounds(st.Checks, ViewRounds) {
		v.Checks = append(v.Checks, viewCheck(c))
	}
	return v
}

// viewCheck is c as a View shows it.
func viewCheck(c Check) ViewCheck {
	return ViewCheck{Service: c.Service, Step: c.Step + 1, At: seconds(c.At), Outcome: c.Outcome,
		New: viewFigure(c.New), Old: viewFigure(c.Old), Reason: c.Reason}
}

// seconds truncates t to whole seconds (and drops a monotonic clock
// reading); the zero time stays zero.
func seconds(t time.Time) time.Time {
	return t.Truncate(time.Second)
}

// stepExposure says in words what Plan.Exposure bounds at step i.
func stepExposure(plan *Plan, i int) string {
	share, d := plan.Exposure(i)
	return fmt.Sprintf("about %d%% of requests; rolled back within %v of running at this step while every window has at least %d requests"+
		" (thin windows: the step lasts at most %v, then rolls back or pauses)",
		share, d, max(plan.Analysis.MinRequests, 1), d*time.Duration(max(plan.Analysis.MaxInconclusive, 1)))
}

func viewFigure(f Figure) ViewFigure {
	return ViewFigure{Requests: math.Round(f.Requests), Errors: math.Round(f.Errors), ErrorRate: f.ErrorRate(), P99: f.P99.Round(time.Microsecond).String()}
}

// lastRounds returns the checks of the latest n rounds (a round: the
// checks made at one time).
func lastRounds(checks []Check, n int) []Check {
	i, rounds := len(checks), 0
	for i > 0 {
		if i == len(checks) || !checks[i-1].At.Equal(checks[i].At) {
			if rounds == n {
				break
			}
			rounds++
		}
		i--
	}
	return checks[i:]
}

// Thresholds says in words what a check requires, e.g. "at least 200
// requests to the new version", "error rate at most 1%", and how many
// failed or inconclusive checks in a row roll back or pause, e.g. "3
// inconclusive checks in a row pause".
func Thresholds(a Analysis) []string {
	out := []string{fmt.Sprintf("at least %d requests to the new version", max(a.MinRequests, 1))}
	if a.MaxErrorRate > 0 {
		out = append(out, "error rate at most "+strconv.FormatFloat(100*a.MaxErrorRate, 'g', -1, 64)+"%")
	}
	if a.MaxErrorRatio > 0 {
		out = append(out, fmt.Sprintf("error rate at most %g× the old version's", a.MaxErrorRatio))
	}
	if a.MaxP99 > 0 {
		out = append(out, fmt.Sprintf("p99 at most %v", a.MaxP99))
	}
	if a.MaxP99Ratio > 0 {
		out = append(out, fmt.Sprintf("p99 at most %g× the old version's", a.MaxP99Ratio))
	}
	failures := max(a.Failures, 1)
	if failures == 1 {
		out = append(out, "a failed check rolls back")
	} else {
		out = append(out, fmt.Sprintf("%d failed checks in a row roll back", failures))
	}
	if inconclusive := max(a.MaxInconclusive, 1); inconclusive == 1 {
		out = append(out, "an inconclusive check pauses")
	} else {
		out = append(out, fmt.Sprintf("%d inconclusive checks in a row pause", inconclusive))
	}
	return out
}

// DebugSection returns a function that shows the rollout of store on a
// balancer's debug page, for balancer.WithDebugSection:
//
//	store, _ := rollout.NewConsulStore(client, ruleKey, "debug", 0)
//	b, _ := balancer.New(reg, balancer.WithRuleSource(rules),
//		balancer.WithDebugSection("rollout", rollout.DebugSection(store)))
//
// Each request of the page reads the rollout's state once (from a
// ConsulStore, one consistent read of its state key; no watch runs for the
// page) and shows its [View], or says there is no rollout. A state whose
// plan does not parse is shown as [PlanErrorView] tells it.
func DebugSection(store Store) func(context.Context) (any, error) {
	return func(ctx context.Context) (any, error) {
		st, where, err := readState(ctx, store)
		if err != nil {
			return nil, err
		}
		if st == nil {
			return "no rollout" + where, nil
		}
		plan, err := ParsePlan([]byte(st.Plan))
		if err != nil {
			v := PlanErrorView(st, fmt.Errorf("rollout: the state's plan: %w", err))
			if c, ok := store.(*ConsulStore); ok {
				v.RuleKey = c.ruleKey
			}
			return v, nil
		}
		return NewView(st, plan, time.Now()), nil
	}
}

// readState reads the rollout's state alone: a ConsulStore's state key with
// one consistent read, any other store's snapshot. where names the key
// read, if any.
func readState(ctx context.Context, store Store) (*State, string, error) {
	c, ok := store.(*ConsulStore)
	if !ok {
		snap, err := store.Read(ctx)
		if err != nil {
			return nil, "", err
		}
		return snap.State, "", nil
	}
	key := StatePrefix + c.ruleKey
	p, _, err := c.client.KV().Get(key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		return nil, "", fmt.Errorf("rollout: read %q: %w", key, err)
	}
	if p == nil {
		return nil, " at " + key, nil
	}
	st := &State{}
	if err := json.Unmarshal(p.Value, st); err != nil {
		return nil, "", fmt.Errorf("rollout: state at %q: %w", key, err)
	}
	return st, "", nil
}
