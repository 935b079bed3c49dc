package discovery

import (
	"context"
	"net"
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

// observe waits for cond after a change made at start, failing the test if
// it does not hold within a generous deadline, and logs how long it took.
// The figure is information, not a pass mark: on a loaded machine it
// varies by orders of magnitude.
func observe(t *testing.T, start time.Time, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("%s: not observed after 30s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("%s observed after %s", what, time.Since(start).Round(time.Millisecond))
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

	// A wait time far beyond observe's deadline: every change below must
	// wake the blocked query, not wait for its end.
	c := NewConsul(client, WithWaitTime(10*time.Minute), WithLogger(log))
	defer c.Close()
	w := c.Watch("orders")
	select {
	case <-w.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("watch not ready")
	}
	if w.Snapshot().Len() != 0 {
		t.Fatalf("unexpected instances: %+v", w.Snapshot().Instances)
	}

	ctx := context.Background()
	start := time.Now()
	before := start.Truncate(time.Millisecond)
	r1, err := Register(ctx, client, Registration{Service: "orders", Address: "127.0.0.1", Port: listening(t), Version: "1.0", Region: "west", Zone: "z1", Env: "prod", Group: "shop", Meta: map[string]string{"team": "a"}}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	after := time.Now()
	observe(t, start, "registration", func() bool { return w.Snapshot().Len() == 1 })

	r2, err := Register(ctx, client, Registration{Service: "orders", Address: "127.0.0.1", Port: listening(t), Version: "1.0"}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	start = time.Now()
	registerRaw(t, client, "orders-raw", "2.0", 9003)
	observe(t, start, "raw registration", func() bool { return w.Snapshot().Len() == 3 })

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
		mine.Address != "127.0.0.1" || mine.Started.Before(before) || mine.Started.After(after) || !strings.HasPrefix(r1.ID(), "orders-") {
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
	observe(t, start, "failing check", func() bool { return w.Snapshot().Len() == 2 })
	if got := w.Snapshot().Versions; !slices.Equal(got, []string{"1.0"}) {
		t.Fatalf("versions after failure = %v", got)
	}

	start = time.Now()
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	observe(t, start, "deregistration", func() bool { return w.Snapshot().Len() == 1 })
	<-ch
}

func TestIntegrationRules(t *testing.T) {
	agent := consultest.Start(t)
	kv := agent.Client().KV()
	keys := NepxionRuleKeys("shop", "orders")
	// A wait time far beyond observe's deadline: every change must wake
	// the blocked query.
	r := NewConsulRules(agent.Client(), keys, WithWaitTime(10*time.Minute), WithLogger(zaptest.NewLogger(t)))
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
	observe(t, start, "group put", is("group-1", true))
	start = time.Now()
	put(keys.Service, "service-1")
	observe(t, start, "service put", is("service-1", false))
	start = time.Now()
	put(keys.Service, "service-2")
	observe(t, start, "service update", is("service-2", false))

	ch, stop := r.Subscribe()
	defer stop()
	put(keys.Service, "service-2") // unchanged value
	time.Sleep(300 * time.Millisecond)
	select {
	case <-ch:
		t.Fatalf("published for an unchanged value: %+v", r.Current())
	default:
	}
	// The group rule is the base the service rule is merged over.
	start = time.Now()
	put(keys.Group, "group-2")
	observe(t, start, "group update under the service rule", func() bool {
		d := r.Current()
		return string(d.Data) == "service-2" && d.Base != nil && string(d.Base.Data) == "group-2"
	})
	// A blank value clears that key's rule, as Nepxion's does.
	start = time.Now()
	put(keys.Service, "  ")
	observe(t, start, "blank service value falls back to group", is("group-2", true))
	put(keys.Service, "service-3")
	observe(t, start, "service put again", is("service-3", false))

	start = time.Now()
	if _, err := kv.Delete(keys.Service, nil); err != nil {
		t.Fatal(err)
	}
	observe(t, start, "service delete falls back to group", is("group-2", true))
	start = time.Now()
	if _, err := kv.Delete(keys.Group, nil); err != nil {
		t.Fatal(err)
	}
	observe(t, start, "group delete", func() bool { return r.Current().Data == nil })
}

// countingProxy is a reverse proxy in front of the agent that records the
// index each request sent and was answered.
type countingProxy struct {
	srv *httptest.Server
	mu  sync.Mutex
	log []proxied
}

type proxied struct {
	path     string
	index    string // the ?index sent, "" for none
	wait     string // the ?wait sent
	answered string // the X-Consul-Index answered, "" on a failure
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &headerRecorder{ResponseWriter: w}
		rp.ServeHTTP(rec, r)
		p.mu.Lock()
		p.log = append(p.log, proxied{path: r.URL.Path, index: r.URL.Query().Get("index"),
			wait: r.URL.Query().Get("wait"), answered: rec.index})
		p.mu.Unlock()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// headerRecorder notes the X-Consul-Index of the answer it passes on.
type headerRecorder struct {
	http.ResponseWriter
	index string
}

func (h *headerRecorder) WriteHeader(code int) {
	h.index = h.Header().Get("X-Consul-Index")
	h.ResponseWriter.WriteHeader(code)
}

// answered returns the finished requests for path, in order.
func (p *countingProxy) answered(path string) []proxied {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []proxied
	for _, r := range p.log {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
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

// An idle watch costs one request per wait time: every request after the
// first blocks on the index of the last answer, and the agent, with
// nothing changed, holds it for the whole wait time and answers the same
// index. Checked on what the agent was sent and answered, not on the
// clock, and nothing is published.
func TestIntegrationIdleWatchIsCheap(t *testing.T) {
	agent := consultest.Start(t)
	p := newCountingProxy(t, agent.HTTPAddr())
	registerRaw(t, agent.Client(), "orders-1", "1.0", 9001)
	const wait = 300 * time.Millisecond
	c := NewConsul(p.client(t, agent), WithWaitTime(wait))
	defer c.Close()
	r := NewConsulRules(p.client(t, agent), RuleKeys{Service: "shop-orders"}, WithWaitTime(wait))
	defer r.Close()
	w := c.Watch("orders")
	<-w.Ready()
	<-r.Ready()
	wch, wstop := w.Subscribe()
	defer wstop()
	rch, rstop := r.Subscribe()
	defer rstop()
	// The shared feed blocks on the failing checks and the service index;
	// the rule watch on its key.
	for _, path := range []string{"/v1/health/state/critical", "/v1/health/state/warning", "/v1/catalog/services", "/v1/kv/shop-orders"} {
		// After the first read at once, every request blocks on the index
		// of the answer before.
		idle := func() []proxied {
			reqs := p.answered(path)
			for i := len(reqs) - 1; i >= 0; i-- {
				if reqs[i].index == "" {
					return reqs[i:]
				}
			}
			return nil
		}
		waitFor(t, 30*time.Second, "four idle rounds of "+path, func() bool { return len(idle()) >= 5 })
		if reqs := p.answered(path); reqs[0].index != "" {
			t.Errorf("%s: first request sent index %q, want a read at once", path, reqs[0].index)
		}
		reqs := idle()
		for i, q := range reqs[1:] {
			if q.index == "" || q.index != reqs[i].answered || q.wait != "300ms" {
				t.Fatalf("%s request %d sent index %q wait %q after an answer of index %q: not blocking on it",
					path, i+1, q.index, q.wait, reqs[i].answered)
			}
			if q.answered != q.index {
				t.Fatalf("%s request %d: answered index %s for %s with nothing changed", path, i+1, q.answered, q.index)
			}
		}
	}
	if n := len(p.answered("/v1/health/service/orders")); n != 1 {
		t.Errorf("the idle service was read %d times, want once", n)
	}
	select {
	case <-wch:
		t.Fatal("the idle health watch published")
	case <-rch:
		t.Fatal("the idle rule watch published")
	default:
	}
}

func TestIntegrationConsulRestart(t *testing.T) {
	agent := consultest.Start(t)
	p := newCountingProxy(t, agent.HTTPAddr())
	log := zaptest.NewLogger(t)
	ctx := context.Background()

	reg, err := Register(ctx, agent.Client(), Registration{Service: "orders", Address: "127.0.0.1", Port: listening(t), Version: "1.0", Check: Check{TTL: 3 * time.Second}}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	// The pauses are real; they are recorded to check the backoff. The
	// wait time is far beyond observe's deadline: changes must wake the
	// blocked queries.
	rs := &recordingSleep{real: true}
	c := NewConsul(p.client(t, agent), WithWaitTime(10*time.Minute), WithLogger(log), withSleep(rs.sleep))
	defer c.Close()
	w := c.Watch("orders")
	rules := NewConsulRules(p.client(t, agent), RuleKeys{Service: "shop-orders"}, WithWaitTime(10*time.Minute), WithLogger(log), withSleep(rs.sleep))
	defer rules.Close()
	<-w.Ready()
	<-rules.Ready()
	if _, err := agent.Client().KV().Put(&api.KVPair{Key: "shop-orders", Value: []byte("r1")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "rule", func() bool { return string(rules.Current().Data) == "r1" })
	waitFor(t, 30*time.Second, "the instance", func() bool { return w.Snapshot().Len() == 1 })
	if w.Snapshot().Len() != 1 {
		t.Fatalf("before stop: %d instances", w.Snapshot().Len())
	}

	agent.Stop(t)
	// The shared feed's queries are what retry while the agent is away.
	const feedPath = "/v1/health/state/critical"
	h0 := len(p.answered(feedPath))
	paused0 := len(rs.list())
	// Several failed rounds: the last snapshot and rule stay in force.
	var emptied atomic.Bool
	waitFor(t, 60*time.Second, "five failed health requests", func() bool {
		if w.Snapshot().Len() != 1 || string(rules.Current().Data) != "r1" {
			emptied.Store(true)
		}
		return len(p.answered(feedPath))-h0 >= 5
	})
	if emptied.Load() {
		t.Fatal("a snapshot or rule changed while Consul was away")
	}
	// Never a hot loop: each failed request is followed by a backoff
	// pause, counted on the watch's sleep (the rule watch's pauses count
	// too, so there are at least as many as failed health requests).
	down := p.answered(feedPath)[h0:]
	backoffs := 0
	for _, d := range rs.list()[paused0:] {
		if d >= DefaultBackoffMin/2 {
			backoffs++
		}
	}
	t.Logf("%d health requests failed while Consul was away; %d backoff pauses", len(down), backoffs)
	if backoffs < len(down)-1 {
		t.Fatalf("%d failed requests but only %d backoff pauses", len(down), backoffs)
	}

	agent.Restart(t)
	restarted := time.Now()
	// The dev agent forgot everything: a change made now must be seen,
	// which needs the watch to have reconnected.
	registerRaw(t, agent.Client(), "orders-new", "2.0", 9002)
	observe(t, restarted, "watch reconnected and saw a new instance", func() bool {
		return len(w.Snapshot().Version("2.0")) == 1
	})
	observe(t, restarted, "registrar re-registered", func() bool {
		_, _, err := agent.Client().Agent().Service(reg.ID(), nil)
		return err == nil
	})
	observe(t, restarted, "re-registered instance seen", func() bool {
		return len(w.Snapshot().Version("1.0")) == 1
	})
	if _, err := agent.Client().KV().Put(&api.KVPair{Key: "shop-orders", Value: []byte("r2")}, nil); err != nil {
		t.Fatal(err)
	}
	observe(t, restarted, "rules reconnected and saw a new value", func() bool { return string(rules.Current().Data) == "r2" })
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
	waitFor(t, 30*time.Second, "rule", func() bool { return string(rules.Current().Data) == "r1" })

	agent.Restart(t)
	waitFor(t, 30*time.Second, "the rule lost with the agent's state", func() bool { return rules.Current().Data == nil })

	// And the watch blocks again: a new value wakes it.
	if _, err := agent.Client().KV().Put(&api.KVPair{Key: "shop-orders", Value: []byte("r2")}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a rule written after the restart", func() bool { return string(rules.Current().Data) == "r2" })
}

// listening returns the port of a loopback HTTP server that lives as long
// as the test: a registered instance must serve to stay healthy.
func listening(t *testing.T) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// The default check reflects whether the instance serves: once its server
// is closed, while the process and its registrar live on, the instance
// leaves the healthy set.
func TestIntegrationDeadServerLeavesHealthySet(t *testing.T) {
	agent := consultest.Start(t)
	log := zaptest.NewLogger(t)
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	c := NewConsul(agent.Client(), WithWaitTime(10*time.Minute), WithLogger(log))
	defer c.Close()
	w := c.Watch("orders")
	// The default check, with its shortest TTL: the registrar probes and
	// reports every TTL/3.
	reg, err := Register(context.Background(), agent.Client(), Registration{Service: "orders", Address: "127.0.0.1", Port: port,
		Check: Check{TTL: time.Second}}, WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	waitFor(t, 30*time.Second, "the serving instance", func() bool { return w.Snapshot().Len() == 1 })

	srv.Close()
	start := time.Now()
	waitFor(t, 30*time.Second, "the dead instance to leave the healthy set", func() bool { return w.Snapshot().Len() == 0 })
	t.Logf("left the healthy set %s after its server closed", time.Since(start).Round(time.Millisecond))
	if _, _, err := agent.Client().Agent().Service(reg.ID(), nil); err != nil {
		t.Fatalf("the instance was deregistered instead of failing its check: %v", err)
	}
}
