package discovery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/internal/consultest"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap/zaptest"
)

// observeWithin waits for cond after a change made at start and fails the
// test unless it holds within limit of start.
func observeWithin(t *testing.T, start time.Time, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%s: not observed after 5s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	d := time.Since(start)
	if d > limit {
		t.Errorf("%s observed after %s, want within %s", what, d, limit)
	}
	t.Logf("%s observed after %s", what, d.Round(time.Millisecond))
	return d
}

func registerRaw(t *testing.T, c *api.Client, id, version string, port int) {
	t.Helper()
	err := c.Agent().ServiceRegister(&api.AgentServiceRegistration{
		ID: id, Name: "orders", Address: "127.0.0.1", Port: port,
		Tags:  []string{"version=" + version, "zone=z2"},
		Meta:  map[string]string{"spring_application_uuid": "20240305-102030-456-1234-567-890", "region": "east"},
		Check: &api.AgentServiceCheck{CheckID: "check-" + id, TTL: "1m", Status: api.HealthPassing},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestIntegrationWatchAndRegister(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client()
	log := zaptest.NewLogger(t)

	c := NewConsul(client, WithWaitTime(2*time.Second), WithLogger(log))
	defer c.Close()
	w := c.Watch("orders")
	select {
	case <-w.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("watch not ready")
	}
	if w.Snapshot().Len() != 0 {
		t.Fatalf("unexpected instances: %+v", w.Snapshot().Instances)
	}

	ctx := context.Background()
	start := time.Now()
	r1, err := Register(ctx, client, Registration{Service: "orders", Address: "127.0.0.1", Port: 9001, Version: "1.0", Region: "west", Zone: "z1", Env: "prod", Group: "shop", Meta: map[string]string{"team": "a"}}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	observeWithin(t, start, 200*time.Millisecond, "registration", func() bool { return w.Snapshot().Len() == 1 })

	r2, err := Register(ctx, client, Registration{Service: "orders", Address: "127.0.0.1", Port: 9002, Version: "1.0"}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	start = time.Now()
	registerRaw(t, client, "orders-raw", "2.0", 9003)
	observeWithin(t, start, 200*time.Millisecond, "raw registration", func() bool { return w.Snapshot().Len() == 3 })

	s := w.Snapshot()
	if !slices.Equal(s.Versions, []string{"1.0", "2.0"}) || len(s.Version("1.0")) != 2 || len(s.Version("2.0")) != 1 {
		t.Fatalf("grouping: versions %v, 1.0: %d, 2.0: %d", s.Versions, len(s.Version("1.0")), len(s.Version("2.0")))
	}
	var mine Instance
	for _, in := range s.Instances {
		if in.ID == r1.ID() {
			mine = in
		}
	}
	if mine.Region != "west" || mine.Zone != "z1" || mine.Env != "prod" || mine.Group != "shop" || mine.Meta["team"] != "a" ||
		mine.HostPort() != "127.0.0.1:9001" || time.Since(mine.Started) > time.Minute || !strings.HasPrefix(r1.ID(), "orders-") {
		t.Fatalf("registered instance mapped as %+v (id %s)", mine, r1.ID())
	}
	if _, ok := ParseStarted(mine.Meta["spring_application_uuid"]); !ok {
		t.Fatalf("spring_application_uuid %q has no timestamp prefix", mine.Meta["spring_application_uuid"])
	}
	raw := s.Version("2.0")[0]
	if raw.Region != "east" || raw.Zone != "z2" || raw.Started.IsZero() {
		t.Fatalf("raw instance mapped as %+v", raw)
	}

	ch, stop := w.Subscribe()
	defer stop()
	start = time.Now()
	if err := client.Agent().UpdateTTL("check-orders-raw", "down", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	observeWithin(t, start, 200*time.Millisecond, "failing check", func() bool { return w.Snapshot().Len() == 2 })
	if got := w.Snapshot().Versions; !slices.Equal(got, []string{"1.0"}) {
		t.Fatalf("versions after failure = %v", got)
	}

	start = time.Now()
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	observeWithin(t, start, 200*time.Millisecond, "deregistration", func() bool { return w.Snapshot().Len() == 1 })
	<-ch

	// Idle: a wait time passes; the same answer publishes nothing.
	time.Sleep(2500 * time.Millisecond)
	select {
	case <-ch:
		t.Fatal("published without a change")
	default:
	}
}

func TestIntegrationRules(t *testing.T) {
	agent := consultest.Start(t)
	kv := agent.Client().KV()
	keys := NepxionRuleKeys("shop", "orders")
	r := NewConsulRules(agent.Client(), keys, WithWaitTime(2*time.Second), WithLogger(zaptest.NewLogger(t)))
	defer r.Close()
	<-r.Ready()
	if r.Current().Data != nil {
		t.Fatal("rule before any key exists")
	}
	put := func(key, value string) {
		t.Helper()
		if _, err := kv.Put(&api.KVPair{Key: key, Value: []byte(value)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	is := func(data string, group bool) func() bool {
		return func() bool { d := r.Current(); return string(d.Data) == data && d.Data != nil && d.Group == group }
	}

	start := time.Now()
	put(keys.Group, "group-1")
	observeWithin(t, start, 200*time.Millisecond, "group put", is("group-1", true))
	start = time.Now()
	put(keys.Service, "service-1")
	observeWithin(t, start, 200*time.Millisecond, "service put", is("service-1", false))
	start = time.Now()
	put(keys.Service, "service-2")
	observeWithin(t, start, 200*time.Millisecond, "service update", is("service-2", false))

	ch, stop := r.Subscribe()
	defer stop()
	put(keys.Service, "service-2") // unchanged value
	put(keys.Group, "group-2")     // shadowed by the service rule
	time.Sleep(300 * time.Millisecond)
	select {
	case <-ch:
		t.Fatalf("published for an unchanged or shadowed value: %+v", r.Current())
	default:
	}

	start = time.Now()
	if _, err := kv.Delete(keys.Service, nil); err != nil {
		t.Fatal(err)
	}
	observeWithin(t, start, 200*time.Millisecond, "service delete falls back to group", is("group-2", true))
	start = time.Now()
	if _, err := kv.Delete(keys.Group, nil); err != nil {
		t.Fatal(err)
	}
	observeWithin(t, start, 200*time.Millisecond, "group delete", func() bool { return r.Current().Data == nil })
}

// countingProxy is a reverse proxy in front of the agent that counts the
// requests per path prefix.
type countingProxy struct {
	srv    *httptest.Server
	mu     sync.Mutex
	counts map[string]int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.counts[r.URL.Path]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) count(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counts[path]
}

func (p *countingProxy) client(t *testing.T, agent *consultest.Agent) *api.Client {
	t.Helper()
	cfg := agent.Config()
	cfg.Address = strings.TrimPrefix(p.srv.URL, "http://")
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cfg.Transport.CloseIdleConnections)
	return c
}

func TestIntegrationIdleWatchIsCheap(t *testing.T) {
	agent := consultest.Start(t)
	p := newCountingProxy(t, agent.HTTPAddr())
	registerRaw(t, agent.Client(), "orders-1", "1.0", 9001)
	const wait = time.Second
	c := NewConsul(p.client(t, agent), WithWaitTime(wait))
	defer c.Close()
	r := NewConsulRules(p.client(t, agent), RuleKeys{Service: "shop-orders"}, WithWaitTime(wait))
	defer r.Close()
	<-c.Watch("orders").Ready()
	<-r.Ready()
	const idle = 5 * time.Second
	h0, k0 := p.count("/v1/health/service/orders"), p.count("/v1/kv/shop-orders")
	time.Sleep(idle)
	h, k := p.count("/v1/health/service/orders")-h0, p.count("/v1/kv/shop-orders")-k0
	t.Logf("idle %s with a %s wait: %d health and %d KV requests", idle, wait, h, k)
	// One request per wait time; +1 for the one in flight at either end.
	if limit := int(idle/wait) + 1; h > limit || k > limit {
		t.Fatalf("idle watch made %d health / %d KV requests in %s, want at most %d", h, k, idle, limit)
	}
	if h < int(idle/wait)-1 {
		t.Fatalf("only %d health requests in %s: is the watch blocking at all?", h, idle)
	}
}

func TestIntegrationConsulRestart(t *testing.T) {
	agent := consultest.Start(t)
	p := newCountingProxy(t, agent.HTTPAddr())
	log := zaptest.NewLogger(t)
	ctx := context.Background()

	reg, err := Register(ctx, agent.Client(), Registration{Service: "orders", Address: "127.0.0.1", Port: 9001, Version: "1.0", Check: Check{TTL: 3 * time.Second}}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	c := NewConsul(p.client(t, agent), WithWaitTime(2*time.Second), WithLogger(log))
	defer c.Close()
	w := c.Watch("orders")
	rules := NewConsulRules(p.client(t, agent), RuleKeys{Service: "shop-orders"}, WithWaitTime(2*time.Second), WithLogger(log))
	defer rules.Close()
	<-w.Ready()
	<-rules.Ready()
	if _, err := agent.Client().KV().Put(&api.KVPair{Key: "shop-orders", Value: []byte("r1")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "rule", func() bool { return string(rules.Current().Data) == "r1" })
	if w.Snapshot().Len() != 1 {
		t.Fatalf("before stop: %d instances", w.Snapshot().Len())
	}

	agent.Stop(t)
	downStart := time.Now()
	h0 := p.count("/v1/health/service/orders")
	var emptied atomic.Bool
	for time.Since(downStart) < 10*time.Second {
		if w.Snapshot().Len() != 1 || string(rules.Current().Data) != "r1" {
			emptied.Store(true)
		}
		time.Sleep(20 * time.Millisecond)
	}
	down := p.count("/v1/health/service/orders") - h0
	t.Logf("requests while Consul was away for 10s: %d", down)
	if emptied.Load() {
		t.Fatal("a snapshot or rule changed while Consul was away")
	}
	// Backoff capped at DefaultBackoffMax with jitter down to half of it:
	// about one request per second, never a hot loop.
	if limit := int(10*time.Second/(DefaultBackoffMax/2)) + 4; down > limit {
		t.Fatalf("%d requests in 10s while Consul was away, want at most %d", down, limit)
	}

	agent.Restart(t)
	restarted := time.Now()
	// The dev agent forgot everything: a change made now must be seen,
	// which needs the watch to have reconnected.
	registerRaw(t, agent.Client(), "orders-new", "2.0", 9002)
	observeWithin(t, restarted, 2*time.Second, "watch reconnected and saw a new instance", func() bool {
		return len(w.Snapshot().Version("2.0")) == 1
	})
	observeWithin(t, restarted, 5*time.Second, "registrar re-registered", func() bool {
		_, _, err := agent.Client().Agent().Service(reg.ID(), nil)
		return err == nil
	})
	observeWithin(t, restarted, 5*time.Second, "re-registered instance seen", func() bool {
		return len(w.Snapshot().Version("1.0")) == 1
	})
	if _, err := agent.Client().KV().Put(&api.KVPair{Key: "shop-orders", Value: []byte("r2")}, nil); err != nil {
		t.Fatal(err)
	}
	// The rule watch may still be in its last backoff pause (at most
	// DefaultBackoffMax), so the bound is from the restart.
	observeWithin(t, restarted, 2*time.Second, "rules reconnected and saw a new value", func() bool { return string(rules.Current().Data) == "r2" })
}

// A dev agent restarts empty, its KV index back at 1: the rule it lost must
// be delivered as "no rule" at once, not after a whole wait time.
func TestIntegrationRuleDeletedByEmptyRestart(t *testing.T) {
	agent := consultest.Start(t)
	log := zaptest.NewLogger(t)
	// A wait time far beyond the deadline below: a watch that blocks after
	// the restart cannot pass.
	rules := NewConsulRules(agent.Client(), RuleKeys{Service: "shop-orders"}, WithWaitTime(10*time.Minute), WithLogger(log))
	defer rules.Close()
	<-rules.Ready()
	if _, err := agent.Client().KV().Put(&api.KVPair{Key: "shop-orders", Value: []byte("r1")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "rule", func() bool { return string(rules.Current().Data) == "r1" })

	agent.Restart(t)
	waitFor(t, 30*time.Second, "the rule lost with the agent's state", func() bool { return rules.Current().Data == nil })

	// And the watch blocks again: a new value wakes it.
	if _, err := agent.Client().KV().Put(&api.KVPair{Key: "shop-orders", Value: []byte("r2")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a rule written after the restart", func() bool { return string(rules.Current().Data) == "r2" })
}
