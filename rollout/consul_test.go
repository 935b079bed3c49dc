package rollout

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/rule"
)

// The environment of a child process that runs a controller until it is
// killed (see runChild).
const childKey = "GRAYLANE_ROLLOUT_CHILD_KEY"

// An hour-long hold: the killed controller is mid-step however slow the
// machine; the standby's clock is moved past it by the test.
const handoverPlan = `
ruleKey: shop-shop
services: [svc-a, svc-b]
new: "1.1"
old: "1.0"
steps: [10, 100]
hold: 1h
analysis: {minRequests: 10, maxErrorRate: 0.01}
`

func chainRegistry() *discovery.Static {
	reg := discovery.NewStatic()
	for _, svc := range []string{"svc-a", "svc-b"} {
		reg.Set(svc,
			discovery.Instance{ID: svc + "-1", Address: "10.0.0.1", Port: 80, Version: "1.0"},
			discovery.Instance{ID: svc + "-2", Address: "10.0.0.2", Port: 80, Version: "1.1"})
	}
	return reg
}

// childSessionTTL is the lock session TTL of the child controller: an
// hour, so that within a test's deadline only its health check going
// critical can end its session.
const childSessionTTL = time.Hour

// runChild runs a controller on the wall clock when the test binary was
// started by startChild, and reports whether it did.
func runChild() bool {
	cl, ok := consultest.ChildClient()
	if !ok {
		return false
	}
	store, err := NewConsulStore(cl, os.Getenv(childKey), "child", childSessionTTL)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctl, err := NewController(store, chainRegistry(), NewRecorder(), WithPoll(50*time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Fprintln(os.Stderr, ctl.Run(context.Background()))
	return true
}

func startChild(t *testing.T, a *consultest.Agent, key string) *exec.Cmd {
	t.Helper()
	return consultest.StartChild(t, a, childKey+"="+key)
}

// shiftClock is the wall clock moved forward by the test.
type shiftClock struct{ offset atomic.Int64 }

func (c *shiftClock) Now() time.Time                         { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *shiftClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sessionTiedToInstance checks that session ends with the check of the
// instance of ServiceName named name (which carries the rule key in its
// meta) and with the node, and has no lock-delay; it returns the check's
// ID.
func sessionTiedToInstance(t *testing.T, a *consultest.Agent, session, name string) string {
	t.Helper()
	services, err := a.Client().Agent().ServicesWithFilter(`Service == "` + ServiceName + `"`)
	if err != nil {
		t.Fatal(err)
	}
	var inst *api.AgentService
	for _, s := range services {
		if s.Meta["name"] == name {
			inst = s
		}
	}
	if inst == nil || inst.Meta["rule_key"] != "shop-shop" {
		t.Fatalf("no instance of %s named %s with rule_key shop-shop among %+v", ServiceName, name, services)
	}
	checks, err := a.Client().Agent().ChecksWithFilter(`ServiceID == "` + inst.ID + `"`)
	if err != nil || len(checks) != 1 {
		t.Fatalf("checks of %s: %+v (%v), want one", inst.ID, checks, err)
	}
	var check string
	for id := range checks {
		check = id
	}
	se, _, err := a.Client().Session().Info(session, nil)
	if err != nil || se == nil {
		t.Fatalf("session %s: %+v (%v)", session, se, err)
	}
	if len(se.ServiceChecks) != 1 || se.ServiceChecks[0].ID != check || len(se.NodeChecks) != 1 || se.NodeChecks[0] != "serfHealth" {
		t.Fatalf("session checks: service %+v, node %v; want %s and serfHealth", se.ServiceChecks, se.NodeChecks, check)
	}
	// No lock-delay: a standby takes over as soon as the session ends.
	if se.LockDelay != 0 {
		t.Fatalf("session lock-delay %v, want none", se.LockDelay)
	}
	return check
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLockHandoverResumesStep kills the active controller mid-step: the
// standby takes the lock once the dead one's health check goes critical,
// which ends its session (whose TTL, an hour, cannot), and carries on the
// same step at the time it was due, neither writing it again nor skipping
// its hold.
func TestLockHandoverResumesStep(t *testing.T) {
	a := consultest.Start(t)
	ctx := t.Context()
	const key = "shop-shop"
	reg := chainRegistry()
	spec, err := rule.ParseSpec([]byte(testSpec))
	if err != nil {
		t.Fatal(err)
	}
	inv, _ := inventory(ctx, reg, spec.Service)
	rd, err := orchestrate.Render(spec, inv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orchestrate.Publish(ctx, a.Client(), key, []byte(testSpec), rd, 0); err != nil {
		t.Fatal(err)
	}
	store, err := NewConsulStore(a.Client(), key, "standby", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(ctx, store, reg, []byte(handoverPlan)); err != nil {
		t.Fatal(err)
	}
	child := startChild(t, a, key)
	var first State
	waitFor(t, 30*time.Second, "the first controller writes step 1", func() bool {
		st, _, err := Status(ctx, store)
		if err == nil && st != nil && st.Step == 0 {
			first = *st
			return true
		}
		return false
	})
	rec := NewRecorder()
	clock := &shiftClock{}
	var events atomic.Int64
	standby, err := NewController(store, reg, rec, WithClock(clock), WithPoll(50*time.Millisecond),
		WithEvents(func(Event) { events.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- standby.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-ran; err != nil {
			t.Error(err)
		}
	}()
	// The child holds the lock with a session tied to the check of its
	// instance of ServiceName and to the node.
	p, _, err := a.Client().KV().Get(LockPrefix+key, nil)
	if err != nil || p == nil || string(p.Value) != "child" || p.Session == "" {
		t.Fatalf("lock %+v (%v), want the child's", p, err)
	}
	childSession := p.Session
	childCheck := sessionTiedToInstance(t, a, childSession, "child")
	if se, _, _ := a.Client().Session().Info(childSession, nil); se == nil || se.TTL != childSessionTTL.String() {
		t.Fatalf("child's session %+v, want a TTL of %v", se, childSessionTTL)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the standby takes the lock", func() bool {
		p, _, err := a.Client().KV().Get(LockPrefix+key, nil)
		return err == nil && p != nil && string(p.Value) == "standby" && p.Session != ""
	})
	// It did because the child's check went critical, which ended the
	// child's session long before its TTL.
	if se, _, err := a.Client().Session().Info(childSession, nil); err != nil || se != nil {
		t.Fatalf("the child's session lives on: %+v (%v)", se, err)
	}
	checks, err := a.Client().Agent().Checks()
	if err != nil {
		t.Fatal(err)
	}
	if c := checks[childCheck]; c == nil || c.Status != api.HealthCritical {
		t.Fatalf("the child's check %+v, want critical", c)
	}
	// Holding the lock before the step's hold ended, the standby leaves
	// the step as it is: same start, same due time, nothing written.
	time.Sleep(200 * time.Millisecond)
	st, _, err := Status(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 0 || !st.StepStart.Equal(first.StepStart) || !st.Next.Equal(first.Next) || events.Load() != 0 {
		t.Fatalf("after the handover: step %d start %v next %v (%d events), want step 1 start %v next %v untouched",
			st.Step+1, st.StepStart, st.Next, events.Load(), first.StepStart, first.Next)
	}
	// Move the standby's clock past the step's remaining hold, with
	// healthy traffic in the window: it checks and moves to step 2 (100).
	due := first.Next.Add(time.Second)
	clock.offset.Store(int64(time.Until(due)))
	for _, svc := range []string{"svc-a", "svc-b"} {
		for i := range 100 {
			v := "1.0"
			if i%10 == 0 {
				v = "1.1"
			}
			rec.Record(svc, v, due.Add(-time.Minute+time.Duration(i)*time.Second/2), 5*time.Millisecond, false)
		}
	}
	waitFor(t, 20*time.Second, "the standby checks and steps", func() bool {
		st, _, err = Status(ctx, store)
		return err == nil && (st.Step == 1 || st.Phase != Running)
	})
	if st.Phase != Running || st.Step != 1 || !st.StepStart.After(first.Next) {
		t.Fatalf("phase %s step %d start %v reason %q checks %+v", st.Phase, st.Step+1, st.StepStart, st.Reason, st.Checks)
	}
	if len(st.Checks) != 2 || st.Checks[0].Step != 0 || st.Checks[0].At.Before(first.Next) {
		t.Fatalf("checks %+v: want step 1's checks after its hold ended at %v", st.Checks, first.Next)
	}
	p, _, _ = a.Client().KV().Get(key, nil)
	if p == nil || p.Flags != RenderedFlags || !strings.Contains(string(p.Value), "route-0=0;route-1=100") {
		t.Fatalf("rule at step 2: %+v", p)
	}
}

// TestConsulCommitChecksIndexes: a write after someone else's never lands,
// whichever key they wrote, and a held store stops writing once its lock
// is gone.
func TestConsulCommitChecksIndexes(t *testing.T) {
	a := consultest.Start(t)
	ctx := t.Context()
	const key = "shop-shop"
	if _, err := orchestrate.Publish(ctx, a.Client(), key, []byte(testSpec), nil, 0); err != nil {
		t.Fatal(err)
	}
	store, err := NewConsulStore(a.Client(), key, "one", 0)
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Phase: Paused, Step: 0}
	// Each edit writes a value the key does not hold (Consul does not
	// count a write of the same value as a change).
	for _, edit := range []func(){
		func() {
			_, _ = a.Client().KV().Put(&api.KVPair{Key: orchestrate.SpecKey(key), Value: []byte(testSpec + "sort: time\n")}, nil)
		},
		func() { _, _ = a.Client().KV().Put(&api.KVPair{Key: key, Value: []byte("<rule/>")}, nil) },
		func() { _, _ = a.Client().KV().Put(&api.KVPair{Key: StatePrefix + key, Value: []byte("{}")}, nil) },
	} {
		snap, err := store.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		edit()
		if err := store.Commit(ctx, snap, Update{Spec: []byte("x"), Rule: []byte("y"), State: st}); err != ErrConflict {
			t.Fatalf("commit after an edit: %v, want ErrConflict", err)
		}
		if err := store.Commit(ctx, snap, Update{State: st}); err != ErrConflict {
			t.Fatalf("state commit after an edit: %v, want ErrConflict", err)
		}
	}
	snap, _ := store.Read(ctx)
	hctx, release, err := store.Hold(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Commit(hctx, snap, Update{State: st}); err != nil {
		t.Fatalf("held commit: %v", err)
	}
	// The lock taken away (its session destroyed): the next write fails.
	p, _, _ := a.Client().KV().Get(LockPrefix+key, nil)
	sessionTiedToInstance(t, a, p.Session, "one")
	if _, err := a.Client().Session().Destroy(p.Session, nil); err != nil {
		t.Fatal(err)
	}
	<-hctx.Done()
	snap, _ = store.Read(ctx)
	store.mu.Lock()
	store.session = p.Session // as if the loss had not been noticed yet
	store.mu.Unlock()
	if err := store.Commit(ctx, snap, Update{State: st}); err == nil || !strings.Contains(err.Error(), "lock no longer held") {
		t.Fatalf("commit after the lock was lost: %v", err)
	}
	release()
	// Released, the store's instance is gone.
	if s, err := a.Client().Agent().ServicesWithFilter(`Service == "` + ServiceName + `"`); err != nil || len(s) != 0 {
		t.Fatalf("instances of %s after release: %+v (%v)", ServiceName, s, err)
	}
}

// TestConsulEditPausesAndResume: on a real agent, a person publishes the
// spec during a step; the controller pauses with the reason and leaves
// the person's spec and rule as they are; resume continues the step with
// its remaining hold and writes the next step into the edited spec.
func TestConsulEditPausesAndResume(t *testing.T) {
	a := consultest.Start(t)
	ctx := t.Context()
	const key = "shop-shop"
	reg := chainRegistry()
	render := func(doc string) *orchestrate.Rendering {
		spec, err := rule.ParseSpec([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		inv, _ := inventory(ctx, reg, spec.Service)
		rd, err := orchestrate.Render(spec, inv)
		if err != nil {
			t.Fatal(err)
		}
		return rd
	}
	if _, err := orchestrate.Publish(ctx, a.Client(), key, []byte(testSpec), render(testSpec), 0); err != nil {
		t.Fatal(err)
	}
	store, err := NewConsulStore(a.Client(), key, "one", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Start(ctx, store, reg, []byte(testPlan)); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	rec := NewRecorder()
	ctl, err := NewController(store, reg, rec, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	tick := func() {
		t.Helper()
		if _, err := ctl.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick() // step 1
	clock.Advance(15 * time.Second)
	edited := "service: [svc-a, svc-b]\ngray:\n  - {weight: [97, 3]}\nheader: {x-team: ops}\n"
	if _, err := orchestrate.Publish(ctx, a.Client(), key, []byte(edited), render(edited), -1); err != nil {
		t.Fatal(err)
	}
	ruleBefore, _, _ := a.Client().KV().Get(key, nil)
	tick()
	st, _, err := Status(ctx, store)
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != Paused || !strings.Contains(st.Reason, "edited by someone else") || st.Left != 45*time.Second {
		t.Fatalf("phase %s reason %q left %v", st.Phase, st.Reason, st.Left)
	}
	specNow, _, _ := a.Client().KV().Get(orchestrate.SpecKey(key), nil)
	ruleNow, _, _ := a.Client().KV().Get(key, nil)
	if string(specNow.Value) != edited || ruleNow.ModifyIndex != ruleBefore.ModifyIndex {
		t.Fatalf("the person's spec or rule was written over:\n%s", specNow.Value)
	}
	if err := Resume(ctx, store, clock.Now()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(45 * time.Second)
	for _, svc := range []string{"svc-a", "svc-b"} {
		for i := range 1000 {
			v := "1.0"
			if i%20 == 0 {
				v = "1.1"
			}
			rec.Record(svc, v, clock.Now().Add(-time.Second), 10*time.Millisecond, false)
		}
	}
	tick()
	if st, _, _ = Status(ctx, store); st.Phase != Running || st.Step != 1 {
		t.Fatalf("after resume: phase %s step %d (%s)", st.Phase, st.Step+1, st.Reason)
	}
	specNow, _, _ = a.Client().KV().Get(orchestrate.SpecKey(key), nil)
	spec, err := rule.ParseSpec(specNow.Value)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Gray[0].Weight != [2]int{95, 5} || len(spec.Header) != 1 {
		t.Fatalf("step 2 not written into the edited spec:\n%s", specNow.Value)
	}
}
