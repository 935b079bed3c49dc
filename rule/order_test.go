package rule

import (
	"math"
	"testing"

	"github.com/graylane/graylane/expr"
)

func TestSpecificity(t *testing.T) {
	tests := []struct {
		give string
		want int
	}{
		{"", -1},
		{"#H['a'] == '1'", 1},
		{"#H['a'] == '1' and #H['b'] == '2'", 2},
		{"#H['a'] == '1' or #H['a'] == '2'", 2}, // every occurrence counts, also of one name
		{"#H['a'] == '#H[''b'']'", 2},           // also inside a string literal, as StringUtil.count does
		{`#H["a"] == '1'`, 0},                   // Nepxion counts #H[' only
		{"#H['a'] == '1' && #H['b'] == '2' && #H['c'] == '3'", 3},
	}
	for _, tt := range tests {
		c := &Condition{}
		if tt.give != "" {
			e, err := expr.Compile(tt.give)
			if err != nil {
				t.Fatalf("%s: %v", tt.give, err)
			}
			c.Expression = e
		}
		if got := specificity(c); got != tt.want {
			t.Errorf("specificity(%q) = %d, want %d", tt.give, got, tt.want)
		}
	}
}

// TestMatchOrder checks Nepxion's order: more #H[' first, ties in document
// order, conditions without expression last.
func TestMatchOrder(t *testing.T) {
	r := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="d1" version-id="v1"/>
    <condition id="a1" expression="#H['a'] == '1'" version-id="v1"/>
    <condition id="ab" expression="#H['a'] == '1' and #H['b'] == '1'" version-id="v1"/>
    <condition id="d2" region-id="r1"/>
    <condition id="a2" expression="#H['a'] == '2'" version-id="v1"/>
    <condition id="t" expression="true" version-id="v1"/>
    <condition id="abc" expression="#H['a'] == '1' and #H['b'] == '1' and #H['c'] == '1'" version-id="v1"/>
  </conditions>
  <routes><route id="v1" type="version">1.0</route><route id="r1" type="region">dev</route></routes>
</strategy-release></rule>`)
	var got []string
	for _, c := range matchOrder(r.Release.BlueGreen) {
		got = append(got, c.ID)
	}
	want := []string{"abc", "ab", "a1", "a2", "t", "d1", "d2"}
	if len(got) != len(want) {
		t.Fatalf("order %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
	// Release keeps document order, for encoding.
	if r.Release.BlueGreen[0].ID != "d1" || r.Release.BlueGreen[6].ID != "abc" {
		t.Errorf("Release.BlueGreen reordered: %s ... %s", r.Release.BlueGreen[0].ID, r.Release.BlueGreen[6].ID)
	}
}

// TestDefaultsPerRouteType: a blue-green condition without expression is
// the default for the route types it names; a second one naming other types
// is legal, and one naming a type already covered is never reached.
func TestDefaultsPerRouteType(t *testing.T) {
	r := mustParse(t, `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="ver-default" version-id="v-old"/>
    <condition id="vip" expression="#H['user'] == 'vip'" version-id="v-new" region-id="r-qa"/>
    <condition id="reg-default" region-id="r-dev"/>
    <condition id="late-default" version-id="v-new" region-id="r-qa"/>
  </conditions>
  <routes>
    <route id="v-old" type="version">1.0</route><route id="v-new" type="version">1.1</route>
    <route id="r-dev" type="region">dev</route><route id="r-qa" type="region">qa</route>
  </routes>
</strategy-release></rule>`)
	tests := []struct {
		give            expr.Map
		version, region string
	}{
		{expr.Map{"user": "vip"}, "1.1", "qa"},
		{expr.Map{"user": "someone"}, "1.0", "dev"},
		{nil, "1.0", "dev"},
	}
	for _, tt := range tests {
		d := r.Decide(tt.give, 0)
		if got := d.Version.String(); got != tt.version {
			t.Errorf("%v: version %q, want %q", tt.give, got, tt.version)
		}
		if got := d.Region.String(); got != tt.region {
			t.Errorf("%v: region %q, want %q", tt.give, got, tt.region)
		}
	}
	if d := r.Decide(nil, 0); d.ConditionID != "ver-default" {
		t.Errorf("version decided by %q, want ver-default", d.ConditionID)
	}
}

const grayTypesRule = `<rule>
  <strategy><version>1.0</version><region>dev</region><address>10.0.0.1</address></strategy>
  <strategy-release>
  <conditions type="gray">
    <condition id="ver" expression="#H['a'] == '1'" version-id="v-old=50;v-new=50"/>
    <condition id="both" expression="#H['a'] == '1' and #H['b'] == '1'" version-id="v-old=50;v-new=50" region-id="r-dev=50;r-qa=50"/>
    <condition id="reg" expression="#H['c'] == '1'" region-id="r-dev=0;r-qa=100"/>
    <condition id="basic" address-id="a-1=100"/>
  </conditions>
  <routes>
    <route id="v-old" type="version">1.0</route><route id="v-new" type="version">1.1</route>
    <route id="r-dev" type="region">dev</route><route id="r-qa" type="region">qa</route>
    <route id="a-1" type="address">10.0.0.9</route>
  </routes>
</strategy-release></rule>`

// TestGrayOneConditionPerRequest: one gray condition decides every route
// type; a type it does not name falls back to <strategy>, even when another
// gray condition would name it.
func TestGrayOneConditionPerRequest(t *testing.T) {
	r := mustParse(t, grayTypesRule)
	tests := []struct {
		name                     string
		give                     expr.Map
		version, region, address string
		tier                     Tier
		cond                     string
	}{
		// "ver" is chosen (a=1, c=1: "ver" and "reg" both hold, "ver" comes
		// first); region is not named by it, so <strategy>'s dev, not
		// "reg"'s qa.
		{"region falls back to strategy", expr.Map{"a": "1", "c": "1"}, "1.1", "dev", "10.0.0.1", TierGray, "ver"},
		// "reg" is chosen: it names region only.
		{"version falls back to strategy", expr.Map{"c": "1"}, "1.0", "qa", "10.0.0.1", TierStrategy, ""},
		// "basic" is the default for every type, though it names address only.
		{"default names address only", expr.Map{}, "1.0", "dev", "10.0.0.9", TierStrategy, ""},
		// "both" has more #H references than "ver".
		{"more specific first", expr.Map{"a": "1", "b": "1"}, "1.1", "qa", "10.0.0.1", TierGray, "both"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The draw for version is at the top, so a 50/50 split picks the
			// second route; region's draw is derived: find one that picks qa.
			draw := uint64(math.MaxUint64)
			for typeDraw(draw, TypeRegion) < math.MaxUint64/2 {
				draw--
			}
			d := r.Decide(tt.give, draw)
			if d.Version.String() != tt.version || d.Region.String() != tt.region || d.Address.String() != tt.address {
				t.Errorf("got version %s region %s address %s, want %s %s %s",
					d.Version, d.Region, d.Address, tt.version, tt.region, tt.address)
			}
			if d.Tier != tt.tier || d.ConditionID != tt.cond {
				t.Errorf("version decided by %s/%q, want %s/%q", d.Tier, d.ConditionID, tt.tier, tt.cond)
			}
		})
	}
}

// TestGrayDrawsPerType: each route type draws on its own, so with 50/50 for
// version and region all four combinations come out about equally often,
// and with a sticky key each user keeps one combination.
func TestGrayDrawsPerType(t *testing.T) {
	r := mustParse(t, grayTypesRule)
	const n = 20000
	step := uint64(math.MaxUint64 / n)
	pairs := map[string]int{}
	for i := range n {
		d := r.Decide(expr.Map{"a": "1", "b": "1"}, uint64(i)*step+step/2)
		pairs[d.Version.String()+"/"+d.Region.String()]++
	}
	for _, p := range []string{"1.0/dev", "1.0/qa", "1.1/dev", "1.1/qa"} {
		if share := float64(pairs[p]) / n; math.Abs(share-0.25) > 0.02 {
			t.Errorf("%s in %.3f of draws, want 0.25 (each type drawn on its own): %v", p, share, pairs)
		}
	}

	sticky := mustParse(t, `<rule><strategy-release>
  <conditions type="gray" sticky="#H['user']">
    <condition id="g" version-id="v-old=50;v-new=50" region-id="r-dev=50;r-qa=50"/>
  </conditions>
  <routes>
    <route id="v-old" type="version">1.0</route><route id="v-new" type="version">1.1</route>
    <route id="r-dev" type="region">dev</route><route id="r-qa" type="region">qa</route>
  </routes>
</strategy-release></rule>`)
	pairs = map[string]int{}
	for i := range n {
		user := expr.Map{"user": "u" + itoa(i)}
		d := sticky.Decide(user, 0)
		again := sticky.Decide(user, math.MaxUint64)
		if d.Version != again.Version || d.Region != again.Region {
			t.Fatalf("user %d: %s/%s, then %s/%s with another draw", i, d.Version, d.Region, again.Version, again.Region)
		}
		pairs[d.Version.String()+"/"+d.Region.String()]++
	}
	for _, p := range []string{"1.0/dev", "1.0/qa", "1.1/dev", "1.1/qa"} {
		if share := float64(pairs[p]) / n; math.Abs(share-0.25) > 0.02 {
			t.Errorf("sticky: %s for %.3f of users, want 0.25: %v", p, share, pairs)
		}
	}
}

// TestGrayEvaluatedOnce: the gray condition is chosen once per request,
// however many route types consult it.
func TestGrayEvaluatedOnce(t *testing.T) {
	r := mustParse(t, grayTypesRule)
	cv := &countingValues{m: expr.Map{"c": "1"}, n: map[string]int{}}
	r.Decide(cv, 0)
	// "both" and "ver" read a (both false), "reg" reads c (true): each
	// condition once, though version, region and address all consult gray.
	if cv.n["a"] != 2 || cv.n["c"] != 1 || len(cv.n) != 2 {
		t.Errorf("look-ups %v, want a twice and c once", cv.n)
	}
}

// TestGrayWeightTypeOnlyCondition: a gray condition that names only
// version-weight still is the request's gray condition when it holds (its
// reference is ignored, as in Nepxion), so version goes to <strategy>, not to
// the gray default.
func TestGrayWeightTypeOnlyCondition(t *testing.T) {
	r := mustParse(t, `<rule>
  <strategy><version>1.1</version><version-weight>1.0=10;1.1=90</version-weight></strategy>
  <strategy-release>
  <conditions type="gray">
    <condition id="vw" expression="#H['a'] == '1'" version-weight-id="w=100"/>
    <condition id="basic" version-id="old=100"/>
  </conditions>
  <routes><route id="old" type="version">1.0</route><route id="w" type="version-weight">1.0=100;1.1=0</route></routes>
</strategy-release></rule>`)
	tests := []struct {
		give          expr.Map
		version, vw   string
		tier          Tier
		condition, id string
	}{
		{expr.Map{"a": "1"}, "1.1", "1.0=10;1.1=90", TierStrategy, "", ""},
		{expr.Map{}, "1.0", "1.0=10;1.1=90", TierGray, "basic", "old"},
	}
	for _, tt := range tests {
		d := r.Decide(tt.give, 0)
		if d.Version.String() != tt.version || d.VersionWeight.String() != tt.vw || d.Tier != tt.tier || d.ConditionID != tt.condition || d.RouteID != tt.id {
			t.Errorf("%v: version %s weight %s by %s/%q/%q, want %s %s by %s/%q/%q", tt.give,
				d.Version, d.VersionWeight, d.Tier, d.ConditionID, d.RouteID, tt.version, tt.vw, tt.tier, tt.condition, tt.id)
		}
	}
}

// TestMissingRouteGoesToNextTier: a chosen condition whose route has no
// value yields nothing for the type, and Nepxion goes on to the next tier,
// not to the next condition of the tier.
func TestMissingRouteGoesToNextTier(t *testing.T) {
	r := mustParse(t, `<rule>
  <strategy><version>9.9</version></strategy>
  <strategy-release>
  <conditions type="blue-green">
    <condition id="ab" expression="#H['a'] == '1' and #H['b'] == '1'" version-id="gone"/>
    <condition id="a" expression="#H['a'] == '1'" version-id="v-new"/>
  </conditions>
  <conditions type="gray">
    <condition id="g" expression="#H['b'] == '1'" version-id="v-old=100"/>
  </conditions>
  <routes>
    <route id="gone" type="version">1.2</route>
    <route id="v-new" type="version">1.1</route><route id="v-old" type="version">1.0</route>
  </routes>
</strategy-release></rule>`)
	// Make "gone" a route without value, as a reference to a missing route
	// reads.
	for i := range r.Release.Routes {
		if r.Release.Routes[i].ID == "gone" {
			r.Release.Routes[i].Value = Value{}
		}
	}
	tests := []struct {
		give expr.Map
		want string
		tier Tier
	}{
		{expr.Map{"a": "1", "b": "1"}, "1.0", TierGray}, // "ab" is chosen, its route is gone: gray, not "a"
		{expr.Map{"a": "1"}, "1.1", TierBlueGreen},
		{expr.Map{}, "9.9", TierStrategy},
	}
	for _, tt := range tests {
		d := r.Decide(tt.give, 0)
		if d.Version.String() != tt.want || d.Tier != tt.tier {
			t.Errorf("%v: %s by %s, want %s by %s", tt.give, d.Version, d.Tier, tt.want, tt.tier)
		}
	}
}
