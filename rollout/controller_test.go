package rollout

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/balancer/drain"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/internal/waittest"
	"github.com/graylane/graylane/rule"
)

// fakeClock is a Clock moved by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// After fires at once: the tests drive Tick themselves and only Run
// (lock handover) waits on it.
func (c *fakeClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

const testPlan = `
ruleKey: shop-shop
services: [svc-a, svc-b]
new: newest
steps: [1, 5, 25, 50, 100]
hold: 1m
analysis:
  minRequests: 50
  maxErrorRate: 0.01
  maxP99Ratio: 1.5
  failures: 1
`

const testSpec = `service: [svc-a, svc-b]
gray:
  - {weight: [100, 0]}
`

// fixture is a two-service chain at 1.0 and 1.1 in memory.
type fixture struct {
	t     *testing.T
	store *MemStore
	reg   *discovery.Static
	rec   *Recorder
	clock *fakeClock
	ctl   *Controller
	evs   []Event
}

func newFixture(t *testing.T, plan string) *fixture {
	t.Helper()
	f := &fixture{t: t, store: NewMemStore(), reg: discovery.NewStatic(), rec: NewRecorder(), clock: newFakeClock()}
	for _, svc := range []string{"svc-a", "svc-b"} {
		f.reg.Set(svc,
			discovery.Instance{ID: svc + "-1", Address: "10.0.0.1", Port: 80, Version: "1.0"},
			discovery.Instance{ID: svc + "-2", Address: "10.0.0.2", Port: 80, Version: "1.1"})
	}
	spec, err := rule.ParseSpec([]byte(testSpec))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := inventory(context.Background(), f.reg, spec.Service)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := orchestrate.Render(spec, inv)
	if err != nil {
		t.Fatal(err)
	}
	f.store.Publish([]byte(testSpec), rd.XML, RenderedFlags)
	f.ctl, err = NewController(f.store, f.reg, f.rec, WithClock(f.clock), WithEvents(func(e Event) { f.evs = append(f.evs, e) }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), f.store, f.reg, []byte(plan)); err != nil {
		t.Fatal(err)
	}
	return f
}

// traffic records perMinute requests per service over the last minute,
// split by the current share; the new version fails errEvery-th request
// (0: never) and takes newLatency.
func (f *fixture) traffic(perMinute int, errEvery int, newLatency time.Duration) {
	st, plan, err := Status(context.Background(), f.store)
	if err != nil {
		f.t.Fatal(err)
	}
	share := st.Share(plan)
	end := f.clock.Now()
	for _, svc := range plan.Services {
		v := st.Versions[svc]
		nNew := perMinute * share / 100
		for i := range perMinute {
			at := end.Add(-time.Minute + time.Duration(i+1)*time.Minute/time.Duration(perMinute))
			if i < nNew {
				f.rec.Record(svc, v[1], at, newLatency, errEvery > 0 && i%errEvery == 0)
			} else {
				f.rec.Record(svc, v[0], at, 10*time.Millisecond, false)
			}
		}
	}
}

func (f *fixture) tick() time.Time {
	f.t.Helper()
	next, err := f.ctl.Tick(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return next
}

func (f *fixture) state() (*State, *Plan) {
	f.t.Helper()
	st, plan, err := Status(context.Background(), f.store)
	if err != nil || st == nil {
		f.t.Fatal(st, err)
	}
	return st, plan
}

// grayWeight returns the spec's default gray weights.
func (f *fixture) grayWeight() [2]int {
	f.t.Helper()
	snap, _ := f.store.Read(context.Background())
	spec, err := rule.ParseSpec(snap.Spec)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, g := range spec.Gray {
		if g.Expression == "" {
			return g.Weight
		}
	}
	f.t.Fatal("no default gray entry")
	return [2]int{}
}

// run ticks through holds, with traffic before each check, until the
// rollout is done or n holds passed.
func (f *fixture) run(n, perMinute, errEvery int, newLatency time.Duration) *State {
	f.tick() // the first step
	for range n {
		f.clock.Advance(time.Minute)
		f.traffic(perMinute, errEvery, newLatency)
		f.tick()
		if st, _ := f.state(); st.Phase.Done() {
			return st
		}
	}
	st, _ := f.state()
	return st
}

func (f *fixture) shares() []int {
	var out []int
	for _, e := range f.evs {
		if e.Action == "step" || e.Action == "promote" || e.Action == "rollback" {
			out = append(out, e.Share)
		}
	}
	return out
}

func TestHealthyPromotesThroughEveryStep(t *testing.T) {
	f := newFixture(t, testPlan)
	st := f.run(20, 10000, 0, 11*time.Millisecond)
	if st.Phase != Promoted {
		t.Fatalf("phase %s (%s), want promoted", st.Phase, st.Reason)
	}
	if got, want := fmt.Sprint(f.shares()), "[1 5 25 50 100 100]"; got != want {
		t.Errorf("shares %s, want %s", got, want)
	}
	if w := f.grayWeight(); w != [2]int{0, 100} {
		t.Errorf("gray weight %v, want [0 100]", w)
	}
	snap, _ := f.store.Read(context.Background())
	r, err := rule.Parse(snap.Rule)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"svc-a", "svc-b"} {
		if !st.Drained[svc] || drain.Analyze(r, svc, "1.0").Receiving {
			t.Errorf("%s: old version not drained (state %v)", svc, st.Drained)
		}
		if !drain.Analyze(r, svc, "1.1").Receiving {
			t.Errorf("%s: new version not receiving", svc)
		}
	}
	if snap.RuleFlags != RenderedFlags {
		t.Errorf("rule flags %x", snap.RuleFlags)
	}
	// Five checks passed, one per step, each over both services.
	if len(st.Checks) != 10 {
		t.Errorf("%d checks, want 10", len(st.Checks))
	}
}

func TestFailingRollsBackAtFirstStepWithEnoughRequests(t *testing.T) {
	f := newFixture(t, testPlan)
	f.tick()
	// 1% of 2,000 requests is 20, fewer than the 50 required: inconclusive,
	// the step holds again.
	f.clock.Advance(time.Minute)
	f.traffic(2000, 20, 10*time.Millisecond)
	f.tick()
	st, _ := f.state()
	if st.Phase != Running || st.Step != 0 || st.Checks[len(st.Checks)-1].Outcome != Inconclusive {
		t.Fatalf("after a thin window: phase %s step %d checks %+v", st.Phase, st.Step, st.Checks)
	}
	// 1% of 10,000 is 100 requests, 5 of them failed: rolled back at step 1.
	f.clock.Advance(time.Minute)
	f.traffic(10000, 20, 10*time.Millisecond)
	f.tick()
	st, _ = f.state()
	if st.Phase != RolledBack || st.Step != 0 {
		t.Fatalf("phase %s step %d, want rolled back at step 1", st.Phase, st.Step)
	}
	if !strings.Contains(st.Reason, "error rate 5.000%") {
		t.Errorf("reason %q", st.Reason)
	}
	if w := f.grayWeight(); w != [2]int{100, 0} {
		t.Errorf("gray weight %v, want [100 0]", w)
	}
	if got, want := fmt.Sprint(f.shares()), "[1 0]"; got != want {
		t.Errorf("shares %s, want %s", got, want)
	}
}

func TestSlowRollsBackOnLatencyRatio(t *testing.T) {
	f := newFixture(t, testPlan)
	st := f.run(20, 10000, 0, 210*time.Millisecond)
	if st.Phase != RolledBack || st.Step != 0 || !strings.Contains(st.Reason, "p99 210ms above 1.5 times") {
		t.Fatalf("phase %s step %d reason %q", st.Phase, st.Step, st.Reason)
	}
}

func TestConcurrentEditPausesAndResumeContinues(t *testing.T) {
	f := newFixture(t, testPlan)
	f.tick()
	f.clock.Advance(time.Minute)
	f.traffic(10000, 0, 10*time.Millisecond)
	f.tick() // step 2: 5%
	// A person publishes an edited spec 20s into the step.
	f.clock.Advance(20 * time.Second)
	edited := "service: [svc-a, svc-b]\ngray:\n  - {weight: [90, 10]}\nheader: {x-team: ops}\n"
	f.store.Publish([]byte(edited), []byte("<rule/>"), RenderedFlags)
	if next := f.tick(); !next.IsZero() {
		t.Fatalf("next %v after an edit, want none", next)
	}
	st, _ := f.state()
	if st.Phase != Paused || !strings.Contains(st.Reason, "edited by someone else") || st.Left != 40*time.Second {
		t.Fatalf("phase %s reason %q left %v", st.Phase, st.Reason, st.Left)
	}
	snap, _ := f.store.Read(context.Background())
	if string(snap.Spec) != edited {
		t.Fatalf("the person's spec was overwritten: %s", snap.Spec)
	}
	// Paused: nothing happens however long it waits.
	f.clock.Advance(time.Hour)
	f.tick()
	if snap2, _ := f.store.Read(context.Background()); string(snap2.Spec) != edited {
		t.Fatal("a paused rollout wrote")
	}
	if err := Resume(context.Background(), f.store, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	st, _ = f.state()
	if want := f.clock.Now().Add(40 * time.Second); !st.Next.Equal(want) || st.Step != 1 {
		t.Fatalf("resumed: step %d next %v, want step 2 at %v", st.Step, st.Next, want)
	}
	f.clock.Advance(39 * time.Second)
	f.tick()
	if st, _ = f.state(); st.Step != 1 {
		t.Fatalf("moved before the remaining hold ended: step %d", st.Step)
	}
	f.clock.Advance(time.Second)
	f.traffic(10000, 0, 10*time.Millisecond)
	f.tick()
	st, _ = f.state()
	if st.Step != 2 || f.grayWeight() != [2]int{75, 25} {
		t.Fatalf("step %d weight %v, want step 3 at [75 25]", st.Step, f.grayWeight())
	}
	snap, _ = f.store.Read(context.Background())
	if !strings.Contains(string(snap.Spec), "x-team") {
		t.Errorf("the edited header is gone from the spec:\n%s", snap.Spec)
	}
}

func TestHandEditedRulePauses(t *testing.T) {
	f := newFixture(t, testPlan)
	f.tick()
	f.store.Publish(nil, []byte("<rule/>"), 0)
	f.tick()
	st, _ := f.state()
	if st.Phase != Paused || !strings.Contains(st.Reason, "written by hand") {
		t.Fatalf("phase %s reason %q", st.Phase, st.Reason)
	}
	// The hand-written rule is kept: resume refuses until the spec is
	// published again, and then continues.
	if err := Resume(context.Background(), f.store, f.clock.Now()); err == nil || !strings.Contains(err.Error(), "published again") {
		t.Fatalf("resume over a hand-written rule: %v", err)
	}
	if snap, _ := f.store.Read(context.Background()); string(snap.Rule) != "<rule/>" {
		t.Fatalf("the hand-written rule was replaced: %s", snap.Rule)
	}
	f.store.Publish([]byte(testSpec), []byte("<rendered/>"), RenderedFlags)
	if err := Resume(context.Background(), f.store, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	f.traffic(10000, 0, 10*time.Millisecond)
	f.tick()
	if st, _ = f.state(); st.Phase != Running || st.Step != 1 || f.grayWeight() != [2]int{95, 5} {
		t.Fatalf("after resume: phase %s step %d weight %v", st.Phase, st.Step+1, f.grayWeight())
	}
}

func TestCommands(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, testPlan)
	if _, err := Start(ctx, f.store, f.reg, []byte(testPlan)); !errors.Is(err, ErrState) {
		t.Fatalf("second start: %v, want ErrState", err)
	}
	f.tick()
	f.clock.Advance(15 * time.Second)
	if err := Pause(ctx, f.store, f.clock.Now(), "by hand"); err != nil {
		t.Fatal(err)
	}
	if err := Pause(ctx, f.store, f.clock.Now(), "again"); !errors.Is(err, ErrState) {
		t.Fatalf("pause twice: %v", err)
	}
	st, _ := f.state()
	if st.Left != 45*time.Second || st.Reason != "by hand" {
		t.Fatalf("left %v reason %q", st.Left, st.Reason)
	}
	if err := Promote(ctx, f.store, f.reg, "looks fine"); err != nil {
		t.Fatal(err)
	}
	st, _ = f.state()
	if st.Phase != Promoted || f.grayWeight() != [2]int{0, 100} || !st.Drained["svc-a"] {
		t.Fatalf("promote: %s %v %v", st.Phase, f.grayWeight(), st.Drained)
	}
	if err := Abort(ctx, f.store, f.reg, "late"); !errors.Is(err, ErrState) {
		t.Fatalf("abort after promote: %v", err)
	}
	// A finished rollout can be followed by a new one; abort puts 0%.
	if _, err := Start(ctx, f.store, f.reg, []byte(testPlan)); err != nil {
		t.Fatal(err)
	}
	if err := Abort(ctx, f.store, f.reg, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	if st, _ = f.state(); st.Phase != Aborted || f.grayWeight() != [2]int{100, 0} {
		t.Fatalf("abort: %s %v", st.Phase, f.grayWeight())
	}
}

func TestStartResolvesAndRefuses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, testPlan)
	st, _ := f.state()
	if st.Versions["svc-a"] != [2]string{"1.0", "1.1"} {
		t.Errorf("versions %v", st.Versions)
	}
	store := NewMemStore()
	if _, err := Start(ctx, store, f.reg, []byte(testPlan)); err == nil || !strings.Contains(err.Error(), "no spec") {
		t.Errorf("start without spec: %v", err)
	}
	store.Publish([]byte(testSpec), []byte("<rule/>"), RenderedFlags)
	bad := strings.Replace(testPlan, "new: newest", "new: \"2.0\"", 1)
	if _, err := Start(ctx, store, f.reg, []byte(bad)); err == nil || !strings.Contains(err.Error(), "not on the spec's new side") {
		t.Errorf("start with a version not running: %v", err)
	}
}

// TestStickyUsersOnlyMoveToNew: with the spec's sticky key, a user the
// rule sends to the new side at one step stays there at every later
// step, as the share only grows (the whole chain moves with it: both
// services are in the one route pair).
func TestStickyUsersOnlyMoveToNew(t *testing.T) {
	f := newFixture(t, testPlan)
	sticky := "service: [svc-a, svc-b]\ngray:\n  - {weight: [100, 0]}\nsticky: \"#H['x-user']\"\n"
	f.store.Publish([]byte(sticky), nil, 0)
	if err := Abort(context.Background(), f.store, f.reg, "restart with the sticky spec"); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), f.store, f.reg, []byte(testPlan)); err != nil {
		t.Fatal(err)
	}
	onNew := map[int]bool{}
	for step := 0; ; step++ {
		f.tick()
		st, plan := f.state()
		if st.Phase.Done() {
			break
		}
		snap, _ := f.store.Read(context.Background())
		r, err := rule.Parse(snap.Rule)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for u := range 2000 {
			d := r.Decide(expr.Map{"x-user": fmt.Sprint("user-", u)}, uint64(u)*0x9e3779b97f4a7c15)
			a, _ := d.Version.For("svc-a")
			b, _ := d.Version.For("svc-b")
			if (a == "1.1") != (b == "1.1") {
				t.Fatalf("step %d: user %d goes to svc-a %s, svc-b %s", step+1, u, a, b)
			}
			if a == "1.1" {
				n++
			} else if onNew[u] {
				t.Fatalf("step %d (%d%%): user %d moved back to the old side", step+1, st.Share(plan), u)
			}
			onNew[u] = a == "1.1"
		}
		if share := st.Share(plan); n < 2000*share/100-150 || n > 2000*share/100+150 {
			t.Errorf("step %d: %d of 2000 users on the new side at %d%%", step+1, n, share)
		}
		f.clock.Advance(time.Minute)
		f.traffic(10000, 0, 10*time.Millisecond)
	}
}

// TestOrchestratorRenderingIsNotAnEdit: graylane orchestrate writing the
// rule again from the controller's spec (rendered flags, spec untouched)
// does not pause the rollout.
func TestOrchestratorRenderingIsNotAnEdit(t *testing.T) {
	f := newFixture(t, testPlan)
	f.tick()
	f.store.Publish(nil, []byte("<rendered again/>"), RenderedFlags)
	f.clock.Advance(time.Minute)
	f.traffic(10000, 0, 10*time.Millisecond)
	f.tick()
	if st, _ := f.state(); st.Phase != Running || st.Step != 1 {
		t.Fatalf("phase %s step %d (%s)", st.Phase, st.Step+1, st.Reason)
	}
}

// thin records, over the last minute, n requests to svc's new version
// (none failed) and ten times as many to its old one: a window with n
// requests to judge.
func (f *fixture) thin(svc string, n int) {
	st, _ := f.state()
	v := st.Versions[svc]
	end := f.clock.Now()
	for i := range n {
		f.rec.Record(svc, v[1], end.Add(-time.Duration(i+1)*time.Second/2), 10*time.Millisecond, false)
	}
	for i := range 10 * n {
		f.rec.Record(svc, v[0], end.Add(-time.Duration(i+1)*time.Second/20), 10*time.Millisecond, false)
	}
}

// checkAfterHold advances one hold (a minute), records n requests to each
// service's new version (nb to svc-b's, nb < 0: n) and ticks.
func (f *fixture) checkAfterHold(n, nb int, failing bool) *State {
	f.t.Helper()
	f.clock.Advance(time.Minute)
	if nb < 0 {
		nb = n
	}
	f.thin("svc-a", n)
	f.thin("svc-b", nb)
	if failing {
		st, _ := f.state()
		for i := range n {
			f.rec.Record("svc-a", st.Versions["svc-a"][1], f.clock.Now().Add(-time.Duration(i+1)*time.Millisecond), 10*time.Millisecond, true)
		}
	}
	f.tick()
	st, _ := f.state()
	return st
}

// TestInconclusiveChecksPause: a step whose windows stay short of
// minRequests is not checked forever: after maxInconclusive (default 3)
// inconclusive checks in a row the rollout pauses at its share, says which
// service lacked requests, and resume grants as many checks again.
func TestInconclusiveChecksPause(t *testing.T) {
	f := newFixture(t, testPlan)
	f.tick()
	// svc-a has enough requests, svc-b 12 of the 50 required.
	for i := 1; i <= 2; i++ {
		st := f.checkAfterHold(100, 12, false)
		if st.Phase != Running || st.Step != 0 || st.Inconclusive != i {
			t.Fatalf("after %d thin checks: phase %s step %d inconclusive %d", i, st.Phase, st.Step+1, st.Inconclusive)
		}
	}
	st := f.checkAfterHold(100, 12, false)
	want := "svc-b: 3 inconclusive checks in a row (12 requests to the new version, fewer than the 50 required); resume to keep checking, or promote/abort"
	if st.Phase != Paused || st.Reason != want || st.Step != 0 || st.Left != time.Minute || !st.Next.IsZero() {
		t.Fatalf("after 3 thin checks: phase %s step %d left %v next %v reason %q, want paused: %q", st.Phase, st.Step+1, st.Left, st.Next, st.Reason, want)
	}
	if st.Inconclusive != 3 || st.Failures != 0 {
		t.Errorf("inconclusive %d failures %d, want 3 and 0", st.Inconclusive, st.Failures)
	}
	// Paused at its share: no rollback, since nothing showed 1.1 bad.
	if w := f.grayWeight(); w != [2]int{99, 1} {
		t.Errorf("gray weight %v, want the step's [99 1]", w)
	}
	last := f.evs[len(f.evs)-1]
	if last.Action != "pause" || last.Phase != Paused || last.Reason != want || last.Share != 1 {
		t.Errorf("last event %+v, want a pause", last)
	}
	if ev := f.evs[len(f.evs)-2]; ev.Action != "check" || len(ev.Checks) != 2 || ev.Checks[1].Outcome != Inconclusive {
		t.Errorf("the event before the pause: %+v, want the check", ev)
	}
	// Paused: no more checks however long it waits.
	n := len(st.Checks)
	f.clock.Advance(time.Hour)
	f.tick()
	if st, _ = f.state(); st.Phase != Paused || len(st.Checks) != n {
		t.Fatalf("a paused rollout checked: phase %s, %d checks", st.Phase, len(st.Checks))
	}
	// Resume: another hold, then another three checks before pausing again.
	if err := Resume(context.Background(), f.store, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	st, _ = f.state()
	if st.Inconclusive != 0 || !st.Next.Equal(f.clock.Now().Add(time.Minute)) {
		t.Fatalf("resumed: inconclusive %d next %v", st.Inconclusive, st.Next)
	}
	for i := 1; i <= 2; i++ {
		if st = f.checkAfterHold(100, 12, false); st.Phase != Running || st.Inconclusive != i {
			t.Fatalf("resumed, thin check %d: phase %s inconclusive %d (%s)", i, st.Phase, st.Inconclusive, st.Reason)
		}
	}
	if st = f.checkAfterHold(100, 100, false); st.Phase != Running || st.Step != 1 || st.Inconclusive != 0 {
		t.Fatalf("a window with enough requests: phase %s step %d inconclusive %d", st.Phase, st.Step+1, st.Inconclusive)
	}
}

// TestInconclusiveCountsOnlyInARow: a pass (with its step move) and a fail
// end a run of inconclusive checks; an inconclusive check between two
// fails does not end their run, so failures: 2 rolls back on fail,
// inconclusive, fail.
func TestInconclusiveCountsOnlyInARow(t *testing.T) {
	plan := strings.Replace(testPlan, "failures: 1", "failures: 2\n  maxInconclusive: 2", 1)
	t.Run("pass", func(t *testing.T) {
		f := newFixture(t, plan)
		f.tick()
		if st := f.checkAfterHold(10, -1, false); st.Inconclusive != 1 {
			t.Fatalf("inconclusive %d, want 1", st.Inconclusive)
		}
		if st := f.checkAfterHold(100, -1, false); st.Step != 1 || st.Inconclusive != 0 {
			t.Fatalf("pass: step %d inconclusive %d, want step 2 and 0", st.Step+1, st.Inconclusive)
		}
		if st := f.checkAfterHold(10, -1, false); st.Phase != Running || st.Inconclusive != 1 {
			t.Fatalf("one thin check at step 2: phase %s inconclusive %d (%s)", st.Phase, st.Inconclusive, st.Reason)
		}
	})
	t.Run("fail", func(t *testing.T) {
		f := newFixture(t, plan)
		f.tick()
		if st := f.checkAfterHold(10, -1, false); st.Inconclusive != 1 || st.Failures != 0 {
			t.Fatalf("inconclusive %d failures %d, want 1 and 0", st.Inconclusive, st.Failures)
		}
		if st := f.checkAfterHold(100, -1, true); st.Phase != Running || st.Inconclusive != 0 || st.Failures != 1 {
			t.Fatalf("fail: phase %s inconclusive %d failures %d, want running, 0 and 1", st.Phase, st.Inconclusive, st.Failures)
		}
		// Not a second inconclusive in a row: the fail came between.
		if st := f.checkAfterHold(10, -1, false); st.Phase != Running || st.Inconclusive != 1 || st.Failures != 1 {
			t.Fatalf("thin after a fail: phase %s inconclusive %d failures %d (%s)", st.Phase, st.Inconclusive, st.Failures, st.Reason)
		}
		st := f.checkAfterHold(100, -1, true)
		if st.Phase != RolledBack || st.Step != 0 || !strings.Contains(st.Reason, "svc-a: error rate") {
			t.Fatalf("second fail: phase %s step %d (%s), want rolled back", st.Phase, st.Step+1, st.Reason)
		}
		if w := f.grayWeight(); w != [2]int{100, 0} {
			t.Errorf("gray weight %v", w)
		}
	})
}

// TestExposureBoundsTheStep: the controller keeps a failing version at a
// step no longer than Plan.Exposure says: d (hold times failures) when
// every window has enough requests, d times maxInconclusive at worst when
// windows are thin, and all the while at the step's share.
func TestExposureBoundsTheStep(t *testing.T) {
	plan := strings.Replace(testPlan, "failures: 1", "failures: 2", 1) // maxInconclusive: 3 by default
	p, err := ParsePlan([]byte(plan))
	if err != nil {
		t.Fatal(err)
	}
	share, d := p.Exposure(0)
	// rolledBackAfter ticks the first step, then one check per element of
	// thin (true: a window short of requests; false: one where the new
	// version fails), and returns how long after the step's start the
	// rollback came.
	rolledBackAfter := func(t *testing.T, thin ...bool) time.Duration {
		f := newFixture(t, plan)
		f.tick()
		st, _ := f.state()
		if w := f.grayWeight(); w != [2]int{100 - share, share} {
			t.Fatalf("step 1 weights %v, want the %d%% of Exposure", w, share)
		}
		start := st.StepStart
		for i, th := range thin {
			n := 100
			if th {
				n = 10
			}
			if st = f.checkAfterHold(n, -1, !th); st.Phase.Done() != (i == len(thin)-1) || st.Phase == Paused {
				t.Fatalf("check %d: phase %s (%s)", i+1, st.Phase, st.Reason)
			}
			if !st.Phase.Done() && f.grayWeight() != [2]int{100 - share, share} {
				t.Fatalf("check %d: weights %v", i+1, f.grayWeight())
			}
		}
		if st.Phase != RolledBack {
			t.Fatalf("phase %s (%s), want rolled back", st.Phase, st.Reason)
		}
		return st.Checks[len(st.Checks)-1].At.Sub(start)
	}
	t.Run("enough requests", func(t *testing.T) {
		if got := rolledBackAfter(t, false, false); got != d {
			t.Errorf("rolled back %v after the step started, want Exposure's %v", got, d)
		}
	})
	t.Run("thin windows", func(t *testing.T) {
		// The longest a step can hold before it rolls back (or pauses):
		// each fail preceded by maxInconclusive-1 thin windows.
		got := rolledBackAfter(t, true, true, false, true, true, false)
		if want := d * time.Duration(p.Analysis.MaxInconclusive); got != want {
			t.Errorf("rolled back %v after the step started, want %v", got, want)
		}
	})
}

// flakyHold is a MemStore whose Hold fails its first fails calls, as a
// ConsulStore's does while its agent restarts (the registration, the
// session or the blocking read of the lock key refused).
type flakyHold struct {
	*MemStore
	mu    sync.Mutex
	fails int
	holds int
}

func (s *flakyHold) Hold(ctx context.Context) (context.Context, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds++
	if s.holds <= s.fails {
		return nil, nil, errors.New("rollout: lock graylane/rollout-lock/shop-shop: failed to read lock: connection refused")
	}
	return s.MemStore.Hold(ctx)
}

// TestRunRidesOutHoldFailures: a controller whose lock attempt fails (its
// Consul agent restarting: the holder lost the lock and cannot register
// again yet, or a standby's wait for the lock broke) tries again after a
// backoff on its clock, as graylane orchestrate does, rather than
// returning: Run hands over and waits for the lock again.
func TestRunRidesOutHoldFailures(t *testing.T) {
	f := newFixture(t, testPlan)
	if err := Abort(context.Background(), f.store, f.reg, "test"); err != nil {
		t.Fatal(err)
	}
	store := &flakyHold{MemStore: f.store, fails: 2}
	ctl, err := NewController(store, f.reg, f.rec, WithClock(f.clock))
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Run(context.Background()); err != nil {
		t.Fatalf("Run returned the lock attempt's failure: %v", err)
	}
	if store.holds != 3 {
		t.Errorf("Run tried the lock %d times, want 3 (2 failed, then held)", store.holds)
	}

	// A context that ends while Run waits to try again ends Run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store = &flakyHold{MemStore: f.store, fails: 1 << 30}
	ctl, err = NewController(store, f.reg, f.rec, WithClock(stoppedClock{f.clock}))
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- ctl.Run(ctx) }()
	waittest.Until(t, "a failed lock attempt", func() bool {
		store.mu.Lock()
		defer store.mu.Unlock()
		return store.holds > 0
	})
	cancel()
	if err := <-ran; err != nil {
		t.Errorf("Run with its context ended: %v", err)
	}
}

// stoppedClock is a clock whose After never fires.
type stoppedClock struct{ *fakeClock }

func (stoppedClock) After(time.Duration) <-chan time.Time { return nil }
