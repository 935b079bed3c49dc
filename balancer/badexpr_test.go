package balancer

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// TestRuleWithBrokenExpressionLoads checks that a rule whose expression
// does not compile is applied, as a Nepxion hop applies it (its evaluation
// throws per request, which counts as false), with a warning naming the
// condition.
func TestRuleWithBrokenExpressionLoads(t *testing.T) {
	const doc = `<rule><strategy-release>
  <conditions type="blue-green">
    <condition id="broken" expression="#H['a'].startsWith('x')" version-id="new"/>
  </conditions>
  <routes><route id="new" type="version">1.1</route></routes>
</strategy-release></rule>`
	src := discovery.NewStaticRules([]byte(doc))
	defer src.Close()
	core, logs := observer.New(zap.InfoLevel)
	b := newBalancer(t, staticFleet(1, "1.0", "1.1"), WithRuleSource(src), WithLogger(zap.New(core)))
	waitRule(t, b, "the rule", func(r *rule.Rule) bool { return r != nil })
	ws := logs.FilterMessage("rule condition never holds: its expression does not compile").All()
	if len(ws) != 1 || ws[0].Level != zap.WarnLevel || ws[0].ContextMap()["condition"] != "broken" {
		t.Fatalf("warnings %v, want one for condition broken", ws)
	}
}
