package rule

import (
	"testing"

	"github.com/graylane/graylane/expr"
)

// layered is Values with a parameter layer (query parameters and cookies,
// already merged with blank ones skipped, as balancer.RequestValues does)
// before the request's headers.
type layered struct {
	params, headers expr.Map
}

func (l layered) LookupParam(name string) (string, bool) {
	s, ok := l.params[name]
	if !ok || expr.Blank(s) {
		return "", false
	}
	return s, true
}

func (l layered) Lookup(name string) (string, bool) {
	if s, ok := l.LookupParam(name); ok {
		return s, true
	}
	return l.headers.Lookup(name)
}

var _ ParamValues = layered{}

// TestDecideValueOrder checks which value a condition sees when a name is
// in several sources, against Nepxion (Discovery 6.x.x):
// ExpressionStrategyCondition.createMap reads, per name, the request
// parameter, the cookie, strategyContextHolder.getHeader and
// strategyWrapper.getHeader (the built-in <header>) in that order, going on
// while the value is blank. getHeader is the incoming header, except that
// with header priority (the default) the built-in value replaces it:
// ServiceStrategyContextHolder.getHeader returns the built-in value when it
// is not empty, and the gateway's GatewayStrategyFilterResolver.setHeader
// removes the incoming header and adds the built-in one before the
// conditions run. So with priority the order is parameter, cookie,
// built-in header, incoming header; without it, parameter, cookie, incoming
// header, built-in header.
func TestDecideValueOrder(t *testing.T) {
	r := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="two" expression="#H['xyz'] == '2'" version-id="v2"/>
    <condition id="one" expression="#H['xyz'] == '1'" version-id="v1"/>
  </conditions>
  <routes><route id="v1" type="version">1.0</route><route id="v2" type="version">2.0</route></routes>
  <header>{"xyz":"1"}</header>
</strategy-release></rule>`)
	blankBuiltIn := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="two" expression="#H['xyz'] == '2'" version-id="v2"/>
    <condition id="null" expression="#H['xyz'] == null" version-id="v1"/>
  </conditions>
  <routes><route id="v1" type="version">1.0</route><route id="v2" type="version">2.0</route></routes>
  <header>{"xyz":""}</header>
</strategy-release></rule>`)
	upper := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="one" expression="#H['xyz'] == '1'" version-id="v1"/>
  </conditions>
  <routes><route id="v1" type="version">1.0</route></routes>
  <header>{"XYZ":"1"}</header>
</strategy-release></rule>`)
	tests := []struct {
		name string
		r    *Rule
		give Values
		prio HeaderPriority
		want string // condition id
	}{
		{"priority: a parameter beats the built-in header", r, layered{params: expr.Map{"xyz": "2"}}, BuiltInFirst, "two"},
		{"priority: the built-in header beats the incoming one", r, layered{headers: expr.Map{"xyz": "2"}}, BuiltInFirst, "one"},
		{"priority: a blank parameter falls through to the built-in header", r, layered{params: expr.Map{"xyz": " "}, headers: expr.Map{"xyz": "2"}}, BuiltInFirst, "one"},
		{"priority: header-only values get the built-in header", r, expr.Map{"xyz": "2"}, BuiltInFirst, "one"},
		{"no priority: a parameter beats the built-in header", r, layered{params: expr.Map{"xyz": "2"}}, RequestFirst, "two"},
		{"no priority: the incoming header beats the built-in one", r, layered{headers: expr.Map{"xyz": "2"}}, RequestFirst, "two"},
		{"no priority: a blank incoming header falls through", r, layered{headers: expr.Map{"xyz": "\t"}}, RequestFirst, "one"},
		{"no priority: a blank map value falls through", r, expr.Map{"xyz": ""}, RequestFirst, "one"},
		{"no priority: missing everywhere", r, layered{}, RequestFirst, "one"},
		// An empty built-in value does not replace the incoming header (both
		// filters skip empty values) and reads as null.
		{"priority: an empty built-in value keeps the incoming header", blankBuiltIn, layered{headers: expr.Map{"xyz": "2"}}, BuiltInFirst, "two"},
		{"priority: an empty built-in value alone is null", blankBuiltIn, layered{}, BuiltInFirst, "null"},
		{"no priority: the incoming header beats an empty built-in value", blankBuiltIn, layered{headers: expr.Map{"xyz": "2"}}, RequestFirst, "two"},
		{"no priority: an empty built-in value alone is null", blankBuiltIn, expr.Map{"xyz": " "}, RequestFirst, "null"},
		// Built-in header names match in any case, as HTTP header names do.
		{"priority: built-in names in any case", upper, expr.Map{"xyz": "2"}, BuiltInFirst, "one"},
		{"no priority: built-in names in any case fill in", upper, expr.Map{}, RequestFirst, "one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.r.DecideWith(tt.give, 0, tt.prio).ConditionID; got != tt.want {
				t.Errorf("condition %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDecideFoldingWithParameters checks that a condition folded by the
// built-in header (every name it reads is a built-in header name) still
// sees a request parameter, which comes before the built-in header.
func TestDecideFoldingWithParameters(t *testing.T) {
	r := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="prod" expression="#H['env'] == 'prod'" version-id="v2"/>
    <condition id="test" expression="#H['env'] == 'test'" version-id="v1"/>
  </conditions>
  <routes><route id="v1" type="version">1.0</route><route id="v2" type="version">2.0</route></routes>
  <header>{"env":"test"}</header>
</strategy-release></rule>`)
	if got := r.DecideWith(layered{params: expr.Map{"env": "prod"}}, 0, BuiltInFirst).ConditionID; got != "prod" {
		t.Errorf("parameter env=prod: condition %q, want prod", got)
	}
	if got := r.DecideWith(layered{params: expr.Map{"other": "x"}, headers: expr.Map{"env": "prod"}}, 0, BuiltInFirst).ConditionID; got != "test" {
		t.Errorf("header env=prod: condition %q, want test", got)
	}
}

// TestDecideStickyValueOrder checks that the sticky key is read in the
// same order as the values conditions see.
func TestDecideStickyValueOrder(t *testing.T) {
	r := mustParse(t, `<rule><strategy-release>
  <conditions type="gray" sticky="#H['user-id']"><condition id="g" version-id="old=50;new=50"/></conditions>
  <routes><route id="old" type="version">1.0</route><route id="new" type="version">1.1</route></routes>
  <header>{"user-id":"pinned"}</header>
</strategy-release></rule>`)
	pinned := r.DecideWith(expr.Map{}, 0, BuiltInFirst).RouteID
	other := 0
	for i := range 64 {
		u := "u" + itoa(i)
		// A header is replaced by the built-in value: the pinned side.
		if got := r.DecideWith(layered{headers: expr.Map{"user-id": u}}, uint64(i)<<58, BuiltInFirst).RouteID; got != pinned {
			t.Fatalf("header user-id=%s: route %q, want the built-in key's %q", u, got, pinned)
		}
		// A parameter comes first: its own side, whatever the draw.
		want := r.DecideWith(layered{params: expr.Map{"user-id": u}}, 0, BuiltInFirst).RouteID
		if got := r.DecideWith(layered{params: expr.Map{"user-id": u}}, ^uint64(0), BuiltInFirst).RouteID; got != want {
			t.Fatalf("parameter user-id=%s: route depends on the draw", u)
		}
		if want != pinned {
			other++
		}
	}
	if other == 0 {
		t.Error("no parameter user-id left the built-in key's side: the built-in header beat the parameter")
	}
}
