package balancer

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/consultest"
	"github.com/graylane/graylane/rule"
	"github.com/hashicorp/consul/api"
)

// The failover end-to-end test: instances registered in a real Consul
// agent with versions, regions, zones and environments; balancers picking
// under load while the one instance a route targets deregisters. What
// each failover element does then follows Nepxion's strategy filters and
// its wiki's failover examples (Nepxion/Discovery, branch wiki, README.md,
// "全链路故障转移").

// foInstance is one registered instance of the failover test.
type foInstance struct {
	service, id, version, region, zone, env string
}

// startFailoverInstance serves a health endpoint for in and registers it.
func startFailoverInstance(t *testing.T, client *api.Client, in foInstance) *discovery.Registrar {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	reg, err := discovery.Register(context.Background(), client, discovery.Registration{
		Service: in.service,
		Address: "127.0.0.1",
		Port:    ln.Addr().(*net.TCPAddr).Port,
		Version: in.version,
		Region:  in.region,
		Zone:    in.zone,
		Env:     in.env,
		Check:   discovery.Check{HTTP: "http://" + ln.Addr().String() + "/", Interval: time.Second, Timeout: 5 * time.Second},
	})
	if err != nil {
		_ = srv.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = reg.Close()
		_ = srv.Close()
	})
	return reg
}

// foCase is one balancer and route picking under load: before the target
// deregisters every pick lands on it; after, on one of after (nil: every
// pick fails with ErrNoInstance). No pick ever lands elsewhere.
type foCase struct {
	name    string
	opts    []Option
	service string
	route   Route
	target  string
	after   []string
	b       *Balancer
	labels  map[string]string // instance ID -> the test's name for it
	// Counted by the load goroutines.
	bad     atomic.Value // string: the first violation
	onAfter atomic.Int64 // picks that landed on a failover instance or failed as expected
}

func (c *foCase) allowedAfter(id string) bool {
	for _, a := range c.after {
		if a == id {
			return true
		}
	}
	return false
}

// pickOnce picks once and records a violation of the case's invariant.
func (c *foCase) pickOnce(ctx context.Context) {
	in, done, err := c.b.Pick(ctx, c.service)
	id := c.labels[in.ID]
	switch {
	case err != nil && c.after == nil && errors.Is(err, ErrNoInstance):
		c.onAfter.Add(1)
	case err != nil:
		c.bad.CompareAndSwap(nil, "pick failed: "+err.Error())
	case id == c.target:
	case c.allowedAfter(id):
		c.onAfter.Add(1)
	default:
		c.bad.CompareAndSwap(nil, "picked "+id+" ("+in.ID+")")
	}
	done(nil)
}

func TestFailoverE2E(t *testing.T) {
	agent := consultest.Start(t)
	client := agent.Client()
	reg := discovery.NewConsul(client, discovery.WithRateLimit(0, 1))
	t.Cleanup(func() { _ = reg.Close() })

	labels := map[string]string{}
	regs := map[string]*discovery.Registrar{}
	for _, in := range []foInstance{
		// svc-b: the routed instance b-gone is the only one of its
		// version, region, zone and address.
		{service: "svc-b", id: "b-gone", version: "1.2", region: "eu", zone: "z3"},
		{service: "svc-b", id: "b-10", version: "1.0", region: "dev", zone: "z1"},
		{service: "svc-b", id: "b-11", version: "1.1", region: "qa", zone: "z2"},
		// svc-c: environments; c-env1 is the only instance of env1.
		{service: "svc-c", id: "c-env1", version: "1.0", env: "env1"},
		{service: "svc-c", id: "c-common", version: "1.0", env: "common"},
		{service: "svc-c", id: "c-env2", version: "1.0", env: "env2"},
	} {
		r := startFailoverInstance(t, client, in)
		labels[r.ID()] = in.id
		regs[in.id] = r
	}

	for _, svc := range []string{"svc-b", "svc-c"} {
		w := reg.Watch(svc)
		deadline := time.Now().Add(30 * time.Second)
		for w.Snapshot().Len() != 3 {
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed 3 healthy instances: %d", svc, w.Snapshot().Len())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	addrOf := func(svc, id string) string {
		for _, in := range reg.Watch(svc).Snapshot().Instances {
			if labels[in.ID] == id {
				return in.HostPort()
			}
		}
		t.Fatalf("no instance %s", id)
		return ""
	}
	route := func(kv ...any) Route {
		var r Route
		for i := 0; i < len(kv); i += 2 {
			r.Set(kv[i].(rule.RouteType), rule.PlainValue(kv[i+1].(string)))
		}
		return r
	}
	cases := []*foCase{
		{name: "strict", service: "svc-b", route: route(rule.TypeVersion, "1.2"), target: "b-gone"},
		{name: "version-failover", service: "svc-b", route: route(rule.TypeVersion, "1.2", rule.TypeVersionFailover, "1.1"), target: "b-gone", after: []string{"b-11"}},
		{name: "version failover stable", service: "svc-b", opts: []Option{WithSwitches(Switches{VersionFailover: true, VersionFailoverStable: true})},
			route: route(rule.TypeVersion, "1.2"), target: "b-gone", after: []string{"b-10"}},
		{name: "version failover any", service: "svc-b", opts: []Option{WithSwitches(Switches{VersionFailover: true})},
			route: route(rule.TypeVersion, "1.2"), target: "b-gone", after: []string{"b-10", "b-11"}},
		{name: "region-failover", service: "svc-b", route: route(rule.TypeRegion, "eu", rule.TypeRegionFailover, "dev"), target: "b-gone", after: []string{"b-10"}},
		{name: "region failover switch", service: "svc-b", opts: []Option{WithSwitches(Switches{RegionFailover: true})},
			route: route(rule.TypeRegion, "eu"), target: "b-gone", after: []string{"b-10", "b-11"}},
		{name: "address-failover", service: "svc-b", route: route(rule.TypeAddress, addrOf("svc-b", "b-gone"), rule.TypeAddressFailover, addrOf("svc-b", "b-11")),
			target: "b-gone", after: []string{"b-11"}},
		{name: "zone affinity, zone-failover", service: "svc-b", opts: []Option{WithIdentity(Identity{Service: "svc-a", Zone: "z3"}), WithSwitches(Switches{ZoneAffinity: true})},
			route: route(rule.TypeZoneFailover, "z1"), target: "b-gone", after: []string{"b-10"}},
		{name: "zone affinity, strict", service: "svc-b", opts: []Option{WithIdentity(Identity{Service: "svc-a", Zone: "z3"}), WithSwitches(Switches{ZoneAffinity: true})},
			target: "b-gone"},
		{name: "env strict", service: "svc-c", route: route(rule.TypeEnv, "env1"), target: "c-env1"},
		{name: "env permissive stays in env", service: "svc-c", opts: []Option{WithFailover(Permissive)},
			route: route(rule.TypeEnv, "env1"), target: "c-env1"},
		{name: "env permissive with version route", service: "svc-c", opts: []Option{WithFailover(Permissive)},
			route: route(rule.TypeEnv, "env1", rule.TypeVersion, "9.9"), target: "c-env1"},
		{name: "env failover to common", service: "svc-c", opts: []Option{WithSwitches(Switches{EnvFailover: true})},
			route: route(rule.TypeEnv, "env1"), target: "c-env1", after: []string{"c-common"}},
		{name: "env-failover value", service: "svc-c", route: route(rule.TypeEnv, "env1", rule.TypeEnvFailover, "env2"), target: "c-env1", after: []string{"c-env2"}},
	}
	for _, c := range cases {
		c.b = newBalancer(t, reg, c.opts...)
		c.labels = labels
	}
	// Before: every case picks its target.
	for _, c := range cases {
		ctx := WithRoute(context.Background(), c.route)
		in, done, err := c.b.Pick(ctx, c.service)
		if err != nil || labels[in.ID] != c.target {
			t.Fatalf("%s: before: picked %q, %v; want %s", c.name, in.ID, err, c.target)
		}
		done(nil)
	}

	// Load: picks in every case while the targets deregister.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range cases {
		rctx := WithRoute(ctx, c.route)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					c.pickOnce(rctx)
				}
			}()
		}
	}
	_ = regs["b-gone"].Close()
	_ = regs["c-env1"].Close()
	// Wait until every case has seen the change a few times over.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for _, c := range cases {
			ready = ready && c.onAfter.Load() >= 50
		}
		if ready || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()
	for _, c := range cases {
		if v := c.bad.Load(); v != nil {
			t.Errorf("%s: %s", c.name, v)
		}
		if c.onAfter.Load() < 50 {
			t.Errorf("%s: the failover was never seen (%d picks after)", c.name, c.onAfter.Load())
		}
	}
	// After: each case answers as Nepxion would, checked once more without load.
	for _, c := range cases {
		in, done, err := c.b.Pick(WithRoute(context.Background(), c.route), c.service)
		done(nil)
		switch {
		case c.after == nil:
			var nie *NoInstanceError
			if !errors.Is(err, ErrNoInstance) || !errors.As(err, &nie) || nie.Service != c.service {
				t.Errorf("%s: after: %v, want a *NoInstanceError", c.name, err)
			}
		case err != nil || !c.allowedAfter(labels[in.ID]):
			t.Errorf("%s: after: picked %q, %v; want one of %v", c.name, in.ID, err, c.after)
		}
	}
}
