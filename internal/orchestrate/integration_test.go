package orchestrate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/rule"
)

// The environment of a child process that runs an Orchestrator until it
// is killed (see runChild).
const (
	childKey  = "GRAYLANE_ORCHESTRATE_CHILD_KEY"
	childName = "GRAYLANE_ORCHESTRATE_CHILD_NAME"
)

// runChild runs an Orchestrator when the test binary was started as a
// child by startChild, and reports whether it did.
func runChild() bool {
	cl, ok := consultest.ChildClient()
	if !ok {
		return false
	}
	log, _ := zap.NewDevelopment()
	o, err := New(cl, os.Getenv(childKey), WithName(os.Getenv(childName)), WithSessionTTL(10*time.Second), WithLogger(log))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_ = o.Run(context.Background()) // until killed
	return true
}

// startChild starts this test binary as a process running an Orchestrator
// of key named name. Killing it is the test's business; cleanup kills it
// in any case.
func startChild(t *testing.T, a *consultest.Agent, key, name string) *exec.Cmd {
	t.Helper()
	return consultest.StartChild(t, a, childKey+"="+key, childName+"="+name)
}

func register(t *testing.T, a *consultest.Agent, service, version string) {
	t.Helper()
	err := a.Client().Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: service + "-" + version, Name: service, Address: "127.0.0.1", Port: 9000,
		Meta: map[string]string{"version": version},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after limit: a
// generous deadline, not a measurement.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func get(t *testing.T, a *consultest.Agent, key string) *api.KVPair {
	t.Helper()
	p, _, err := a.Client().KV().Get(key, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rendered returns the route of service in the rendering at key, or ""
// when key holds no rendering.
func rendered(t *testing.T, a *consultest.Agent, key, id, service string) string {
	t.Helper()
	p := get(t, a, key)
	if p == nil || p.Flags != RenderedFlags {
		return ""
	}
	r, err := rule.Parse(p.Value)
	if err != nil {
		t.Fatalf("rendering at %s: %v", key, err)
	}
	for _, rt := range r.Release.Routes {
		if rt.ID == id {
			s, _ := rt.Value.For(service)
			return s
		}
	}
	return ""
}

// runOrchestrator runs o until the test ends.
func runOrchestrator(t *testing.T, o *Orchestrator) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = o.Run(ctx); close(done) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func newOrchestrator(t *testing.T, a *consultest.Agent, key string, opts ...Option) *Orchestrator {
	t.Helper()
	opts = append([]Option{WithLogger(zaptest.NewLogger(t, zaptest.Level(zapcore.WarnLevel))), WithSessionTTL(10 * time.Second)}, opts...)
	o, err := New(a.Client(), key, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func publishSpec(t *testing.T, a *consultest.Agent, key, spec string, withRule bool) uint64 {
	t.Helper()
	var rd *Rendering
	if withRule {
		// The rendering the command would write: against the catalog.
		inv := rule.Inventory{}
		for _, svc := range mustSpec(t, spec).Service {
			entries, _, err := a.Client().Health().Service(svc, "", true, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				inv[svc] = append(inv[svc], rule.Instance{Version: e.Service.Meta["version"]})
			}
		}
		var err error
		if rd, err = Render(mustSpec(t, spec), inv); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := Publish(context.Background(), a.Client(), key, []byte(spec), rd, -1)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// Two orchestrators: one holds the lock; when it is killed (no chance to
// release anything) the other takes over once the dead one's check goes
// critical, which ends its session, and the rendered rule follows a new
// version.
func TestTakeoverAfterKill(t *testing.T) {
	a := consultest.Start(t)
	const key = "demo-svc-a"
	register(t, a, "svc-a", "1.0")
	register(t, a, "svc-a", "1.1")
	register(t, a, "svc-b", "1.0")
	register(t, a, "svc-b", "1.1")
	publishSpec(t, a, key, testSpec, false)

	child := startChild(t, a, key, "first")
	waitFor(t, 60*time.Second, "the first orchestrator takes the lock", func() bool {
		p := get(t, a, LockKey(key))
		return p != nil && p.Session != "" && string(p.Value) == "first"
	})
	waitFor(t, 30*time.Second, "the first orchestrator renders the spec", func() bool {
		return rendered(t, a, key, "route-1", "svc-a") == "1.1"
	})

	second := newOrchestrator(t, a, key, WithName("second"))
	runOrchestrator(t, second)
	// The second stands by: it cannot lead while the first's session lives.
	if p := get(t, a, LockKey(key)); p == nil || string(p.Value) != "first" || second.Leading() {
		t.Fatalf("lock %v, second leading %v", p, second.Leading())
	}

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// The dead one's check goes critical within its TTL, which ends its
	// session at once; the session TTL is the backstop. The deadline is
	// generous (a busy machine), not a measurement.
	took := waitFor(t, 90*time.Second, "the second orchestrator takes over", second.Leading)
	t.Logf("takeover %v after the kill (check TTL %v, session TTL 10s)", took, DefaultCheckTTL)
	if p := get(t, a, LockKey(key)); p == nil || string(p.Value) != "second" {
		t.Fatalf("lock %v", p)
	}

	register(t, a, "svc-a", "1.2")
	took = waitFor(t, 30*time.Second, "the rendering follows svc-a 1.2", func() bool {
		return rendered(t, a, key, "route-1", "svc-a") == "1.1;1.2"
	})
	t.Logf("rendering followed a new version in %v", took)
}

// A stopped orchestrator destroys its session: the other takes over at
// once, and a deleted rendering is written again.
func TestHandoverAndDeletedRule(t *testing.T) {
	a := consultest.Start(t)
	const key = "demo-svc-a"
	register(t, a, "svc-a", "1.0")
	register(t, a, "svc-b", "1.0")
	register(t, a, "svc-b", "1.1")
	publishSpec(t, a, key, testSpec, false)

	one, two := newOrchestrator(t, a, key, WithName("one")), newOrchestrator(t, a, key, WithName("two"))
	stopOne := runOrchestrator(t, one)
	waitFor(t, 30*time.Second, "one leads", one.Leading)
	runOrchestrator(t, two)
	waitFor(t, 30*time.Second, "one renders", func() bool { return rendered(t, a, key, "route-1", "svc-b") == "1.1" })
	if two.Leading() {
		t.Fatal("both lead")
	}
	// The lock is held with a session tied to one's own check and to the
	// node's, so that it ends as soon as the process or the node dies.
	p := get(t, a, LockKey(key))
	if p == nil || p.Session == "" {
		t.Fatalf("lock %v", p)
	}
	se, _, err := a.Client().Session().Info(p.Session, nil)
	if err != nil || se == nil {
		t.Fatalf("session %s: %v, %v", p.Session, se, err)
	}
	if len(se.ServiceChecks) != 1 || se.ServiceChecks[0].ID != one.checkID || len(se.NodeChecks) != 1 || se.NodeChecks[0] != "serfHealth" {
		t.Errorf("session checks: service %v, node %v; want %s and serfHealth", se.ServiceChecks, se.NodeChecks, one.checkID)
	}
	// No lock-delay: a standby that asks within it would be refused, and
	// consul/api's Lock waits 5s before it asks again.
	if se.LockDelay != 0 {
		t.Errorf("lock-delay %v", se.LockDelay)
	}
	services := func() map[string]*api.AgentService {
		s, err := a.Client().Agent().ServicesWithFilter("Service == " + `"` + ServiceName + `"`)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := services(); s[one.serviceID] == nil || s[two.serviceID] == nil || s[one.serviceID].Meta["name"] != "one" {
		t.Errorf("registered: %v", s)
	}
	stopOne()
	took := waitFor(t, 30*time.Second, "two takes over", two.Leading)
	t.Logf("handover %v after a clean stop", took)
	// A clean stop deregisters the instance: nothing critical is left.
	if s := services(); s[one.serviceID] != nil || s[two.serviceID] == nil {
		t.Errorf("after one stopped, registered: %v", s)
	}

	if _, err := a.Client().KV().Delete(key, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deleted rendering is written again", func() bool {
		return rendered(t, a, key, "route-1", "svc-b") == "1.1"
	})
}

// A spec published while the orchestrator renders the previous one: its
// write is refused (the spec's index moved), it reads again and renders the
// new spec; the rendering of the old spec is never written. Either as the
// command publishes (spec and rendering in one transaction) or as a person
// with "consul kv put" does (the spec alone).
func TestNoLostUpdate(t *testing.T) {
	a := consultest.Start(t)
	register(t, a, "svc-a", "1.0")
	register(t, a, "svc-a", "1.1")
	register(t, a, "svc-b", "1.0")
	register(t, a, "svc-b", "1.1")
	const newSpec = `service: [svc-a, svc-b]
gray:
  - weight: [50, 50]
`
	for _, tt := range []struct {
		name       string
		withRule   bool
		wantWrites int64 // by the orchestrator
	}{
		{"publish", true, 0},
		{"spec only", false, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			key := "demo-" + strings.ReplaceAll(tt.name, " ", "-")
			// The first spec only, no rendering yet: the orchestrator
			// renders it.
			publishSpec(t, a, key, testSpec, false)
			var published uint64
			var once sync.Once
			o := newOrchestrator(t, a, key)
			o.o.beforeTx = func() {
				once.Do(func() { published = publishSpec(t, a, key, newSpec, tt.withRule) })
			}
			stop := runOrchestrator(t, o)
			waitFor(t, 30*time.Second, "the new spec's rendering is in the rule key", func() bool {
				p := get(t, a, key)
				return p != nil && p.Flags == RenderedFlags && strings.Contains(string(p.Value), "route-0=50;route-1=50")
			})
			// The rendering may be the person's: wait for the orchestrator
			// to have seen its write refused and written what it had to.
			waitFor(t, 30*time.Second, "the orchestrator is done", func() bool {
				return o.conflicts.Load() >= 1 && o.writes.Load() >= tt.wantWrites
			})
			stop()
			if c := o.conflicts.Load(); c != 1 {
				t.Errorf("%d writes refused, want 1", c)
			}
			if w := o.writes.Load(); w != tt.wantWrites {
				t.Errorf("orchestrator wrote %d times, want %d (a rendering of the old spec was written)", w, tt.wantWrites)
			}
			if p := get(t, a, key); tt.withRule && p.ModifyIndex != published {
				t.Errorf("rule key index %d, published at %d", p.ModifyIndex, published)
			}
			if s := get(t, a, SpecKey(key)); s == nil || string(s.Value) != newSpec {
				t.Errorf("spec key holds %v", s)
			}
		})
	}
}

// A rule written by hand after the spec stays, with a warning, until the
// spec is published again.
func TestHandEditedRuleKept(t *testing.T) {
	a := consultest.Start(t)
	const key = "demo-svc-a"
	register(t, a, "svc-a", "1.0")
	register(t, a, "svc-a", "1.1")
	register(t, a, "svc-b", "1.0")
	publishSpec(t, a, key, testSpec, false)
	core, logs := observer.New(zapcore.WarnLevel)
	o := newOrchestrator(t, a, key, WithLogger(zap.New(core)))
	runOrchestrator(t, o)
	waitFor(t, 30*time.Second, "rendered", func() bool { return rendered(t, a, key, "route-1", "svc-a") == "1.1" })

	const byHand = `<rule><strategy><version>{"svc-a":"1.0"}</version></strategy></rule>`
	if _, err := a.Client().KV().Put(&api.KVPair{Key: key, Value: []byte(byHand)}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the hand edit is reported", func() bool {
		return logs.FilterMessageSnippet("written by hand").Len() > 0
	})
	// A catalog change renders nothing over it.
	kept := o.kept.Load()
	register(t, a, "svc-b", "1.1")
	waitFor(t, 30*time.Second, "the catalog change is seen", func() bool { return o.kept.Load() > kept })
	if p := get(t, a, key); string(p.Value) != byHand {
		t.Fatalf("hand edit overwritten:\n%s", p.Value)
	}

	// Published again (spec and rendering, as the command does), the spec
	// takes the key back, and the orchestrator follows the catalog again.
	publishSpec(t, a, key, testSpec, true)
	register(t, a, "svc-b", "1.2")
	waitFor(t, 30*time.Second, "the rendering follows the catalog again", func() bool {
		return rendered(t, a, key, "route-1", "svc-b") == "1.1;1.2"
	})
}

// An instance re-registering late (as after an agent restart) leaves the
// catalog without the old version for a moment: the rendering is not
// touched, so no hop sees route-0 re-labelled.
func TestPartialInventoryKeepsRendering(t *testing.T) {
	a := consultest.Start(t)
	const key = "demo-svc-a"
	register(t, a, "svc-a", "1.0")
	register(t, a, "svc-a", "1.1")
	register(t, a, "svc-b", "1.0")
	register(t, a, "svc-b", "1.1")
	publishSpec(t, a, key, testSpec, false)
	o := newOrchestrator(t, a, key)
	runOrchestrator(t, o)
	waitFor(t, 30*time.Second, "rendered", func() bool { return rendered(t, a, key, "route-0", "svc-b") == "1.0" })
	before := get(t, a, key)

	if err := a.Client().Agent().ServiceDeregister("svc-b-1.0"); err != nil {
		t.Fatal(err)
	}
	heldOld := func() bool {
		h := o.held.Load()
		return h != nil && len((*h)["svc-b"]) == 1 && (*h)["svc-b"][0] == "1.0"
	}
	waitFor(t, 30*time.Second, "the orchestrator renders with svc-b 1.0 held", heldOld)
	if p := get(t, a, key); p.ModifyIndex != before.ModifyIndex || string(p.Value) != string(before.Value) {
		t.Errorf("partial inventory rewrote the rule:\n%s\nwas\n%s", p.Value, before.Value)
	}

	register(t, a, "svc-b", "1.0")
	waitFor(t, 30*time.Second, "svc-b 1.0 is back", func() bool {
		h := o.held.Load()
		return h != nil && len(*h) == 0
	})
	if p := get(t, a, key); p.ModifyIndex != before.ModifyIndex {
		t.Errorf("the rule was rewritten:\n%s", p.Value)
	}
}
