package grpcroute

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
)

// chainRuleAll is chainRule over the services of both chains.
var chainRuleAll = strings.NewReplacer(
	`{"svc-a":"1.0","svc-b":"1.0"}`, `{"svc-a":"1.0","svc-b":"1.0","mix-a":"1.0","mix-b":"1.0"}`,
	`{"svc-a":"1.1","svc-b":"1.1"}`, `{"svc-a":"1.1","svc-b":"1.1","mix-a":"1.1","mix-b":"1.1"}`,
).Replace(chainRule)

// consulWorld is a Consul agent with the test services registered in it.
type consulWorld struct {
	agent *consultest.Agent
	reg   *discovery.Consul
	rb    *ResolverBuilder
	rules *balancer.Balancer // the rule, for non-entry hops; forwards x-user
}

func newConsulWorld(t *testing.T) *consulWorld {
	agent := consultest.Start(t)
	reg := discovery.NewConsul(agent.Client(), discovery.WithWaitTime(2*time.Second))
	t.Cleanup(func() { _ = reg.Close() })
	rules, err := balancer.New(reg, balancer.WithRule(mustRule(t, chainRuleAll)), balancer.WithForwardHeaders("x-user"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rules.Close() })
	return &consulWorld{agent: agent, reg: reg, rb: NewResolverBuilder(reg), rules: rules}
}

// register registers an instance at 127.0.0.1:port and returns its
// registrar (closed at cleanup; closing deregisters).
func (w *consulWorld) register(t *testing.T, service, version string, port int) *discovery.Registrar {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := discovery.Register(ctx, w.agent.Client(), discovery.Registration{
		Service: service, Address: "127.0.0.1", Port: port, Version: version,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// grpcHop starts and registers one gRPC instance of service whose
// downstream, if any, is called with next on the conn it gets.
func (w *consulWorld) grpcHop(t *testing.T, service, version, id string, next func(context.Context) (string, error)) (*grpc.Server, *discovery.Registrar) {
	t.Helper()
	node := &hopNode{name: service, version: version, id: id, next: next}
	if next == nil {
		node.echo = "x-user"
	}
	ics := NewInterceptors(w.rules)
	srv, port := serveHop(t, node, ics.ServerOptions()...)
	return srv, w.register(t, service, version, port)
}

// httpHop starts and registers one HTTP instance of service that answers
// with its identity and the x-user header it received.
func (w *consulWorld) httpHop(t *testing.T, service, version, id string) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(rw, "%s@%s#%s[x-user=%s]", service, version, id, r.Header.Get("X-User"))
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	w.register(t, service, version, p)
}

// waitVersions waits until the registry lists want instances of service.
func (w *consulWorld) waitInstances(t *testing.T, service string, want int) {
	t.Helper()
	watch := w.reg.Watch(service)
	deadline := time.Now().Add(10 * time.Second)
	for watch.Snapshot().Len() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d instances in Consul, want %d", service, watch.Snapshot().Len(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitGone waits until Consul no longer lists the instance id of service.
func (w *consulWorld) waitGone(t *testing.T, service, id string) {
	t.Helper()
	watch := w.reg.Watch(service)
	deadline := time.Now().Add(30 * time.Second)
	for slices.ContainsFunc(watch.Snapshot().Instances, func(in discovery.Instance) bool { return in.ID == id }) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: instance %s still listed after 30s", service, id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chainStats runs n calls through call with the given xyz concurrently
// and checks each answer's chain: every hop of a chain on one version,
// and the forwarded x-user arriving at the last hop. It returns how many
// chains ran on each version.
func chainStats(t *testing.T, n int, call func(ctx context.Context, xyz, user string) (string, error), xyz string) map[string]int {
	t.Helper()
	const workers = 8
	var mu sync.Mutex
	counts := make(map[string]int)
	var firstErr error
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				user := "u" + strconv.Itoa(i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				trace, err := call(ctx, xyz, user)
				cancel()
				if err == nil {
					var v string
					v, err = chainVersion(trace, user)
					if err == nil {
						mu.Lock()
						counts[v]++
						mu.Unlock()
						continue
					}
				}
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("xyz=%s call %d: %w", xyz, i, err)
				}
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return counts
}

// chainVersion checks that every service hop of trace ("gw@-#gw>svc-a@1.0#a1>
// svc-b@1.0#b1[x-user=u7]") ran on one version and that user arrived at the
// end, and returns the version.
func chainVersion(trace, user string) (string, error) {
	hops := strings.Split(trace, ">")
	if len(hops) != 3 {
		return "", fmt.Errorf("trace %q: want 3 hops", trace)
	}
	if !strings.HasSuffix(trace, "[x-user="+user+"]") {
		return "", fmt.Errorf("trace %q: x-user %q did not arrive", trace, user)
	}
	var version string
	for _, hop := range hops[1:] {
		at, hash := strings.IndexByte(hop, '@'), strings.IndexByte(hop, '#')
		if at < 0 || hash < at {
			return "", fmt.Errorf("trace %q: bad hop %q", trace, hop)
		}
		v := hop[at+1 : hash]
		if version != "" && v != version {
			return "", fmt.Errorf("trace %q: chain mixes versions %s and %s", trace, version, v)
		}
		version = v
	}
	return version, nil
}

func checkChains(t *testing.T, call func(ctx context.Context, xyz, user string) (string, error)) {
	tests := []struct {
		xyz  string
		n    int
		want string // the one version, or "" for the gray split
	}{
		{xyz: "1", n: 200, want: "1.0"},
		{xyz: "2", n: 200, want: "1.1"},
		{xyz: "none", n: 100, want: "1.0"}, // <strategy>
		{xyz: "3", n: 10000},
	}
	for _, tt := range tests {
		t.Run("xyz="+tt.xyz, func(t *testing.T) {
			got := chainStats(t, tt.n, call, tt.xyz)
			if tt.want != "" {
				if got[tt.want] != tt.n {
					t.Fatalf("chains %v, want all %d on %s", got, tt.n, tt.want)
				}
				return
			}
			old := got["1.0"]
			t.Logf("gray split over %d chains: %v", tt.n, got)
			if got["1.0"]+got["1.1"] != tt.n || old < tt.n*88/100 || old > tt.n*92/100 {
				t.Fatalf("chains %v, want 90/10 +-2 over %d", got, tt.n)
			}
		})
	}
}

func TestConsulChains(t *testing.T) {
	w := newConsulWorld(t)

	// gRPC chain: gateway -> svc-a -> svc-b, two versions of each, two
	// instances of svc-a 1.0.
	toB := dialService(t, w.rb, "consul:///svc-b", NewInterceptors(w.rules))
	viaB := func(ctx context.Context) (string, error) { return callHop(ctx, toB) }
	w.grpcHop(t, "svc-b", "1.0", "b1", nil)
	w.grpcHop(t, "svc-b", "1.1", "b2", nil)
	stopped, _ := w.grpcHop(t, "svc-a", "1.0", "a1", viaB)
	w.grpcHop(t, "svc-a", "1.0", "a2", viaB)
	w.grpcHop(t, "svc-a", "1.1", "a3", viaB)
	w.waitInstances(t, "svc-a", 3)
	w.waitInstances(t, "svc-b", 2)

	gw, err := balancer.New(w.reg, balancer.WithRule(mustRule(t, chainRuleAll)), balancer.WithEntry(true), balancer.WithForwardHeaders("x-user"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Close() })
	gwICs := NewInterceptors(gw)
	toA := dialService(t, w.rb, "consul:///svc-a", gwICs)
	gateway := &hopNode{name: "gateway", version: "-", id: "gw", next: func(ctx context.Context) (string, error) {
		// Streams through the gateway for half the users, to cover the
		// stream interceptors.
		if u := incoming(ctx, "x-user"); u != "" && (u[len(u)-1]-'0')%2 == 0 {
			return streamHop(ctx, toA)
		}
		return callHop(ctx, toA)
	}}
	_, gwPort := serveHop(t, gateway, gwICs.ServerOptions()...)
	toGateway := dialDirect(t, gwPort)
	grpcCall := func(ctx context.Context, xyz, user string) (string, error) {
		return callHop(withOutgoing(ctx, "xyz", xyz, "x-user", user), toGateway)
	}

	// Mixed chain: HTTP gateway -> gRPC mix-a -> HTTP mix-b.
	mixB := w.rules.Client()
	viaHTTP := func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://mix-b/hop", nil)
		if err != nil {
			return "", err
		}
		resp, err := mixB.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("mix-b: %s: %s", resp.Status, body)
		}
		return string(body), err
	}
	w.httpHop(t, "mix-b", "1.0", "mb1")
	w.httpHop(t, "mix-b", "1.1", "mb2")
	w.grpcHop(t, "mix-a", "1.0", "ma1", viaHTTP)
	w.grpcHop(t, "mix-a", "1.1", "ma2", viaHTTP)
	w.waitInstances(t, "mix-a", 2)
	w.waitInstances(t, "mix-b", 2)
	edge, err := balancer.New(w.reg, balancer.WithRule(mustRule(t, chainRuleAll)), balancer.WithEntry(true), balancer.WithForwardHeaders("X-User"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = edge.Close() })
	toMixA := dialService(t, w.rb, "consul:///mix-a", NewInterceptors(nil))
	httpGateway := httptest.NewServer(edge.Middleware(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		trace, err := callHop(r.Context(), toMixA)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadGateway)
			return
		}
		fmt.Fprintf(rw, "http-gateway@-#hg>%s", trace)
	})))
	t.Cleanup(httpGateway.Close)
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	t.Cleanup(httpClient.CloseIdleConnections)
	mixedCall := func(ctx context.Context, xyz, user string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, httpGateway.URL+"/?xyz="+xyz, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("X-User", user)
		resp, err := httpClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("gateway: %s: %s", resp.Status, body)
		}
		return string(body), err
	}

	t.Run("grpc", func(t *testing.T) { checkChains(t, grpcCall) })
	t.Run("mixed", func(t *testing.T) { checkChains(t, mixedCall) })

	t.Run("stop-instance", func(t *testing.T) {
		// a1 dies without deregistering: Consul still lists it, so the
		// balancer must route around the dead connection by itself.
		//
		// A call made at the very moment of the crash can be written to the
		// dying connection before the client sees it close; gRPC cannot
		// retry such a call transparently, so it fails with Unavailable, as
		// for any client of a crashed server. Those racing calls (at most
		// two, among the first ten: a call may land on a2 while the next
		// is still written to a1's dying connection) are tolerated; every
		// other call must succeed, on a2.
		stopped.Stop()
		seen := map[string]int{}
		raced, ok := 0, 0
		for i := 0; ok < 300; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			trace, err := grpcCall(ctx, "1", "u"+strconv.Itoa(i))
			cancel()
			if err != nil {
				if i >= 10 || raced >= 2 || status.Code(err) != codes.Unavailable {
					t.Fatalf("call %d after the stop (%d succeeded before it): %v", i, ok, err)
				}
				raced++
				t.Logf("call %d raced the crash: %v", i, err)
				continue
			}
			ok++
			seen[strings.Split(trace, ">")[1]]++
		}
		if seen["svc-a@1.0#a1"] != 0 || seen["svc-a@1.0#a2"] != 300 {
			t.Fatalf("svc-a hops %v, want all 300 on a2", seen)
		}
	})

	var (
		newSrv *grpc.Server
		newReg *discovery.Registrar
	)
	parent := t // the new instance outlives its subtest, for drain-instance
	t.Run("new-instance", func(t *testing.T) {
		node := &hopNode{name: "svc-a", version: "1.0", id: "a4", next: viaB}
		var port int
		newSrv, port = serveHop(parent, node, NewInterceptors(w.rules).ServerOptions()...)
		start := time.Now()
		newReg = w.register(parent, "svc-a", "1.0", port)
		for i := 0; ; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			trace, err := grpcCall(ctx, "1", "u"+strconv.Itoa(i))
			cancel()
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if strings.Contains(trace, "#a4>") {
				break
			}
			if time.Since(start) > 30*time.Second {
				t.Fatalf("new instance took no call within 30s of its registration (%d calls)", i+1)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Logf("new instance served its first call %v after registration", time.Since(start))
	})
	t.Run("drain-instance", func(t *testing.T) {
		if newSrv == nil {
			t.Skip("new-instance failed")
		}
		// A clean shutdown under load: deregister, wait until the
		// balancer has dropped the instance, stop gracefully. No call may
		// fail on the way.
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var mu sync.Mutex
		var errs []error
		served := map[string]int{}
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil; i++ {
					cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					trace, err := grpcCall(cctx, "1", "u"+strconv.Itoa(g*100000+i))
					cancel()
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else {
						served[strings.Split(trace, ">")[1]]++
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(200 * time.Millisecond)
		id := newReg.ID()
		if err := newReg.Close(); err != nil {
			t.Error(err)
		}
		// Wait for a4 to leave, not for a count: a1, stopped without
		// deregistering, leaves too once its probe-fed check fails, at a
		// moment of its own.
		w.waitGone(t, "svc-a", id)
		// Consul and the resolver have dropped a4; give the channel a
		// moment to swap pickers before the listener goes.
		time.Sleep(100 * time.Millisecond)
		newSrv.GracefulStop()
		time.Sleep(300 * time.Millisecond)
		stop()
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d calls failed while draining, first: %v", len(errs), errs[0])
		}
		if served["svc-a@1.0#a4"] == 0 || served["svc-a@1.0#a2"] == 0 || served["svc-a@1.0#a1"] != 0 {
			t.Fatalf("svc-a hops %v, want a4 and a2 serving before the drain, never a1", served)
		}
	})
	t.Run("tag-scope", func(t *testing.T) {
		// ?tag=blue is served by a registry that filters by the tag in
		// Consul; the plain target by the default one.
		blue := discovery.NewConsul(w.agent.Client(), discovery.WithWaitTime(2*time.Second), discovery.WithTag("blue"))
		defer blue.Close()
		rb := NewResolverBuilder(w.reg, WithRegistryFor("", "blue", blue))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for i, tags := range [][]string{{"blue"}, nil} {
			r, err := discovery.Register(ctx, w.agent.Client(), discovery.Registration{
				Service: "svc-t", Address: "127.0.0.1", Port: 7001 + i, Version: "1.0", Tags: tags,
				Check: discovery.Check{NoProbe: true}, // nothing serves these ports
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
		}
		w.waitInstances(t, "svc-t", 2)
		for _, tt := range []struct {
			give string
			want []int
		}{
			{give: "consul:///svc-t?tag=blue", want: []int{7001}},
			{give: "consul:///svc-t", want: []int{7001, 7002}},
		} {
			cc := newRecordingCC()
			res, err := rb.Build(mustTarget(t, tt.give), cc, resolver.BuildOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var ports []int
			for _, ep := range cc.next(t).Endpoints {
				in, _ := InstanceFrom(ep)
				ports = append(ports, in.Port)
			}
			res.Close()
			slices.Sort(ports)
			if !slices.Equal(ports, tt.want) {
				t.Fatalf("%s: ports %v, want %v", tt.give, ports, tt.want)
			}
		}
	})
}
