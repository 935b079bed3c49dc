package rule

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func TestParseSpecFields(t *testing.T) {
	s, err := ParseSpec([]byte(`
service: [a, b]
blueGreen:
  - {expression: "#H['x'] == '1'", route: NEW}
  - {expression: "#H['x'] == '0'", route: old}
gray:
  - {expression: " #H['x'] == '2' ", weight: ["90", 10]}
header: {xyz: 1, flag: true}
sort: time
sticky: "#H['user-id']"
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Services(); len(got) != 2 || got[1] != "b" {
		t.Errorf("Services() = %v", got)
	}
	s.Services()[0] = "changed"
	if s.Service[0] != "a" {
		t.Error("Services() shares the spec's slice")
	}
	if s.BlueGreen[0].Route != SideNew || s.BlueGreen[1].Route != SideOld || s.BlueGreen[1].Expression != "#H['x'] == '0'" {
		t.Errorf("blueGreen = %+v", s.BlueGreen)
	}
	if g := s.Gray[0]; g.Expression != "#H['x'] == '2'" || g.Weight != [2]int{90, 10} {
		t.Errorf("gray = %+v", g)
	}
	if v, _ := s.Header.Get("xyz"); v != "1" {
		t.Errorf("header xyz = %q", v)
	}
	if v, _ := s.Header.Get("flag"); v != "true" {
		t.Errorf("header flag = %q", v)
	}
	if s.Sort != SortTime || s.Sticky != "user-id" {
		t.Errorf("sort %v sticky %q", s.Sort, s.Sticky)
	}
	r, err := Orchestrate(s, Inventory{"a": {{Version: "1"}, {Version: "2"}}, "b": {{Version: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Release.Sticky != "user-id" || r.Release.BlueGreen[0].VersionID != "route-1" || r.Release.BlueGreen[1].VersionID != "route-0" {
		t.Errorf("orchestrated release = %+v", r.Release)
	}
}

func TestSpecRoundTrip(t *testing.T) {
	for _, name := range []string{"orchestration/basic.yaml", "orchestration/bluegreen.json", "orchestration/gray.yaml", "orchestration/mixed.json", "orchestration/time.yaml", "orchestration/three.yaml"} {
		s, err := ParseSpec(readFile(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, enc := range []func(*Spec) ([]byte, error){EncodeSpecJSON, EncodeSpecYAML} {
			b1, err := enc(s)
			if err != nil {
				t.Fatal(err)
			}
			s2, err := ParseSpec(b1)
			if err != nil {
				t.Fatalf("%s: re-parse: %v\n%s", name, err, b1)
			}
			b2, _ := enc(s2)
			if !bytes.Equal(b1, b2) {
				t.Errorf("%s: encodings differ:\n%s\n---\n%s", name, b1, b2)
			}
		}
	}
}

func TestOrchestrateRejectsInvalidSpec(t *testing.T) {
	tests := []struct {
		name string
		give *Spec
		want string
	}{
		{"nil", nil, "nil spec"},
		{"no services", &Spec{}, "service: empty service list"},
		{"zero weights", &Spec{Service: []string{"a"}, Gray: []GrayEntry{{Weight: [2]int{0, 0}}}}, "gray[1]/weight: both weights are 0"},
		{"negative weight", &Spec{Service: []string{"a"}, Gray: []GrayEntry{{Weight: [2]int{-1, 5}}}}, "gray[1]/weight: weight -1"},
		{"blue without green", &Spec{Service: []string{"a"}, BlueGreen: []BlueGreenEntry{{Route: SideNew}, {Route: SideNew}}}, "has 0 green and 2 blue"},
		{"bad expression", &Spec{Service: []string{"a"}, Gray: []GrayEntry{{Expression: "#H[", Weight: [2]int{1, 1}}}}, "gray[1]/expression"},
		{"unknown sort", &Spec{Service: []string{"a"}, Sort: Sort(7)}, "sort: unknown sort 7"},
		{"quote in service", &Spec{Service: []string{`a"b`}}, "service[1]: service name"},
		{"duplicate header", &Spec{Service: []string{"a"}, Header: Header{{"x", "1"}, {"x", "2"}}}, `header/x: duplicate header "x"`},
	}
	inv := Inventory{"a": {{Version: "1"}}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Orchestrate(tt.give, inv)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDuplicatesInLargeDocuments(t *testing.T) {
	var svc []string
	for i := range 40 {
		svc = append(svc, `"s`+strconv.Itoa(i)+`"`)
	}
	svc = append(svc, `"s7"`)
	if _, err := ParseSpec([]byte(`{"service": [` + strings.Join(svc, ",") + `]}`)); err == nil || !strings.Contains(err.Error(), `service[41]: duplicate service "s7"`) {
		t.Errorf("spec: err = %v", err)
	}
	var kv []string
	for i := range 40 {
		kv = append(kv, `"s`+strconv.Itoa(i)+`":"1"`)
	}
	kv = append(kv, `"s3":"2"`)
	if _, err := ParseValue("{" + strings.Join(kv, ",") + "}"); err == nil || !strings.Contains(err.Error(), `duplicate service "s3"`) {
		t.Errorf("value: err = %v", err)
	}
}

func TestParseDocument(t *testing.T) {
	tests := []struct {
		name     string
		give     string
		wantRule bool
	}{
		{"XML rule", string(readFile(t, "orchestration/mixed.xml")), true},
		{"YAML rule", string(readFile(t, "full.yaml")), true},
		{"JSON rule", `{"strategy": {"version": "1.0"}}`, true},
		{"YAML spec", string(readFile(t, "orchestration/mixed.yaml")), false},
		{"JSON spec with comments", string(readFile(t, "orchestration/mixed.json")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, s, err := ParseDocument([]byte(tt.give))
			if err != nil {
				t.Fatal(err)
			}
			if (r != nil) != tt.wantRule || (s != nil) == tt.wantRule {
				t.Errorf("rule %v, spec %v; want rule=%v", r != nil, s != nil, tt.wantRule)
			}
		})
	}
	if _, _, err := ParseDocument(make([]byte, MaxDocumentSize+1)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized document: %v", err)
	}
}

func TestEncodeUnencodable(t *testing.T) {
	// In a map the control character is JSON-escaped, which XML can carry.
	if _, err := EncodeXML(mustParse(t, `{"strategy": {"version": {"svc": "a\u0001b"}}}`)); err != nil {
		t.Errorf("map value: %v", err)
	}
	// A plain value is written as is, and XML 1.0 has no way to write it.
	r := mustParse(t, `{"strategy": {"version": "a\u0001b"}}`)
	if _, err := EncodeXML(r); !errors.Is(err, ErrUnencodable) || !strings.Contains(err.Error(), "strategy/version") {
		t.Errorf("EncodeXML err = %v, want ErrUnencodable at strategy/version", err)
	}
	j, err := EncodeJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := Parse(j)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := r2.Strategy.Version.For("svc"); v != "a\x01b" {
		t.Errorf("JSON round trip: %q", v)
	}
	if _, err := EncodeXML(nil); err == nil {
		t.Error("EncodeXML(nil) accepted")
	}
}
