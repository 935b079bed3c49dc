package balancer

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// timers records the spec follower's wake-ups instead of arming them.
type timers struct {
	clock *fakeClock // nil: record no due times
	mu    sync.Mutex
	due   []time.Time // on the fake clock
	fns   []func()
}

func (tm *timers) after(d time.Duration, fn func()) func() bool {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	var due time.Time
	if tm.clock != nil {
		due = tm.clock.now().Add(d)
	}
	tm.due = append(tm.due, due)
	tm.fns = append(tm.fns, fn)
	return func() bool { return true }
}

// last returns the latest wake-up armed: when it is due and its function.
func (tm *timers) last() (time.Time, func()) {
	tm.mu.Lock()
	defer tm.mu.Unlock()
	if len(tm.fns) == 0 {
		return time.Time{}, nil
	}
	return tm.due[len(tm.due)-1], tm.fns[len(tm.fns)-1]
}

// TestSpecHoldNeverRelabels follows a spec over svc-a, svc-b and svc-c
// while svc-a and svc-b restart: every instance leaves discovery, then
// they re-register one by one, new version first (as after a Consul agent
// restart). No rule applied on the way may make route-0, the old side,
// the new version of a service. Once a version has really gone for longer
// than the hold, it leaves the expansion.
func TestSpecHoldNeverRelabels(t *testing.T) {
	clock := newFakeClock()
	tm := &timers{clock: clock}
	reg := discovery.NewStatic()
	for _, svc := range []string{"svc-a", "svc-b"} {
		reg.Set(svc, fleet(svc, 2, "1.0", "1.1").Instances...)
	}
	reg.Set("svc-c", fleet("svc-c", 1, "1.0").Instances...)
	spec := "service: [svc-a, svc-b, svc-c]\n" + mixedSpec[len("service:\n  - svc-a\n  - svc-b\n"):]
	src := discovery.NewStaticRules([]byte(spec))
	defer src.Close()
	core, logs := observer.New(zap.InfoLevel)
	b := newBalancer(t, reg, WithRuleSource(src), WithLogger(zap.New(core)), withClock(clock.now),
		withAfterFunc(tm.after), WithExpansionHold(30*time.Second))
	old := func(r *rule.Rule, svc string) string {
		if r == nil || len(r.Release.Routes) < 2 {
			return ""
		}
		v, _ := r.Release.Routes[0].Value.For(svc)
		return v
	}
	waitRule(t, b, "the spec expanded", func(r *rule.Rule) bool { return old(r, "svc-b") == "1.0" })

	// step moves the clock on by a second, changes discovery, then adds a
	// version of svc-c and waits for the rule that has it: the follower
	// has then expanded the spec with the change too (it reads every
	// service's snapshot each time). Expansions may still run later for
	// the same step, as forwarders wake up, at the same clock.
	marks := 0
	step := func(what string, change func()) {
		t.Helper()
		clock.advance(time.Second)
		change()
		marks++
		v := fmt.Sprintf("2.%d", marks)
		if err := reg.Add(fleet("svc-c", 1, v).Instances...); err != nil {
			t.Fatal(err)
		}
		waitRule(t, b, what, func(r *rule.Rule) bool {
			nv, _ := r.Release.Routes[1].Value.For("svc-c")
			return len(nv) >= len(v) && nv[len(nv)-len(v):] == v
		})
	}
	for _, svc := range []string{"svc-a", "svc-b"} {
		step(svc+" gone", func() { reg.Set(svc) })
	}
	for _, id := range []string{"1.1-0", "1.1-1", "1.0-1", "1.0-0"} {
		for _, svc := range []string{"svc-b", "svc-a"} {
			step(svc+" "+id+" back", func() {
				if err := reg.Add(fleet(svc, 2, "1.0", "1.1").Instances[idIndex(id)]); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
	// A version missing from one service only, briefly.
	step("svc-b 1.0 gone", func() { reg.Set("svc-b", fleet("svc-b", 2, "1.1").Instances...) })
	if st := b.Debug(); st.Rule == nil || fmt.Sprint(st.Rule.Held) != "map[svc-b:[1.0]]" {
		t.Errorf("debug view: held %v, want svc-b 1.0", st.Rule.Held)
	}
	step("svc-b 1.0 back", func() { reg.Set("svc-b", fleet("svc-b", 2, "1.0", "1.1").Instances...) })

	applied := 0
	for _, e := range logs.FilterMessage("rule applied").All() {
		applied++
		r, err := rule.Parse([]byte(e.ContextMap()["rule"].(string)))
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range []string{"svc-a", "svc-b"} {
			if got := old(r, svc); got != "1.0" {
				t.Errorf("a rule applied during the restart has route-0 %s: %q, want 1.0", svc, got)
			}
		}
	}
	if applied < marks {
		t.Fatalf("%d rules applied for %d steps", applied, marks)
	}

	// svc-b 1.0 leaves for good: it stays old for the hold, and the
	// follower wakes up when the hold ends, without a discovery change.
	retired := clock.now().Add(time.Second) // step moves the clock first
	step("svc-b 1.0 retired", func() { reg.Set("svc-b", fleet("svc-b", 2, "1.1").Instances...) })
	due, wake := tm.last()
	if want := retired.Add(30 * time.Second); !due.Equal(want) {
		t.Errorf("wake-up due %v after 1.0 left, want the hold, 30s", due.Sub(retired))
	}
	if got := old(b.Rule(), "svc-b"); got != "1.0" {
		t.Fatalf("route-0 svc-b %q right after 1.0 left, want 1.0 held", got)
	}
	clock.advance(28 * time.Second)
	wake()
	step("a change 29 s after", func() {}) // still held
	if got := old(b.Rule(), "svc-b"); got != "1.0" {
		t.Fatalf("route-0 svc-b %q 29 s after 1.0 left, want 1.0 held", got)
	}
	if due, _ := tm.last(); !due.Equal(retired.Add(30 * time.Second)) {
		t.Errorf("wake-up re-armed for %v after 1.0 left, want 30s", due.Sub(retired))
	}
	clock.advance(time.Second)
	_, wake = tm.last()
	wake()
	waitRule(t, b, "svc-b 1.0 out after the hold", func(r *rule.Rule) bool { return old(r, "svc-b") == "1.1" })
	if st := b.Debug(); len(st.Rule.Held) != 0 {
		t.Errorf("debug view: held %v after the hold", st.Rule.Held)
	}
}

// idIndex maps "1.1-0" to its index in fleet(svc, 2, "1.0", "1.1").
func idIndex(id string) int {
	return map[string]int{"1.0-0": 0, "1.0-1": 1, "1.1-0": 2, "1.1-1": 3}[id]
}

// TestSpecHoldKeepsStartOrder orders versions by start time: when the
// first 2.0 instance (the earliest start of all) restarts, 2.0's earliest
// known start moves after 1.0's, and without the hold's memory 2.0 would
// turn from old to new.
func TestSpecHoldKeepsStartOrder(t *testing.T) {
	clock := newFakeClock()
	t0 := clock.now()
	inst := func(id, v string, started time.Time) discovery.Instance {
		return discovery.Instance{ID: id, Address: "10.0.0." + id, Port: 80, Version: v, Started: started}
	}
	reg := discovery.NewStatic()
	reg.Set("svc-a", inst("1", "2.0", t0.Add(-time.Hour)), inst("2", "2.0", t0.Add(-time.Minute)), inst("3", "1.0", t0.Add(-30*time.Minute)))
	src := discovery.NewStaticRules([]byte("service: [svc-a]\nsort: time\ngray:\n  - weight: [100, 0]\n"))
	defer src.Close()
	b := newBalancer(t, reg, WithRuleSource(src), withClock(clock.now), withAfterFunc((&timers{}).after))
	old := func(r *rule.Rule) string {
		if r == nil || len(r.Release.Routes) < 2 {
			return ""
		}
		v, _ := r.Release.Routes[0].Value.For("svc-a")
		return v
	}
	waitRule(t, b, "the spec expanded", func(r *rule.Rule) bool { return old(r) == "2.0" })
	reg.Remove("svc-a", "1")
	if err := reg.Add(discovery.Instance{Service: "svc-a", ID: "1", Address: "10.0.0.1", Port: 80, Version: "2.0", Started: t0}); err != nil {
		t.Fatal(err)
	}
	// A marker change that re-expands: a third version joins route-1.
	if err := reg.Add(discovery.Instance{Service: "svc-a", ID: "4", Address: "10.0.0.4", Port: 80, Version: "3.0", Started: t0}); err != nil {
		t.Fatal(err)
	}
	waitRule(t, b, "3.0 in route-1", func(r *rule.Rule) bool {
		v, _ := r.Release.Routes[1].Value.For("svc-a")
		return strings.Contains(v, "3.0")
	})
	if got := old(b.Rule()); got != "2.0" {
		t.Errorf("route-0 svc-a %q after an instance of 2.0 restarted, want 2.0", got)
	}
}
