package rollout

import (
	"context"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
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
	"github.com/graylane/graylane/expr"
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
	failing atomic.Bool // svc-b 1.1 fails every 20th request, the first included
	slow    atomic.Bool // svc-b 1.1 takes 200 ms more
	calls   atomic.Int64

	mu sync.Mutex
	// served holds, per version, when each request reached svc-b's
	// server: the counts at the servers.
	served map[string][]time.Time
	// rules records each rule the gateway (the entry, where a request
	// draws its side) applied: when, and whether it sends any request to
	// 1.1.
	rules []applied
}

type applied struct {
	at    time.Time
	toNew bool
}

// toNew reports whether r sends any request without routing headers to
// svc-b 1.1: it tries 1000 draws spread over the range.
func toNew(r *rule.Rule) bool {
	for i := range uint64(1000) {
		d := r.Decide(expr.Map{}, i*0x9e3779b97f4a7c15)
		if v, _ := d.Version.For("svc-b"); v == "1.1" {
			return true
		}
	}
	return false
}

const e2eKey = "e2e-gateway"

func startChain(t *testing.T) *chain {
	t.Helper()
	c := &chain{agent: consultest.Start(t), served: map[string][]time.Time{}}
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
			if v, ok := strings.CutPrefix(self, "svc-b@"); ok {
				c.mu.Lock()
				c.served[v] = append(c.served[v], time.Now())
				c.mu.Unlock()
			}
			if self == "svc-b@1.1" {
				if c.slow.Load() {
					time.Sleep(200 * time.Millisecond)
				}
				// The first request fails too, so that the error series
				// exists from 1.1's first scrape: Prometheus' increase()
				// does not count what a series held when first scraped.
				if c.failing.Load() && c.calls.Add(1)%20 == 1 {
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
	wake, unsubscribe := gw.SubscribeRule()
	done, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-done:
				return
			case <-wake:
			}
			// After the wake-up: the rule read was applied at this time
			// or before.
			at := time.Now()
			if r := gw.Rule(); r != nil {
				c.mu.Lock()
				c.rules = append(c.rules, applied{at, toNew(r)})
				c.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(done); <-watched; unsubscribe() })
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

// load sends requests through the gateway from workers workers, one
// request at a time each, until stop is called, which returns how many
// failed and how many chains mixed versions, of how many.
func (c *chain) load(workers int) (stop func() (failed, mixed, total int64)) {
	var failed, mixed, total atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range workers {
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

// warm sends load until Prometheus has scraped svc-b's requests, so that
// the checks of a rollout started next read live figures.
func (c *chain) warm(t *testing.T) {
	t.Helper()
	figures, err := NewPrometheus(c.prom.URL, ServerMetric)
	if err != nil {
		t.Fatal(err)
	}
	stop := c.load(4)
	defer stop()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := figures.Query(t.Context(), "svc-b", "1.0", time.Now(), 3*time.Second)
		if err == nil && f.Requests > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never saw svc-b's requests: %v, %v", f, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// servedIn returns how many requests svc-b's servers (version v, or both
// when v is "") served in [from, to].
func (c *chain) servedIn(v string, from, to time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for ver, ts := range c.served {
		if v != "" && ver != v {
			continue
		}
		for _, at := range ts {
			if !at.Before(from) && !at.After(to) {
				n++
			}
		}
	}
	return n
}

// e2eSteps is the rollout every end-to-end run makes; the plans differ in
// their analysis.
const e2eSteps = `
ruleKey: e2e-gateway
services: [svc-a, svc-b]
new: "1.1"
old: "1.0"
steps: [10, 50, 100]
hold: 3s
`

const e2ePlan = e2eSteps + `analysis:
  minRequests: 20
  maxErrorRate: 0.01
`

// rollout runs a rollout of plan to its end (or a pause) and returns its
// state; onEvent, if set, sees each event from the controller.
func (c *chain) rollout(t *testing.T, plan string, onEvent func(Event)) *State {
	t.Helper()
	store, err := NewConsulStore(c.agent.Client(), e2eKey, "e2e", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	reg := discovery.NewConsul(c.agent.Client())
	defer reg.Close()
	if _, err := Start(t.Context(), store, reg, []byte(plan)); err != nil {
		t.Fatal(err)
	}
	figures, err := NewPrometheus(c.prom.URL, ServerMetric)
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := NewController(store, reg, figures, WithPoll(100*time.Millisecond),
		WithEvents(func(e Event) {
			t.Log(e)
			if onEvent != nil {
				onEvent(e)
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx) }()
	// Run returns when the rollout is done; a pause is an end here too.
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(100 * time.Millisecond):
			st, _, err := Status(t.Context(), store)
			if err != nil || st.Phase != Paused {
				continue
			}
			cancel()
			<-done
		}
		break
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
	c.warm(t)
	stop := c.load(4)
	st := c.rollout(t, e2ePlan, nil)
	failed, mixed, total := stop()
	if st.Phase != Promoted || !st.Drained["svc-a"] || !st.Drained["svc-b"] {
		t.Fatalf("phase %s (%s), drained %v", st.Phase, st.Reason, st.Drained)
	}
	if failed != 0 || mixed != 0 || total == 0 {
		t.Fatalf("%d of %d requests failed, %d chains mixed versions", failed, total, mixed)
	}
}

// The failing runs' plan: minRequests 40 so that a conclusive window of
// the erring 1.1 holds at least two of its errors (every 20th request),
// one of which Prometheus counts whatever the scrapes' phase.
const e2eFailingPlan = e2eSteps + `analysis:
  minRequests: 40
  maxErrorRate: 0.01
  maxP99: 150ms
`

// TestE2EFailingRollsBack: a 1.1 failing 5% of its requests is rolled
// back at the first check whose window has enough requests, within the
// plan's exposure bound counted at svc-b's servers.
func TestE2EFailingRollsBack(t *testing.T) {
	c := startChain(t)
	c.failing.Store(true)
	c.rolledBackWithinBound(t, "error rate", 4)
}

// TestE2ESlowRollsBack: a 1.1 that adds 200 ms is rolled back on its p99
// likewise. More workers keep the load up while 1.1 holds some of them.
func TestE2ESlowRollsBack(t *testing.T) {
	c := startChain(t)
	c.slow.Store(true)
	c.rolledBackWithinBound(t, "p99", 16)
}

// rolledBackWithinBound runs the failing plan on a chain whose svc-b 1.1
// is bad, under load from workers workers, and checks when it was rolled
// back and how many requests 1.1 served, counted at svc-b's servers.
//
// The load starts only after the first check, so that check's window is
// empty: inconclusive by construction, the step holds again, and the
// rollback must come at the second check, the first with enough
// requests. So which check is the first with enough requests is known
// without timing the load.
func (c *chain) rolledBackWithinBound(t *testing.T, reason string, workers int) {
	t.Helper()
	c.warm(t)
	var stop func() (int64, int64, int64)
	var once sync.Once
	st := c.rollout(t, e2eFailingPlan, func(e Event) {
		if e.Action == "check" {
			once.Do(func() { stop = c.load(workers) })
		}
	})
	if stop == nil {
		t.Fatalf("no check: phase %s (%s)", st.Phase, st.Reason)
	}
	_, mixed, total := stop()
	if st.Phase != RolledBack || st.Step != 0 || !strings.Contains(st.Reason, reason) {
		t.Fatalf("phase %s at step %d (%s), want rolled back at step 1 on %s", st.Phase, st.Step+1, st.Reason, reason)
	}
	if mixed != 0 {
		t.Errorf("%d chains mixed versions", mixed)
	}
	plan, err := ParsePlan([]byte(e2eFailingPlan))
	if err != nil {
		t.Fatal(err)
	}
	share, d := plan.Exposure(0)
	if d != plan.Hold {
		t.Fatalf("exposure %v, want one hold (failures: 1)", d)
	}

	// The checks of step 1: one per service at each check time.
	var at []time.Time
	byAt := map[int64][]Check{}
	for _, ch := range st.Checks {
		if ch.Step != 0 {
			t.Fatalf("a check at step %d: %+v", ch.Step+1, ch)
		}
		k := ch.At.UnixNano()
		if byAt[k] == nil {
			at = append(at, ch.At)
		}
		byAt[k] = append(byAt[k], ch)
	}
	if len(at) != 2 {
		t.Fatalf("%d checks at step 1, want 2 (one inconclusive, one failed): %+v", len(at), st.Checks)
	}
	for _, ch := range byAt[at[0].UnixNano()] {
		if ch.Outcome != Inconclusive || ch.New.Requests != 0 {
			t.Errorf("first check, before any load: %+v, want inconclusive on no requests", ch)
		}
	}
	failed := false
	for _, ch := range byAt[at[1].UnixNano()] {
		if ch.New.Requests < float64(plan.Analysis.MinRequests) {
			t.Errorf("second check %+v: fewer requests than the %d required", ch, plan.Analysis.MinRequests)
		}
		failed = failed || ch.Outcome == Fail
	}
	if !failed {
		t.Fatalf("second check %+v, want a failure", byAt[at[1].UnixNano()])
	}
	// Each check came one hold or more after the step or the check before:
	// the first held the step once more, the second rolled it back one
	// hold (Exposure's d) after that.
	if at[0].Before(st.StepStart.Add(plan.Hold)) || at[1].Before(at[0].Add(d)) {
		t.Errorf("checks at %v and %v, step start %v: a hold was cut short", at[0], at[1], st.StepStart)
	}
	rollback := at[1]

	// The gateway draws each request's side; it stopped drawing 1.1 when
	// it applied the rolled-back rule: the first rule it applied after the
	// failed check that sends nothing to 1.1.
	var stopped time.Time
	c.mu.Lock()
	rules := slices.Clone(c.rules)
	for _, r := range rules {
		if r.at.After(rollback) && !r.toNew {
			stopped = r.at
			break
		}
	}
	first11 := time.Time{}
	if ts := c.served["1.1"]; len(ts) > 0 {
		first11 = ts[0]
	}
	bad := len(c.served["1.1"])
	c.mu.Unlock()
	if stopped.IsZero() {
		t.Fatalf("the gateway never applied the rolled-back rule (rules applied: %+v)", rules)
	}
	if first11.Before(st.StepStart) {
		t.Errorf("1.1 served a request at %v, before the step started at %v", first11, st.StepStart)
	}

	// The bound. From the step's start to the failing check, svc-b's
	// servers served n requests; each drew 1.1 with probability s (the
	// step's share) at the gateway. After the check, requests drew 1.1 at
	// the same odds for one rule propagation (the check's queries, the
	// write, the gateway's blocking query returning): the tail. After the
	// gateway applied the rolled-back rule, none drew 1.1; at most one
	// request per load worker drawn before was still on its way. So 1.1
	// served a Binomial(m, s) count with m <= n + tail + workers; the
	// allowance over s*m is 4 standard deviations (exceeded with
	// probability about 3e-5).
	s := float64(share) / 100
	n := c.servedIn("", st.StepStart, rollback)
	tail := c.servedIn("", rollback.Add(time.Nanosecond), stopped)
	m := float64(n + tail + workers)
	limit := s*m + 4*math.Sqrt(m*s*(1-s))
	t.Logf("1.1 served %d requests; svc-b served %d from the step's start to the failed check, %d more until the gateway applied the rollback (%d requests through the gateway); bound %.1f",
		bad, n, tail, total, limit)
	if float64(bad) > limit {
		t.Errorf("1.1 served %d requests, above the bound %.1f = %d%% of %d + 4 sd", bad, limit, share, int(m))
	}
	if late := c.servedIn("1.1", stopped.Add(time.Nanosecond), time.Now()); late > workers {
		t.Errorf("1.1 served %d requests after the gateway applied the rollback, more than the %d in flight", late, workers)
	}
}
