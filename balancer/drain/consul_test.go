package drain

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/rule"
)

// kvSource adapts discovery's KV rule watch to RuleSource for this test,
// parsing each new document once (the balancer does this in production).
type kvSource struct {
	w   *discovery.RuleWatch
	mu  sync.Mutex
	doc *discovery.RuleDoc
	r   *rule.Rule
}

func (s *kvSource) Rule() *rule.Rule {
	s.mu.Lock()
	defer s.mu.Unlock()
	doc := s.w.Current()
	if doc != s.doc {
		s.doc, s.r = doc, nil
		if doc.Data != nil {
			if r, err := rule.Parse(doc.Data); err == nil {
				s.r = r
			}
		}
	}
	return s.r
}

func (s *kvSource) SubscribeRule() (<-chan struct{}, func()) { return s.w.Subscribe() }

// TestGateConsulLatency publishes rules to a real Consul agent's KV store
// and measures how long the gate takes to flip: within 1 s each way.
func TestGateConsulLatency(t *testing.T) {
	a := consultest.Start(t)
	const key = "graylane-order-service"
	w := discovery.NewConsulRules(a.Client(), discovery.RuleKeys{Service: key})
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	select {
	case <-w.Ready():
	case <-ctx.Done():
		t.Fatal("rule watch never ready")
	}
	g := NewGate("order-service", "1.0", &kvSource{w: w})
	defer g.Close()
	if !g.Receiving() {
		t.Fatal("drained with no rule")
	}
	put := func(doc string) {
		t.Helper()
		if _, err := a.Client().KV().Put(&api.KVPair{Key: key, Value: []byte(doc)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	flip := func(doc string, want bool) time.Duration {
		t.Helper()
		start := time.Now()
		put(doc)
		wctx, wcancel := context.WithTimeout(ctx, time.Second)
		defer wcancel()
		if err := g.Wait(wctx, want); err != nil {
			t.Fatalf("gate not %v within 1s of the KV write: %v (status %+v)", want, err, g.Status())
		}
		return time.Since(start)
	}
	for i := range 3 {
		d0 := flip(`<rule><strategy><version-weight>{"order-service":"1.0=0;1.1=100"}</version-weight></strategy></rule>`, false)
		d1 := flip(`<rule><strategy><version-weight>{"order-service":"1.0=100;1.1=0"}</version-weight></strategy></rule>`, true)
		t.Logf("round %d: drained after %v, receiving again after %v", i+1, d0.Round(time.Millisecond), d1.Round(time.Millisecond))
	}
	// Deleting the key clears the rule: receiving.
	flip(`<rule><strategy><version>{"order-service":"1.1"}</version></strategy></rule>`, false)
	if _, err := a.Client().KV().Delete(key, nil); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Second)
	defer wcancel()
	if err := g.Wait(wctx, true); err != nil {
		t.Fatalf("gate still drained after the key was deleted: %v", err)
	}
}
