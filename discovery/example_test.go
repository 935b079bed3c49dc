package discovery_test

import (
	"context"
	"fmt"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/hashicorp/consul/api"
)

// The static registry is the embedded default: instances are set by hand
// and published to watches like Consul's answers.
func ExampleStatic() {
	reg := discovery.NewStatic()
	defer reg.Close()
	reg.Set("orders",
		discovery.Instance{ID: "a", Address: "10.0.0.1", Port: 8080, Version: "1.0"},
		discovery.Instance{ID: "b", Address: "10.0.0.2", Port: 8080, Version: "1.1"},
		discovery.Instance{ID: "c", Address: "10.0.0.3", Port: 8080},
	)
	w := reg.Watch("orders")
	<-w.Ready()

	changed, stop := w.Subscribe()
	defer stop()
	reg.Remove("orders", "c")
	<-changed

	s := w.Snapshot()
	fmt.Println(s.Versions)
	for _, in := range s.Version("1.1") {
		fmt.Println(in.ID, in.HostPort())
	}
	// Output:
	// [1.0 1.1]
	// b 10.0.0.2:8080
}

// Unique IDs carry the start time in Nepxion's format.
func ExampleParseStarted() {
	started, ok := discovery.ParseStarted("20240305-102030-456-1234-567-890")
	fmt.Println(ok, started.Format(time.DateTime+".000"))
	_, ok = discovery.ParseStarted("20240231-102030-456")
	fmt.Println(ok)
	// Output:
	// true 2024-03-05 10:20:30.456
	// false
}

// Static rules stand in for a Consul KV key in tests and demos.
func ExampleNewStaticRules() {
	rules := discovery.NewStaticRules([]byte(`<rule/>`))
	defer rules.Close()
	fmt.Printf("%s\n", rules.Current().Data)
	_ = rules.Set(nil) // delete the rule: plain load balancing
	fmt.Println(rules.Current().Data == nil)
	// Output:
	// <rule/>
	// true
}

func ExampleNepxionRuleKeys() {
	keys := discovery.NepxionRuleKeys("shop", "orders")
	fmt.Println(keys.Service, keys.Group)
	// Output: shop-orders shop-shop
}

// Watching Consul: the client comes from api.DefaultConfig, so address, TLS
// and token follow the CONSUL_HTTP_* environment. (Not run: needs an agent.)
func ExampleNewConsul() {
	client, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		panic(err)
	}
	reg := discovery.NewConsul(client, discovery.WithStale(), discovery.WithWaitTime(time.Minute))
	defer reg.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The default check is a TTL fed while the instance serves; here the
	// probe is a GET of the readiness endpoint rather than a TCP connect.
	me, err := discovery.Register(ctx, client, discovery.Registration{
		Service: "orders", Address: "10.0.0.1", Port: 8080, Version: "1.1",
		Check:           discovery.Check{ProbeHTTP: "http://10.0.0.1:8080/ready"},
		DeregisterAfter: 10 * time.Minute,
	})
	if err != nil {
		panic(err)
	}
	defer me.Close()

	w := reg.Watch("payments")
	select {
	case <-w.Ready():
	case <-ctx.Done():
	}
	fmt.Println(w.Snapshot().Versions)
}

// A Notifier wakes subscribers of any live view without ever blocking the
// goroutine that changes it; many changes coalesce into one wake-up.
func ExampleNotifier() {
	var (
		n       discovery.Notifier
		current string
	)
	changed, stop := n.Subscribe()
	defer stop()
	for _, v := range []string{"a", "b", "c"} {
		current = v
		n.Notify()
	}
	<-changed
	fmt.Println("latest:", current)
	select {
	case <-changed:
		fmt.Println("woken again")
	default:
		fmt.Println("one wake-up for three changes")
	}
	// Output:
	// latest: c
	// one wake-up for three changes
}
