package rule

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The DiscoveryGuide rules below come from Nepxion/DiscoveryGuide, branch
// 6.x.x, discovery-guide-test-automation/src/test/resources/, used by
// DiscoveryGuideTestCases.java (testVersionRuleGray, testVersionWeightRuleGray,
// testRegionWeightRuleGray, testVersionCompositeRuleGray).
const (
	guideVersion = `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <discovery>
        <version>
            <service consumer-service-name="discovery-guide-service-a" provider-service-name="discovery-guide-service-b" consumer-version-value="1.0" provider-version-value="1.0"/>
            <service consumer-service-name="discovery-guide-service-a" provider-service-name="discovery-guide-service-b" consumer-version-value="1.1" provider-version-value="1.1"/>
        </version>
    </discovery>
</rule>`
	guideVersionWeight = `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <discovery>
        <weight>
            <service provider-service-name="discovery-guide-service-a" provider-weight-value="1.0=75;1.1=25" type="version"/>
            <service provider-service-name="discovery-guide-service-b" provider-weight-value="1.0=35;1.1=65" type="version"/>
        </weight>
    </discovery>
</rule>`
	guideRegionWeight = `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <discovery>
        <weight>
            <region provider-weight-value="dev=95;qa=5"/>
        </weight>
    </discovery>
</rule>`
	guideComposite = `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <discovery>
        <version>
            <service consumer-service-name="discovery-guide-service-a" provider-service-name="discovery-guide-service-b" consumer-version-value="1.0" provider-version-value="1.0"/>
            <service consumer-service-name="discovery-guide-service-a" provider-service-name="discovery-guide-service-b" consumer-version-value="1.1" provider-version-value="1.1"/>
        </version>

        <weight>
            <service consumer-service-name="discovery-guide-gateway" provider-service-name="discovery-guide-service-a" provider-weight-value="1.0=40;1.1=60" type="version"/>
            <service consumer-service-name="discovery-guide-zuul" provider-service-name="discovery-guide-service-a" provider-weight-value="1.0=40;1.1=60" type="version"/>
        </weight>
    </discovery>
</rule>`
)

func TestDiscoveryFor(t *testing.T) {
	const a, b, gw = "discovery-guide-service-a", "discovery-guide-service-b", "discovery-guide-gateway"
	tests := []struct {
		name                       string
		doc                        string
		consumer, version, provide string
		wantV, wantVW, wantRW      string
	}{
		// testVersionRuleGray: a 1.0 calls only b 1.0, a 1.1 only b 1.1.
		{"a 1.0 calls b 1.0", guideVersion, a, "1.0", b, "1.0", "", ""},
		{"a 1.1 calls b 1.1", guideVersion, a, "1.1", b, "1.1", "", ""},
		{"a 1.2 calls no b", guideVersion, a, "1.2", b, ";", "", ""},
		{"provider case ignored", guideVersion, a, "1.0", strings.ToUpper(b), "1.0", "", ""},
		{"a without version is free", guideVersion, a, "", b, "", "", ""},
		{"other consumer is free", guideVersion, gw, "1.0", b, "", "", ""},
		{"other provider is free", guideVersion, a, "1.0", "c", "", "", ""},
		// testVersionWeightRuleGray: 75/25 on a, 35/65 on b, for any caller.
		{"weights of a", guideVersionWeight, gw, "1.0", a, "", "1.0=75;1.1=25", ""},
		{"weights of b", guideVersionWeight, a, "1.0", b, "", "1.0=35;1.1=65", ""},
		// testRegionWeightRuleGray: dev=95;qa=5 for everyone.
		{"region weights", guideRegionWeight, a, "1.0", b, "", "", "dev=95;qa=5"},
		// testVersionCompositeRuleGray.
		{"composite: gateway weighs a", guideComposite, gw, "1.0", a, "", "1.0=40;1.1=60", ""},
		{"composite: a filters b", guideComposite, a, "1.1", b, "1.1", "", ""},
		{"composite: a is not weighted for b", guideComposite, "x", "1.0", a, "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			v, vw, rw := r.Discovery.For(tt.consumer, tt.version, tt.provide)
			if v != tt.wantV || vw != tt.wantVW || rw != tt.wantRW {
				t.Errorf("For = %q %q %q, want %q %q %q", v, vw, rw, tt.wantV, tt.wantVW, tt.wantRW)
			}
		})
	}
}

// TestDiscoveryWeightPrecedence follows WeightEntityWrapper.getWeight
// (Nepxion/Discovery, 6.x.x): the caller's entry, then the entry for every
// caller, then <weight><version>; a key takes the first list's weight.
func TestDiscoveryWeightPrecedence(t *testing.T) {
	r := mustParse(t, `<rule><discovery><weight>
  <service consumer-service-name="a" provider-service-name="b" provider-weight-value="1.0=10" type="VERSION"/>
  <service consumer-service-name="a" provider-service-name="b" provider-weight-value="1.0=99" type="version"/>
  <service provider-service-name="b" provider-weight-value="1.0=20;1.1=30" type="version"/>
  <version provider-weight-value="1.1=1;1.2=5"/>
</weight></discovery></rule>`)
	if _, vw, _ := r.Discovery.For("a", "1.0", "b"); vw != "1.0=10;1.1=30;1.2=5" {
		t.Errorf("a->b: %q", vw)
	}
	if _, vw, _ := r.Discovery.For("z", "1.0", "b"); vw != "1.0=20;1.1=30;1.2=5" {
		t.Errorf("z->b: %q", vw)
	}
	if _, vw, _ := r.Discovery.For("a", "1.0", "c"); vw != "1.1=1;1.2=5" {
		t.Errorf("a->c: %q", vw)
	}
}

// TestDiscoveryErrors checks that what Nepxion's XmlConfigParser rejects in
// <discovery> is rejected, with the place.
func TestDiscoveryErrors(t *testing.T) {
	tests := []invalidAt{
		{"weight without type", "<rule>\n<discovery><weight>\n  <service provider-service-name=\"b\" provider-weight-value=\"1.0=1\"/>\n</weight></discovery></rule>",
			3, 3, "discovery/weight/service[1]: missing attribute type"},
		{"unknown weight type", "<rule><discovery><weight><service type=\"zone\" provider-service-name=\"b\" provider-weight-value=\"1\"/></weight></discovery></rule>",
			1, 26, `unknown weight type "zone"`},
		{"weight without value", "<rule><discovery><weight><region/></weight></discovery></rule>",
			1, 26, "discovery/weight/region: missing attribute provider-weight-value"},
		{"version without provider", "<rule><discovery><version><service consumer-service-name=\"a\"/></version></discovery></rule>",
			1, 27, "missing attribute provider-service-name"},
		{"two versions", "<rule><discovery><version/>\n<version/></discovery></rule>", 2, 1, "duplicate <version>"},
		{"two weight regions", "<rule><discovery><weight><region provider-weight-value=\"a=1\"/><region provider-weight-value=\"a=1\"/></weight></discovery></rule>", 1, 63, "duplicate <region>"},
		{"JSON string", `{"discovery": "<discovery><weight><region/></weight></discovery>"}`, 1, 15, "discovery/weight/region: missing attribute provider-weight-value"},
		{"Nepxion JSON", `{"discoveryEntity": {"weightFilterEntity": {"versionWeightEntityList": [{"type": "ZONE", "providerServiceName": "b"}]}}}`,
			1, 82, `unknown weight type "ZONE"`},
	}
	checkInvalidAt(t, tests)
}

// invalidAt is a document Parse must reject as an invalid rule, with the
// line and column of the error and a part of its message.
type invalidAt struct {
	name, doc string
	line, col int
	msg       string
}

// checkInvalidAt parses each document in a subtest of its name and checks
// the error Parse returns.
func checkInvalidAt(t *testing.T, tests []invalidAt) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want an invalid-rule *Error", err)
			}
			if e.Line != tt.line || e.Column != tt.col || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("err = %q at %d:%d, want %q at %d:%d", err, e.Line, e.Column, tt.msg, tt.line, tt.col)
			}
		})
	}
}

// TestDiscoveryNotations checks that the section reads the same from XML,
// from graylane's JSON and YAML (which carry it as XML text), and from
// Nepxion's JSON (discoveryEntity, as Jackson writes the RuleEntity), and
// that the XML round trip stays byte for byte.
func TestDiscoveryNotations(t *testing.T) {
	r := mustParse(t, guideComposite)
	want := r.Discovery
	if len(want.Versions) != 2 || len(want.Weights) != 2 {
		t.Fatalf("Discovery = %+v", want)
	}
	x, err := EncodeXML(r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(x), `provider-weight-value="1.0=40;1.1=60" type="version"/>`) {
		t.Errorf("the XML encoding lost the section:\n%s", x)
	}
	for _, enc := range []func(*Rule) ([]byte, error){EncodeXML, EncodeJSON, EncodeYAML} {
		b, err := enc(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := mustParse(t, string(b)).Discovery; !reflect.DeepEqual(got, want) {
			t.Errorf("through\n%s\ngot %+v\nwant %+v", b, got, want)
		}
	}
	nep := `{"discoveryEntity": {"versionFilterEntity": {"versionEntityMap": {"discovery-guide-service-a": [
  {"consumerServiceName": "discovery-guide-service-a", "providerServiceName": "discovery-guide-service-b", "consumerVersionValueList": ["1.0"], "providerVersionValueList": ["1.0"]},
  {"consumerServiceName": "discovery-guide-service-a", "providerServiceName": "discovery-guide-service-b", "consumerVersionValueList": ["1.1"], "providerVersionValueList": ["1.1"]}]}},
 "regionFilterEntity": null,
 "weightFilterEntity": {"versionWeightEntityMap": {
   "discovery-guide-gateway": [{"consumerServiceName": "discovery-guide-gateway", "providerServiceName": "discovery-guide-service-a", "type": "VERSION", "weightMap": {"1.0": 40, "1.1": 60}}],
   "discovery-guide-zuul": [{"consumerServiceName": "discovery-guide-zuul", "providerServiceName": "discovery-guide-service-a", "type": "VERSION", "weightMap": {"1.0": 40, "1.1": 60}}]},
  "versionWeightEntityList": [], "versionWeightEntity": null,
  "regionWeightEntityMap": {}, "regionWeightEntityList": [], "regionWeightEntity": null}},
 "strategyEntity": null}`
	if got := mustParse(t, nep).Discovery; !reflect.DeepEqual(got, want) {
		t.Errorf("Nepxion JSON: got %+v\nwant %+v", got, want)
	}
}

// TestDiscoveryToNepxionJSON checks that a <discovery> read from XML
// reaches Nepxion's JSON as discoveryEntity, means the same there, and
// encodes to the same bytes again.
func TestDiscoveryToNepxionJSON(t *testing.T) {
	r := mustParse(t, strings.Replace(guideComposite, "</weight>",
		`<service provider-service-name="discovery-guide-service-b" provider-weight-value="1.0=x;1.1=7;1.1=9" type="version"/>
            <region provider-weight-value="dev=95;qa=5"/></weight>`, 1))
	b1, err := EncodeNepxionJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	r2 := mustParse(t, string(b1))
	for _, p := range [][3]string{
		{"discovery-guide-service-a", "1.0", "discovery-guide-service-b"},
		{"discovery-guide-service-a", "1.1", "discovery-guide-service-b"},
		{"discovery-guide-service-a", "1.2", "discovery-guide-service-b"},
		{"discovery-guide-gateway", "1.0", "discovery-guide-service-a"},
		{"discovery-guide-zuul", "", "discovery-guide-service-b"},
	} {
		v1, vw1, rw1 := r.Discovery.For(p[0], p[1], p[2])
		v2, vw2, rw2 := r2.Discovery.For(p[0], p[1], p[2])
		// Weights travel as numbers: "x" becomes its reading, 0.
		vw1 = strings.ReplaceAll(strings.ReplaceAll(vw1, "=x", "=0"), ";1.1=9", "")
		if v1 != v2 || vw1 != vw2 || rw1 != rw2 {
			t.Errorf("%v: XML %q %q %q, Nepxion JSON %q %q %q", p, v1, vw1, rw1, v2, vw2, rw2)
		}
	}
	b2, err := EncodeNepxionJSON(r2)
	if err != nil || string(b2) != string(b1) {
		t.Errorf("second encoding differs (%v):\n%s\n---\n%s", err, b1, b2)
	}
}
