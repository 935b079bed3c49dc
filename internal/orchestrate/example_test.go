package orchestrate_test

import (
	"fmt"

	orch "github.com/graylane/graylane/internal/orchestrate"
	"github.com/graylane/graylane/rule"
)

// A spec rendered against the live versions: what `graylane publish` puts
// to the rule key and an Orchestrator keeps in step. svc-c has no instance
// yet, so the rendering leaves it unconstrained.
func ExampleRender() {
	spec, err := rule.ParseSpec([]byte(`
service: [svc-a, svc-b, svc-c]
gray:
  - weight: [90, 10]
`))
	if err != nil {
		panic(err)
	}
	rd, err := orch.Render(spec, rule.Inventory{
		"svc-a": {{Version: "1.0"}, {Version: "1.1"}},
		"svc-b": {{Version: "1.0"}, {Version: "1.1"}, {Version: "1.2"}},
	})
	if err != nil {
		panic(err)
	}
	for _, rt := range rd.Rule.Release.Routes {
		fmt.Println(rt.ID, rt.Value)
	}
	fmt.Println("pending:", rd.Pending)
	fmt.Println("spec key:", orch.SpecKey("my-group-svc-a"))
	// Output:
	// route-0 {"svc-a":"1.0","svc-b":"1.0"}
	// route-1 {"svc-a":"1.1","svc-b":"1.1;1.2"}
	// pending: [svc-c]
	// spec key: graylane/spec/my-group-svc-a
}
