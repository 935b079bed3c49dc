package rule

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func addSeedFiles(f *testing.F, patterns ...string) {
	for _, p := range patterns {
		files, _ := filepath.Glob(filepath.Join("testdata", p))
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

func FuzzParse(f *testing.F) {
	addSeedFiles(f, "*.xml", "*.yaml", "orchestration/*.xml", "nepxion/*.xml", "nepxion/*.json", "nepxion/history/*.json")
	for _, s := range []string{
		`<rule/>`, `{}`, `{"strategy":{"version":"1.0"}}`,
		"strategy-release:\n  routes: [{id: a, type: version, value: {s: x}}]\n  header: {h: v}\n",
		`{"strategy-release":{"conditions":[{"type":"gray","sticky":"#H['u']","condition":[{"id":"c","version-id":"a=1"}]}],"routes":[{"id":"a","type":"version","value":"1"}]}}`,
		`<rule><strategy-release><header>{"a":"\u0001"}</header></strategy-release></rule>`,
		guideVersion, guideVersionWeight, guideRegionWeight, guideComposite,
		`<rule><register/><discovery><weight><service consumer-service-name="a" provider-service-name="b" provider-weight-value="1.0=x;1.1" type="Version"/><version provider-weight-value="1.0=1"/></weight><blacklist/></discovery><parameter/></rule>`,
		`{"discovery":"<discovery><version><service consumer-service-name='a' provider-service-name='b'/></version></discovery>"}`,
		`{"discoveryEntity":{"weightFilterEntity":{"regionWeightEntity":{"weightMap":{"dev":1}}}}}`,
		`<rule><discovery><whitelist filter-value="10.;;11."><service service-name="b" filter-value="172.16"/><service service-name="b"/><x/></whitelist><region><service consumer-service-name="a" provider-service-name="b" consumer-region-value="dev;qa" provider-region-value="dev"/></region></discovery></rule>`,
		`{"discoveryEntity":{"hostFilterEntity":{"filterType":"blacklist","filterValueList":["10."],"filterMap":{"b":null,"c":["1"]}},"regionFilterEntity":{"regionEntityMap":{"a":[{"consumerServiceName":"a","providerServiceName":"b","providerRegionValueList":["dev"]}]}}}}`,
	} {
		f.Add([]byte(s))
	}
	// The shape pre-checks: nesting at and beyond the limit, padding, and
	// alias expansion.
	f.Add([]byte(strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)))
	f.Add([]byte("<rule>" + strings.Repeat("<a>", maxDepth) + "<!-- <b> --><![CDATA[<c>]]>" + strings.Repeat("</a>", maxDepth) + "</rule>"))
	f.Add([]byte("<!DOCTYPE rule [<!ENTITY e \"<a>\">]><rule a='>' b=\"/>\"><strategy/></rule>"))
	f.Add([]byte("a: &a [x, x]\nb: &b [*a, *a]\nstrategy: {version: *b}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Parse(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		r.Decide(nil, 12345)
		r.Discovery.For("a", "1.0", "b")
		r.Discovery.HostsFor("b")
		r.Discovery.RegionsFor("a", "", "b")
		canon, err := EncodeJSON(r)
		if err != nil {
			t.Fatalf("EncodeJSON: %v", err)
		}
		for _, enc := range []struct {
			name string
			fn   func(*Rule) ([]byte, error)
		}{{"xml", EncodeXML}, {"json", EncodeJSON}, {"yaml", EncodeYAML}, {"nepxion-json", EncodeNepxionJSON}} {
			b1, err := enc.fn(r)
			if err != nil {
				if errors.Is(err, ErrUnencodable) {
					continue
				}
				t.Fatalf("%s: %v", enc.name, err)
			}
			r2, err := Parse(b1)
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%s", enc.name, err, b1)
			}
			b2, err := enc.fn(r2)
			if err != nil || !bytes.Equal(b1, b2) {
				t.Fatalf("%s: second encoding differs (%v):\n%s\n---\n%s", enc.name, err, b1, b2)
			}
			want, got := canon, r2
			// <discovery> travels with its kept XML text: not from
			// Nepxion's discoveryEntity, which no other notation holds.
			fromEntity := slices.ContainsFunc(r.kept, func(k keptSection) bool { return k.name == "discoveryEntity" })
			if enc.name != "nepxion-json" && !fromEntity && !reflect.DeepEqual(r2.Discovery, r.Discovery) {
				t.Fatalf("%s: <discovery> changed: %+v, was %+v", enc.name, r2.Discovery, r.Discovery)
			}
			if enc.name == "xml" || enc.name == "nepxion-json" {
				// Kept sections travel only where their notation does:
				// compare the rules without them.
				want, _ = EncodeJSON(withoutKept(r))
				got = withoutKept(r2)
			}
			if c2, _ := EncodeJSON(got); !bytes.Equal(c2, want) {
				t.Fatalf("rule changed through %s:\n%s\n---\n%s", enc.name, canon, c2)
			}
		}
	})
}

func FuzzParseSpec(f *testing.F) {
	addSeedFiles(f, "orchestration/*.yaml", "orchestration/*.json")
	for _, s := range []string{
		`{"service":["a"],"sticky":"#H['user-id']","sort":"time"}`,
		"service: a\nheader: {x: 1, y: true}\n",
		"service: [a, b]\nblueGreen: [{route: old}, {expression: \"#H['a'] == '1'\", route: new}]\n",
	} {
		f.Add([]byte(s))
	}
	inv := Inventory{}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T is not *Error: %v", err, err)
			}
			return
		}
		canon, err := EncodeSpecJSON(s)
		if err != nil {
			t.Fatalf("EncodeSpecJSON: %v", err)
		}
		for _, enc := range []struct {
			name string
			fn   func(*Spec) ([]byte, error)
		}{{"json", EncodeSpecJSON}, {"yaml", EncodeSpecYAML}} {
			b1, err := enc.fn(s)
			if err != nil {
				t.Fatalf("%s: %v", enc.name, err)
			}
			s2, err := ParseSpec(b1)
			if err != nil {
				t.Fatalf("%s output does not parse: %v\n%s", enc.name, err, b1)
			}
			if b2, _ := enc.fn(s2); !bytes.Equal(b1, b2) {
				t.Fatalf("%s: second encoding differs:\n%s\n---\n%s", enc.name, b1, b2)
			}
			if c2, _ := EncodeSpecJSON(s2); !bytes.Equal(c2, canon) {
				t.Fatalf("spec changed through %s:\n%s\n---\n%s", enc.name, canon, c2)
			}
		}
		// Every valid spec orchestrates, given instances, to a valid rule.
		clear(inv)
		for _, svc := range s.Service {
			inv[svc] = []Instance{{Version: "2.0"}, {Version: "1.0"}}
		}
		r, err := Orchestrate(s, inv)
		if err != nil {
			t.Fatalf("Orchestrate: %v", err)
		}
		j, err := EncodeJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Parse(j); err != nil {
			t.Fatalf("orchestrated rule does not parse: %v\n%s", err, j)
		}
	})
}

func FuzzParseValue(f *testing.F) {
	for _, s := range []string{`{"a":"1.0","b":"1.1;1.2"}`, "1.0", "", `{"a":1e5}`, `{"a":"\ud800"}`, "{", `{"a":"x","a":"y"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseValue(s)
		if err != nil {
			return
		}
		if !v.IsZero() && !v.IsPlain() {
			if want := newMapValue(v.v.pairs).String(); v.String() != want {
				t.Fatalf("ParseValue(%q).String() = %q, want the canonical %q", s, v.String(), want)
			}
		}
		v2, err := ParseValue(v.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", v.String(), err)
		}
		if !v2.Equal(v) {
			t.Fatalf("%q -> %q -> %q", s, v.String(), v2.String())
		}
	})
}

// withoutKept returns a copy of r without its kept sections, for
// comparing rules across notations that cannot carry them all.
func withoutKept(r *Rule) *Rule {
	c := *r
	c.kept = nil
	return &c
}
