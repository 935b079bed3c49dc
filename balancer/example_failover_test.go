package balancer_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// A request isolated in environment env1 finds no instance there: by
// default it fails, even in permissive mode; Nepxion's env failover switch
// sends it to the "common" environment, and an n-d-env-failover value (or
// the rule's <env-failover>) to the one it names.
func ExampleWithSwitches() {
	reg := discovery.NewStatic()
	reg.Set("svc-b",
		discovery.Instance{ID: "b-common", Address: "10.0.0.1", Port: 8080, Version: "1.0", Env: "common"},
		discovery.Instance{ID: "b-env2", Address: "10.0.0.2", Port: 8080, Version: "1.0", Env: "env2"},
	)
	route := balancer.Route{}.With(rule.TypeEnv, rule.PlainValue("env1"))
	pick := func(opts ...balancer.Option) {
		b, _ := balancer.New(reg, opts...)
		defer b.Close()
		in, done, err := b.Pick(balancer.WithRoute(context.Background(), route), "svc-b")
		if errors.Is(err, balancer.ErrNoInstance) {
			fmt.Println("no instance")
			return
		}
		done(nil)
		fmt.Println(in.ID)
	}
	pick(balancer.WithFailover(balancer.Permissive))
	pick(balancer.WithSwitches(balancer.Switches{EnvFailover: true}))
	route = route.With(rule.TypeEnvFailover, rule.PlainValue("env2"))
	pick()
	// Output:
	// no instance
	// b-common
	// b-env2
}

// The rule's <discovery> section depends on who calls: here svc-a 1.0 may
// only call svc-b 1.0 (DiscoveryGuide's "a 1.0 calls only b 1.0").
func ExampleWithIdentity() {
	reg := discovery.NewStatic()
	reg.Set("svc-b",
		discovery.Instance{ID: "b10", Address: "10.0.0.1", Port: 8080, Version: "1.0"},
		discovery.Instance{ID: "b11", Address: "10.0.0.2", Port: 8080, Version: "1.1"},
	)
	r, _ := rule.Parse([]byte(`<rule><discovery><version>
  <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-version-value="1.0" provider-version-value="1.0"/>
</version></discovery></rule>`))
	b, _ := balancer.New(reg, balancer.WithRule(r), balancer.WithIdentity(balancer.Identity{Service: "svc-a", Version: "1.0"}))
	defer b.Close()
	for range 3 {
		in, done, _ := b.Pick(context.Background(), "svc-b")
		done(nil)
		fmt.Println(in.ID)
	}
	// Output:
	// b10
	// b10
	// b10
}
