package rule

import (
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

	"github.com/graylane/graylane/expr"
)

// drawAt returns the draw that lands at fraction f of the range.
func drawAt(f float64) uint64 {
	if f >= 1 {
		return math.MaxUint64
	}
	return uint64(f * (1 << 63) * 2)
}

type wantDecision struct {
	tier     Tier
	cond     string
	route    string
	versionA string // the version for discovery-guide-service-a; "" = unconstrained
}

func checkDecision(t *testing.T, d Decision, w wantDecision) {
	t.Helper()
	if d.Tier != w.tier || d.ConditionID != w.cond || d.RouteID != w.route {
		t.Errorf("decided by %q/%q/%q, want %q/%q/%q", d.Tier, d.ConditionID, d.RouteID, w.tier, w.cond, w.route)
	}
	got, ok := d.Version.For(svcA)
	if got != w.versionA || ok != (w.versionA != "") {
		t.Errorf("version for %s = %q, %v; want %q", svcA, got, ok, w.versionA)
	}
}

func TestDecideGuideRules(t *testing.T) {
	mixed := mustParse(t, string(readFile(t, "orchestration/mixed.xml")))
	grayRule := mustParse(t, string(readFile(t, "orchestration/gray.xml")))
	blueGreen := mustParse(t, string(readFile(t, "orchestration/bluegreen.xml")))
	basic := mustParse(t, string(readFile(t, "orchestration/basic.xml")))
	empty := mustParse(t, `<rule/>`)

	tests := []struct {
		name string
		rule *Rule
		give expr.Map
		draw uint64
		prio HeaderPriority
		want wantDecision
	}{
		// The built-in header xyz=1 wins by default: every request is green.
		{"mixed: built-in header pins green", mixed, expr.Map{"xyz": "3"}, 0, BuiltInFirst, wantDecision{TierBlueGreen, "condition-0", "route-0", "1.0"}},
		{"mixed: built-in header beats blue", mixed, expr.Map{"xyz": "2"}, 0, BuiltInFirst, wantDecision{TierBlueGreen, "condition-0", "route-0", "1.0"}},
		{"mixed: built-in header fills a missing value", mixed, nil, 0, RequestFirst, wantDecision{TierBlueGreen, "condition-0", "route-0", "1.0"}},
		{"mixed: request first, blue", mixed, expr.Map{"xyz": "2"}, 0, RequestFirst, wantDecision{TierBlueGreen, "condition-1", "route-1", "1.1"}},
		{"mixed: request first, gray low draw", mixed, expr.Map{"xyz": "3"}, 0, RequestFirst, wantDecision{TierGray, "condition-0", "route-0", "1.0"}},
		{"mixed: request first, gray high draw", mixed, expr.Map{"xyz": "3"}, math.MaxUint64, RequestFirst, wantDecision{TierGray, "condition-0", "route-1", "1.1"}},
		{"mixed: request first, gray default", mixed, expr.Map{"xyz": "9"}, math.MaxUint64, RequestFirst, wantDecision{TierGray, "condition-2", "route-0", "1.0"}},

		{"gray: 70/30 just below the split", grayRule, expr.Map{"xyz": "4"}, drawAt(0.7) - 1<<20, BuiltInFirst, wantDecision{TierGray, "condition-1", "route-0", "1.0"}},
		{"gray: 70/30 just above the split", grayRule, expr.Map{"xyz": "4"}, drawAt(0.7) + 1<<20, BuiltInFirst, wantDecision{TierGray, "condition-1", "route-1", "1.1"}},
		{"gray: default 100/0 at the top", grayRule, expr.Map{}, math.MaxUint64, BuiltInFirst, wantDecision{TierGray, "condition-2", "route-0", "1.0"}},
		{"gray: nil values take the default", grayRule, nil, 0, BuiltInFirst, wantDecision{TierGray, "condition-2", "route-0", "1.0"}},

		{"blue-green: green", blueGreen, expr.Map{"xyz": "1"}, 0, BuiltInFirst, wantDecision{TierBlueGreen, "condition-0", "route-0", "1.0"}},
		{"blue-green: blue", blueGreen, expr.Map{"xyz": "2"}, 0, BuiltInFirst, wantDecision{TierBlueGreen, "condition-1", "route-1", "1.1"}},
		{"blue-green: no match falls to strategy", blueGreen, expr.Map{"xyz": "3"}, 0, BuiltInFirst, wantDecision{TierStrategy, "", "", "1.0"}},
		{"strategy only", basic, expr.Map{"xyz": "2"}, 0, BuiltInFirst, wantDecision{TierStrategy, "", "", "1.0"}},
		{"empty rule constrains nothing", empty, expr.Map{"xyz": "2"}, 0, BuiltInFirst, wantDecision{TierNone, "", "", ""}},
		{"nil rule constrains nothing", nil, expr.Map{"xyz": "2"}, 0, BuiltInFirst, wantDecision{TierNone, "", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v expr.Values
			if tt.give != nil {
				v = tt.give
			}
			checkDecision(t, tt.rule.DecideWith(v, tt.draw, tt.prio), tt.want)
			if tt.prio == BuiltInFirst {
				checkDecision(t, tt.rule.Decide(v, tt.draw), tt.want)
			}
		})
	}

	d := mixed.Decide(expr.Map{}, 0)
	if got := d.Version.String(); got != `{"discovery-guide-service-a":"1.0","discovery-guide-service-b":"1.0"}` {
		t.Errorf("Version.String() = %s", got)
	}
	if !d.Region.IsZero() || !d.Address.IsZero() || !d.VersionWeight.IsZero() || !d.RegionWeight.IsZero() {
		t.Errorf("types without routes must stay unconstrained: %+v", d)
	}
}

// TestDecideRouteTypes uses full.xml, whose conditions reference different
// route types, to check that each type is decided on its own.
func TestDecideRouteTypes(t *testing.T) {
	r := mustParse(t, string(readFile(t, "full.xml")))
	type want struct {
		version, region, address, versionWeight, regionWeight string // for svc-a; "-" = unconstrained
	}
	get := func(v Value, svc string) string {
		s, ok := v.For(svc)
		if !ok {
			return "-"
		}
		return s
	}
	tests := []struct {
		name string
		give expr.Map
		draw uint64
		svc  string
		want want
	}{
		{"vip: blue-green version and region", expr.Map{"user": "vip", "age": "30", "xyz": "1"}, 0, "svc-a",
			want{"1.1", "qa", "-", "1.0=90;1.1=10", "dev=85;qa=15"}},
		{"tester: version only, region falls through to strategy", expr.Map{"tester": "yes"}, 0, "svc-a",
			want{"1.1", "dev", "-", "1.0=90;1.1=10", "dev=85;qa=15"}},
		// A gray condition decides version, region and address only: its
		// region-weight-id is ignored, as Nepxion ignores it.
		{"beta: gray version, its region-weight-id ignored", expr.Map{"beta": "1"}, math.MaxUint64, "svc-a",
			want{"1.1", "dev", "-", "1.0=90;1.1=10", "dev=85;qa=15"}},
		{"beta low draw", expr.Map{"beta": "1"}, 0, "svc-a",
			want{"1.0", "dev", "-", "1.0=90;1.1=10", "dev=85;qa=15"}},
		{"nobody: gray default for version only", expr.Map{}, 0, "svc-b",
			want{"1.0", "dev", "10.0.0.7:8080", "-", "dev=85;qa=15"}},
		{"vip and beta: blue-green beats gray per type", expr.Map{"user": "vip", "age": "18", "beta": "1"}, 0, "svc-a",
			want{"1.1", "qa", "-", "1.0=90;1.1=10", "dev=85;qa=15"}},
		{"service missing from a route map", expr.Map{"user": "vip", "age": "42"}, 0, "svc-c",
			want{"-", "-", "-", "-", "dev=85;qa=15"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := r.DecideWith(tt.give, tt.draw, RequestFirst)
			got := want{get(d.Version, tt.svc), get(d.Region, tt.svc), get(d.Address, tt.svc), get(d.VersionWeight, tt.svc), get(d.RegionWeight, tt.svc)}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// countingValues counts look-ups, to show a condition referenced by several
// route types is evaluated once per decision.
type countingValues struct {
	m expr.Map
	n map[string]int
}

func (c *countingValues) Lookup(name string) (string, bool) {
	c.n[name]++
	return c.m.Lookup(name)
}

func TestDecideEvaluatesEachConditionOnce(t *testing.T) {
	r := mustParse(t, string(readFile(t, "full.xml")))
	cv := &countingValues{m: expr.Map{"user": "nobody"}, n: map[string]int{}}
	r.DecideWith(cv, 0, RequestFirst)
	// "vip" references version and region routes; it must run once.
	if cv.n["user"] != 1 {
		t.Errorf("#H['user'] looked up %d times, want 1", cv.n["user"])
	}
}

func TestDecideHeaderPriority(t *testing.T) {
	r := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="pinned" expression="#H['env'] == 'test'" version-id="new"/>
  </conditions>
  <routes><route id="new" type="version">2.0</route></routes>
  <header>{"env":"test"}</header>
</strategy-release></rule>`)
	tests := []struct {
		name string
		give expr.Map
		prio HeaderPriority
		want string
	}{
		{"built-in first overrides the request", expr.Map{"env": "prod"}, BuiltInFirst, "2.0"},
		{"request first keeps the request", expr.Map{"env": "prod"}, RequestFirst, ""},
		{"request first fills in", expr.Map{}, RequestFirst, "2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := r.DecideWith(tt.give, 0, tt.prio)
			if got, _ := d.Version.For("any"); got != tt.want {
				t.Errorf("version = %q, want %q", got, tt.want)
			}
		})
	}
}

func grayRuleWith(t testing.TB, weights string) *Rule {
	return mustParse(t, `<rule><strategy-release>
  <conditions type="gray"><condition id="g" version-id="`+weights+`"/></conditions>
  <routes><route id="old" type="version">1.0</route><route id="new" type="version">1.1</route><route id="third" type="version">1.2</route></routes>
</strategy-release></rule>`)
}

func TestGrayAccuracy(t *testing.T) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		weights string
		want    map[string]float64 // route id -> share
	}{
		{"old=90;new=10", map[string]float64{"old": 0.90, "new": 0.10}},
		{"old=0;new=100", map[string]float64{"new": 1}},
		{"old=100;new=0", map[string]float64{"old": 1}},
		{"old=1;new=2;third=1", map[string]float64{"old": 0.25, "new": 0.50, "third": 0.25}},
		{"old=0;new=3;third=0", map[string]float64{"new": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.weights, func(t *testing.T) {
			r := grayRuleWith(t, tt.weights)
			counts := map[string]int{}
			for range n {
				counts[r.Decide(nil, rng.Uint64()).RouteID]++
			}
			for _, edge := range []uint64{0, 1, math.MaxUint64 - 1, math.MaxUint64} {
				id := r.Decide(nil, edge).RouteID
				if tt.want[id] == 0 {
					t.Errorf("draw %d picked %q, whose weight is 0", edge, id)
				}
			}
			for id, c := range counts {
				share := float64(c) / n
				if math.Abs(share-tt.want[id]) > 0.003 {
					t.Errorf("route %s: %.4f of draws, want %.4f +- 0.003", id, share, tt.want[id])
				}
				if tt.want[id] == 0 {
					t.Errorf("route %s has weight 0 but was picked %d times", id, c)
				}
			}
		})
	}
}

func TestStickyGray(t *testing.T) {
	r := mustParse(t, string(readFile(t, "full.xml"))) // sticky="#H['user-id']", default gray old=95;new=5
	// The same user gets the same version whatever the caller's draw.
	for _, user := range []string{"u1", "u2", "alice", "bob"} {
		first := r.Decide(expr.Map{"user-id": user}, 0).RouteID
		for _, draw := range []uint64{1, 1 << 40, math.MaxUint64} {
			if got := r.Decide(expr.Map{"user-id": user}, draw).RouteID; got != first {
				t.Fatalf("user %s: route %s with draw %d, %s with draw 0", user, got, draw, first)
			}
		}
		if d, ok := r.StickyDraw(expr.Map{"user-id": user}); !ok || d != stickyHash(user) {
			t.Errorf("StickyDraw(%s) = %d, %v", user, d, ok)
		}
	}
	// Across users the split follows the weights.
	const n = 200_000
	newRoute := 0
	for i := range n {
		if r.Decide(expr.Map{"user-id": "user-" + itoa(i)}, 0).RouteID == "new" {
			newRoute++
		}
	}
	if share := float64(newRoute) / n; math.Abs(share-0.05) > 0.005 {
		t.Errorf("sticky split: %.4f new, want 0.05", share)
	}
	// Without the key (or blank) the caller's draw decides.
	if got := r.Decide(expr.Map{"user-id": "  "}, math.MaxUint64).RouteID; got != "new" {
		t.Errorf("blank key: route %s, want new from the draw", got)
	}
	if _, ok := r.StickyDraw(expr.Map{}); ok {
		t.Error("StickyDraw without the key reported ok")
	}
	if _, ok := mustParse(t, `<rule/>`).StickyDraw(expr.Map{"user-id": "u"}); ok {
		t.Error("StickyDraw on a rule without sticky key reported ok")
	}
}

func TestDecideConcurrent(t *testing.T) {
	r := mustParse(t, string(readFile(t, "full.xml")))
	want := r.Decide(expr.Map{"user": "vip", "user-id": "u7"}, 0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				prio := HeaderPriority(i % 2)
				d := r.DecideWith(expr.Map{"user": "vip", "user-id": "u7"}, uint64(g*i), prio)
				if d.RouteID != want.RouteID || d.Region.String() != want.Region.String() {
					t.Errorf("goroutine %d: %+v, want %+v", g, d, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDecisionGet(t *testing.T) {
	r := mustParse(t, string(readFile(t, "full.xml")))
	d := r.Decide(expr.Map{"user": "vip", "age": "20"}, 0)
	for typ, v := range map[RouteType]Value{TypeVersion: d.Version, TypeRegion: d.Region, TypeAddress: d.Address,
		TypeVersionWeight: d.VersionWeight, TypeRegionWeight: d.RegionWeight} {
		if d.Get(typ) != v {
			t.Errorf("Get(%s) = %v, want %v", typ, d.Get(typ), v)
		}
	}
	if d.IsZero() {
		t.Error("IsZero on a constraining decision")
	}
	if TypeVersionWeight.HeaderName() != "n-d-version-weight" || TypeRegion.String() != "region" {
		t.Error("type names")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestDecideFolding checks conditions decided by the built-in header alone
// (folded when the rule is built) against conditions that also read the
// request.
func TestDecideFolding(t *testing.T) {
	r := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="mixed" expression="#H['env'] == 'test' &amp;&amp; #H['user'] == 'a'" version-id="v2"/>
    <condition id="never" expression="#H['env'] == 'prod'" version-id="v2"/>
    <condition id="always" expression="#H['env'] == 'test'" version-id="v1"/>
  </conditions>
  <routes><route id="v1" type="version">1.0</route><route id="v2" type="version">2.0</route></routes>
  <header>{"env":"test"}</header>
</strategy-release></rule>`)
	if got := []uint8{r.Release.BlueGreen[0].folded, r.Release.BlueGreen[1].folded, r.Release.BlueGreen[2].folded}; got[0] != foldNone || got[1] != foldFalse || got[2] != foldTrue {
		t.Fatalf("folded = %v", got)
	}
	tests := []struct {
		give expr.Map
		prio HeaderPriority
		want string
	}{
		{expr.Map{"user": "a"}, BuiltInFirst, "mixed"},
		{expr.Map{"user": "b", "env": "prod"}, BuiltInFirst, "always"},
		{expr.Map{"user": "b", "env": "prod"}, RequestFirst, "never"},
		{expr.Map{"user": "a", "env": "dev"}, RequestFirst, ""},
		{expr.Map{"user": "a"}, RequestFirst, "mixed"},
	}
	for _, tt := range tests {
		if got := r.DecideWith(tt.give, 0, tt.prio).ConditionID; got != tt.want {
			t.Errorf("%v priority %d: condition %q, want %q", tt.give, tt.prio, got, tt.want)
		}
	}
}
