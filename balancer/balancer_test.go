package balancer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// mixedSpec is the mixed example of Nepxion's orchestration guide without its
// header.
const mixedSpec = `service:
  - svc-a
  - svc-b
blueGreen:
  - expression: "#H['xyz'] == '1'"
    route: green
  - expression: "#H['xyz'] == '2'"
    route: blue
gray:
  - expression: "#H['xyz'] == '3'"
    weight: [90, 10]
  - expression: "#H['xyz'] == '4'"
    weight: [70, 30]
  - weight: [100, 0]
`

// staticFleet returns a static registry with n instances of each version of
// svc-a and svc-b.
func staticFleet(n int, versions ...string) *discovery.Static {
	reg := discovery.NewStatic()
	for _, svc := range []string{"svc-a", "svc-b"} {
		reg.Set(svc, fleet(svc, n, versions...).Instances...)
	}
	return reg
}

func newBalancer(t testing.TB, reg discovery.Registry, opts ...Option) *Balancer {
	t.Helper()
	b, err := New(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func mustRoute(t testing.TB, version string) Route {
	t.Helper()
	v, err := rule.ParseValue(version)
	if err != nil {
		t.Fatal(err)
	}
	return Route{}.With(rule.TypeVersion, v)
}

func TestPickFollowsRoute(t *testing.T) {
	b := newBalancer(t, staticFleet(2, "1.0", "1.1"))
	ctx := WithRoute(context.Background(), mustRoute(t, `{"svc-a":"1.1","svc-b":"1.0"}`))
	for range 10 {
		a, done, err := b.Pick(ctx, "svc-a")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		bb, done, err := b.Pick(ctx, "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		if a.Version != "1.1" || bb.Version != "1.0" {
			t.Fatalf("picked svc-a %s, svc-b %s", a.Version, bb.Version)
		}
	}
	// A service missing from the map is not constrained.
	seen := map[string]bool{}
	for range 8 {
		in, done, err := b.Pick(WithRoute(context.Background(), mustRoute(t, `{"svc-b":"1.0"}`)), "svc-a")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		seen[in.Version] = true
	}
	if !seen["1.0"] || !seen["1.1"] {
		t.Errorf("unconstrained service saw versions %v", seen)
	}
}

// TestPickInstanceOutlivesChange checks what Pick's doc promises of the
// instance it returns in place: it stays valid and unchanged when the
// service's instances change.
func TestPickInstanceOutlivesChange(t *testing.T) {
	reg := staticFleet(1, "1.0")
	b := newBalancer(t, reg)
	in, done, err := b.Pick(context.Background(), "svc-a")
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	want := *in
	reg.Set("svc-a", fleet("svc-a", 1, "2.0").Instances...)
	next, done, err := b.Pick(context.Background(), "svc-a")
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	if next.Version != "2.0" || !in.Equal(&want) || in.Version != "1.0" {
		t.Errorf("after the change: picked %+v, the earlier pick reads %+v, want %+v", next, in, want)
	}
}

func TestPickErrors(t *testing.T) {
	reg := staticFleet(1, "1.0")
	b, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := WithRoute(context.Background(), mustRoute(t, "9.9"))
	in, done, err := b.Pick(ctx, "svc-a")
	var nie *NoInstanceError
	if !errors.As(err, &nie) || nie.Service != "svc-a" || nie.Constraint[rule.TypeVersion] != "9.9" || done == nil || in != nil {
		t.Fatalf("Pick to a missing version: %v, %v", in, err)
	}
	_ = b.Close()
	if _, _, err := b.Pick(context.Background(), "svc-a"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Pick after Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := New(nil); err == nil {
		t.Error("New(nil) succeeded")
	}
	if _, err := New(reg, WithRetry(RetryPolicy{Attempts: -1})); err == nil {
		t.Error("New with negative attempts succeeded")
	}
	if _, err := New(reg, WithPolicy(Policy(42))); err == nil {
		t.Error("New with an unknown policy succeeded")
	}
}

func TestPickSeesSnapshotChanges(t *testing.T) {
	reg := staticFleet(1, "1.0")
	b := newBalancer(t, reg)
	ctx := WithRoute(context.Background(), mustRoute(t, "1.1"))
	if _, _, err := b.Pick(ctx, "svc-a"); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("before 1.1 exists: %v", err)
	}
	if err := reg.Add(fleet("svc-a", 1, "1.1").Instances...); err != nil {
		t.Fatal(err)
	}
	in, done, err := b.Pick(ctx, "svc-a")
	if err != nil || in.Version != "1.1" {
		t.Fatalf("after 1.1 appeared: %v %v", in, err)
	}
	done(nil)
}

// slowRegistry hands out watches that are never ready.
type slowRegistry struct {
	mu      sync.Mutex
	watches map[string]*discovery.Watch
}

func (r *slowRegistry) Watch(s string) *discovery.Watch {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watches == nil {
		r.watches = map[string]*discovery.Watch{}
	}
	if w, ok := r.watches[s]; ok {
		return w
	}
	w := discovery.NewWatch(s)
	r.watches[s] = w
	return w
}
func (r *slowRegistry) Close() error { return nil }

func TestPickWaitsForFirstAnswer(t *testing.T) {
	reg := &slowRegistry{}
	b := newBalancer(t, reg, WithReadyWait(time.Minute))
	go func() {
		time.Sleep(20 * time.Millisecond)
		reg.Watch("svc-a").Publish(fleet("svc-a", 1, "1.0"))
	}()
	if _, done, err := b.Pick(context.Background(), "svc-a"); err != nil {
		t.Fatalf("Pick while discovery starts: %v", err)
	} else {
		done(nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := b.Pick(ctx, "svc-never"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	quick := newBalancer(t, reg, WithReadyWait(time.Millisecond))
	if _, _, err := quick.Pick(context.Background(), "svc-never"); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("after the ready wait: %v", err)
	}
}

// waitRule waits until the balancer's rule satisfies ok.
func waitRule(t *testing.T, b *Balancer, what string, ok func(*rule.Rule) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok(b.Rule()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// decideVersion returns the svc-b version a balancer's rule picks for xyz.
func decideVersion(t *testing.T, b *Balancer, xyz string) string {
	t.Helper()
	ctx := b.Decide(context.Background(), expr.Map{"xyz": xyz})
	in, done, err := b.Pick(ctx, "svc-b")
	if err != nil {
		t.Fatal(err)
	}
	done(nil)
	return in.Version
}

func TestRuleSource(t *testing.T) {
	reg := staticFleet(1, "1.0", "1.1")
	core, logs := observer.New(zap.InfoLevel)
	src := discovery.NewStaticRules([]byte(mixedSpec))
	defer src.Close()
	b := newBalancer(t, reg, WithRuleSource(src), WithLogger(zap.New(core)))
	waitRule(t, b, "the orchestrated rule", func(r *rule.Rule) bool { return r != nil })
	if got := decideVersion(t, b, "2"); got != "1.1" {
		t.Errorf("xyz=2 went to %s, want 1.1", got)
	}
	if got := decideVersion(t, b, "1"); got != "1.0" {
		t.Errorf("xyz=1 went to %s, want 1.0", got)
	}
	if logs.FilterMessage("rule applied").Len() == 0 {
		t.Error("applied rule not logged")
	}

	// A new version: the spec is orchestrated again, 1.1;2.0 becomes new.
	if err := reg.Add(fleet("svc-b", 1, "2.0").Instances...); err != nil {
		t.Fatal(err)
	}
	waitRule(t, b, "re-orchestration", func(r *rule.Rule) bool {
		s, _ := r.Release.Routes[1].Value.For("svc-b")
		return s == "1.1;2.0"
	})

	// A malformed rule is logged with the parser's message and ignored.
	before := b.Rule()
	if err := src.Set([]byte("<rule><strategy-release><conditions type=\"blue-green\">")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage("rule rejected; the previous rule stays in force").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("malformed rule not logged")
		}
		time.Sleep(2 * time.Millisecond)
	}
	entry := logs.FilterMessage("rule rejected; the previous rule stays in force").All()[0]
	if msg, _ := entry.ContextMap()["error"].(string); !strings.Contains(msg, "rule:") {
		t.Errorf("log lacks the parser's message: %v", entry.ContextMap())
	}
	if b.Rule() != before {
		t.Error("malformed rule replaced the rule in force")
	}

	// A plain rule replaces the spec; a deleted key clears it.
	if err := src.Set([]byte(`<rule><strategy><version>1.1</version></strategy></rule>`)); err != nil {
		t.Fatal(err)
	}
	waitRule(t, b, "the plain rule", func(r *rule.Rule) bool { return r != nil && r.Strategy.Version.String() == "1.1" })
	if got := decideVersion(t, b, "1"); got != "1.1" {
		t.Errorf("plain rule: went to %s, want 1.1", got)
	}
	if err := src.Set(nil); err != nil {
		t.Fatal(err)
	}
	waitRule(t, b, "the rule cleared", func(r *rule.Rule) bool { return r == nil })
}

func TestFixedRuleWithFailoverAndBlacklist(t *testing.T) {
	r, err := rule.Parse([]byte(`<rule>
  <strategy><version>{"svc-b":"2.0"}</version></strategy>
  <strategy-failover><version-failover>1.1</version-failover></strategy-failover>
  <strategy-blacklist><id>svc-b-1.1-0</id></strategy-blacklist>
</rule>`))
	if err != nil {
		t.Fatal(err)
	}
	b := newBalancer(t, staticFleet(2, "1.0", "1.1"), WithRule(r))
	for range 10 {
		in, done, err := b.Pick(context.Background(), "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		if in.ID != "svc-b-1.1-1" {
			t.Fatalf("picked %s, want the failover version minus the blacklist", in.ID)
		}
	}
}

func TestDecideWithoutRuleKeepsContext(t *testing.T) {
	b := newBalancer(t, staticFleet(1, "1.0"))
	ctx := context.Background()
	if got := b.Decide(ctx, expr.Map{}); got != ctx {
		t.Error("Decide without a rule changed the context")
	}
}

func ExampleBalancer_Pick() {
	reg := discovery.NewStatic()
	reg.Set("svc-b",
		discovery.Instance{ID: "b1", Address: "10.0.0.1", Port: 8080, Version: "1.0"},
		discovery.Instance{ID: "b2", Address: "10.0.0.2", Port: 8080, Version: "1.1"},
	)
	b, _ := New(reg)
	defer b.Close()

	route, _, _ := RouteFromHeader(http.Header{"N-D-Version": {`{"svc-b":"1.1"}`}})
	ctx := WithRoute(context.Background(), route)
	in, done, err := b.Pick(ctx, "svc-b")
	if err != nil {
		fmt.Println(err)
		return
	}
	done(nil) // report the call's outcome
	fmt.Println(in.ID, in.HostPort())

	_, _, err = b.Pick(WithRoute(context.Background(), Route{}.With(rule.TypeVersion, rule.PlainValue("2.0"))), "svc-b")
	fmt.Println(errors.Is(err, ErrNoInstance), err)
	// Output:
	// b2 10.0.0.2:8080
	// true balancer: no instance of "svc-b" for route version=2.0 (2 live)
}

func TestGrayDrawAndEjectionThroughPick(t *testing.T) {
	reg := staticFleet(2, "1.0", "1.1")
	_, spec, err := rule.ParseDocument([]byte(mixedSpec))
	if err != nil {
		t.Fatal(err)
	}
	r, err := rule.Orchestrate(spec, rule.Inventory{
		"svc-a": {{Version: "1.0"}, {Version: "1.1"}},
		"svc-b": {{Version: "1.0"}, {Version: "1.1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	var draw atomic.Uint64
	clock := newFakeClock()
	b := newBalancer(t, reg, WithRule(r), withDraw(draw.Load), withClock(clock.now),
		WithEjection(Ejection{Failures: 2, Duration: time.Second}))
	// xyz=3 is 90/10: a low draw is the old side, a high one the new.
	draw.Store(0)
	if got := decideVersion(t, b, "3"); got != "1.0" {
		t.Errorf("draw 0: %s, want 1.0", got)
	}
	draw.Store(^uint64(0))
	if got := decideVersion(t, b, "3"); got != "1.1" {
		t.Errorf("draw max: %s, want 1.1", got)
	}

	// Two failures in a row eject svc-b-1.1-0 until the clock moves on.
	ctx := WithRoute(context.Background(), mustRoute(t, "1.1"))
	for range 2 {
		for {
			in, done, err := b.Pick(ctx, "svc-b")
			if err != nil {
				t.Fatal(err)
			}
			if in.ID == "svc-b-1.1-0" {
				done(errors.New("connection refused"))
				break
			}
			done(nil)
		}
	}
	for range 10 {
		in, done, err := b.Pick(ctx, "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		if in.ID == "svc-b-1.1-0" {
			t.Fatal("ejected instance picked")
		}
	}
	clock.advance(time.Second)
	seen := false
	for range 10 {
		in, done, err := b.Pick(ctx, "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		seen = seen || in.ID == "svc-b-1.1-0"
	}
	if !seen {
		t.Fatal("instance not back after its ejection")
	}
}

// TestFirstDecisionsWaitForTheRule: a gateway starting while discovery has
// not answered yet must not route its first requests without the rule. The
// spec is expanded once the services' first answers arrive, and decisions
// made meanwhile wait for it (up to the ready wait).
func TestFirstDecisionsWaitForTheRule(t *testing.T) {
	reg := &slowRegistry{}
	src := discovery.NewStaticRules([]byte(mixedSpec))
	defer src.Close()
	b := newBalancer(t, reg, WithRuleSource(src), WithReadyWait(time.Minute))
	go func() {
		time.Sleep(30 * time.Millisecond)
		for _, svc := range []string{"svc-a", "svc-b"} {
			reg.Watch(svc).Publish(fleet(svc, 2, "1.0", "1.1"))
		}
	}()
	// Decided before any answer arrived: still blue (xyz=2 -> 1.1).
	ctx := b.Decide(context.Background(), expr.Map{"xyz": "2"})
	if r := b.Rule(); r == nil {
		t.Fatal("Decide returned before the rule was in force")
	}
	for range 8 {
		in, done, err := b.Pick(ctx, "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		if in.Version != "1.1" {
			t.Fatalf("xyz=2 picked svc-b %s, want 1.1", in.Version)
		}
	}
	if err := b.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	// Without a rule source, Ready returns at once; after Close it reports
	// ErrClosed while waiting.
	plain := newBalancer(t, discovery.NewStatic())
	if err := plain.Ready(context.Background()); err != nil {
		t.Fatalf("Ready without a source: %v", err)
	}
	pending := discovery.NewStaticRules(nil)
	defer pending.Close()
	never := newBalancer(t, &slowRegistry{}, WithRuleSource(pending), WithReadyWait(time.Minute))
	never.Close()
	ctx2, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := never.Ready(ctx2); err != nil && !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready after Close: %v", err)
	}
}
