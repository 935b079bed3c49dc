package rule

import (
	"errors"
	"strings"
	"testing"

	"github.com/graylane/graylane/expr"
)

// TestOrchestrateBlueGreenIDsFollowColour: as Nepxion's console
// (StrategyResourceImpl.createVersionStrategyRelease), the green entry is
// condition-0 -> route-0 and the blue one condition-1 -> route-1 whatever
// order the spec lists them in; the conditions keep the spec's order.
func TestOrchestrateBlueGreenIDsFollowColour(t *testing.T) {
	spec, err := ParseSpec([]byte(`
service: [svc-a]
blueGreen:
  - expression: "#H['a'] == '1'"
    route: blue
  - expression: "#H['a'] != null"
    route: green
`))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Orchestrate(spec, Inventory{"svc-a": {{Version: "1.0"}, {Version: "1.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	xml, err := EncodeXML(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `<condition id="condition-1" expression="#H['a'] == '1'" version-id="route-1"/>
            <condition id="condition-0" expression="#H['a'] != null" version-id="route-0"/>`
	if !strings.Contains(string(xml), want) {
		t.Errorf("orchestrated rule:\n%s\nwant the conditions\n%s", xml, want)
	}
	// Both expressions read one name, so the spec's order decides a=1.
	tests := []struct {
		give      expr.Map
		cond, ver string
	}{
		{expr.Map{"a": "1"}, "condition-1", "1.1"},
		{expr.Map{"a": "2"}, "condition-0", "1.0"},
		{expr.Map{}, "", "1.0"},
	}
	for _, tt := range tests {
		d := r.Decide(tt.give, 0)
		if got, _ := d.Version.For("svc-a"); d.ConditionID != tt.cond || got != tt.ver {
			t.Errorf("%v: %q -> %s, want %q -> %s", tt.give, d.ConditionID, got, tt.cond, tt.ver)
		}
	}
}

// TestOrchestrateRejectsBlueGreenWithoutExpression: the console rejects a
// blue/green entry without expression ("BlueGreens must not have empty
// expressions"); so does Orchestrate for a spec built in code.
func TestOrchestrateRejectsBlueGreenWithoutExpression(t *testing.T) {
	spec := &Spec{
		Service: []string{"svc-a"},
		BlueGreen: []BlueGreenEntry{
			{Expression: "#H['a'] == '1'", Route: SideNew},
			{Route: SideOld},
		},
	}
	_, err := Orchestrate(spec, Inventory{"svc-a": {{Version: "1.0"}}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "blueGreen[2]: missing expression") {
		t.Fatalf("err = %v, want a missing expression for blueGreen[2]", err)
	}
}
