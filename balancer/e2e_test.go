package balancer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/rule"
	"github.com/hashicorp/consul/api"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The end-to-end chain: gateway -> svc-a -> svc-b, real HTTP servers on
// loopback registered in a real Consul agent, svc-a and svc-b each running
// versions 1.0 and 1.1 with two instances per version. The gateway is a
// trusted edge following the rule in KV; svc-a follows the headers.

const e2eRuleKey = "graylane/e2e/rule"

// e2eServer is one registered instance.
type e2eServer struct {
	service, version, id string
	srv                  *http.Server
	ln                   net.Listener
	reg                  *discovery.Registrar
	calls                atomic.Int64
}

// startE2E starts an HTTP server for handler (wrapped to report identity)
// and registers it in Consul with an HTTP health check.
func startE2E(t *testing.T, client *api.Client, service, version string, n int, handler func(self *e2eServer) http.Handler) *e2eServer {
	t.Helper()
	return startE2ECheck(t, client, service, version, n, false, handler)
}

// startE2ECheck is startE2E with a TTL check, which passes from the
// registration on, when ttl is set.
func startE2ECheck(t *testing.T, client *api.Client, service, version string, n int, ttl bool, handler func(self *e2eServer) http.Handler) *e2eServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &e2eServer{service: service, version: version, ln: ln}
	port := ln.Addr().(*net.TCPAddr).Port
	s.id = fmt.Sprintf("%s-%s-%d", service, version, n)
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {})
	mux.Handle("/", handler(s))
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	check := discovery.Check{
		HTTP:     fmt.Sprintf("http://127.0.0.1:%d/health", port),
		Interval: time.Second,
		// Generous: a loaded machine running the race detector must not
		// fail healthy instances. A killed one refuses at once.
		Timeout: 5 * time.Second,
	}
	if ttl {
		check = discovery.Check{}
	}
	s.reg, err = discovery.Register(context.Background(), client, discovery.Registration{
		Service: service,
		Address: "127.0.0.1",
		Port:    port,
		Version: version,
		Meta:    map[string]string{"test_id": s.id},
		Check:   check,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	return s
}

// kill stops serving at once, as a crashed process would; the instance
// stays registered until Consul's check sees it fail.
func (s *e2eServer) kill() { _ = s.srv.Close() }

func (s *e2eServer) stop() {
	_ = s.reg.Close()
	_ = s.srv.Close()
}

// chainResult is what the gateway answers: the version and instance of each
// hop, and the n-d-version svc-b received.
type chainResult struct {
	a, b, bID, bHeader string
}

func parseChain(body string) (chainResult, bool) {
	var r chainResult
	for _, f := range strings.Split(body, "|") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "a":
			r.a = v
		case "b":
			r.b = v
		case "bid":
			r.bID = v
		case "bh":
			r.bHeader = v
		}
	}
	return r, r.a != "" && r.b != ""
}

type e2eEnv struct {
	agent   *consultest.Agent
	reg     *discovery.Consul
	kv      *api.KV
	gateway string // gateway URL
	gwBal   *Balancer
	aBal    *Balancer
	logs    *observer.ObservedLogs
	b11     []*e2eServer
	client  *http.Client
	// svcA and svcB are the handlers of svc-a and svc-b instances.
	svcA, svcB func(self *e2eServer) http.Handler
	started    []*e2eServer // by newE2E
}

func setupE2E(t *testing.T) *e2eEnv {
	return newE2E(t, []string{"1.0", "1.1"})
}

// newE2E starts the chain with two instances of each version of svc-a and
// svc-b; opts go to both balancers.
func newE2E(t *testing.T, versions []string, opts ...Option) *e2eEnv {
	agent := consultest.Start(t)
	client := agent.Client()
	env := &e2eEnv{agent: agent, kv: client.KV()}
	reg := discovery.NewConsul(client, discovery.WithRateLimit(0, 1))
	env.reg = reg
	t.Cleanup(func() { _ = reg.Close() })
	rules := discovery.NewConsulRules(client, discovery.RuleKeys{Group: e2eRuleKey}, discovery.WithRateLimit(0, 1))
	t.Cleanup(func() { _ = rules.Close() })

	retry := WithRetry(RetryPolicy{Attempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	core, logs := observer.New(zap.InfoLevel)
	env.logs = logs
	gw, err := New(reg, append([]Option{WithRuleSource(rules), WithTrustedEdge(true), WithLogger(zap.New(core)), retry}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	aBal, err := New(reg, append([]Option{retry}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = aBal.Close() })
	env.gwBal, env.aBal = gw, aBal

	svcB := func(self *e2eServer) http.Handler {
		return aBal.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			self.calls.Add(1)
			fmt.Fprintf(w, "b=%s|bid=%s|bh=%s", self.version, self.id, r.Header.Get(rule.TypeVersion.HeaderName()))
		}))
	}
	aTransport := aBal.Transport(nil)
	aClient := &http.Client{Transport: aTransport}
	svcA := func(self *e2eServer) http.Handler {
		return aBal.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			self.calls.Add(1)
			req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://svc-b/", nil)
			resp, err := aClient.Do(req)
			if err != nil {
				http.Error(w, "svc-a: "+err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK {
				http.Error(w, "svc-b: "+string(body), http.StatusBadGateway)
				return
			}
			fmt.Fprintf(w, "a=%s|%s", self.version, body)
		}))
	}
	env.svcA, env.svcB = svcA, svcB
	for _, v := range versions {
		for n := range 2 {
			s := startE2E(t, client, "svc-b", v, n, svcB)
			if v == "1.1" {
				env.b11 = append(env.b11, s)
			}
			env.started = append(env.started, s, startE2E(t, client, "svc-a", v, n, svcA))
		}
	}
	gwClient := &http.Client{Transport: gw.Transport(nil)}
	gwHandler := gw.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://svc-a/", nil)
		resp, err := gwClient.Do(req)
		if err != nil {
			http.Error(w, "gateway: "+err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gwSrv := &http.Server{Handler: gwHandler, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = gwSrv.Serve(ln) }()
	t.Cleanup(func() { _ = gwSrv.Close() })
	env.gateway = "http://" + ln.Addr().String()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	env.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		aTransport.base.(*http.Transport).CloseIdleConnections()
		gwClient.Transport.(*Transport).base.(*http.Transport).CloseIdleConnections()
	})

	// Wait until both services show two instances of each version, Consul's
	// checks included.
	deadline := time.Now().Add(30 * time.Second)
	for _, svc := range []string{"svc-a", "svc-b"} {
		w := reg.Watch(svc)
		for !hasVersions(w.Snapshot(), versions) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed 2+2 healthy instances: %d", svc, w.Snapshot().Len())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return env
}

func hasVersions(s *discovery.Snapshot, versions []string) bool {
	for _, v := range versions {
		if len(s.Version(v)) != 2 {
			return false
		}
	}
	return true
}

func (env *e2eEnv) putRule(t *testing.T, doc string) {
	t.Helper()
	if _, err := env.kv.Put(&api.KVPair{Key: e2eRuleKey, Value: []byte(doc)}, nil); err != nil {
		t.Fatal(err)
	}
}

// call sends one request through the gateway.
func (env *e2eEnv) call(xyz string, hdr map[string]string) (chainResult, error) {
	req, _ := http.NewRequest(http.MethodGet, env.gateway+"/", nil)
	if xyz != "" {
		req.Header.Set("xyz", xyz)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := env.client.Do(req)
	if err != nil {
		return chainResult{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return chainResult{}, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	r, ok := parseChain(string(body))
	if !ok {
		return r, fmt.Errorf("unexpected answer %q", body)
	}
	return r, nil
}

// expectChain sends n requests with xyz and requires every hop on version.
func (env *e2eEnv) expectChain(t *testing.T, xyz string, hdr map[string]string, n int, version string) {
	t.Helper()
	for range n {
		r, err := env.call(xyz, hdr)
		if err != nil {
			t.Fatalf("xyz=%q: %v", xyz, err)
		}
		if r.a != version || r.b != version {
			t.Fatalf("xyz=%q: chain a=%s b=%s, want %s everywhere (svc-b got n-d-version %s)", xyz, r.a, r.b, version, r.bHeader)
		}
	}
}

// load runs clients goroutines sending requests until stop is closed, and
// reports every answer to record with the time its request was sent. The
// returned wait stops them and counts the answers and failures.
func (env *e2eEnv) load(clients int, xyz string, stop <-chan struct{}, record func(time.Time, chainResult)) (wait func() (ok, failed int64, firstErr error)) {
	var wg sync.WaitGroup
	var okN, failN atomic.Int64
	var errOnce sync.Once
	var first error
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent := time.Now()
				r, err := env.call(xyz, nil)
				if err != nil {
					failN.Add(1)
					errOnce.Do(func() { first = err })
					continue
				}
				okN.Add(1)
				if record != nil {
					record(sent, r)
				}
			}
		}()
	}
	return func() (int64, int64, error) {
		wg.Wait()
		return okN.Load(), failN.Load(), first
	}
}

func waitGatewayRule(t *testing.T, b *Balancer, what string, ok func(*rule.Rule) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !ok(b.Rule()) {
		if time.Now().After(deadline) {
			t.Fatalf("gateway never got %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func orchestrated(r *rule.Rule) bool {
	if r == nil || len(r.Release.Routes) != 2 {
		return false
	}
	a, _ := r.Release.Routes[1].Value.For("svc-a")
	b, _ := r.Release.Routes[1].Value.For("svc-b")
	return a == "1.1" && b == "1.1"
}

func TestE2EFullChain(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test against a real Consul agent")
	}
	env := setupE2E(t)
	env.putRule(t, mixedSpec)
	waitGatewayRule(t, env.gwBal, "the orchestrated mixed rule", orchestrated)

	t.Run("blue-green", func(t *testing.T) {
		env.expectChain(t, "1", nil, 40, "1.0")
		env.expectChain(t, "2", nil, 40, "1.1")
	})

	t.Run("no header: the default condition", func(t *testing.T) {
		env.expectChain(t, "", nil, 100, "1.0")
	})

	t.Run("gray 90/10 over 10000 chains", func(t *testing.T) {
		const total = 10_000
		var mu sync.Mutex
		var n, newer, inconsistent int
		var bad chainResult
		stop := make(chan struct{})
		wait := env.load(8, "3", stop, func(_ time.Time, r chainResult) {
			mu.Lock()
			defer mu.Unlock()
			if n >= total {
				return
			}
			n++
			if r.b == "1.1" {
				newer++
			}
			if r.a != r.b {
				inconsistent++
				bad = r
			}
			if n == total {
				close(stop)
			}
		})
		_, failed, err := wait()
		if failed > 0 {
			t.Fatalf("%d failed requests; first: %v", failed, err)
		}
		share := float64(newer) / total
		t.Logf("gray: 1.1 share %.4f over %d chains", share, total)
		if share < 0.08 || share > 0.12 {
			t.Errorf("1.1 share %.4f, want 0.10 +- 0.02", share)
		}
		if inconsistent > 0 {
			t.Errorf("%d chains mixed versions, e.g. a=%s b=%s", inconsistent, bad.a, bad.b)
		}
	})

	t.Run("trusted edge ignores client routing headers", func(t *testing.T) {
		env.expectChain(t, "1", map[string]string{rule.TypeVersion.HeaderName(): `{"svc-a":"1.1","svc-b":"1.1"}`}, 20, "1.0")
		env.expectChain(t, "", map[string]string{rule.TypeVersion.HeaderName(): "1.1"}, 20, "1.0")
	})

	t.Run("rule changes under load", func(t *testing.T) {
		// Swap the colours: xyz=1 now goes to the new versions.
		swapped := strings.Replace(strings.Replace(mixedSpec, "route: green", "route: X", 1), "route: blue", "route: green", 1)
		swapped = strings.Replace(swapped, "route: X", "route: blue", 1)
		var firstNew atomic.Int64
		before := env.gwBal.Rule()
		stop := make(chan struct{})
		wait := env.load(8, "1", stop, func(at time.Time, r chainResult) {
			if r.b == "1.1" {
				firstNew.CompareAndSwap(0, at.UnixNano())
			}
		})
		time.Sleep(300 * time.Millisecond)
		if firstNew.Load() != 0 {
			close(stop)
			wait()
			t.Fatal("xyz=1 reached 1.1 before the change")
		}
		put := time.Now()
		env.putRule(t, swapped)
		deadline := time.Now().Add(5 * time.Second)
		for env.gwBal.Rule() == before && time.Now().Before(deadline) {
			time.Sleep(100 * time.Microsecond)
		}
		applied := time.Since(put)
		for firstNew.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)

		// A malformed rule: logged, ignored.
		rejected := env.logs.FilterMessage("rule rejected; the previous rule stays in force").Len()
		env.putRule(t, "<rule><strategy-release><conditions type=\"blue-green\"><condition id=\"c\" expression=\"#H['xyz'] ==\" version-id=\"r\"/>")
		deadline = time.Now().Add(5 * time.Second)
		for env.logs.FilterMessage("rule rejected; the previous rule stays in force").Len() == rejected && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		close(stop)
		okN, failed, err := wait()
		if firstNew.Load() == 0 {
			t.Fatal("the new rule never took effect")
		}
		took := time.Duration(firstNew.Load() - put.UnixNano())
		t.Logf("rule change: in force %v after the KV put, first request decided by it sent %v after; %d requests, %d failed",
			applied, took, okN, failed)
		if failed > 0 {
			t.Errorf("%d failed requests during the rule changes; first: %v", failed, err)
		}
		if got := env.logs.FilterMessage("rule rejected; the previous rule stays in force").Len(); got == rejected {
			t.Error("malformed rule not logged")
		}
		env.expectChain(t, "1", nil, 20, "1.1") // the swapped rule still holds
		env.putRule(t, mixedSpec)
		waitGatewayRule(t, env.gwBal, "the mixed rule back", func(r *rule.Rule) bool {
			if !orchestrated(r) {
				return false
			}
			return r.Release.BlueGreen[0].VersionID == "route-0"
		})
	})

	t.Run("instance killed mid-run", func(t *testing.T) {
		stop := make(chan struct{})
		var after, killedAt atomic.Int64
		victim := env.b11[0]
		wait := env.load(8, "2", stop, func(sent time.Time, r chainResult) {
			if k := killedAt.Load(); k != 0 && sent.UnixNano() > k && r.bID == victim.id {
				after.Add(1)
			}
		})
		time.Sleep(300 * time.Millisecond)
		victim.kill()
		killed := time.Now()
		killedAt.Store(killed.UnixNano())
		w := env.aBal.reg.Watch("svc-b")
		for {
			gone := true
			for _, in := range w.Snapshot().Instances {
				if in.Meta["test_id"] == victim.id {
					gone = false
				}
			}
			if gone {
				break
			}
			if time.Since(killed) > 30*time.Second {
				close(stop)
				wait()
				t.Fatal("killed instance never dropped from discovery")
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("killed instance dropped from discovery %v after the kill", time.Since(killed).Round(time.Millisecond))
		time.Sleep(200 * time.Millisecond)
		close(stop)
		okN, failed, err := wait()
		t.Logf("kill: %d requests, %d failed", okN, failed)
		if failed > 0 {
			t.Errorf("%d failed idempotent requests; first: %v", failed, err)
		}
		if n := after.Load(); n != 0 {
			t.Errorf("%d requests sent after the kill answered by the killed instance", n)
		}
		env.expectChain(t, "2", nil, 20, "1.1") // the other 1.1 instance serves
	})

	t.Run("built-in header pins the chain", func(t *testing.T) {
		env.putRule(t, mixedSpec+"header:\n  xyz: 1\n")
		waitGatewayRule(t, env.gwBal, "the rule with its header", func(r *rule.Rule) bool {
			return orchestrated(r) && len(r.Release.Header) == 1
		})
		for _, xyz := range []string{"", "1", "2", "3", "4", "anything"} {
			env.expectChain(t, xyz, nil, 30, "1.0")
		}
	})
}
