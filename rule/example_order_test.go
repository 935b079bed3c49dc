package rule_test

import (
	"fmt"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// Conditions are tried as Nepxion tries them: the one with more #H['...']
// references first, so the wiki's green condition (a=1 and b=2) wins over
// the blue one (a=1) listed before it; the condition without expression is
// the default.
func ExampleRule_Decide_order() {
	r, err := rule.Parse([]byte(`<rule>
    <strategy-release>
        <conditions type="blue-green">
            <condition id="blue-condition" expression="#H['a'] == '1'" version-id="blue-route"/>
            <condition id="green-condition" expression="#H['a'] == '1' and #H['b'] == '2'" version-id="green-route"/>
            <condition id="basic-condition" version-id="basic-route"/>
        </conditions>
        <routes>
            <route id="blue-route" type="version">{"svc-a":"1.1","svc-b":"1.1"}</route>
            <route id="green-route" type="version">{"svc-a":"1.0","svc-b":"1.0"}</route>
            <route id="basic-route" type="version">{"svc-a":"1.0","svc-b":"1.0"}</route>
        </routes>
    </strategy-release>
</rule>`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, req := range []expr.Map{{"a": "1", "b": "2"}, {"a": "1"}, {}} {
		d := r.Decide(req, 0)
		fmt.Printf("%v: %s -> %s\n", req, d.ConditionID, d.RouteID)
	}
	// Output:
	// map[a:1 b:2]: green-condition -> green-route
	// map[a:1]: blue-condition -> blue-route
	// map[]: basic-condition -> basic-route
}
