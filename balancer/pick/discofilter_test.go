package pick

import (
	"testing"

	"github.com/graylane/graylane/rule"
)

// hostFleet is service b on hosts that share prefixes: a host filter value
// is a prefix of the host (Nepxion's HostFilterDiscoveryListener:
// host.startsWith(value)), never of host:port.
func hostFleet() []inst {
	return []inst{
		{id: "1", addr: "10.10.0.1", region: "dev"},
		{id: "2", addr: "10.10.0.12", region: "qa"},
		{id: "3", addr: "11.11.0.1", region: "dev"},
		{id: "4", addr: "172.16.0.1", region: "qa"},
		{id: "5", addr: "192.168.1.1"}, // no region: "default"
	}
}

// TestDiscoveryHostFilter follows HostFilterDiscoveryListener
// (Nepxion/Discovery, branch 6.x.x, discovery-plugin-framework-starter,
// listener/discovery/HostFilterDiscoveryListener.java) with the values of
// the wiki's full example (branch wiki; rule/testdata/nepxion-cases/wiki/
// example-full.xml): a blacklist drops the hosts starting with a value, a
// whitelist keeps only those; prefixes, not exact hosts.
func TestDiscoveryHostFilter(t *testing.T) {
	list := instances(hostFleet()...)
	runFailoverCases(t, list, []failoverCase{
		// The example's blacklist for discovery-springcloud-example-b:
		// global "10.10;11.11" plus the service's "172.16".
		{name: "blacklist, wiki example", give: Constraint{rule.TypeDiscoveryBlacklist: "10.10;11.11;172.16"}, want: []string{"b-5"}},
		{name: "blacklist prefix, not exact", give: Constraint{rule.TypeDiscoveryBlacklist: "10.10.0.1"}, want: []string{"b-3", "b-4", "b-5"}},
		{name: "blacklist exact host", give: Constraint{rule.TypeDiscoveryBlacklist: "10.10.0.12"}, want: []string{"b-1", "b-3", "b-4", "b-5"}},
		{name: "blacklist never matches the port", give: Constraint{rule.TypeDiscoveryBlacklist: "8080"}, want: []string{"b-1", "b-2", "b-3", "b-4", "b-5"}},
		{name: "whitelist keeps prefixes", give: Constraint{rule.TypeDiscoveryWhitelist: "10.10;172."}, want: []string{"b-1", "b-2", "b-4"}},
		{name: "whitelist of nothing there", give: Constraint{rule.TypeDiscoveryWhitelist: "8.8."}},
		{name: "blacklist of everything", mode: Permissive, give: Constraint{rule.TypeDiscoveryBlacklist: "1"}},
		// The filters hold under every failover: the route goes elsewhere
		// only inside them.
		{name: "permissive stays inside the whitelist", mode: Permissive,
			give: Constraint{rule.TypeDiscoveryWhitelist: "10.10", rule.TypeAddress: "11.11.0.1"}, want: []string{"b-1", "b-2"}},
		{name: "address failover stays outside the blacklist",
			give: Constraint{rule.TypeDiscoveryBlacklist: "10.", rule.TypeAddress: "10.10.0.1", rule.TypeAddressFailover: "*"}, want: []string{"b-3", "b-4", "b-5"}},
		{name: "with the strategy blacklist", give: Constraint{rule.TypeDiscoveryBlacklist: "10.10", rule.TypeAddressBlacklist: "11.11.0.1"}, want: []string{"b-4", "b-5"}},
	})
}

// TestDiscoveryRegionFilter follows RegionFilterDiscoveryListener
// (Nepxion/Discovery, 6.x.x) as the balancer resolves it per caller
// (rule.Discovery.RegionsFor): only the allowed provider regions, an
// instance without a region being in "default"; ";" allows none; no
// failover crosses it.
func TestDiscoveryRegionFilter(t *testing.T) {
	list := instances(hostFleet()...)
	runFailoverCases(t, list, []failoverCase{
		// DiscoveryGuide's discovery-rule-region.xml (branch 6.x.x): a in
		// dev calls b in dev.
		{name: "dev only", give: Constraint{rule.TypeDiscoveryRegion: "dev"}, want: []string{"b-1", "b-3"}},
		{name: "regions are exact", give: Constraint{rule.TypeDiscoveryRegion: "de"}},
		{name: "default is the missing region", give: Constraint{rule.TypeDiscoveryRegion: "default;qa"}, want: []string{"b-2", "b-4", "b-5"}},
		{name: "none allowed", mode: Permissive, give: Constraint{rule.TypeDiscoveryRegion: ";"}},
		{name: "routed region outside: strict", give: Constraint{rule.TypeDiscoveryRegion: "dev", rule.TypeRegion: "qa"}},
		{name: "region failover stays inside", sw: Switches{RegionFailover: true},
			give: Constraint{rule.TypeDiscoveryRegion: "dev", rule.TypeRegion: "qa"}, want: []string{"b-1", "b-3"}},
		{name: "region-failover value outside finds none",
			give: Constraint{rule.TypeDiscoveryRegion: "dev", rule.TypeRegion: "prod", rule.TypeRegionFailover: "qa"}},
		{name: "region affinity inside", sw: Switches{RegionAffinity: true, RegionFailover: true}, self: Identity{Region: "qa"},
			give: Constraint{rule.TypeDiscoveryRegion: "dev"}, want: []string{"b-1", "b-3"}},
		{name: "permissive stays inside", mode: Permissive,
			give: Constraint{rule.TypeDiscoveryRegion: "dev", rule.TypeVersion: "9.9"}, want: []string{"b-1", "b-3"}},
		{name: "with the host filter", give: Constraint{rule.TypeDiscoveryRegion: "dev", rule.TypeDiscoveryBlacklist: "11."}, want: []string{"b-1"}},
	})
}

// TestDiscoveryFiltersArePrefixes checks the prefix reading of host
// filter values.
func TestDiscoveryFiltersArePrefixes(t *testing.T) {
	for give, want := range map[string]string{
		"10.10":           "10.10*",
		" 10.10 ;; 11.* ": "10.10*;11.*",
		"a?":              "a?*",
		";":               "",
	} {
		if got := prefixes(give); got != want {
			t.Errorf("prefixes(%q) = %q, want %q", give, got, want)
		}
	}
}

// BenchmarkSelectDiscoveryFilters measures a pick whose constraint holds
// the <discovery> section's host and region filters besides a version
// (the set cached after the first pick): it must not allocate. Without
// the section the constraint is the version alone.
func BenchmarkSelectDiscoveryFilters(b *testing.B) {
	var list []inst
	for i := range 300 {
		list = append(list, inst{id: string(rune('a'+i%26)) + string(rune('a'+i/26)), version: []string{"1.0", "1.1", "1.2"}[i%3],
			region: []string{"dev", "qa"}[i%2], addr: []string{"10.10.0.", "11.11.0.", "172.16.0."}[i%3] + string(rune('0'+i%10))})
	}
	s := NewSelector("b", instances(list...), SelectorConfig{})
	for _, bc := range []struct {
		name string
		r    Route
	}{
		{"absent", Route{}.With(rule.TypeVersion, rule.PlainValue("1.1"))},
		{"present", Route{}.With(rule.TypeVersion, rule.PlainValue("1.1")).
			With(rule.TypeDiscoveryBlacklist, rule.PlainValue("10.10;172.16")).
			With(rule.TypeDiscoveryRegion, rule.PlainValue("dev"))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			if _, err := s.Pick(&bc.r, 1); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			var draw uint64
			for b.Loop() {
				draw++
				if _, err := s.Pick(&bc.r, draw); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
