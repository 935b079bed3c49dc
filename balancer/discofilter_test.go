package balancer

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/graylane/graylane/rule"
)

// discoFilterRule holds <discovery>'s host and region filters as the
// example service's rule.xml writes them (Nepxion/Discovery, branch 6.x.x,
// discovery-springcloud-examples/discovery-springcloud-example-service/
// src/main/resources/rule.xml), on this package's fleet: every provider
// hides the hosts starting with 10.0.0. (all of 1.0), svc-b also 10.0.1.1;
// svc-a in dev calls svc-b in dev, in qa svc-b in qa.
const discoFilterRule = `<rule><discovery>
  <blacklist filter-value="10.0.0."><service service-name="svc-b" filter-value="10.0.1.1"/></blacklist>
  <region>
    <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-region-value="dev" provider-region-value="dev"/>
    <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-region-value="qa" provider-region-value="qa"/>
  </region>
</discovery></rule>`

// pickedIDs picks service n times with ctx and returns the ids seen,
// sorted; nil when a pick fails.
func pickedIDs(t *testing.T, b *Balancer, ctx context.Context, service string, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	for range n {
		in, done, err := b.Pick(ctx, service)
		if err != nil {
			if !errors.Is(err, ErrNoInstance) {
				t.Fatal(err)
			}
			return nil
		}
		done(nil)
		seen[in.ID] = true
	}
	var ids []string
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestDiscoveryHostAndRegionFilters(t *testing.T) {
	r, err := rule.Parse([]byte(discoFilterRule))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Ignored) != 0 {
		t.Fatalf("Ignored = %q", r.Ignored)
	}
	for _, tt := range []struct {
		self    Identity
		service string
		want    []string
	}{
		{Identity{Service: "svc-a", Region: "dev"}, "svc-b", []string{"svc-b-1.1-0", "svc-b-1.1-2"}},
		{Identity{Service: "svc-a", Region: "qa"}, "svc-b", []string{"svc-b-1.1-3"}},
		{Identity{Service: "svc-a"}, "svc-b", nil}, // in "default": no entry allows it
		{Identity{Service: "svc-x", Region: "dev"}, "svc-b", []string{"svc-b-1.1-0", "svc-b-1.1-2", "svc-b-1.1-3"}},
		{Identity{Service: "svc-x"}, "svc-a", []string{"svc-a-1.1-0", "svc-a-1.1-1", "svc-a-1.1-2", "svc-a-1.1-3"}},
	} {
		for _, mode := range []Failover{Strict, Permissive} {
			b := newBalancer(t, staticFleet(4, "1.0", "1.1"), WithRule(r), WithIdentity(tt.self), WithFailover(mode))
			if got := pickedIDs(t, b, context.Background(), tt.service, 40); !slices.Equal(got, tt.want) {
				t.Errorf("%+v -> %s (%s): picked %v, want %v", tt.self, tt.service, mode, got, tt.want)
			}
			// A route to the hidden version finds nothing, whatever the
			// failover: the filters run before every strategy filter.
			ctx := WithRoute(context.Background(), Route{}.With(rule.TypeVersion, rule.PlainValue("1.0")))
			if got := pickedIDs(t, b, ctx, tt.service, 5); got != nil && mode == Strict {
				t.Errorf("%+v: a route to 1.0 reached %v", tt.self, got)
			} else if mode == Permissive && !slices.Equal(got, tt.want) {
				t.Errorf("%+v: permissive failover from 1.0 reached %v, want %v", tt.self, got, tt.want)
			}
		}
	}
}

// TestDiscoveryFiltersForOtherPickers checks WithRuleLocal, through which
// a picker outside the balancer (grpcroute's) applies the section.
func TestDiscoveryFiltersForOtherPickers(t *testing.T) {
	r, err := rule.Parse([]byte(discoFilterRule))
	if err != nil {
		t.Fatal(err)
	}
	b := newBalancer(t, staticFleet(1, "1.0"), WithRule(r), WithIdentity(Identity{Service: "svc-a", Region: "qa"}))
	var scratch Route
	got := b.WithRuleLocal("svc-b", nil, &scratch)
	if v, _ := got.Get(rule.TypeDiscoveryRegion).For("svc-b"); v != "qa" {
		t.Errorf("discovery-region = %q", v)
	}
	if v, _ := got.Get(rule.TypeDiscoveryBlacklist).For("svc-b"); v != "10.0.0.;10.0.1.1" {
		t.Errorf("discovery-blacklist = %q", v)
	}
	if v, _ := b.WithRuleLocal("svc-c", nil, &scratch).Get(rule.TypeDiscoveryBlacklist).For("svc-c"); v != "10.0.0." {
		t.Errorf("another provider's discovery-blacklist = %q", v)
	}
}

// BenchmarkPickDiscoveryFilters measures Pick with a version route and a
// rule whose <discovery> section filters the caller's picks by host and
// region (discoFilterRule), on 2x100 instances: the section is resolved
// per rule, so a pick must not allocate.
func BenchmarkPickDiscoveryFilters(b *testing.B) {
	r, err := rule.Parse([]byte(discoFilterRule))
	if err != nil {
		b.Fatal(err)
	}
	bal := newBalancer(b, staticFleet(100, "1.0", "1.1"), WithRule(r), WithIdentity(Identity{Service: "svc-a", Region: "dev"}))
	ctx := WithRoute(context.Background(), Route{}.With(rule.TypeVersion, rule.PlainValue("1.1")))
	if _, done, err := bal.Pick(ctx, "svc-b"); err != nil {
		b.Fatal(err)
	} else {
		done(nil)
	}
	b.ReportAllocs()
	for b.Loop() {
		in, done, err := bal.Pick(ctx, "svc-b")
		if err != nil || in.Region != "dev" {
			b.Fatal(err)
		}
		done(nil)
	}
}
