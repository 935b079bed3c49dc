package drain

import (
	"strings"
	"testing"

	"github.com/graylane/graylane/rule"
)

func mustParse(t testing.TB, doc string) *rule.Rule {
	t.Helper()
	r, err := rule.Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, doc)
	}
	return r
}

// The rules below route service "svc" among versions 1.0 (old) and 1.1
// (new); "other" is a second service.
const (
	strategyOld = `<rule><strategy><version>{"svc":"1.0"}</version></strategy></rule>`
	strategyNew = `<rule><strategy><version>{"svc":"1.1"}</version></strategy></rule>`

	weightOldZero = `<rule><strategy><version-weight>{"svc":"1.0=0;1.1=100"}</version-weight></strategy></rule>`
	weightBoth    = `<rule><strategy><version-weight>{"svc":"1.0=10;1.1=90"}</version-weight></strategy></rule>`
	weightWild    = `<rule><strategy><version-weight>{"svc":"1.0=0;1.*=100"}</version-weight></strategy></rule>`

	blueGreenNew = `<rule>
  <strategy><version>{"svc":"1.1"}</version></strategy>
  <strategy-release>
    <conditions type="blue-green">
      <condition id="c0" expression="#H['xyz'] == '1'" version-id="route-0"/>
    </conditions>
    <routes>
      <route id="route-0" type="version">{"svc":"1.0"}</route>
      <route id="route-1" type="version">{"svc":"1.1"}</route>
    </routes>
  </strategy-release>
</rule>`

	blueGreenDefault = `<rule>
  <strategy><version>{"svc":"1.0"}</version></strategy>
  <strategy-release>
    <conditions type="blue-green">
      <condition id="c0" expression="#H['xyz'] == '2'" version-id="route-1"/>
      <condition id="c1" version-id="route-1"/>
    </conditions>
    <routes>
      <route id="route-0" type="version">{"svc":"1.0"}</route>
      <route id="route-1" type="version">{"svc":"1.1"}</route>
    </routes>
  </strategy-release>
</rule>`

	grayOldZero = `<rule>
  <strategy><version>{"svc":"1.1"}</version></strategy>
  <strategy-release>
    <conditions type="gray">
      <condition id="c0" expression="#H['xyz'] == '3'" version-id="route-0=0;route-1=100"/>
      <condition id="c1" version-id="route-0=0;route-1=100"/>
    </conditions>
    <routes>
      <route id="route-0" type="version">{"svc":"1.0"}</route>
      <route id="route-1" type="version">{"svc":"1.1"}</route>
    </routes>
  </strategy-release>
</rule>`

	grayOldSome = `<rule>
  <strategy-release>
    <conditions type="gray">
      <condition id="c0" expression="#H['xyz'] == '3'" version-id="route-0=5;route-1=95"/>
      <condition id="c1" version-id="route-0=0;route-1=100"/>
    </conditions>
    <routes>
      <route id="route-0" type="version">{"svc":"1.0"}</route>
      <route id="route-1" type="version">{"svc":"1.1"}</route>
    </routes>
  </strategy-release>
</rule>`

	// The gray tier has no default: requests no condition matches fall
	// through to <strategy>, which still names 1.0.
	grayNoDefault = `<rule>
  <strategy><version>{"svc":"1.0"}</version></strategy>
  <strategy-release>
    <conditions type="gray">
      <condition id="c0" expression="#H['xyz'] == '3'" version-id="route-0=0;route-1=100"/>
    </conditions>
    <routes>
      <route id="route-0" type="version">{"svc":"1.0"}</route>
      <route id="route-1" type="version">{"svc":"1.1"}</route>
    </routes>
  </strategy-release>
</rule>`

	// One gray condition serves every route type: when c0 (region only)
	// is chosen, version falls to <strategy>, although c1 is a default
	// naming version.
	grayDefaultOtherType = `<rule>
  <strategy><version>{"svc":"1.1"}</version></strategy>
  <strategy-release>
    <conditions type="gray">
      <condition id="c0" expression="#H['xyz'] == '1'" region-id="reg=100"/>
      <condition id="c1" version-id="route-0=100"/>
    </conditions>
    <routes>
      <route id="route-0" type="version">{"svc":"1.0"}</route>
      <route id="reg" type="region">dev</route>
    </routes>
  </strategy-release>
</rule>`

	// A version-weight-id on a gray condition is ignored, as in Nepxion:
	// <strategy>'s version-weight decides.
	grayWeightIgnored = `<rule>
  <strategy><version-weight>{"svc":"1.0=0;1.1=100"}</version-weight></strategy>
  <strategy-release>
    <conditions type="gray">
      <condition id="c0" version-weight-id="vw=100"/>
    </conditions>
    <routes>
      <route id="vw" type="version-weight">{"svc":"1.0=100;1.1=0"}</route>
    </routes>
  </strategy-release>
</rule>`

	// Blue-green routes version, <strategy> weighs versions: both must
	// admit 1.0.
	versionAndWeight = `<rule>
  <strategy><version-weight>{"svc":"1.0=0;1.1=100"}</version-weight></strategy>
  <strategy-release>
    <conditions type="blue-green">
      <condition id="c0" expression="#H['xyz'] == '1'" version-id="route-0"/>
    </conditions>
    <routes>
      <route id="route-0" type="version">{"svc":"1.0"}</route>
    </routes>
  </strategy-release>
</rule>`

	weightRoute = `<rule>
  <strategy><version>{"svc":"1.1"}</version></strategy>
  <strategy-release>
    <conditions type="blue-green">
      <condition id="c0" expression="#H['xyz'] == '1'" version-weight-id="vw"/>
    </conditions>
    <routes>
      <route id="vw" type="version-weight">{"svc":"1.0=50;1.1=50"}</route>
    </routes>
  </strategy-release>
</rule>`

	plainWildcard = `<rule><strategy><version>1.*</version></strategy></rule>`
	alternatives  = `<rule><strategy><version>{"svc":"0.9; 1.0"}</version></strategy></rule>`
	otherOnly     = `<rule><strategy><version>{"other":"2.0"}</version></strategy></rule>`
	regionOnly    = `<rule><strategy><region>{"svc":"qa"}</region></strategy></rule>`
	defaultOnly   = `<rule><strategy><version>{"svc":"default"}</version></strategy></rule>`
)

func TestAnalyze(t *testing.T) {
	tests := []struct {
		give    string
		rule    string // "" for no rule
		version string
		want    bool
		reason  string // a part of the reason
	}{
		{"no rule", "", "1.0", true, "no rule in force"},
		{"strategy names it", strategyOld, "1.0", true, `strategy version routes to svc 1.0 (1.0)`},
		{"strategy excludes it", strategyNew, "1.0", false, `no version route admits svc 1.0: strategy version = "1.1"`},
		{"strategy names the new", strategyNew, "1.1", true, "strategy version"},
		{"weight 0", weightOldZero, "1.0", false, `every version-weight gives svc 1.0 weight 0: strategy version-weight = "1.0=0;1.1=100"`},
		{"weight 0, other version", weightOldZero, "1.1", true, "gives it weight (1.0=0;1.1=100)"},
		{"weight above 0", weightBoth, "1.0", true, ""},
		{"weight list: first match wins", weightWild, "1.0", false, ""},
		{"weight list: wildcard", weightWild, "1.2", true, ""},
		{"weight list: version not listed", weightBoth, "2.0", false, ""},
		{"blue-green route reaches it", blueGreenNew, "1.0", true, `blue-green condition "c0" -> route-0 routes to svc 1.0`},
		{"blue-green default shadows strategy", blueGreenDefault, "1.0", false, `blue-green default condition "c1" -> route-1`},
		{"blue-green default, new version", blueGreenDefault, "1.1", true, ""},
		{"gray weight 0 everywhere", grayOldZero, "1.0", false, ""},
		{"gray weight above 0 in one condition", grayOldSome, "1.0", true, `gray condition "c0" -> route-0 (weight 5)`},
		{"gray without default falls to strategy", grayNoDefault, "1.0", true, "strategy version"},
		{"gray default of another type does not shadow strategy", grayDefaultOtherType, "1.1", true, "strategy version"},
		{"gray default of another type, old version", grayDefaultOtherType, "1.0", true, `gray default condition "c1" -> route-0`},
		{"gray version-weight-id ignored", grayWeightIgnored, "1.0", false, `every version-weight gives svc 1.0 weight 0: strategy version-weight`},
		{"version admits, weight does not", versionAndWeight, "1.0", false, "every version-weight"},
		{"weight route in blue-green", weightRoute, "1.0", false, "no version route admits"},
		{"weight route, version admitted", weightRoute, "1.1", true, `blue-green condition "c0" -> vw gives it weight`},
		{"plain wildcard", plainWildcard, "1.7", true, ""},
		{"plain wildcard, no match", plainWildcard, "2.0", false, ""},
		{"alternatives", alternatives, "1.0", true, ""},
		{"service not in map", otherOnly, "1.0", true, "does not constrain svc"},
		{"region only", regionOnly, "1.0", true, "no version constraint"},
		{"empty version is default", defaultOnly, "", true, ""},
		{"default version excluded", strategyOld, "", false, "svc default"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			var r *rule.Rule
			if tt.rule != "" {
				r = mustParse(t, tt.rule)
			}
			got := Analyze(r, "svc", tt.version)
			if got.Receiving != tt.want {
				t.Errorf("Receiving = %v, want %v (reason: %s)", got.Receiving, tt.want, got.Reason)
			}
			if !strings.Contains(got.Reason, tt.reason) {
				t.Errorf("Reason = %q, want it to contain %q", got.Reason, tt.reason)
			}
		})
	}
}

// TestAnalyzeGuideSpecs runs the analysis over rules orchestrated from the
// specs of Nepxion's orchestration guide, the way the balancer produces them.
func TestAnalyzeGuideSpecs(t *testing.T) {
	inv := func(versions ...string) rule.Inventory {
		var is []rule.Instance
		for _, v := range versions {
			is = append(is, rule.Instance{Version: v})
		}
		return rule.Inventory{"svc": is, "other": {{Version: "1.0"}}}
	}
	tests := []struct {
		give     string
		spec     string
		versions []string
		want     map[string]bool
	}{
		{"fallback only", `service: [svc, other]`, []string{"1.0", "1.1"},
			map[string]bool{"1.0": true, "1.1": false}},
		{"blue-green", "service: [svc, other]\nblueGreen:\n  - {expression: \"#H['xyz'] == '1'\", route: green}\n  - {expression: \"#H['xyz'] == '2'\", route: blue}\n",
			[]string{"1.0", "1.1"}, map[string]bool{"1.0": true, "1.1": true}},
		{"gray cut over", "service: [svc, other]\ngray:\n  - {weight: [0, 100]}\n",
			[]string{"1.0", "1.1"}, map[string]bool{"1.0": false, "1.1": true}},
		{"gray canary", "service: [svc, other]\ngray:\n  - {expression: \"#H['xyz'] == '3'\", weight: [90, 10]}\n  - {weight: [100, 0]}\n",
			[]string{"1.0", "1.1"}, map[string]bool{"1.0": true, "1.1": true}},
		{"gray, three versions", "service: [svc, other]\ngray:\n  - {weight: [0, 100]}\n",
			[]string{"1.0", "1.1", "1.2"}, map[string]bool{"1.0": false, "1.1": true, "1.2": true}},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			spec, err := rule.ParseSpec([]byte(tt.spec))
			if err != nil {
				t.Fatal(err)
			}
			r, err := rule.Orchestrate(spec, inv(tt.versions...))
			if err != nil {
				t.Fatal(err)
			}
			for v, want := range tt.want {
				if got := Analyze(r, "svc", v); got.Receiving != want {
					t.Errorf("%s: Receiving = %v, want %v (%s)", v, got.Receiving, want, got.Reason)
				}
			}
		})
	}
}

func BenchmarkAnalyze(b *testing.B) {
	r := mustParse(b, grayOldSome)
	b.ReportAllocs()
	for b.Loop() {
		Analyze(r, "svc", "1.0")
	}
}
