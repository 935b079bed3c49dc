package drain

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
)

// The balancer is the rule source a gate follows in a service.
var _ RuleSource = (*balancer.Balancer)(nil)

// TestGateConsulLatency publishes rules to a real Consul agent's KV store,
// followed by a balancer as in a service, and measures how long the gate
// over the balancer takes to flip each way (logged; the deadline is generous).
func TestGateConsulLatency(t *testing.T) {
	a := consultest.Start(t)
	const key = "graylane-order-service"
	w := discovery.NewConsulRules(a.Client(), discovery.RuleKeys{Service: key})
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	select {
	case <-w.Ready():
	case <-ctx.Done():
		t.Fatal("rule watch never ready")
	}
	reg := discovery.NewStatic()
	defer reg.Close()
	b, err := balancer.New(reg, balancer.WithRuleSource(w))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	g := NewGate("order-service", "1.0", b)
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
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if err := g.Wait(wctx, want); err != nil {
			t.Fatalf("gate not %v 30s after the KV write: %v (status %+v)", want, err, g.Status())
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
	wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
	defer wcancel()
	if err := g.Wait(wctx, true); err != nil {
		t.Fatalf("gate still drained after the key was deleted: %v", err)
	}
}
