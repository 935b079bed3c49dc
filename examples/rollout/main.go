// Command rollout steps a gray release of a two-service chain by a plan,
// judging each step on the figures the servers record, and promotes it or
// rolls it back.
//
//	go run ./examples/rollout             # a healthy 1.1: promoted step by step
//	go run ./examples/rollout -fail 5     # svc-b 1.1 fails 5% of requests: rolled back
//	go run ./examples/rollout -consul 127.0.0.1:8500   # on a real Consul agent
//	go run ./examples/rollout -prometheus http://127.0.0.1:9090 [-metrics 127.0.0.1:9464] [-hold 15s] [-consul ...]
//	go run ./examples/rollout -prometheus URL -debug 127.0.0.1:9465   # while it runs: curl '127.0.0.1:9465/?format=json'
//
// It runs a gateway, svc-a and svc-b at 1.0 and 1.1 in this process, each
// with its own balancer, as separate processes would:
//
//	client -> gateway -> svc-a (1.0, 1.1) -> svc-b (1.0, 1.1)
//
// On the embedded registry the spec (one gray entry for both services) and
// the rollout's state are kept in a rollout.MemStore, and each rule the
// controller writes is handed to the gateway's rule watch. On Consul the
// instances register with the agent, the spec and state live in KV
// (rollout.ConsulStore) and the gateway watches the rule key the
// controller writes; the program deletes its keys when it ends. Every server
// records its requests in a rollout.Recorder, the in-process figures. The
// plan's hold is one minute on a clock the program moves: at each step it
// sends -n requests through the gateway, moves the clock to the end of the
// hold, and lets the controller check. Each line shows the step, the new
// version's share, the figures of both versions and the decision.
//
// With -prometheus the figures come from that Prometheus server
// (rollout.NewPrometheus) instead: every server exports its metrics
// through OpenTelemetry's Prometheus exporter on one /metrics at the
// -metrics address, and the program prints the scrape configuration
// Prometheus needs before it starts. Prometheus scrapes in real time, so
// this mode runs on the wall clock: each step holds -hold (the analysis
// window too) while background workers send a steady load through the
// gateway.
//
// With -debug the gateway's debug page (balancer.DebugHandler) is served
// at that address with the rollout's section (rollout.DebugSection): the
// plan, the step and share, the next action and its time, the latest
// checks with their figures. On the fake clock the program is over in
// seconds; with -prometheus it runs long enough to look.
//
// The program exits 1 if a chain ever mixed versions, if a healthy 1.1 was
// not promoted, or if a failing one was not rolled back.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/examples/internal/demo"
	"github.com/graylane/graylane/rollout"
	"github.com/graylane/graylane/rule"
)

const spec = `service: [svc-a, svc-b]
gray:
  - {weight: [100, 0]}
`

// planFor returns the plan with hold (and window) hold.
func planFor(hold time.Duration) string {
	return `ruleKey: ` + ruleKey + `
services: [svc-a, svc-b]
new: newest
steps: [5, 25, 50, 100]
hold: ` + hold.String() + `
analysis:
  minRequests: 30
  maxErrorRate: 0.01
  maxP99: 2s
`
}

// config is what the command line sets.
type config struct {
	consul string // Consul agent address; empty: the embedded registry
	fail   int    // percent of svc-b 1.1's requests that fail
	n      int    // requests per step (the fake clock's bursts)
	// prometheus is the Prometheus server's URL; empty: the in-process
	// figures on a fake clock.
	prometheus string
	metrics    string        // where /metrics is served (with prometheus)
	hold       time.Duration // each step's hold (with prometheus)
	debug      string        // where the gateway's debug page is served; empty: nowhere
}

// scrapeInterval is the scrape interval the printed configuration asks
// Prometheus for.
const scrapeInterval = time.Second

func main() {
	var c config
	flag.StringVar(&c.consul, "consul", os.Getenv("CONSUL_HTTP_ADDR"), demo.ConsulUsage)
	flag.IntVar(&c.fail, "fail", 0, "percent of svc-b 1.1's requests that fail (0: a healthy release)")
	flag.IntVar(&c.n, "n", 1000, "requests per step (without -prometheus)")
	flag.StringVar(&c.prometheus, "prometheus", "", "Prometheus server `URL` to judge the steps on (e.g. http://127.0.0.1:9090); empty: in-process figures on a fake clock")
	flag.StringVar(&c.metrics, "metrics", "127.0.0.1:9464", "`address` where the servers' /metrics is served for Prometheus (with -prometheus)")
	flag.DurationVar(&c.hold, "hold", 15*time.Second, "each step's hold and analysis window (with -prometheus)")
	flag.StringVar(&c.debug, "debug", "", "`address` where the gateway's debug page is served, rollout included")
	demo.Main("rollout", 10*time.Minute, func(ctx context.Context, log *zap.Logger) error {
		return run(ctx, os.Stdout, c, log)
	})
}

const ruleKey = "demo-gateway"

// clock is the program's clock: it moves only when the program moves it;
// with wall, it is the wall clock.
type clock struct {
	wall bool
	mu   sync.Mutex
	now  time.Time
}

func (c *clock) Now() time.Time {
	if c.wall {
		return time.Now()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// After is never waited on: the program calls Tick itself.
func (c *clock) After(time.Duration) <-chan time.Time { return make(chan time.Time) }

func run(ctx context.Context, out io.Writer, c config, log *zap.Logger) error {
	consulAddr, failPercent, n := c.consul, c.fail, c.n
	onProm := c.prometheus != ""
	if !onProm {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 100*time.Second)
		defer cancel()
	} else if c.hold <= 0 {
		return fmt.Errorf("-hold %v: want a positive hold", c.hold)
	}
	var store rollout.Store
	var consul *api.Client
	var publishSpec func() error
	cleanUp := func() {}
	w, err := demo.Open(consulAddr, func(client *api.Client) demo.Consul {
		opts := []discovery.Option{discovery.WithLogger(log), discovery.WithWaitTime(10 * time.Second)}
		consul = client
		kv := client.KV()
		cleanUp = func() {
			kv.Delete(rollout.SpecKey(ruleKey), nil)    //nolint:errcheck // best effort clean-up
			kv.Delete(rollout.StatePrefix+ruleKey, nil) //nolint:errcheck // best effort clean-up
		}
		publishSpec = func() error {
			_, err := kv.Put(&api.KVPair{Key: rollout.SpecKey(ruleKey), Value: []byte(spec)}, nil)
			return err
		}
		return demo.Consul{
			Registry: discovery.NewConsul(client, opts...),
			Rules:    discovery.NewConsulRules(client, discovery.RuleKeys{Service: ruleKey}, opts...),
			RuleKey:  ruleKey,
			Register: func(ctx context.Context, r discovery.Registration) (*discovery.Registrar, error) {
				return discovery.Register(ctx, client, r, discovery.WithLogger(log))
			},
		}
	})
	if err != nil {
		return err
	}
	defer w.Close()
	defer cleanUp()
	onConsul := consul != nil
	mem := rollout.NewMemStore()
	if onConsul {
		if store, err = rollout.NewConsulStore(consul, ruleKey, "examples/rollout", 0, rollout.WithLockLogger(log)); err != nil {
			return err
		}
	} else {
		store = mem
	}
	var fleet demo.Fleet
	defer fleet.Close()
	clk := &clock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), wall: onProm}
	rec := rollout.NewRecorder()
	var calls atomic.Int64
	var figures rollout.Figures = rec
	var meters []balancer.Option
	plan := planFor(time.Minute)
	if onProm {
		// One /metrics for every server of the program, as Prometheus
		// would scrape each process's own.
		reg := prometheus.NewRegistry()
		exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			return err
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
		fleet.Defer(func() { _ = mp.Shutdown(context.Background()) })
		l, err := net.Listen("tcp", c.metrics)
		if err != nil {
			return fmt.Errorf("-metrics: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		fleet.Defer(func() { _ = srv.Close() })
		meters = append(meters, balancer.WithMeterProvider(mp))
		if figures, err = rollout.NewPrometheus(c.prometheus, rollout.ServerMetric); err != nil {
			return err
		}
		plan = planFor(c.hold)
		fmt.Fprintf(out, "Prometheus at %s must scrape this program's metrics; its prometheus.yml needs:\n", c.prometheus)
		fmt.Fprintf(out, "scrape_configs:\n  - job_name: graylane-rollout\n    scrape_interval: %v\n    static_configs:\n      - targets: [%q]\n\n", scrapeInterval, l.Addr().String())
	}

	// start runs one service instance with its own balancer; its server
	// records each request in rec, and svc-b 1.1 fails failPercent of them.
	start := func(service, version, next string, opts ...balancer.Option) (*balancer.Balancer, string, error) {
		opts = append(opts, balancer.WithLogger(log))
		if version != "" {
			opts = append(opts, balancer.WithIdentity(balancer.Identity{Service: service, ID: service + "-" + version, Version: version}))
			opts = append(opts, meters...)
		}
		b, err := balancer.New(w.Registry, opts...)
		if err != nil {
			return nil, "", err
		}
		fleet.Defer(func() { b.Close() })
		self := ""
		if version != "" {
			self = service + "@" + version
		}
		h := demo.Hop(self, next, b.Client())
		if service == "svc-b" && version == "1.1" && failPercent > 0 {
			inner := h
			h = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if calls.Add(1)%int64(100/failPercent) == 0 {
					http.Error(rw, "injected failure", http.StatusInternalServerError)
					return
				}
				inner.ServeHTTP(rw, r)
			})
		}
		if version != "" {
			h = record(rec, clk, service, version, h)
		}
		addr, err := fleet.Serve(b.Middleware(h))
		if err != nil {
			return nil, "", err
		}
		if service == "gateway" {
			return b, addr.String(), nil
		}
		return b, addr.String(), w.Register(ctx, discovery.Registration{
			Service: service, Version: version, Address: addr.IP.String(), Port: addr.Port,
		})
	}
	for _, v := range []string{"1.0", "1.1"} {
		if _, _, err := start("svc-b", v, ""); err != nil {
			return err
		}
		if _, _, err := start("svc-a", v, "svc-b"); err != nil {
			return err
		}
	}
	gateway, gatewayAddr, err := start("gateway", "", "svc-a",
		balancer.WithEntry(true), balancer.WithTrustedEdge(true), balancer.WithRuleSource(w.Rules),
		balancer.WithDebugSection("rollout", rollout.DebugSection(store)))
	if err != nil {
		return err
	}
	if c.debug != "" {
		l, err := net.Listen("tcp", c.debug)
		if err != nil {
			return fmt.Errorf("-debug: %w", err)
		}
		srv := &http.Server{Handler: gateway.DebugHandler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(l) }()
		fleet.Defer(func() { _ = srv.Close() })
		fmt.Fprintf(out, "the gateway's debug page: http://%s/ (JSON: ?format=json)\n", l.Addr())
	}

	// The spec, as graylane publish writes it; the controller renders it
	// into the rule at its first step.
	for _, svc := range []string{"svc-a", "svc-b"} {
		if err := w.Wait(ctx, svc, 2); err != nil {
			return err
		}
	}
	if onConsul {
		if err := publishSpec(); err != nil {
			return err
		}
	} else {
		mem.Publish([]byte(spec), nil, 0)
	}
	if _, err := rollout.Start(ctx, store, w.Registry, []byte(plan)); err != nil {
		return err
	}
	ctl, err := rollout.NewController(store, w.Registry, figures, rollout.WithClock(clk), rollout.WithLogger(log),
		rollout.WithEvents(func(e rollout.Event) { fmt.Fprintln(out, e) }))
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "graylane rollout on the %s\n", w.Name)
	fmt.Fprintln(out, "chain: client -> gateway -> svc-a (1.0, 1.1) -> svc-b (1.0, 1.1)")
	if onProm {
		fmt.Fprintf(out, "plan: steps 5%% 25%% 50%% 100%%, hold %v, at least 30 requests to 1.1, error rate at most 1%%; figures from Prometheus, steady load\n\n", c.hold)
	} else {
		fmt.Fprintf(out, "plan: steps 5%% 25%% 50%% 100%%, hold 1m, at least 30 requests to 1.1, error rate at most 1%%; %d requests per step\n\n", n)
	}

	mixed := 0
	var applied []byte
	var workers *steady
	defer func() {
		if workers != nil {
			workers.stop()
		}
	}()
	for ctx.Err() == nil {
		next, err := ctl.Tick(ctx)
		if err != nil {
			return err
		}
		st, _, err := rollout.Status(ctx, store)
		if err != nil {
			return err
		}
		if st.Phase.Done() {
			if workers != nil {
				mixed += workers.stop()
				workers = nil
			}
			return summary(out, st, failPercent, mixed, rec, clk.Now())
		}
		if st.Phase != rollout.Running {
			return fmt.Errorf("the rollout is %s: %s", st.Phase, st.Reason)
		}
		// Hand a new rule to the gateway, as its Consul watch would.
		snap, err := store.Read(ctx)
		if err != nil {
			return err
		}
		if !bytes.Equal(snap.Rule, applied) {
			if !onConsul { // on Consul the gateway watches the rule key
				if err := w.Publish(string(snap.Rule)); err != nil {
					return err
				}
			}
			want := string(snap.Rule)
			if err := demo.WaitRule(ctx, gateway, func(r *rule.Rule) bool {
				x, err := rule.EncodeXML(r)
				return err == nil && string(x) == want
			}); err != nil {
				return err
			}
			applied = snap.Rule
		}
		if onProm {
			// A steady load from the first rule on; the controller
			// checks at the end of the hold, in real time.
			if workers == nil {
				workers = startLoad("http://" + gatewayAddr)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(next)):
			}
			continue
		}
		// The step's traffic, a second into its hold; then the end of
		// the hold, when the controller checks.
		clk.Set(clk.Now().Add(time.Second))
		mixed += load(ctx, "http://"+gatewayAddr, n)
		clk.Set(next)
	}
	return ctx.Err()
}

// steady is a steady load through the gateway from background workers.
type steady struct {
	cancel context.CancelFunc
	client *http.Client
	wg     sync.WaitGroup
	mixed  atomic.Int64
}

// startLoad starts 4 workers sending requests to url, a few milliseconds
// apart, until stop.
func startLoad(url string) *steady {
	ctx, cancel := context.WithCancel(context.Background())
	s := &steady{cancel: cancel}
	client := &http.Client{Timeout: 10 * time.Second}
	for range 4 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for ctx.Err() == nil {
				status, body, err := demo.Do(ctx, client, http.MethodGet, url+"/", nil)
				if err == nil && status == http.StatusOK {
					if chain := string(body); strings.Contains(chain, "@1.0") && strings.Contains(chain, "@1.1") {
						s.mixed.Add(1)
					}
				}
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
	}
	s.client = client
	return s
}

// stop stops the workers and returns how many chains mixed versions.
func (s *steady) stop() int {
	s.cancel()
	s.wg.Wait()
	s.client.CloseIdleConnections()
	return int(s.mixed.Load())
}

// record wraps h to record each request it serves in rec at the clock's
// time, failed when it answers 5xx.
func record(rec *rollout.Recorder, clk *clock, service, version string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		began := time.Now()
		sw := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		rec.Record(service, version, clk.Now(), time.Since(began), sw.status >= 500)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// load sends n requests through the gateway, 8 at a time, and returns how
// many chains mixed versions.
func load(ctx context.Context, url string, n int) int {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	t := demo.Send(n, func(int) (string, error) {
		status, body, err := demo.Do(ctx, client, http.MethodGet, url+"/", nil)
		if err != nil {
			return "", err
		}
		if status != http.StatusOK {
			return "failed", nil
		}
		return string(body), nil
	})
	mixed := 0
	for chain, c := range t.Counts() {
		if strings.Contains(chain, "@1.0") && strings.Contains(chain, "@1.1") {
			mixed += c
		}
	}
	return mixed
}

// summary prints the outcome and checks it against what was injected.
func summary(out io.Writer, st *rollout.State, failPercent, mixed int, rec *rollout.Recorder, now time.Time) error {
	fmt.Fprintln(out)
	var total rollout.Figure
	for _, svc := range []string{"svc-a", "svc-b"} {
		f, _ := rec.Query(context.Background(), svc, st.Versions[svc][1], now, 24*time.Hour)
		if svc == "svc-b" {
			total = f
		}
	}
	fmt.Fprintf(out, "%s: %s; svc-b 1.1 served %v over the whole rollout\n", st.Phase, st.Reason, total)
	if st.Phase == rollout.Promoted {
		fmt.Fprintf(out, "old versions drained for the drain gate: svc-a %v, svc-b %v\n", st.Drained["svc-a"], st.Drained["svc-b"])
	}
	var errs []string
	if mixed > 0 {
		errs = append(errs, fmt.Sprintf("%d chains mixed versions", mixed))
	}
	if failPercent == 0 && (st.Phase != rollout.Promoted || !st.Drained["svc-a"] || !st.Drained["svc-b"]) {
		errs = append(errs, "a healthy release was not promoted with its old versions drained")
	}
	if failPercent > 1 && st.Phase != rollout.RolledBack {
		errs = append(errs, "a failing release was not rolled back")
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	fmt.Fprintln(out, "Every chain stayed on one side.")
	return nil
}
