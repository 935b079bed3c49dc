package balancer

import (
	"context"
	"testing"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// guideVersionRule is DiscoveryGuide's discovery-rule-version.xml
// (Nepxion/DiscoveryGuide, branch 6.x.x,
// discovery-guide-test-automation/src/test/resources/, case
// testVersionRuleGray): a 1.0 calls only b 1.0, a 1.1 only b 1.1.
const guideVersionRule = `<rule><discovery><version>
  <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-version-value="1.0" provider-version-value="1.0"/>
  <service consumer-service-name="svc-a" provider-service-name="svc-b" consumer-version-value="1.1" provider-version-value="1.1"/>
</version></discovery></rule>`

// pickedVersions picks svc-b n times with ctx and returns the versions seen.
func pickedVersions(t *testing.T, b *Balancer, ctx context.Context, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		in, done, err := b.Pick(ctx, "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		seen[in.Version]++
	}
	return seen
}

func TestDiscoveryVersionFollowsTheCaller(t *testing.T) {
	r, err := rule.Parse([]byte(guideVersionRule))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		self Identity
		want string // the only version picked; "" for both
	}{
		{Identity{Service: "svc-a", Version: "1.0"}, "1.0"},
		{Identity{Service: "svc-a", Version: "1.1"}, "1.1"},
		{Identity{Service: "svc-a"}, ""},                 // a caller without version is not filtered
		{Identity{Service: "svc-x", Version: "1.0"}, ""}, // nor one the rule does not name
	} {
		b := newBalancer(t, staticFleet(2, "1.0", "1.1"), WithRule(r), WithIdentity(tt.self))
		seen := pickedVersions(t, b, context.Background(), 20)
		switch {
		case tt.want == "" && len(seen) != 2:
			t.Errorf("%+v: picked %v, want both versions", tt.self, seen)
		case tt.want != "" && (len(seen) != 1 || seen[tt.want] == 0):
			t.Errorf("%+v: picked %v, want only %s", tt.self, seen, tt.want)
		}
		// A route from the request does not lift the filter: Nepxion's
		// VersionFilterLoadBalanceListener runs before the strategy filters.
		if tt.want == "1.0" {
			ctx := WithRoute(context.Background(), Route{}.With(rule.TypeVersion, rule.PlainValue("1.1")))
			if _, _, err := b.Pick(ctx, "svc-b"); err == nil {
				t.Error("a 1.0 reached b 1.1 through a route")
			}
		}
	}
}

// TestDiscoveryWeights follows DiscoveryGuide's discovery-rule-version-weight.xml
// (case testVersionWeightRuleGray): b is split 35/65 for every caller, and
// a weight the request's route carries wins.
func TestDiscoveryWeights(t *testing.T) {
	r, err := rule.Parse([]byte(`<rule><discovery><weight>
  <service provider-service-name="svc-a" provider-weight-value="1.0=75;1.1=25" type="version"/>
  <service provider-service-name="svc-b" provider-weight-value="1.0=35;1.1=65" type="version"/>
</weight></discovery></rule>`))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	draw := func() uint64 { n++; return n * 0x9e3779b97f4a7c15 } // a deterministic, well-spread sequence
	b := newBalancer(t, staticFleet(2, "1.0", "1.1"), WithRule(r), WithIdentity(Identity{Service: "gw"}), withDraw(draw))
	seen := pickedVersions(t, b, context.Background(), 2000)
	if p := seen["1.1"] * 100 / 2000; p < 62 || p > 68 {
		t.Errorf("1.1 took %d%%, want 65%% (%v)", p, seen)
	}
	ctx := WithRoute(context.Background(), Route{}.With(rule.TypeVersionWeight, rule.PlainValue("1.0=100;1.1=0")))
	if seen := pickedVersions(t, b, ctx, 50); seen["1.0"] != 50 {
		t.Errorf("route weights: %v, want only 1.0", seen)
	}
}

// TestSwitchesReachTheSelector checks WithSwitches and WithIdentity: zone
// affinity keeps the caller's zone.
func TestSwitchesReachTheSelector(t *testing.T) {
	reg := discovery.NewStatic()
	reg.Set("svc-b",
		discovery.Instance{ID: "b1", Address: "10.0.0.1", Port: 80, Version: "1.0", Zone: "z1"},
		discovery.Instance{ID: "b2", Address: "10.0.0.2", Port: 80, Version: "1.0", Zone: "z2"},
	)
	b := newBalancer(t, reg, WithIdentity(Identity{Service: "svc-a", Zone: "z2"}), WithSwitches(Switches{ZoneAffinity: true}))
	for range 10 {
		in, done, err := b.Pick(context.Background(), "svc-b")
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
		if in.ID != "b2" {
			t.Fatalf("picked %s, want the caller's zone", in.ID)
		}
	}
}
