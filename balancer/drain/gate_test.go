package drain

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/graylane/graylane/rule"
)

// fakeSource is a settable RuleSource that, like the balancer, never blocks
// on a subscriber: each has a one-slot channel.
type fakeSource struct {
	cur  atomic.Pointer[rule.Rule]
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func newFakeSource(r *rule.Rule) *fakeSource {
	s := &fakeSource{subs: make(map[chan struct{}]struct{})}
	s.cur.Store(r)
	return s
}

func (s *fakeSource) Rule() *rule.Rule { return s.cur.Load() }

func (s *fakeSource) SubscribeRule() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *fakeSource) set(r *rule.Rule) {
	s.cur.Store(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (s *fakeSource) subscribers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}

func waitCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestGateFollowsRule(t *testing.T) {
	src := newFakeSource(nil)
	core, logs := observer.New(zap.InfoLevel)
	g := NewGate("svc", "1.0", src, WithLogger(zap.New(core)))
	defer g.Close()
	if !g.Receiving() {
		t.Fatal("no rule: gate drained")
	}
	changes, stop := g.Changes()
	defer stop()
	ctx := waitCtx(t)

	// Weight 0 for 1.0: drained.
	src.set(mustParse(t, weightOldZero))
	select {
	case v := <-changes:
		if v {
			t.Fatal("change to true, want false")
		}
	case <-ctx.Done():
		t.Fatal("no change after a weight-0 rule")
	}
	if g.Receiving() {
		t.Error("Receiving after weight 0")
	}
	st := g.Status()
	if st.Flips != 1 || st.Reason == "" || st.Since.IsZero() {
		t.Errorf("Status = %+v", st)
	}

	// A rule that changes nothing for 1.0 signals nothing.
	src.set(mustParse(t, grayOldZero))
	// Traffic returns.
	src.set(mustParse(t, weightBoth))
	select {
	case v := <-changes:
		if !v {
			t.Fatal("change to false, want true")
		}
	case <-ctx.Done():
		t.Fatal("no change when traffic returned")
	}
	if err := g.Wait(ctx, true); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-changes:
		t.Errorf("extra change %v", v)
	case <-time.After(20 * time.Millisecond):
	}

	// Deleting the rule: receiving (plain load balancing).
	src.set(mustParse(t, strategyNew))
	if err := g.Wait(ctx, false); err != nil {
		t.Fatal(err)
	}
	src.set(nil)
	if err := g.Wait(ctx, true); err != nil {
		t.Fatal(err)
	}
	if st := g.Status(); st.Flips != 4 || st.Reason != "no rule in force" {
		t.Errorf("Status = %+v", st)
	}

	var msgs []string
	for _, e := range logs.All() {
		msgs = append(msgs, e.Message)
	}
	want := []string{"drain gate started", "drain gate: version drained", "drain gate: version receives traffic again",
		"drain gate: version drained", "drain gate: version receives traffic again"}
	if len(msgs) != len(want) {
		t.Fatalf("logs = %q, want %q", msgs, want)
	}
	for i := range want {
		if msgs[i] != want[i] {
			t.Errorf("log %d = %q, want %q", i, msgs[i], want[i])
		}
	}
	if f := logs.All()[1].ContextMap(); f["service"] != "svc" || f["version"] != "1.0" || f["reason"] == "" {
		t.Errorf("log fields = %v", f)
	}
}

func TestGateInitialState(t *testing.T) {
	src := newFakeSource(mustParse(t, weightOldZero))
	g := NewGate("svc", "1.0", src)
	if g.Receiving() {
		t.Error("gate receiving under a weight-0 rule at start")
	}
	if g.Service() != "svc" || g.Version() != "1.0" {
		t.Errorf("Service/Version = %q/%q", g.Service(), g.Version())
	}
	g.Close()
	if n := src.subscribers(); n != 0 {
		t.Errorf("%d subscriptions left after Close", n)
	}
	if g.Receiving() {
		t.Error("answer changed by Close")
	}
	d := NewGate("svc", "", nil)
	if !d.Receiving() || d.Version() != rule.DefaultVersion {
		t.Errorf("nil source: receiving %v version %q", d.Receiving(), d.Version())
	}
	d.Close()
	d.Close()
}

func TestGateWait(t *testing.T) {
	src := newFakeSource(mustParse(t, strategyNew))
	g := NewGate("svc", "1.0", src)
	ctx := waitCtx(t)
	if err := g.Wait(ctx, false); err != nil {
		t.Fatalf("Wait for the current state: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := g.Wait(short, true); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait = %v, want DeadlineExceeded", err)
	}

	done := make(chan error, 1)
	go func() { done <- g.Wait(ctx, true) }()
	src.set(mustParse(t, strategyOld))
	if err := <-done; err != nil {
		t.Errorf("Wait = %v", err)
	}

	go func() { done <- g.Wait(ctx, false) }()
	g.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close = %v, want ErrClosed", err)
	}
	if err := g.Wait(ctx, true); err != nil {
		t.Errorf("Wait for the state it is in, after Close = %v", err)
	}
}

func TestGateChangesClosed(t *testing.T) {
	src := newFakeSource(nil)
	g := NewGate("svc", "1.0", src)
	a, stopA := g.Changes()
	b, _ := g.Changes()
	stopA()
	stopA()
	if _, ok := <-a; ok {
		t.Error("channel open after its stop function")
	}
	g.Close()
	if _, ok := <-b; ok {
		t.Error("channel open after Close")
	}
	c, stopC := g.Changes()
	if _, ok := <-c; ok {
		t.Error("Changes after Close returned an open channel")
	}
	stopC()
}

// TestGateSlowReader checks the source is never blocked and a reader that
// does not read finds the latest state.
func TestGateSlowReader(t *testing.T) {
	src := newFakeSource(nil)
	g := NewGate("svc", "1.0", src)
	defer g.Close()
	changes, stop := g.Changes()
	defer stop()
	rules := []*rule.Rule{mustParse(t, strategyNew), mustParse(t, strategyOld)}
	ctx := waitCtx(t)
	for i := range 1000 {
		src.set(rules[i%2])
		if err := g.Wait(ctx, i%2 == 1); err != nil {
			t.Fatal(err)
		}
	}
	src.set(rules[0])
	if err := g.Wait(ctx, false); err != nil {
		t.Fatal(err)
	}
	if v := <-changes; v {
		t.Error("slow reader found true, want the latest state false")
	}
	if g.Status().Flips != 1001 {
		t.Errorf("Flips = %d, want 1001", g.Status().Flips)
	}
}

// TestGateConcurrent hammers a gate from several goroutines for the race
// detector.
func TestGateConcurrent(t *testing.T) {
	src := newFakeSource(nil)
	g := NewGate("svc", "1.0", src)
	rules := []*rule.Rule{mustParse(t, strategyNew), mustParse(t, strategyOld), nil}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, cancel := g.Changes()
			defer cancel()
			for {
				select {
				case <-stop:
					return
				case <-ch:
					_ = g.Receiving()
					_ = g.Status()
				}
			}
		}()
	}
	for i := range 500 {
		src.set(rules[i%3])
	}
	close(stop)
	wg.Wait()
	g.Close()
}

func BenchmarkReceiving(b *testing.B) {
	g := NewGate("svc", "1.0", newFakeSource(nil))
	defer g.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !g.Receiving() {
				b.Fatal("drained")
			}
		}
	})
}
