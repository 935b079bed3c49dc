package rule

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func mustParse(t testing.TB, doc string) *Rule {
	t.Helper()
	r, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return r
}

func encodeXML(t testing.TB, r *Rule) string {
	t.Helper()
	b, err := EncodeXML(r)
	if err != nil {
		t.Fatalf("EncodeXML: %v", err)
	}
	return string(b)
}

func TestParseFullRule(t *testing.T) {
	src := readFile(t, "full.xml")
	r := mustParse(t, string(src))

	if got := encodeXML(t, r); got != string(src) {
		t.Errorf("EncodeXML differs from the canonical input:\n%s", got)
	}
	tests := []struct {
		name string
		give Value
		svc  string
		want string
		ok   bool
	}{
		{"strategy version map", r.Strategy.Version, "svc-b", "1.0;1.1", true},
		{"strategy version missing service", r.Strategy.Version, "svc-c", "", false},
		{"strategy region plain", r.Strategy.Region, "anything", "dev", true},
		{"strategy address", r.Strategy.Address, "svc-b", "10.0.0.7:8080", true},
		{"strategy version-weight", r.Strategy.VersionWeight, "svc-a", "1.0=90;1.1=10", true},
		{"strategy region-weight", r.Strategy.RegionWeight, "svc-z", "dev=85;qa=15", true},
		{"failover prefer", r.Failover.VersionPrefer, "svc-a", "1.0", true},
		{"failover plain", r.Failover.VersionFailover, "svc-q", "1.0", true},
		{"failover region-transfer", r.Failover.RegionTransfer, "svc-q", "dev", true},
		{"failover absent", r.Failover.ZoneFailover, "svc-a", "", false},
		{"blacklist id", r.Blacklist.ID, "svc-a", "20240531-100000-000-0001-001-001", true},
		{"blacklist address", r.Blacklist.Address, "svc-b", "3001;10.0.0.9:8080", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.give.For(tt.svc)
			if got != tt.want || ok != tt.ok {
				t.Errorf("For(%q) = %q, %v; want %q, %v", tt.svc, got, ok, tt.want, tt.ok)
			}
		})
	}
	rel := r.Release
	if len(rel.BlueGreen) != 2 || len(rel.Gray) != 2 || len(rel.Routes) != 4 {
		t.Fatalf("release: %d blue-green, %d gray, %d routes", len(rel.BlueGreen), len(rel.Gray), len(rel.Routes))
	}
	if c := rel.BlueGreen[0]; c.ID != "vip" || c.VersionID != "new" || c.RegionID != "qa" ||
		c.Expression.String() != "#H['user'] == 'vip' && #H['age'] >= '18'" {
		t.Errorf("condition vip = %+v", c)
	}
	if c := rel.Gray[1]; c.Expression != nil || c.VersionID != "old=95;new=5" {
		t.Errorf("default gray condition = %+v", c)
	}
	if rel.Sticky != "user-id" {
		t.Errorf("sticky = %q", rel.Sticky)
	}
	if v, ok := rel.Header.Get("xyz"); !ok || v != "1" || len(rel.Header) != 2 {
		t.Errorf("header = %v", rel.Header)
	}

	// The YAML version of the same rule is the same rule.
	ry, err := Parse(readFile(t, "full.yaml"))
	if err != nil {
		t.Fatalf("Parse YAML: %v", err)
	}
	if got := encodeXML(t, ry); got != string(src) {
		t.Errorf("full.yaml encodes differently:\n%s", got)
	}
}

// TestRoundTrip checks every encoder against every parser: encoding, parsing
// and encoding again gives the same bytes, and every format describes the
// same rule.
func TestRoundTrip(t *testing.T) {
	docs := []string{"full.xml", "full.yaml", "orchestration/basic.xml", "orchestration/bluegreen.xml", "orchestration/gray.xml", "orchestration/mixed.xml", "orchestration/time.xml", "orchestration/three.xml"}
	encoders := []struct {
		name string
		enc  func(*Rule) ([]byte, error)
	}{{"xml", EncodeXML}, {"json", EncodeJSON}, {"yaml", EncodeYAML}}
	for _, doc := range docs {
		r := mustParse(t, string(readFile(t, doc)))
		canon := encodeXML(t, r)
		for _, e := range encoders {
			t.Run(doc+"/"+e.name, func(t *testing.T) {
				b1, err := e.enc(r)
				if err != nil {
					t.Fatal(err)
				}
				r2, err := Parse(b1)
				if err != nil {
					t.Fatalf("Parse(%s output): %v\n%s", e.name, err, b1)
				}
				b2, err := e.enc(r2)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b1, b2) {
					t.Errorf("second encoding differs:\n%s\n---\n%s", b1, b2)
				}
				if got := encodeXML(t, r2); got != canon {
					t.Errorf("rule changed through %s:\n%s", e.name, got)
				}
			})
		}
	}
}

func TestParseFormats(t *testing.T) {
	tests := []struct {
		name string
		give string
		want string // canonical XML
	}{
		{"empty rule XML", `<rule/>`, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule/>\n"},
		{"empty rule JSON", `{}`, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule/>\n"},
		{"BOM and declaration", "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- c -->\n<rule><strategy><version>1.0</version></strategy></rule>",
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule>\n    <strategy>\n        <version>1.0</version>\n    </strategy>\n</rule>\n"},
		{"JSON with comments", "// pinned\n{\"strategy\": {/* all */ \"version\": \"1.0\"}}",
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule>\n    <strategy>\n        <version>1.0</version>\n    </strategy>\n</rule>\n"},
		{"YAML numbers keep their text", "strategy:\n  version: {svc-a: 1.10}\n",
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule>\n    <strategy>\n        <version>{\"svc-a\":\"1.10\"}</version>\n    </strategy>\n</rule>\n"},
		{"white space trimmed", "<rule><strategy><version>\n  {\"a\" : \" 1.0 \"}\n</version></strategy></rule>",
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule>\n    <strategy>\n        <version>{\"a\":\"1.0\"}</version>\n    </strategy>\n</rule>\n"},
		{"weights canonical", `<rule><strategy-release><conditions type="gray"><condition id="c" version-id=" r0 = 090 ; r1=10 "/></conditions><routes><route id="r0" type="version">1.0</route><route id="r1" type="version">1.1</route></routes></strategy-release></rule>`,
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule>\n    <strategy-release>\n        <conditions type=\"gray\">\n            <condition id=\"c\" version-id=\"r0=90;r1=10\"/>\n        </conditions>\n        <routes>\n            <route id=\"r0\" type=\"version\">1.0</route>\n            <route id=\"r1\" type=\"version\">1.1</route>\n        </routes>\n    </strategy-release>\n</rule>\n"},
		{"escapes", `<rule><strategy-release><conditions type="blue-green"><condition id="c" expression="#H['a'] &lt; '5' &amp;&amp; #H[&quot;b&quot;] == 'x'" address-id="r"/></conditions><routes><route id="r" type="address">{"a":"&lt;x&gt;&amp;"}</route></routes></strategy-release></rule>`,
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rule>\n    <strategy-release>\n        <conditions type=\"blue-green\">\n            <condition id=\"c\" expression=\"#H['a'] &lt; '5' &amp;&amp; #H[&quot;b&quot;] == 'x'\" address-id=\"r\"/>\n        </conditions>\n        <routes>\n            <route id=\"r\" type=\"address\">{\"a\":\"&lt;x&gt;&amp;\"}</route>\n        </routes>\n    </strategy-release>\n</rule>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := encodeXML(t, mustParse(t, tt.give)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestParseIgnoredNepxionSections(t *testing.T) {
	r := mustParse(t, `<rule>
    <register><blacklist filter-type="version"><service service-name="a" filter-value="1.0"/></blacklist></register>
    <discovery><weight><service consumer-service-name="a" provider-service-name="b" provider-weight-value="1.0=90;1.1=10" type="version"/></weight><blacklist/></discovery>
    <strategy><version>1.0</version></strategy>
</rule>`)
	// <discovery> routes, <blacklist> included; <register> is listed.
	if !slices.Equal(r.Ignored, []string{"register"}) {
		t.Errorf("Ignored = %q", r.Ignored)
	}
	if len(r.Discovery.Weights) != 1 || r.Discovery.Weights[0].Weights != "1.0=90;1.1=10" || r.Discovery.Hosts == nil {
		t.Errorf("Discovery = %+v", r.Discovery)
	}
	if v, _ := r.Strategy.Version.For("x"); v != "1.0" {
		t.Errorf("version = %q", v)
	}
}

func TestParseErrorPosition(t *testing.T) {
	tests := []struct {
		name       string
		give       string
		wantLine   int
		wantColumn int
		wantMsg    string
	}{
		{"XML bad gray weight", "<rule>\n  <strategy-release>\n    <conditions type=\"gray\">\n      <condition id=\"c1\" version-id=\"=\"/>\n    </conditions>\n  </strategy-release>\n</rule>",
			4, 7, `rule: line 4, column 7: strategy-release/conditions[type=gray]/condition[id=c1]/version-id: entry "=" has no route id`},
		{"JSON bad weight", "{\"strategy\": {\n  \"version-weight\": \"=\"}}", 2, 21, `strategy/version-weight: entry "=" has no route id`},
		{"YAML list as a value", "strategy:\n  version: [a]\n", 2, 12, `strategy/version: must be a string, not a list`},
		{"JSON syntax", "{\n  \"strategy\": {\n    \"version\": \"1.0\",\n  }\n}", 4, 3, "malformed JSON"},
		{"XML syntax", "<rule>\n<strategy>\n</rule>", 3, 0, "malformed XML"},
		{"YAML syntax", "strategy:\n  version: [1.0\n", 1, 0, "malformed YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.give))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Line != tt.wantLine || e.Column != tt.wantColumn || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q at %d:%d; want %q at %d:%d", err, e.Line, e.Column, tt.wantMsg, tt.wantLine, tt.wantColumn)
			}
		})
	}
}
