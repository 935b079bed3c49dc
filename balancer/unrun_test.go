package balancer

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestUnrunVersionsWarnedOnce applies a valid rule that routes svc-b to a
// version no instance runs: the balancer warns once per change of what is
// missing (not per snapshot), the debug view lists it, and it says when
// the version runs after all.
func TestUnrunVersionsWarnedOnce(t *testing.T) {
	const doc = `<rule><strategy>
  <version>{"svc-a":"1.*","svc-b":"2.0;1.1"}</version>
  <version-weight>{"svc-a":"1.0=90;9.9=0"}</version-weight>
</strategy></rule>`
	src := discovery.NewStaticRules([]byte(doc))
	defer src.Close()
	reg := staticFleet(1, "1.0", "1.1")
	core, logs := observer.New(zap.InfoLevel)
	b := newBalancer(t, reg, WithRuleSource(src), WithLogger(zap.New(core)))
	waitRule(t, b, "the rule", func(r *rule.Rule) bool { return r != nil })
	const warning = "the rule routes to versions no instance runs; requests routed there fail or fail over"
	pick := func(svc string) {
		t.Helper()
		_, done, err := b.Pick(context.Background(), svc)
		if err != nil {
			t.Fatal(err)
		}
		done(nil)
	}
	warnings := func() []string {
		var out []string
		for _, e := range logs.FilterMessage(warning).All() {
			out = append(out, fmt.Sprint(e.ContextMap()["versions"]))
		}
		return out
	}
	pick("svc-a")
	pick("svc-b")
	if got := warnings(); len(got) != 1 || got[0] != "map[svc-b:[2.0]]" {
		t.Fatalf("warnings %q, want one for svc-b 2.0", got)
	}
	// Snapshots that change nothing missing: no more warnings.
	for i := range 3 {
		if err := reg.Add(discovery.Instance{ID: fmt.Sprint("b", i), Service: "svc-b", Address: "10.9.0.1", Port: 9000 + i, Version: "1." + fmt.Sprint(2+i)}); err != nil {
			t.Fatal(err)
		}
		pick("svc-b")
		pick("svc-a")
	}
	if got := warnings(); len(got) != 1 {
		t.Fatalf("warnings %q, want still one", got)
	}
	st := b.Debug()
	if st.Rule == nil || fmt.Sprint(st.Rule.Unrun) != "map[svc-b:[2.0]]" {
		t.Errorf("debug view: unrun %v, want svc-b 2.0", st.Rule)
	}
	var js struct {
		Rule struct {
			Unrun map[string][]string `json:"unrunVersions"`
		} `json:"rule"`
	}
	if err := json.Unmarshal(getDebug(t, b.DebugHandler(), "/?format=json", nil).Body.Bytes(), &js); err != nil || fmt.Sprint(js.Rule.Unrun) != "map[svc-b:[2.0]]" {
		t.Errorf("debug JSON: unrunVersions %v (%v)", js.Rule.Unrun, err)
	}
	if body := getDebug(t, b.DebugHandler(), "/?format=html", nil).Body.String(); !strings.Contains(body, `id="rule-unrun">svc-b: 2.0<br>`) {
		t.Errorf("debug page does not list svc-b 2.0 as unrun")
	}

	// 2.0 starts: said once, and the debug view is clear.
	if err := reg.Add(fleet("svc-b", 1, "2.0").Instances...); err != nil {
		t.Fatal(err)
	}
	pick("svc-b")
	if n := logs.FilterMessage("every version the rule routes to runs again").Len(); n != 1 {
		t.Errorf("%d notes that every version runs, want 1", n)
	}
	if st := b.Debug(); len(st.Rule.Unrun) != 0 {
		t.Errorf("debug view: unrun %v, want none", st.Rule.Unrun)
	}
	// A new rule missing another version: a new warning, at once.
	if err := src.Set([]byte(`<rule><strategy><version>{"svc-a":"3.0"}</version></strategy></rule>`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for logs.FilterMessage(warning).Len() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // the rule goroutine warns right after applying it
	}
	if got := warnings(); len(got) != 2 || got[1] != "map[svc-a:[3.0]]" {
		t.Fatalf("warnings %q, want a second one for svc-a 3.0", got)
	}
}

func TestNamedVersions(t *testing.T) {
	r, err := rule.Parse([]byte(`<rule>
<strategy><version>1.0</version><version-weight>{"svc-a":"1.1=10;1.2=0"}</version-weight></strategy>
<strategy-release>
<conditions type="blue-green"><condition id="c" expression="#H['a'] == '1'" version-id="r1"/></conditions>
<routes>
<route id="r1" type="version">{"svc-a":" 2.0 ; 1.0","svc-b":"4.0"}</route>
<route id="r2" type="version-weight">{"svc-a":"3.0=50;3.1=50"}</route>
<route id="r3" type="region">{"svc-a":"dev"}</route>
</routes>
</strategy-release>
<strategy-failover><version-prefer>{"svc-a":"8.0"}</version-prefer></strategy-failover>
</rule>`))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(namedVersions(r, "svc-a")); got != "[1.0 1.1 2.0 3.0 3.1]" {
		t.Errorf("svc-a: %s", got)
	}
	if got := fmt.Sprint(namedVersions(r, "svc-c")); got != "[1.0]" {
		t.Errorf("svc-c: %s", got)
	}
}
