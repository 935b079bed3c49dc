package rule_test

import (
	"fmt"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// A Nepxion rule: requests with xyz=1 go to the new versions, the rest to
// the stable ones.
func ExampleParse() {
	r, err := rule.Parse([]byte(`<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <strategy>
        <version>{"svc-a":"1.0","svc-b":"1.0"}</version>
    </strategy>
    <strategy-release>
        <conditions type="blue-green">
            <condition id="c0" expression="#H['xyz'] == '1'" version-id="new"/>
        </conditions>
        <routes>
            <route id="new" type="version">{"svc-a":"1.1","svc-b":"1.1"}</route>
        </routes>
    </strategy-release>
</rule>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, xyz := range []string{"1", "2"} {
		d := r.Decide(expr.Map{"xyz": xyz}, 0)
		v, _ := d.Version.For("svc-b")
		fmt.Printf("xyz=%s: %s by %s %s, n-d-version: %s\n", xyz, v, d.Tier, d.ConditionID, d.Version)
	}
	// Output:
	// xyz=1: 1.1 by blue-green c0, n-d-version: {"svc-a":"1.1","svc-b":"1.1"}
	// xyz=2: 1.0 by strategy , n-d-version: {"svc-a":"1.0","svc-b":"1.0"}
}

// A spec names the services and the business conditions; orchestration
// fills in the live versions.
func ExampleOrchestrate() {
	spec, err := rule.ParseSpec([]byte(`
service: [svc-a, svc-b]
gray:
  - expression: "#H['xyz'] == '3'"
    weight: [90, 10]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := rule.Orchestrate(spec, rule.Inventory{
		"svc-a": {{Version: "1.0"}, {Version: "1.1"}},
		"svc-b": {{Version: "2.0"}, {Version: "2.1"}, {Version: "2.2"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, _ := rule.EncodeXML(r)
	fmt.Print(string(out))
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <rule>
	//     <strategy>
	//         <version>{"svc-a":"1.0","svc-b":"2.0"}</version>
	//     </strategy>
	//     <strategy-release>
	//         <conditions type="gray">
	//             <condition id="condition-0" expression="#H['xyz'] == '3'" version-id="route-0=90;route-1=10"/>
	//         </conditions>
	//         <routes>
	//             <route id="route-0" type="version">{"svc-a":"1.0","svc-b":"2.0"}</route>
	//             <route id="route-1" type="version">{"svc-a":"1.1","svc-b":"2.1;2.2"}</route>
	//         </routes>
	//     </strategy-release>
	// </rule>
}

// Downstream hops read the decision back from the n-d-* headers.
func ExampleParseValue() {
	v, err := rule.ParseValue(`{"svc-a":"1.1","svc-b":"1.1;1.2"}`)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, svc := range []string{"svc-b", "svc-c"} {
		s, ok := v.For(svc)
		fmt.Printf("%s: %q constrained=%v\n", svc, s, ok)
	}
	all, _ := rule.ParseValue("1.0")
	s, ok := all.For("anything")
	fmt.Printf("plain: %q constrained=%v\n", s, ok)
	// Output:
	// svc-b: "1.1;1.2" constrained=true
	// svc-c: "" constrained=false
	// plain: "1.0" constrained=true
}

// A sticky key keeps one user on one side of a gray split, whatever the
// caller's random draw.
func ExampleRule_Decide_sticky() {
	r, _ := rule.Parse([]byte(`<rule><strategy-release>
    <conditions type="gray" sticky="#H['user-id']">
        <condition id="canary" version-id="old=50;new=50"/>
    </conditions>
    <routes>
        <route id="old" type="version">1.0</route>
        <route id="new" type="version">1.1</route>
    </routes>
</strategy-release></rule>`))
	user := expr.Map{"user-id": "alice"}
	first := r.Decide(user, 1).RouteID
	same := true
	for draw := range uint64(100) {
		same = same && r.Decide(user, draw<<56).RouteID == first
	}
	fmt.Println("alice always on one side:", same)
	// Output:
	// alice always on one side: true
}
