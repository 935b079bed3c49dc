package drain_test

import (
	"context"
	"fmt"
	"time"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/drain"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// Analyze answers for one rule: after a cut-over that sends everything to
// 1.1, version 1.0 of svc-a gets no traffic, while 1.1 does.
func ExampleAnalyze() {
	r, err := rule.Parse([]byte(`<rule>
    <strategy>
        <version>{"svc-a":"1.1"}</version>
    </strategy>
    <strategy-release>
        <conditions type="gray">
            <condition id="condition-0" version-id="route-0=0;route-1=100"/>
        </conditions>
        <routes>
            <route id="route-0" type="version">{"svc-a":"1.0"}</route>
            <route id="route-1" type="version">{"svc-a":"1.1"}</route>
        </routes>
    </strategy-release>
</rule>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("1.0 receiving:", drain.Analyze(r, "svc-a", "1.0").Receiving)
	fmt.Println("1.1 receiving:", drain.Analyze(r, "svc-a", "1.1").Receiving)
	// Output:
	// 1.0 receiving: false
	// 1.1 receiving: true
}

// A consumer of svc-a 1.0 follows the balancer's rule through a gate: it
// pauses when a rule drains its version and resumes when traffic returns.
func ExampleNewGate() {
	rules := discovery.NewStaticRules([]byte(`<rule><strategy><version>{"svc-a":"1.0;1.1"}</version></strategy></rule>`))
	defer rules.Close()
	b, err := balancer.New(discovery.NewStatic(), balancer.WithRuleSource(rules))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	_ = b.Ready(context.Background())

	gate := drain.NewGate("svc-a", "1.0", b)
	defer gate.Close()
	fmt.Println("receiving:", gate.Receiving())

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = rules.Set([]byte(`<rule><strategy><version>{"svc-a":"1.1"}</version></strategy></rule>`))
	if err := gate.Wait(ctx, false); err != nil { // the consumer loop pauses here
		fmt.Println(err)
		return
	}
	fmt.Println("receiving:", gate.Receiving())

	_ = rules.Set(nil) // no rule: every version gets traffic again
	if err := gate.Wait(ctx, true); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("receiving:", gate.Receiving())
	// Output:
	// receiving: true
	// receiving: false
	// receiving: true
}
