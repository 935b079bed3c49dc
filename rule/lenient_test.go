package rule

import (
	"slices"
	"strings"
	"testing"
)

// TestParseLenient holds rules Nepxion's XmlConfigParser accepts (it reads
// what it knows and skips the rest), so a Go hop must load them too. Each
// names what Rule.Ignored must list.
func TestParseLenient(t *testing.T) {
	tests := []struct {
		name        string
		give        string
		wantIgnored []string
		check       func(t *testing.T, r *Rule)
	}{
		{"other root name", `<rules/>`, []string{"<rules> (the root element, read as <rule>)"}, nil},
		{"unknown section", `<rule><strategy-foo/></rule>`, []string{"strategy-foo"}, nil},
		{"unknown section twice", `<rule><customization/><customization/></rule>`, []string{"customization"}, nil},
		{"unknown strategy child", `<rule><strategy><versions>1.0</versions></strategy></rule>`, []string{"strategy/versions"}, nil},
		{"stray text", `<rule>hello<strategy/></rule>`, nil, nil},
		{"attribute on a section", `<rule version="1"><strategy id="x"/></rule>`, []string{"rule@version", "strategy@id"}, nil},
		{"old value= attribute", bg(`<condition id="c" expression="#H['a'] == '1'" version-id="r0" value="1"/>`),
			[]string{"strategy-release/conditions[type=blue-green]/condition[id=c]@value"}, nil},
		{"unknown element in a condition", bg(`<condition id="c" version-id="r0"><note/></condition>`),
			[]string{"strategy-release/conditions[type=blue-green]/condition[id=c]/note"}, nil},
		{"unknown release element", `<rule><strategy-release><customization/></strategy-release></rule>`, []string{"strategy-release/customization"}, nil},
		{"unknown failover child", `<rule><strategy-failover><version-preferred>1.0</version-preferred></strategy-failover></rule>`, []string{"strategy-failover/version-preferred"}, nil},
		{"JSON unknown condition key", `{"strategy-release": {"conditions": [{"type": "gray", "condition": [{"id": "g", "version_id": "r0=1"}]}]}}`,
			[]string{"strategy-release/conditions[type=gray]/condition[1]/version_id"}, nil},
		{"JSON unknown section", `{"customization": {"a": [1, 2]}, "strategy": {"version": "1.0"}}`, []string{"customization"}, nil},
		{"legacy header= attribute", bg(`<condition id="c" header="#H['a'] == '1'" version-id="r1"/>`), nil, func(t *testing.T, r *Rule) {
			if got := r.Release.BlueGreen[0].expression(); got != "#H['a'] == '1'" {
				t.Errorf("expression = %q", got)
			}
			d := r.Decide(Header{{"a", "1"}}, 0)
			if v, _ := d.Version.For("x"); v != "1.1" {
				t.Errorf("version = %q, want 1.1", v)
			}
		}},
		{"type in upper case", wrapRelease(`<conditions type="BLUE-GREEN"><condition id="c" version-id="r1"/></conditions>`), nil, func(t *testing.T, r *Rule) {
			if len(r.Release.BlueGreen) != 1 {
				t.Errorf("blue-green = %+v", r.Release.BlueGreen)
			}
		}},
		{"route type in upper case", `<rule><strategy-release><routes><route id="a" type="VERSION">1.0</route><route id="b" type="Version-Weight">1.0=1</route></routes></strategy-release></rule>`, nil, func(t *testing.T, r *Rule) {
			if r.Release.Routes[0].Type != TypeVersion || r.Release.Routes[1].Type != TypeVersionWeight {
				t.Errorf("routes = %+v", r.Release.Routes)
			}
		}},
		{"one id, two route types", `<rule><strategy-release>
			<conditions type="blue-green"><condition id="c" version-id="x" region-id="x"/></conditions>
			<routes><route id="x" type="version">1.1</route><route id="x" type="region">qa</route></routes>
			</strategy-release></rule>`, nil, func(t *testing.T, r *Rule) {
			d := r.Decide(nil, 0)
			v, _ := d.Version.For("s")
			g, _ := d.Region.For("s")
			if v != "1.1" || g != "qa" {
				t.Errorf("version %q region %q, want 1.1 and qa", v, g)
			}
		}},
		{"duplicate route id and type: the first wins", `<rule><strategy-release><conditions type="blue-green"><condition id="c" version-id="a"/></conditions><routes><route id="a" type="version">1.0</route><route id="a" type="version">1.1</route></routes></strategy-release></rule>`, nil, func(t *testing.T, r *Rule) {
			if v, _ := r.Decide(nil, 0).Version.For("s"); v != "1.0" {
				t.Errorf("version = %q, want 1.0", v)
			}
		}},
		// Nepxion loads a rule without compiling its expressions; one SpEL
		// cannot parse, or graylane does not support, throws at every
		// request on a Java hop, which counts as false. So the rule loads,
		// the condition never holds (the default decides), and the
		// expression is written back unchanged.
		{"expression that does not compile", bg(`<condition id="c" expression="#H['a'] === '1'" version-id="r0"/><condition id="d" version-id="r1"/>`),
			[]string{`strategy-release/conditions[type=blue-green]/condition[id=c]/expression: never holds: "#H['a'] === '1'": column 11: unexpected '='`}, func(t *testing.T, r *Rule) {
				if got := r.Release.BlueGreen[0].expression(); got != "#H['a'] === '1'" {
					t.Errorf("expression = %q", got)
				}
				if d := r.Decide(Header{{"a", "1"}}, 0); d.ConditionID != "d" {
					t.Errorf("condition %q, want the default d", d.ConditionID)
				}
			}},
		{"expression graylane does not support", bg(`<condition id="c" expression="#H['a'].startsWith('x')" version-id="r0"/>`),
			[]string{`strategy-release/conditions[type=blue-green]/condition[id=c]/expression: never holds: "#H['a'].startsWith('x')": column 9: method calls are not supported (.startsWith)`}, func(t *testing.T, r *Rule) {
				if d := r.Decide(Header{{"a", "xyz"}}, 0); d.ConditionID != "" {
					t.Errorf("condition %q, want none", d.ConditionID)
				}
			}},
		{"duplicate condition id", bg(`<condition id="c" expression="#H['a'] == '1'" version-id="r0"/><condition id="c" version-id="r1"/>`), nil, nil},
		{"condition without reference", bg(`<condition id="c" expression="#H['a'] == '1'"/>`), nil, nil},
		{"two defaults: the first of a type wins", bg(`<condition id="a" version-id="r0"/><condition id="b" version-id="r1"/>`), nil, func(t *testing.T, r *Rule) {
			if v, _ := r.Decide(nil, 0).Version.For("s"); v != "1.0" {
				t.Errorf("version = %q, want 1.0", v)
			}
		}},
		{"route id with '='", `<rule><strategy-release><routes><route id="a=1" type="version">1.0</route></routes></strategy-release></rule>`, nil, nil},
		{"empty route", `<rule><strategy-release><routes><route id="a" type="version"> </route></routes></strategy-release></rule>`, nil, nil},
		// A reference to a missing route is kept for the round trip; at
		// request time the condition yields no value for that type.
		{"blue-green: unknown route id", bg(`<condition id="c1" version-id="route-9"/>`), nil, func(t *testing.T, r *Rule) {
			if r.Release.BlueGreen[0].VersionID != "route-9" {
				t.Errorf("VersionID = %q", r.Release.BlueGreen[0].VersionID)
			}
			if d := r.Decide(nil, 0); !d.Version.IsZero() {
				t.Errorf("version = %v, want none", d.Version)
			}
		}},
		{"blue-green: route of another type", bg(`<condition id="c" version-id="reg"/>`), nil, nil},
		{"blue-green: weights", bg(`<condition id="c" version-id="r0=100"/>`), nil, nil},
		// Nepxion draws among the ids that name a route and leaves out the
		// others.
		{"gray: unknown route id", gray(`<condition id="g" version-id="r0=50;r7=50"/>`), nil, func(t *testing.T, r *Rule) {
			if r.Release.Gray[0].VersionID != "r0=50;r7=50" {
				t.Errorf("VersionID = %q", r.Release.Gray[0].VersionID)
			}
			for _, draw := range []uint64{0, 1 << 63, ^uint64(0)} {
				if v, _ := r.Decide(nil, draw).Version.For("s"); v != "1.0" {
					t.Errorf("draw %x: version = %q, want 1.0", draw, v)
				}
			}
		}},
		// Nepxion reads a weight it cannot use as 0, and a repeated id with
		// its last weight.
		{"gray: odd weights", gray(`<condition id="g" version-id="r0=ninety;r1=10;r0;r0=-1;;r1=5000000"/>`), []string{
			`strategy-release/conditions[type=gray]/condition[id=g]/version-id: "r0=ninety" has no usable weight: read as r0=0`,
			`strategy-release/conditions[type=gray]/condition[id=g]/version-id: "r0" has no weight: read as r0=0`,
			`strategy-release/conditions[type=gray]/condition[id=g]/version-id: route id "r0" repeated: the last weight counts`,
			`strategy-release/conditions[type=gray]/condition[id=g]/version-id: "r0=-1" has no usable weight: read as r0=0`,
			`strategy-release/conditions[type=gray]/condition[id=g]/version-id: route id "r1" repeated: the last weight counts`,
		}, func(t *testing.T, r *Rule) {
			if got := r.Release.Gray[0].VersionID; got != "r0=0;r1=5000000" {
				t.Errorf("VersionID = %q", got)
			}
			for _, draw := range []uint64{0, 1 << 63, ^uint64(0)} {
				if v, _ := r.Decide(nil, draw).Version.For("s"); v != "1.1" {
					t.Errorf("draw %x: version = %q, want 1.1", draw, v)
				}
			}
		}},
		{"gray: all weights 0", gray(`<condition id="g" version-id="r0=0;r1=0"/>`), nil, func(t *testing.T, r *Rule) {
			if d := r.Decide(nil, 1<<63); !d.Version.IsZero() {
				t.Errorf("version = %v, want none", d.Version)
			}
		}},
		{"gray: no route known", gray(`<condition id="g" version-id="r7=50;r8=50"/>`), nil, func(t *testing.T, r *Rule) {
			for _, draw := range []uint64{0, 1 << 63, ^uint64(0)} {
				if d := r.Decide(nil, draw); !d.Version.IsZero() {
					t.Errorf("draw %x: version = %v, want none", draw, d.Version)
				}
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse([]byte(tt.give))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !slices.Equal(r.Ignored, tt.wantIgnored) {
				t.Errorf("Ignored = %q, want %q", r.Ignored, tt.wantIgnored)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			roundTrip(t, r)
		})
	}
}

// roundTrip checks each encoding of r parses back to a rule that encodes
// to the same bytes.
func roundTrip(t *testing.T, r *Rule) {
	t.Helper()
	for _, enc := range []struct {
		name string
		fn   func(*Rule) ([]byte, error)
	}{{"xml", EncodeXML}, {"json", EncodeJSON}, {"yaml", EncodeYAML}, {"nepxion-json", EncodeNepxionJSON}} {
		b1, err := enc.fn(r)
		if err != nil {
			t.Fatalf("%s: %v", enc.name, err)
		}
		r2, err := Parse(b1)
		if err != nil {
			t.Fatalf("%s output does not parse: %v\n%s", enc.name, err, b1)
		}
		if b2, _ := enc.fn(r2); string(b2) != string(b1) {
			t.Errorf("%s: second encoding differs:\n%s\n---\n%s", enc.name, b1, b2)
		}
	}
}

// TestParseStillRejects holds what Nepxion rejects too.
func TestParseStillRejects(t *testing.T) {
	tests := []struct{ give, want string }{
		{bg(`<condition id="c" expression="#H['a'] == '1'" header="#H['b'] == '1'" version-id="r0"/>`), "both expression and header"},
		{`<rule><register/><register/></rule>`, "duplicate <register> section"},
		{`<rule><parameter/><parameter/></rule>`, "duplicate <parameter> section"},
		{`<rule><strategy-release><routes/><routes/></strategy-release></rule>`, "duplicate <routes> element"},
		{`<rule><strategy-release><header>{}</header><header>{}</header></strategy-release></rule>`, "duplicate <header> element"},
		{`<rule><strategy a="1" a="2"/></rule>`, `attribute "a" repeated`},
		{`<rule><strategy a="1" b="" c="" d="" e="" f="" g="" h="" i="" a="2"/></rule>`, `attribute "a" repeated`},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.give))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.give, err, tt.want)
		}
	}
}

func TestIgnoredIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("<rule><strategy>")
	for i := range 200 {
		b.WriteString("<x" + strings.Repeat("y", i) + "/>")
	}
	b.WriteString("</strategy></rule>")
	r := mustParse(t, b.String())
	if len(r.Ignored) != maxIgnored+1 || r.Ignored[maxIgnored] != "... and 136 more" {
		t.Errorf("Ignored has %d entries, last %q", len(r.Ignored), r.Ignored[len(r.Ignored)-1])
	}
}

// TestKeptSections checks sections graylane does not use survive every
// encoder and the trips between them.
func TestKeptSections(t *testing.T) {
	src := `<?xml version="1.0" encoding="UTF-8"?>
<rule>
    <register>
        <!-- kept as written -->
        <blacklist filter-value="10.10;11.11">
            <service service-name="a" filter-value="172.16"/>
        </blacklist>
    </register>
    <strategy>
        <version>1.0</version>
    </strategy>
    <parameter>
        <service service-name="a" tag-key="version" tag-value="1.0" key="k" value="v &amp; w"/>
    </parameter>
</rule>
`
	r := mustParse(t, src)
	x, err := EncodeXML(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(x) != src {
		t.Errorf("XML round trip:\n%s\nwant\n%s", x, src)
	}
	j, _ := EncodeJSON(r)
	rj := mustParse(t, string(j))
	if x2, _ := EncodeXML(rj); string(x2) != src {
		t.Errorf("XML -> JSON -> XML:\n%s\nwant\n%s\nJSON:\n%s", x2, src, j)
	}
	y, _ := EncodeYAML(r)
	ry := mustParse(t, string(y))
	if x3, _ := EncodeXML(ry); string(x3) != src {
		t.Errorf("XML -> YAML -> XML:\n%s\nwant\n%s", x3, src)
	}
	roundTrip(t, r)
}

// TestKeptXMLFromJSON checks a string a JSON document carries under an
// unused section's name is written into XML only when it is well-formed
// XML that does not hold sections graylane reads.
func TestKeptXMLFromJSON(t *testing.T) {
	tests := []struct {
		give    string
		written bool
	}{
		{`{"register": "<register><count filter-value=\"1\"/></register>"}`, true},
		{`{"register": "<register"}`, false},
		{`{"register": "<register/><strategy><version>2</version></strategy>"}`, false},
		{`{"register": "<register/>text"}`, false},
		{`{"register": "<discovery/>"}`, false},
	}
	for _, tt := range tests {
		r := mustParse(t, tt.give)
		x, err := EncodeXML(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := Parse(x)
		if err != nil {
			t.Fatalf("%s: XML does not parse: %v\n%s", tt.give, err, x)
		}
		if written := len(r2.kept) > 0; written != tt.written {
			t.Errorf("%s: written = %v, want %v\n%s", tt.give, written, tt.written, x)
		}
		if !r2.Strategy.Version.IsZero() {
			t.Errorf("%s: the kept text changed the rule:\n%s", tt.give, x)
		}
	}
}
