package rollout

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/internal/promtest"
	"github.com/graylane/graylane/rule"
)

// chain is a 3-hop chain on a real Consul agent, its metrics scraped by a
// real Prometheus: gateway -> svc-a (1.0, 1.1) -> svc-b (1.0, 1.1).
type chain struct {
	agent   *consultest.Agent
	prom    *promtest.Server
	gateway string
	failing atomic.Bool  // svc-b 1.1 fails every 20th request
	bad     atomic.Int64 // requests svc-b 1.1 served
	calls   atomic.Int64
}

const e2eKey = "e2e-gateway"

func startChain(t *testing.T) *chain {
	t.Helper()
	c := &chain{agent: consultest.Start(t)}
	client := c.agent.Client()
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	registry := discovery.NewConsul(client, discovery.WithWaitTime(2*time.Second))
	t.Cleanup(func() { registry.Close() })
	serve := func(b *balancer.Balancer, self, next string) *httptest.Server {
		hc := b.Client()
		srv := httptest.NewServer(b.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if self == "svc-b@1.1" {
				c.bad.Add(1)
				if c.failing.Load() && c.calls.Add(1)%20 == 0 {
					http.Error(w, "injected", http.StatusInternalServerError)
					return
				}
			}
			body := self
			if next != "" {
				req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+next+"/", nil)
				resp, err := hc.Do(req)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadGateway)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					http.Error(w, string(b), resp.StatusCode)
					return
				}
				body = strings.TrimPrefix(self+" > ", " > ") + string(b)
			}
			_, _ = io.WriteString(w, body)
		})))
		t.Cleanup(srv.Close)
		return srv
	}
	for _, svc := range []struct{ name, next string }{{"svc-b", ""}, {"svc-a", "svc-b"}} {
		for _, v := range []string{"1.0", "1.1"} {
			b, err := balancer.New(registry, balancer.WithMeterProvider(mp),
				balancer.WithIdentity(balancer.Identity{Service: svc.name, ID: svc.name + "-" + v, Version: v}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			srv := serve(b, svc.name+"@"+v, svc.next)
			addr := srv.Listener.Addr().(*net.TCPAddr)
			r, err := discovery.Register(t.Context(), client, discovery.Registration{
				Service: svc.name, Version: v, Address: "127.0.0.1", Port: addr.Port})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { r.Close() })
		}
	}
	rules := discovery.NewConsulRules(client, discovery.RuleKeys{Service: e2eKey}, discovery.WithWaitTime(2*time.Second))
	t.Cleanup(func() { rules.Close() })
	gw, err := balancer.New(registry, balancer.WithEntry(true), balancer.WithTrustedEdge(true), balancer.WithRuleSource(rules))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	c.gateway = serve(gw, "", "svc-a").URL
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	c.prom = promtest.Start(t, strings.TrimPrefix(metrics.URL, "http://"))

	// The spec and its rendering, as graylane publish writes them, once
	// the catalog shows both versions of both services.
	deadline := time.Now().Add(30 * time.Second)
	for _, svc := range []string{"svc-a", "svc-b"} {
		w := registry.Watch(svc)
		for w.Snapshot().Len() < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d instances", svc, w.Snapshot().Len())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	spec, _ := rule.ParseSpec([]byte(testSpec))
	inv, err := inventory(t.Context(), registry, spec.Service)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := orchestrate.Render(spec, inv)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := orchestrate.Publish(t.Context(), client, e2eKey, []byte(testSpec), rd, 0); err != nil {
		t.Fatal(err)
	}
	// The load starts once the gateway routes by the rule: before, no
	// rule constrains the chain.
	for r := gw.Rule(); r == nil || len(r.Release.Routes) != 2; r = gw.Rule() {
		if time.Now().After(deadline) {
			t.Fatal("the gateway never applied the published rule")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

// load sends requests through the gateway from 4 workers until stop is
// called, which returns how many failed and how many chains mixed
// versions, of how many.
func (c *chain) load(t *testing.T) (stop func() (failed, mixed, total int64)) {
	var failed, mixed, total atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.gateway+"/", nil)
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					return
				}
				total.Add(1)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failed.Add(1)
					continue
				}
				if s := string(b); strings.Contains(s, "@1.0") && strings.Contains(s, "@1.1") {
					mixed.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	return func() (int64, int64, int64) {
		cancel()
		wg.Wait()
		client.CloseIdleConnections()
		return failed.Load(), mixed.Load(), total.Load()
	}
}

const e2ePlan = `
ruleKey: e2e-gateway
services: [svc-a, svc-b]
new: "1.1"
old: "1.0"
steps: [10, 50, 100]
hold: 3s
analysis:
  minRequests: 20
  maxErrorRate: 0.01
`

func (c *chain) rollout(t *testing.T) *State {
	t.Helper()
	store, err := NewConsulStore(c.agent.Client(), e2eKey, "e2e", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg := discovery.NewConsul(c.agent.Client())
	defer reg.Close()
	if _, err := Start(t.Context(), store, reg, []byte(e2ePlan)); err != nil {
		t.Fatal(err)
	}
	figures, err := NewPrometheus(c.prom.URL, ServerMetric)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := NewController(store, reg, figures, WithPoll(100*time.Millisecond),
		WithEvents(func(e Event) { t.Log(e) }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := ctl.Run(ctx); err != nil {
		t.Fatal(err)
	}
	st, _, err := Status(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestE2EHealthyPromotes: a healthy 1.1 passes every step on real
// figures and is promoted; no request fails and no chain mixes versions.
func TestE2EHealthyPromotes(t *testing.T) {
	c := startChain(t)
	stop := c.load(t)
	st := c.rollout(t)
	failed, mixed, total := stop()
	if st.Phase != Promoted || !st.Drained["svc-a"] || !st.Drained["svc-b"] {
		t.Fatalf("phase %s (%s), drained %v", st.Phase, st.Reason, st.Drained)
	}
	if failed != 0 || mixed != 0 || total == 0 {
		t.Fatalf("%d of %d requests failed, %d chains mixed versions", failed, total, mixed)
	}
}

// TestE2EFailingRollsBack: a 1.1 failing 5% of its requests is rolled
// back at the first step, and the requests that reached it stay within
// that step's share of the traffic.
func TestE2EFailingRollsBack(t *testing.T) {
	c := startChain(t)
	c.failing.Store(true)
	stop := c.load(t)
	st := c.rollout(t)
	_, mixed, total := stop()
	if st.Phase != RolledBack || st.Step != 0 {
		t.Fatalf("phase %s at step %d (%s), want rolled back at step 1", st.Phase, st.Step+1, st.Reason)
	}
	if mixed != 0 {
		t.Errorf("%d chains mixed versions", mixed)
	}
	// Step 1 sends 10% of the traffic to 1.1; allow for the draw.
	if bad := c.bad.Load(); float64(bad) > 0.2*float64(total) {
		t.Errorf("1.1 served %d of %d requests, above twice step 1's share", bad, total)
	}
}
