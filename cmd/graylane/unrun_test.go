package main

import (
	"strings"
	"testing"

	"github.com/graylane/graylane/rule"
)

func TestUnrunWarnings(t *testing.T) {
	r, err := rule.Parse([]byte(`<rule>
<strategy><version>{"svc-a":"1.*","svc-b":"2.0;1.0","svc-c":"1.0"}</version></strategy>
<strategy-release>
<conditions type="blue-green"><condition id="c" expression="#H['a'] == '1'" version-weight-id="r1"/></conditions>
<routes>
<route id="r1" type="version-weight">{"svc-a":"1.0=50;3.0=50;4.0=0"}</route>
<route id="r2" type="region">{"svc-d":"dev"}</route>
</routes>
</strategy-release>
</rule>`))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(routedServices(r), ","); got != "svc-a,svc-b,svc-c" {
		t.Errorf("routed services %s", got)
	}
	inv := rule.Inventory{
		"svc-a": {{Version: "1.0"}, {Version: "1.1"}},
		"svc-b": {{Version: "1.1"}, {Version: "1.0"}, {Version: "1.0"}},
		"svc-c": nil,
	}
	got := unrunWarnings(r, inv)
	want := []string{
		"no live instance of svc-a runs 3.0, which the rule routes to (live: 1.0, 1.1)",
		"no live instance of svc-b runs 2.0, which the rule routes to (live: 1.0, 1.1)",
		"svc-c has no live instances; the rule routes it to 1.0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	inv["svc-a"] = append(inv["svc-a"], rule.Instance{Version: "3.0"})
	inv["svc-b"] = append(inv["svc-b"], rule.Instance{Version: "2.0"})
	inv["svc-c"] = []rule.Instance{{Version: "1.0"}}
	if got := unrunWarnings(r, inv); len(got) != 0 {
		t.Errorf("warnings %q with every version live", got)
	}
}
