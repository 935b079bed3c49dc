package rule

import (
	"slices"
	"strings"
	"testing"
)

// TestRouteTypeTable checks the route type table against Nepxion's header
// constants (Nepxion/Discovery, branch 6.x.x,
// discovery-commons/discovery-common/.../constant/DiscoveryConstant.java:
// N_D_VERSION, N_D_REGION, ..., N_D_ENVIRONMENT) and its own invariants.
func TestRouteTypeTable(t *testing.T) {
	tests := []struct {
		give    RouteType
		name    string
		header  string
		element string
		kind    ValueKind
		decided bool
	}{
		{TypeVersion, "version", "n-d-version", "strategy/version", Filter, true},
		{TypeRegion, "region", "n-d-region", "strategy/region", Filter, true},
		{TypeAddress, "address", "n-d-address", "strategy/address", Filter, true},
		{TypeVersionWeight, "version-weight", "n-d-version-weight", "strategy/version-weight", Weights, true},
		{TypeRegionWeight, "region-weight", "n-d-region-weight", "strategy/region-weight", Weights, true},
		{TypeVersionPrefer, "version-prefer", "n-d-version-prefer", "strategy-failover/version-prefer", Filter, false},
		{TypeVersionFailover, "version-failover", "n-d-version-failover", "strategy-failover/version-failover", Filter, false},
		{TypeIDBlacklist, "id-blacklist", "n-d-id-blacklist", "strategy-blacklist/id", Filter, false},
		{TypeAddressBlacklist, "address-blacklist", "n-d-address-blacklist", "strategy-blacklist/address", Filter, false},
		{TypeEnv, "env", "n-d-env", "", Filter, false},
		{TypeZone, "zone", "", "", Filter, false},
		// N_D_REGION_TRANSFER ... N_D_ADDRESS_FAILOVER and N_D_GROUP.
		{TypeRegionTransfer, "region-transfer", "n-d-region-transfer", "strategy-failover/region-transfer", Filter, false},
		{TypeRegionFailover, "region-failover", "n-d-region-failover", "strategy-failover/region-failover", Filter, false},
		{TypeEnvFailover, "env-failover", "n-d-env-failover", "strategy-failover/env-failover", Filter, false},
		{TypeZoneFailover, "zone-failover", "n-d-zone-failover", "strategy-failover/zone-failover", Filter, false},
		{TypeAddressFailover, "address-failover", "n-d-address-failover", "strategy-failover/address-failover", Filter, false},
		{TypeGroup, "group", "n-d-group", "", Filter, false},
		{TypeDiscoveryVersion, "discovery-version", "", "", Filter, false},
		{TypeDiscoveryVersionWeight, "discovery-version-weight", "", "", Weights, false},
		{TypeDiscoveryRegionWeight, "discovery-region-weight", "", "", Weights, false},
		{TypeDiscoveryBlacklist, "discovery-blacklist", "", "", Filter, false},
		{TypeDiscoveryWhitelist, "discovery-whitelist", "", "", Filter, false},
		{TypeDiscoveryRegion, "discovery-region", "", "", Filter, false},
	}
	if len(tests) != int(NumTypes) {
		t.Fatalf("%d types in the test, %d in the table", len(tests), NumTypes)
	}
	for _, tt := range tests {
		if got := tt.give.String(); got != tt.name {
			t.Errorf("%d: name %q, want %q", tt.give, got, tt.name)
		}
		if got := tt.give.HeaderName(); got != tt.header {
			t.Errorf("%s: header %q, want %q", tt.name, got, tt.header)
		}
		if got := tt.give.Element(); got != tt.element {
			t.Errorf("%s: element %q, want %q", tt.name, got, tt.element)
		}
		if tt.give.Kind() != tt.kind || tt.give.Decided() != tt.decided {
			t.Errorf("%s: kind %d decided %v", tt.name, tt.give.Kind(), tt.give.Decided())
		}
		ti := types[tt.give]
		if tt.decided != (ti.strategy != nil && ti.condID != nil) || tt.decided && ti.fixed != nil {
			t.Errorf("%s: a decided type has strategy and condition accessors, and no fixed value", tt.name)
		}
		if _, ok := parseRouteType(tt.name); ok != tt.decided {
			t.Errorf("%s: a <route type=...> accepts exactly the decided types", tt.name)
		}
	}
	if RouteType(NumTypes).String() != "RouteType(23)" || RouteType(NumTypes).HeaderName() != "" {
		t.Error("out-of-range type")
	}
}

// TestFixedValues checks that Rule.Fixed reads the failover and blacklist
// sections through the table.
func TestFixedValues(t *testing.T) {
	r, err := Parse([]byte(`<rule>
  <strategy-failover><version-prefer>1.1</version-prefer><version-failover>1.0</version-failover>
    <region-transfer>qa</region-transfer><region-failover>dev</region-failover><env-failover>env1</env-failover>
    <zone-failover>zone2</zone-failover><address-failover>10.0.0.1</address-failover></strategy-failover>
  <strategy-blacklist><id>bad-*</id><address>10.0.0.9</address></strategy-blacklist>
</rule>`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[RouteType]string{TypeVersionPrefer: "1.1", TypeVersionFailover: "1.0", TypeIDBlacklist: "bad-*", TypeAddressBlacklist: "10.0.0.9",
		TypeRegionTransfer: "qa", TypeRegionFailover: "dev", TypeEnvFailover: "env1", TypeZoneFailover: "zone2", TypeAddressFailover: "10.0.0.1"}
	for ty := range NumTypes {
		if got := r.Fixed(ty).String(); got != want[ty] {
			t.Errorf("Fixed(%s) = %q, want %q", ty, got, want[ty])
		}
	}
	var nilRule *Rule
	if !nilRule.Fixed(TypeVersionPrefer).IsZero() {
		t.Error("nil rule has a fixed value")
	}
}

// TestTableDerivedNames checks what the readers and messages derive from
// the table: a condition's attributes (Nepxion's id, expression, header and
// one *-id reference per decided type) and the list of decided types the
// route errors give, in the table's order, and that each condition
// attribute lands in its own slot.
func TestTableDerivedNames(t *testing.T) {
	want := []string{"id", "expression", "header", "version-id", "region-id", "address-id", "version-weight-id", "region-weight-id"}
	if !slices.Equal(condAttrNames, want) {
		t.Errorf("condition attributes %q, want %q", condAttrNames, want)
	}
	var c rawCond
	slots := condAttrSlots(&c)
	if len(slots) != len(condAttrNames) {
		t.Fatalf("%d slots for %d attributes", len(slots), len(condAttrNames))
	}
	for i, s := range slots {
		s.s = condAttrNames[i]
	}
	if c.id.s != "id" || c.expr.s != "expression" || c.header.s != "header" || c.refs[TypeRegionWeight].s != "region-weight-id" {
		t.Errorf("attributes landed in the wrong slots: %+v", c)
	}
	const list = "version, region, address, version-weight or region-weight"
	if decidedNames != list {
		t.Errorf("decided types listed as %q, want %q", decidedNames, list)
	}
	for _, doc := range []string{
		`<rule><strategy-release><routes><route id="a">1.0</route></routes></strategy-release></rule>`,
		`<rule><strategy-release><routes><route id="a" type="zone">1.0</route></routes></strategy-release></rule>`,
	} {
		if _, err := Parse([]byte(doc)); err == nil || !strings.Contains(err.Error(), "("+list+")") && !strings.Contains(err.Error(), "(want "+list+")") {
			t.Errorf("%s: error %v does not list the route types", doc, err)
		}
	}
}
