package grpcroute

import (
	"fmt"
	"net/url"
	"sync"
	"testing"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/serviceconfig"

	"github.com/graylane/graylane/discovery"
)

// fakeCC is the channel side of a balancer: it creates fake sub-connections
// and records the balancer's state, so tests drive connectivity by hand.
type fakeCC struct {
	grpcbalancer.ClientConn
	mu       sync.Mutex
	subConns map[string]*fakeSubConn // by address
	created  int
	state    grpcbalancer.State
}

func newFakeCC() *fakeCC { return &fakeCC{subConns: make(map[string]*fakeSubConn)} }

func (c *fakeCC) NewSubConn(addrs []resolver.Address, o grpcbalancer.NewSubConnOptions) (grpcbalancer.SubConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sc := &fakeSubConn{addr: addrs[0].Addr, listener: o.StateListener}
	c.subConns[sc.addr] = sc
	c.created++
	return sc, nil
}

func (c *fakeCC) UpdateState(s grpcbalancer.State) {
	c.mu.Lock()
	c.state = s
	c.mu.Unlock()
}

func (c *fakeCC) ResolveNow(resolver.ResolveNowOptions) {}

func (c *fakeCC) current() grpcbalancer.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *fakeCC) subConn(t testing.TB, addr string) *fakeSubConn {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	sc, ok := c.subConns[addr]
	if !ok {
		t.Fatalf("no sub-connection for %s", addr)
	}
	return sc
}

// ready walks a sub-connection through CONNECTING to READY and healthy.
func (c *fakeCC) ready(t testing.TB, addr string) {
	sc := c.subConn(t, addr)
	sc.listener(grpcbalancer.SubConnState{ConnectivityState: connectivity.Connecting})
	sc.listener(grpcbalancer.SubConnState{ConnectivityState: connectivity.Ready})
	sc.mu.Lock()
	h := sc.health
	sc.mu.Unlock()
	if h != nil {
		h(grpcbalancer.SubConnState{ConnectivityState: connectivity.Ready})
	}
}

// connecting puts a sub-connection in CONNECTING.
func (c *fakeCC) connecting(t testing.TB, addr string) {
	c.subConn(t, addr).listener(grpcbalancer.SubConnState{ConnectivityState: connectivity.Connecting})
}

type fakeSubConn struct {
	grpcbalancer.SubConn
	addr     string
	listener func(grpcbalancer.SubConnState)
	mu       sync.Mutex
	health   func(grpcbalancer.SubConnState)
}

func (s *fakeSubConn) Connect()  {}
func (s *fakeSubConn) Shutdown() {}
func (s *fakeSubConn) RegisterHealthListener(f func(grpcbalancer.SubConnState)) {
	s.mu.Lock()
	s.health = f
	s.mu.Unlock()
}

// fleet returns n instances of service per version, at 10.0.<v>.<i>:50051.
func fleet(service string, n int, versions ...string) []discovery.Instance {
	var out []discovery.Instance
	for v, version := range versions {
		for i := range n {
			out = append(out, discovery.Instance{
				ID:      fmt.Sprintf("%s-%s-%d", service, version, i),
				Service: service,
				Address: fmt.Sprintf("10.0.%d.%d", v, i),
				Port:    50051,
				Version: version,
			})
		}
	}
	return out
}

// buildBalancer builds a balancer from builder for target and feeds it the
// instances as the resolver would; readyAll makes every sub-connection
// ready.
func buildBalancer(t testing.TB, builder grpcbalancer.Builder, target string, cfg serviceconfig.LoadBalancingConfig, instances []discovery.Instance, readyAll bool) (*fakeCC, grpcbalancer.Balancer, resolver.State) {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	cc := newFakeCC()
	b := builder.Build(cc, grpcbalancer.BuildOptions{Target: resolver.Target{URL: *u}})
	t.Cleanup(b.Close)
	st := StateFromSnapshot(discovery.NewSnapshot(instances0Service(instances), 1, instances))
	ccs := grpcbalancer.ClientConnState{ResolverState: st, BalancerConfig: cfg}
	if err := b.UpdateClientConnState(ccs); err != nil && len(instances) > 0 {
		t.Fatal(err)
	}
	if readyAll {
		for _, a := range st.Addresses {
			cc.ready(t, a.Addr)
		}
	}
	return cc, b, st
}

func instances0Service(in []discovery.Instance) string {
	if len(in) == 0 {
		return ""
	}
	return in[0].Service
}
