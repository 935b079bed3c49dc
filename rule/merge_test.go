package rule

import (
	"reflect"
	"slices"
	"testing"
)

// TestMerge checks the section-by-section assembly of a service rule over
// its group's, after Nepxion's RuleEntityWrapper.assemble (Discovery
// 6.x.x, discovery-commons/.../entity/RuleEntityWrapper.java): each
// section the service rule has wins whole, each it lacks comes from the
// group rule.
func TestMerge(t *testing.T) {
	group := mustParse(t, `<rule>
  <register><blacklist-ip-address>10.0.0.1</blacklist-ip-address></register>
  <strategy><version>1.0</version><region>dev</region></strategy>
  <strategy-release>
    <conditions type="blue-green"><condition id="c1" expression="#H['a'] == '1'" version-id="v1"/></conditions>
    <routes><route id="v1" type="version">1.1</route></routes>
  </strategy-release>
  <strategy-failover><version-failover>1.0</version-failover></strategy-failover>
  <strategy-blacklist><id>bad-*</id></strategy-blacklist>
</rule>`)
	service := mustParse(t, `<rule>
  <strategy><version>2.0</version></strategy>
  <strategy-failover><version-prefer>2.0</version-prefer></strategy-failover>
  <parameter><x>1</x></parameter>
</rule>`)
	m := Merge(service, group)
	if got := m.Strategy.Version.String(); got != "2.0" {
		t.Errorf("strategy version %q, want the service's 2.0", got)
	}
	if !m.Strategy.Region.IsZero() {
		t.Errorf("strategy region %q: the service's <strategy> wins whole", m.Strategy.Region.String())
	}
	if got := m.Blacklist.ID.String(); got != "bad-*" {
		t.Errorf("blacklist id %q, want the group's", got)
	}
	if got := m.Failover.VersionPrefer.String(); got != "2.0" || !m.Failover.VersionFailover.IsZero() {
		t.Errorf("failover %+v: the service's <strategy-failover> wins whole", m.Failover)
	}
	if len(m.Release.BlueGreen) != 1 {
		t.Fatalf("release %+v, want the group's", m.Release)
	}
	names := func(r *Rule) []string {
		var n []string
		for _, k := range r.kept {
			n = append(n, k.name)
		}
		slices.Sort(n)
		return n
	}
	if got := names(m); !slices.Equal(got, []string{"parameter", "register"}) {
		t.Errorf("kept sections %v", got)
	}
	// The group's release decides, with the service's strategy as fallback.
	d := m.Decide(Map{"a": "1"}, 0)
	if d.Version.String() != "1.1" {
		t.Errorf("decided version %q, want the group condition's 1.1", d.Version.String())
	}
	d = m.Decide(Map{"a": "2"}, 0)
	if d.Version.String() != "2.0" {
		t.Errorf("fallback version %q, want the service strategy's 2.0", d.Version.String())
	}
	// The inputs are unchanged and share nothing the result writes.
	if group.Strategy.Version.String() != "1.0" || service.Blacklist.ID.String() != "" {
		t.Error("Merge modified its arguments")
	}
	if &m.Release.BlueGreen[0] == &group.Release.BlueGreen[0] {
		t.Error("merged rule shares its conditions with the group rule")
	}
	if Merge(nil, group).Strategy.Version.String() != "1.0" || Merge(service, nil).Strategy.Version.String() != "2.0" || Merge(nil, nil) != nil {
		t.Error("Merge with a nil side")
	}
	if _, err := EncodeXML(m); err != nil {
		t.Errorf("merged rule does not encode: %v", err)
	}
}

// TestMergeKnowsEverySection fails when Rule gains an exported field: a
// section Merge does not name stays the service rule's, and a group rule's
// is lost for every service with a rule of its own, so Merge must fill it
// from the group rule when the service rule lacks it.
func TestMergeKnowsEverySection(t *testing.T) {
	known := []string{"Strategy", "Release", "Failover", "Blacklist", "Discovery", "Ignored"}
	rt := reflect.TypeFor[Rule]()
	for i := range rt.NumField() {
		if f := rt.Field(i); f.IsExported() && !slices.Contains(known, f.Name) {
			t.Errorf("Rule.%s is not merged: add it to Merge (and here)", f.Name)
		}
	}
}
