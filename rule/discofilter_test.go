package rule

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The region rule of Nepxion/DiscoveryGuide, branch 6.x.x,
// discovery-guide-test-automation/src/test/resources/discovery-rule-region.xml
// (testdata/nepxion/automation--discovery-rule-region.xml), exercised by
// DiscoveryGuideTestCases.testRegionRuleGray: a in dev calls b in dev, a
// in qa calls b in qa.
func TestDiscoveryRegionsForGuide(t *testing.T) {
	b, err := os.ReadFile("testdata/nepxion/automation--discovery-rule-region.xml")
	if err != nil {
		t.Fatal(err)
	}
	r := mustParse(t, string(b))
	const a, bb = "discovery-guide-service-a", "discovery-guide-service-b"
	for _, tt := range []struct{ consumer, region, provider, want string }{
		{a, "dev", bb, "dev"},
		{a, "qa", bb, "qa"},
		{a, "prod", bb, ";"},                         // entries name a->b, none for prod: nothing
		{a, "", bb, ";"},                             // no region reads "default", as in Nepxion
		{a, "dev", strings.ToUpper(bb), "dev"},       // providers compare without case
		{"DISCOVERY-GUIDE-SERVICE-A", "dev", bb, ""}, // consumers exactly
		{bb, "dev", a, ""},                           // no entry for b->a
		{"", "dev", bb, ""},                          // an anonymous caller
	} {
		if got := r.Discovery.RegionsFor(tt.consumer, tt.region, tt.provider); got != tt.want {
			t.Errorf("RegionsFor(%q, %q, %q) = %q, want %q", tt.consumer, tt.region, tt.provider, got, tt.want)
		}
	}
	if len(r.Ignored) != 0 {
		t.Errorf("Ignored = %q", r.Ignored)
	}
}

// TestDiscoveryRegionsFor follows RegionFilterDiscoveryListener
// (Nepxion/Discovery, 6.x.x, discovery-plugin-framework-starter,
// listener/discovery/RegionFilterDiscoveryListener.java) entry by entry.
func TestDiscoveryRegionsFor(t *testing.T) {
	r := mustParse(t, `<rule><discovery><region>
  <service consumer-service-name="a" provider-service-name="b" consumer-region-value="dev;qa" provider-region-value="dev"/>
  <service consumer-service-name="a" provider-service-name="b" consumer-region-value="qa" provider-region-value="qa;common"/>
  <service consumer-service-name="a" provider-service-name="c" provider-region-value="x"/>
  <service consumer-service-name="a" provider-service-name="d" consumer-region-value="dev"/>
  <service consumer-service-name="a" provider-service-name="e"/>
  <service consumer-service-name="a" provider-service-name="f" consumer-region-value="default" provider-region-value="default"/>
</region></discovery></rule>`)
	for _, tt := range []struct{ region, provider, want string }{
		{"dev", "b", "dev"},
		{"qa", "b", "dev;qa;common"}, // every matching entry adds its regions
		{"prod", "b", ";"},
		{"prod", "c", "x"},   // no consumer-region-value: every consumer region
		{"dev", "d", ""},     // a matching entry without provider regions: no filter
		{"qa", "d", ";"},     // defined, not matched: nothing
		{"qa", "e", ""},      // neither list: no filter
		{"", "f", "default"}, // the caller's missing region is "default"
		{"dev", "f", ";"},
		{"dev", "z", ""},
	} {
		if got := r.Discovery.RegionsFor("a", tt.region, tt.provider); got != tt.want {
			t.Errorf("RegionsFor(a, %q, %q) = %q, want %q", tt.region, tt.provider, got, tt.want)
		}
	}
	var empty Discovery
	if got := empty.RegionsFor("a", "dev", "b"); got != "" {
		t.Errorf("no section: %q", got)
	}
}

// The <discovery> blacklist of the complete example rule printed in
// Nepxion/Discovery's README (branch 6.x.x; testdata/nepxion-cases/wiki/
// example-full.xml) and of the example service's rule.xml
// (discovery-springcloud-examples/discovery-springcloud-example-service/
// src/main/resources/rule.xml): every provider hides hosts starting with
// 10.10 and 11.11, discovery-springcloud-example-b those starting with
// 172.16 too.
func TestDiscoveryHostsForNepxion(t *testing.T) {
	for _, f := range []string{"testdata/nepxion-cases/wiki/example-full.xml", "testdata/nepxion/example-service--rule.xml", "testdata/nepxion/example-service--rule.json"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r := mustParse(t, string(b))
		for _, tt := range []struct{ provider, want string }{
			{"discovery-springcloud-example-b", "10.10;11.11;172.16"},
			{"discovery-springcloud-example-c", "10.10;11.11"},
		} {
			if got, white := r.Discovery.HostsFor(tt.provider); got != tt.want || white {
				t.Errorf("%s: HostsFor(%q) = %q, %v, want %q, false", f, tt.provider, got, white, tt.want)
			}
		}
		if got := r.Discovery.RegionsFor("discovery-springcloud-example-b", "qa", "discovery-springcloud-example-c"); got != "qa" {
			t.Errorf("%s: b in qa -> c: %q", f, got)
		}
		for _, ig := range r.Ignored {
			if strings.HasPrefix(ig, "discovery") {
				t.Errorf("%s: ignored %q", f, ig)
			}
		}
	}
}

// TestDiscoveryHostsFor covers the host filter's reading: global and
// per-service values, a whitelist, a service entry without values, a
// service named twice (the last entry wins, as in Nepxion's map), blanks.
func TestDiscoveryHostsFor(t *testing.T) {
	r := mustParse(t, `<rule><discovery><whitelist filter-value=" 10.0.0.1 ;; 192.168.">
  <service service-name="b" filter-value="172.16"/>
  <service service-name="c"/>
  <service service-name="b" filter-value="172.17;172.18"/>
</whitelist></discovery></rule>`)
	for _, tt := range []struct{ provider, want string }{
		{"b", "10.0.0.1;192.168.;172.17;172.18"},
		{"B", "10.0.0.1;192.168.;172.17;172.18"},
		{"c", "10.0.0.1;192.168."},
		{"", "10.0.0.1;192.168."},
	} {
		if got, white := r.Discovery.HostsFor(tt.provider); got != tt.want || !white {
			t.Errorf("HostsFor(%q) = %q, %v, want %q, true", tt.provider, got, white, tt.want)
		}
	}
	if n := len(r.Discovery.Hosts.Services); n != 2 {
		t.Errorf("services = %+v", r.Discovery.Hosts.Services)
	}
	only := mustParse(t, `<rule><discovery><blacklist><service service-name="b" filter-value="10."/></blacklist></discovery></rule>`)
	if got, _ := only.Discovery.HostsFor("c"); got != "" {
		t.Errorf("a provider no entry names: %q", got)
	}
	if got, _ := only.Discovery.HostsFor("b"); got != "10." {
		t.Errorf("b: %q", got)
	}
	blank := mustParse(t, `<rule><discovery><blacklist filter-value=""><service service-name="b"/></blacklist></discovery></rule>`)
	if got, _ := blank.Discovery.HostsFor("b"); got != "" || !blank.Discovery.IsZero() {
		t.Errorf("an empty blacklist filters %q (IsZero %v)", got, blank.Discovery.IsZero())
	}
}

// TestDiscoveryFilterErrors checks that what XmlConfigParser.parseHostFilter
// and parseRegionFilter reject is rejected, with the place.
func TestDiscoveryFilterErrors(t *testing.T) {
	tests := []invalidAt{
		{"blacklist and whitelist", "<rule><discovery><blacklist/>\n<whitelist/></discovery></rule>", 2, 1, "discovery/whitelist: a second <blacklist> or <whitelist>"},
		{"two blacklists", "<rule><discovery><blacklist/><blacklist/></discovery></rule>", 1, 30, "a second <blacklist> or <whitelist>"},
		{"service without name", "<rule><discovery><blacklist>\n  <service filter-value=\"10.\"/></blacklist></discovery></rule>", 2, 3, "discovery/blacklist/service[1]: missing attribute service-name"},
		{"two regions", "<rule><discovery><region/><region/></discovery></rule>", 1, 27, "duplicate <region>"},
		{"region without consumer", "<rule><discovery><region><service provider-service-name=\"b\"/></region></discovery></rule>", 1, 26, "discovery/region/service[1]: missing attribute consumer-service-name"},
		{"region without provider", "<rule><discovery><region><service consumer-service-name=\"a\"/></region></discovery></rule>", 1, 26, "missing attribute provider-service-name"},
		{"JSON string", `{"discovery": "<discovery><whitelist><service/></whitelist></discovery>"}`, 1, 15, "missing attribute service-name"},
		{"Nepxion filter type", `{"discoveryEntity": {"hostFilterEntity": {"filterType": "GREYLIST"}}}`, 1, 57, `unknown filter type "GREYLIST"`},
		{"Nepxion no filter type", `{"discoveryEntity": {"hostFilterEntity": {"filterValueList": ["10."]}}}`, 1, 42, "missing filterType"},
		{"Nepxion bad list", `{"discoveryEntity": {"regionFilterEntity": {"regionEntityMap": {"a": [{"providerRegionValueList": [[]]}]}}}}`, 1, 100, "must be a string"},
	}
	checkInvalidAt(t, tests)
}

// TestDiscoveryFilterNotations checks that the host and region filters
// read alike from XML, graylane's JSON and YAML, and Nepxion's JSON (the
// example service's rule.xml and rule.json of Nepxion/Discovery, 6.x.x,
// describe the same rule), and that Nepxion's JSON written from them reads
// back equal and encodes to the same bytes.
func TestDiscoveryFilterNotations(t *testing.T) {
	x, err := os.ReadFile("testdata/nepxion/example-service--rule.xml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := os.ReadFile("testdata/nepxion/example-service--rule.json")
	if err != nil {
		t.Fatal(err)
	}
	r := mustParse(t, string(x))
	want := r.Discovery
	if want.Hosts == nil || len(want.Regions) != 4 {
		t.Fatalf("Discovery = %+v", want)
	}
	if got := mustParse(t, string(j)).Discovery; !reflect.DeepEqual(got.Hosts, want.Hosts) || !reflect.DeepEqual(got.Regions, want.Regions) {
		t.Errorf("rule.json: %+v %+v\nrule.xml: %+v %+v", got.Hosts, got.Regions, want.Hosts, want.Regions)
	}
	for _, enc := range []func(*Rule) ([]byte, error){EncodeXML, EncodeJSON, EncodeYAML, EncodeNepxionJSON} {
		b1, err := enc(r)
		if err != nil {
			t.Fatal(err)
		}
		r2 := mustParse(t, string(b1))
		if got := r2.Discovery; !reflect.DeepEqual(got.Hosts, want.Hosts) || !reflect.DeepEqual(got.Regions, want.Regions) {
			t.Errorf("through\n%s\ngot %+v %+v", b1, got.Hosts, got.Regions)
		}
		if b2, err := enc(r2); err != nil || string(b2) != string(b1) {
			t.Errorf("second encoding differs (%v):\n%s\n---\n%s", err, b1, b2)
		}
	}
	wl := mustParse(t, `<rule><discovery><whitelist><service service-name="b"/><service service-name="c" filter-value=""/></whitelist></discovery></rule>`)
	b1, err := EncodeNepxionJSON(wl)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b1), `"filterType": "WHITELIST"`) || !reflect.DeepEqual(mustParse(t, string(b1)).Discovery.Hosts, wl.Discovery.Hosts) {
		t.Errorf("whitelist through Nepxion's JSON:\n%s", b1)
	}
}

// TestDiscoveryFilterMerge checks that a service rule with only a host or
// region filter in <discovery> counts as having the section.
func TestDiscoveryFilterMerge(t *testing.T) {
	svc := mustParse(t, `<rule><discovery><region><service consumer-service-name="a" provider-service-name="b" provider-region-value="dev"/></region></discovery></rule>`)
	group := mustParse(t, `<rule><discovery><blacklist filter-value="10."/></discovery></rule>`)
	m := Merge(svc, group)
	if m.Discovery.Hosts != nil || len(m.Discovery.Regions) != 1 {
		t.Errorf("merged %+v", m.Discovery)
	}
	m = Merge(mustParse(t, `<rule/>`), group)
	if got, _ := m.Discovery.HostsFor("b"); got != "10." {
		t.Errorf("the group's blacklist: %q", got)
	}
}
