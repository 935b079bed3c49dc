package pick

import (
	"errors"
	"slices"
	"testing"

	"github.com/graylane/graylane/discovery/instance"
	"github.com/graylane/graylane/rule"
)

// inst describes one instance of service b for the failover tables.
type inst struct {
	id, version, region, zone, env, group, addr string
	meta                                        map[string]string
}

func instances(list ...inst) []instance.Instance {
	out := make([]instance.Instance, 0, len(list))
	for _, in := range list {
		addr := in.addr
		if addr == "" {
			addr = "10.0.0." + in.id
		}
		v := in.version
		if v == "" {
			v = "1.0"
		}
		out = append(out, instance.Instance{ID: "b-" + in.id, Service: "b", Address: addr, Port: 8080,
			Version: v, Region: in.region, Zone: in.zone, Env: in.env, Group: in.group, Meta: in.meta})
	}
	return instance.NewSnapshot("b", 1, out).Instances
}

// pickedIDs returns the ids a selector picks for c over many draws, sorted;
// nil when the pick fails with ErrNoInstance.
func pickedIDs(t *testing.T, s *Selector, c Constraint) []string {
	t.Helper()
	draw := seq(3)
	seen := map[string]bool{}
	for range 300 {
		i, err := s.Select(&c, draw())
		if err != nil {
			if !errors.Is(err, ErrNoInstance) {
				t.Fatalf("Select(%s): %v", c.String(), err)
			}
			if len(seen) > 0 {
				t.Fatalf("Select(%s) failed after succeeding", c.String())
			}
			return nil
		}
		seen[s.Instance(i).ID] = true
	}
	var ids []string
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

type failoverCase struct {
	name string
	mode Failover
	sw   Switches
	self Identity
	give Constraint
	want []string // ids picked; nil: ErrNoInstance
}

func runFailoverCases(t *testing.T, list []instance.Instance, tests []failoverCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSelector("b", list, SelectorConfig{Failover: tt.mode, Switches: tt.sw, Self: tt.self})
			if got := pickedIDs(t, s, tt.give); !slices.Equal(got, tt.want) {
				t.Errorf("picked %v, want %v", got, tt.want)
			}
		})
	}
}

// TestEnvFailover follows Nepxion's StrategyEnvironmentEnabledFilter
// (Nepxion/Discovery, branch 6.x.x, discovery-plugin-strategy-starter
// .../filter/StrategyEnvironmentEnabledFilter.java) and the wiki's
// "全链路环境故障转移" example (branch wiki, README.md): env1 has no
// instance left; without env failover nothing else may take the request,
// whatever the failover mode; with it, "common" or the env-failover value.
func TestEnvFailover(t *testing.T) {
	list := instances(
		inst{id: "1", env: "common"},
		inst{id: "2", env: "env2"},
		inst{id: "3"},
	)
	env1 := Constraint{rule.TypeEnv: "env1"}
	withValue := Constraint{rule.TypeEnv: "env1", rule.TypeEnvFailover: "env2"}
	runFailoverCases(t, list, []failoverCase{
		{name: "strict: isolated", give: env1},
		{name: "permissive never crosses the env", mode: Permissive, give: env1},
		{name: "permissive with a version route", mode: Permissive, give: Constraint{rule.TypeEnv: "env1", rule.TypeVersion: "9.9"}},
		{name: "switch: common", sw: Switches{EnvFailover: true}, give: env1, want: []string{"b-1"}},
		{name: "value: env2", give: withValue, want: []string{"b-2"}},
		{name: "env present: no failover", sw: Switches{EnvFailover: true}, give: Constraint{rule.TypeEnv: "env2"}, want: []string{"b-2"}},
		{name: "no env header: every env", give: Constraint{}, want: []string{"b-1", "b-2", "b-3"}},
	})
}

// TestZoneAffinity follows StrategyZoneEnabledFilter (Nepxion/Discovery,
// 6.x.x) and the wiki's "全链路可用区亲和性隔离路由" and
// "全链路可用区故障转移" sections: the caller's own zone while it has
// instances; then nothing, any zone (zone.failover.enabled), or the
// zone-failover value (the wiki's zone1).
func TestZoneAffinity(t *testing.T) {
	list := instances(
		inst{id: "1", zone: "zone1"},
		inst{id: "2", zone: "zone2"},
		inst{id: "3", zone: "zone3"},
	)
	affinity := Switches{ZoneAffinity: true}
	runFailoverCases(t, list, []failoverCase{
		{name: "off", self: Identity{Zone: "zone2"}, want: []string{"b-1", "b-2", "b-3"}},
		{name: "own zone", sw: affinity, self: Identity{Zone: "zone2"}, want: []string{"b-2"}},
		{name: "own zone gone", sw: affinity, self: Identity{Zone: "zone9"}},
		{name: "own zone gone, permissive", mode: Permissive, sw: affinity, self: Identity{Zone: "zone9"}, want: []string{"b-1", "b-2", "b-3"}},
		{name: "zone failover: any", sw: Switches{ZoneAffinity: true, ZoneFailover: true}, self: Identity{Zone: "zone9"}, want: []string{"b-1", "b-2", "b-3"}},
		{name: "zone-failover value", sw: affinity, self: Identity{Zone: "zone9"}, give: Constraint{rule.TypeZoneFailover: "zone1"}, want: []string{"b-1"}},
		{name: "caller without zone", sw: affinity, want: []string{"b-1", "b-2", "b-3"}},
	})
}

// TestRegionFailoverAndTransfer follows StrategyRegionEnabledFilter
// (Nepxion/Discovery, 6.x.x) and the wiki's "全链路区域故障转移" and
// "全链路区域调试路由" sections (region-failover dev, region-transfer qa).
func TestRegionFailoverAndTransfer(t *testing.T) {
	list := instances(
		inst{id: "1", region: "dev"},
		inst{id: "2", region: "qa"},
		inst{id: "3", region: "MyDEV"},
		inst{id: "4", region: "dev", meta: map[string]string{"active": "True"}},
	)
	gone := Constraint{rule.TypeRegion: "prod"}
	runFailoverCases(t, list, []failoverCase{
		{name: "strict", give: gone},
		// b-4 is active (multi-active): never a region failover target.
		{name: "region-failover value", give: Constraint{rule.TypeRegion: "prod", rule.TypeRegionFailover: "dev"}, want: []string{"b-1"}},
		{name: "an active provider is routed to", give: Constraint{rule.TypeRegion: "dev"}, want: []string{"b-1", "b-4"}},
		{name: "region failover switch: any", sw: Switches{RegionFailover: true}, give: gone, want: []string{"b-1", "b-2", "b-3"}},
		{name: "region affinity falls over, actives excluded", sw: Switches{RegionAffinity: true, RegionFailover: true}, self: Identity{Region: "x"}, want: []string{"b-1", "b-2", "b-3"}},
		{name: "region present", sw: Switches{RegionFailover: true}, give: Constraint{rule.TypeRegion: "qa", rule.TypeRegionFailover: "dev"}, want: []string{"b-2"}},
		{name: "transfer when no region is routed", give: Constraint{rule.TypeRegionTransfer: "qa"}, want: []string{"b-2"}},
		{name: "transfer ignored under a region route", give: Constraint{rule.TypeRegion: "MyDEV", rule.TypeRegionTransfer: "qa"}, want: []string{"b-3"}},
		{name: "transfer switch without value fails", sw: Switches{RegionTransfer: true}},
		{name: "region affinity", sw: Switches{RegionAffinity: true}, self: Identity{Region: "qa"}, want: []string{"b-2"}},
		{name: "region route beats affinity", sw: Switches{RegionAffinity: true}, self: Identity{Region: "qa"}, give: Constraint{rule.TypeRegion: "dev"}, want: []string{"b-1", "b-4"}},
	})
}

// TestAddressFailover follows StrategyAddressEnabledFilter (Nepxion/Discovery,
// 6.x.x) and the wiki's "全链路IP地址和端口故障转移" example
// (address-failover *1).
func TestAddressFailover(t *testing.T) {
	list := instances(
		inst{id: "1", addr: "10.0.0.11"},
		inst{id: "2", addr: "10.0.0.12"},
	)
	gone := Constraint{rule.TypeAddress: "10.0.0.99"}
	runFailoverCases(t, list, []failoverCase{
		{name: "strict", give: gone},
		{name: "address-failover *1", give: Constraint{rule.TypeAddress: "10.0.0.99", rule.TypeAddressFailover: "*1"}, want: []string{"b-1"}},
		{name: "switch: any", sw: Switches{AddressFailover: true}, give: gone, want: []string{"b-1", "b-2"}},
	})
}

// TestVersionSwitches follows StrategyVersionEnabledFilter
// (Nepxion/Discovery, 6.x.x) and the wiki's "全链路版本偏好路由" and
// "全链路版本故障转移" sections: prefer applies only without a version
// route; failover goes to the version-failover value, else the stable
// version (stable switch) or any.
func TestVersionSwitches(t *testing.T) {
	list := instances(
		inst{id: "1", version: "1.0"},
		inst{id: "2", version: "1.1"},
		inst{id: "3", version: "1.2"},
	)
	gone := Constraint{rule.TypeVersion: "2.0"}
	runFailoverCases(t, list, []failoverCase{
		{name: "prefer switch: stable", sw: Switches{VersionPrefer: true}, want: []string{"b-1"}},
		{name: "prefer value", give: Constraint{rule.TypeVersionPrefer: "1.1"}, want: []string{"b-2"}},
		{name: "prefer with a version route", sw: Switches{VersionPrefer: true}, give: Constraint{rule.TypeVersion: "1.2", rule.TypeVersionPrefer: "1.1"}, want: []string{"b-3"}},
		{name: "failover switch: any", sw: Switches{VersionFailover: true}, give: gone, want: []string{"b-1", "b-2", "b-3"}},
		{name: "failover stable", sw: Switches{VersionFailover: true, VersionFailoverStable: true}, give: gone, want: []string{"b-1"}},
		{name: "failover value beats stable", sw: Switches{VersionFailover: true, VersionFailoverStable: true}, give: Constraint{rule.TypeVersion: "2.0", rule.TypeVersionFailover: "1.1"}, want: []string{"b-2"}},
		{name: "stable alone is not a failover", sw: Switches{VersionFailoverStable: true}, give: gone},
	})
}

// TestGroupIsolation follows StrategyGroupEnabledFilter (Nepxion/Discovery,
// 6.x.x): with consumer isolation, only the caller's group, and gateways.
func TestGroupIsolation(t *testing.T) {
	list := instances(
		inst{id: "1", group: "g1"},
		inst{id: "2", group: "g2"},
		inst{id: "3", group: "g2", meta: map[string]string{"spring_application_type": "gateway"}},
	)
	iso := Switches{GroupIsolation: true}
	runFailoverCases(t, list, []failoverCase{
		{name: "off", self: Identity{Group: "g1"}, want: []string{"b-1", "b-2", "b-3"}},
		{name: "own group and gateways", sw: iso, self: Identity{Group: "g1"}, want: []string{"b-1", "b-3"}},
		{name: "permissive stays in the group", mode: Permissive, sw: iso, self: Identity{Group: "g1"}, give: Constraint{rule.TypeVersion: "9"}, want: []string{"b-1", "b-3"}},
		{name: "n-d-group does not filter", give: Constraint{rule.TypeGroup: "g2"}, want: []string{"b-1", "b-2", "b-3"}},
	})
}

// TestIDBlacklistMatchesNepxionID follows StrategyIdBlacklistEnabledFilter
// (Nepxion/Discovery, 6.x.x), which matches the instance's own id
// (getServerServiceUUId: metadata spring_application_uuid on Consul):
// graylane matches that id or the Consul service ID.
func TestIDBlacklistMatchesNepxionID(t *testing.T) {
	list := instances(
		inst{id: "1", meta: map[string]string{"spring_application_uuid": "20260101-000000-000-1111-222-333"}},
		inst{id: "2", meta: map[string]string{"spring.application.uuid": "20260101-000000-000-4444-555-666"}},
		inst{id: "3"},
	)
	runFailoverCases(t, list, []failoverCase{
		{name: "nepxion id", give: Constraint{rule.TypeIDBlacklist: "20260101-000000-000-1111-222-333"}, want: []string{"b-2", "b-3"}},
		{name: "dotted key", give: Constraint{rule.TypeIDBlacklist: "*-4444-*"}, want: []string{"b-1", "b-3"}},
		{name: "consul id", give: Constraint{rule.TypeIDBlacklist: "b-3"}, want: []string{"b-1", "b-2"}},
		{name: "permissive keeps it out", mode: Permissive, give: Constraint{rule.TypeIDBlacklist: "b-*", rule.TypeVersion: "9"}},
	})
}

// TestDiscoveryVersionIsABoundary checks the <discovery><version> filter
// (Nepxion's VersionFilterLoadBalanceListener, Nepxion/Discovery 6.x.x,
// which removes the instances before any strategy filter): no failover
// reaches a version it excludes, and ";" (no version allowed) leaves none.
func TestDiscoveryVersionIsABoundary(t *testing.T) {
	list := instances(
		inst{id: "1", version: "1.0"},
		inst{id: "2", version: "1.1"},
	)
	runFailoverCases(t, list, []failoverCase{
		{name: "allowed", give: Constraint{rule.TypeDiscoveryVersion: "1.0"}, want: []string{"b-1"}},
		{name: "permissive stays inside", mode: Permissive, give: Constraint{rule.TypeDiscoveryVersion: "1.0", rule.TypeVersion: "1.1"}, want: []string{"b-1"}},
		{name: "none allowed", mode: Permissive, give: Constraint{rule.TypeDiscoveryVersion: ";"}},
	})
}

// shares picks n times and returns the share of each version, in percent.
func shares(t *testing.T, s *Selector, c Constraint, n int) map[string]int {
	t.Helper()
	draw := seq(11)
	count := map[string]int{}
	for range n {
		i, err := s.Select(&c, draw())
		if err != nil {
			t.Fatal(err)
		}
		count[s.Instance(i).Version]++
	}
	for k, v := range count {
		count[k] = (v*100 + n/2) / n
	}
	return count
}

// TestWeightsAsNepxion checks the weight rules of Nepxion's
// WeightEntityWrapper.getWeight and PredicateBasedRuleDecorator
// (Nepxion/Discovery, 6.x.x) with graylane's draw by version: with version
// and region weights the version weight is used (not the product), the
// region weight for a version the version list does not name, and the
// rule's <discovery> weights only without a route weight.
func TestWeightsAsNepxion(t *testing.T) {
	list := instances(
		inst{id: "1", version: "1.0", region: "dev"},
		inst{id: "2", version: "1.0", region: "qa"},
		inst{id: "3", version: "1.1", region: "dev"},
		inst{id: "4", version: "1.1", region: "qa"},
	)
	s := NewSelector("b", list, SelectorConfig{})
	tests := []struct {
		name string
		give Constraint
		want map[string]int
	}{
		{"version weight wins over region weight",
			Constraint{rule.TypeVersionWeight: "1.0=75;1.1=25", rule.TypeRegionWeight: "dev=10;qa=90"},
			map[string]int{"1.0": 75, "1.1": 25}},
		{"region weight for an unnamed version",
			Constraint{rule.TypeVersionWeight: "1.0=50", rule.TypeRegionWeight: "dev=25;qa=25"},
			map[string]int{"1.0": 50, "1.1": 50}},
		{"rule weights without route weights",
			Constraint{rule.TypeDiscoveryVersionWeight: "1.0=35;1.1=65"},
			map[string]int{"1.0": 35, "1.1": 65}},
		{"route weights beat rule weights",
			Constraint{rule.TypeVersionWeight: "1.0=90;1.1=10", rule.TypeDiscoveryVersionWeight: "1.0=35;1.1=65"},
			map[string]int{"1.0": 90, "1.1": 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := shares(t, s, tt.give, 20000)
			for v, w := range tt.want {
				if d := got[v] - w; d < -2 || d > 2 {
					t.Errorf("%s: %d%%, want %d%% (±2)", v, got[v], w)
				}
			}
		})
	}
}

// TestParseWeightListAsNepxion checks WeightEntityWrapper.parseWeightEntity's
// reading: unreadable or negative weights count 0, a key without weight
// too, blanks are skipped.
func TestParseWeightListAsNepxion(t *testing.T) {
	l := parseWeightList(" 1.0 = 90 ;1.1=x;;1.2=-5;1.3; =7")
	for k, want := range map[string]int{"1.0": 90, "1.1": 0, "1.2": 0, "1.3": 0, "9": -1} {
		if got := l.weight(k); got != want {
			t.Errorf("weight(%q) = %d, want %d", k, got, want)
		}
	}
}
