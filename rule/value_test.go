package rule

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseValue(t *testing.T) {
	tests := []struct {
		give    string
		svc     string
		want    string
		wantOK  bool
		wantEnc string
	}{
		{`{"svc-a":"1.0","svc-b":"1.1"}`, "svc-b", "1.1", true, `{"svc-a":"1.0","svc-b":"1.1"}`},
		{` { "svc-a" : "1.0;1.1" } `, "svc-a", "1.0;1.1", true, `{"svc-a":"1.0;1.1"}`},
		{`{"svc-a":"1.0"}`, "svc-c", "", false, `{"svc-a":"1.0"}`},
		{`1.0;1.1`, "anything", "1.0;1.1", true, `1.0;1.1`},
		{`  dev  `, "x", "dev", true, `dev`},
		{``, "x", "", false, ``},
		{`{}`, "x", "", false, ``},
		{`{"a":""}`, "a", "", false, ``},
		{`{"a":"","b":"2"}`, "b", "2", true, `{"b":"2"}`},
		{`{"a":1.5}`, "a", "1.5", true, `{"a":"1.5"}`},
		{`{"a":-2e3}`, "a", "-2e3", true, `{"a":"-2e3"}`},
		{`{"a\"b":"x\\y\/z"}`, `a"b`, `x\y/z`, true, `{"a\"b":"x\\y/z"}`},
		{`{"s":"\u00e9\ud83d\ude00"}`, "s", "é😀", true, `{"s":"é😀"}`},
		{`{"s":"\ud800x"}`, "s", "\uFFFDx", true, `{"s":"` + "\uFFFD" + `x"}`},
		{"{\"s\":\"a\\tb\"}", "s", "a\tb", true, `{"s":"a\tb"}`},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			v, err := ParseValue(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := v.For(tt.svc)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("For(%q) = %q, %v; want %q, %v", tt.svc, got, ok, tt.want, tt.wantOK)
			}
			if v.String() != tt.wantEnc {
				t.Errorf("String() = %q, want %q", v.String(), tt.wantEnc)
			}
			if v.IsZero() != (tt.wantEnc == "") {
				t.Errorf("IsZero() = %v", v.IsZero())
			}
			again, err := ParseValue(v.String())
			if err != nil || !again.Equal(v) {
				t.Errorf("re-parse of %q: %v, %v", v.String(), again, err)
			}
		})
	}
}

func TestValueLargeMap(t *testing.T) {
	var b strings.Builder
	b.WriteByte('{')
	for i := range 20 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"svc-` + strconv.Itoa(i) + `":"v` + strconv.Itoa(i) + `"`)
	}
	b.WriteByte('}')
	v, err := ParseValue(b.String())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if got, ok := v.For("svc-" + strconv.Itoa(i)); !ok || got != "v"+strconv.Itoa(i) {
			t.Errorf("svc-%d = %q, %v", i, got, ok)
		}
	}
	if _, ok := v.For("svc-20"); ok {
		t.Error("svc-20 found")
	}
	if v.String() != b.String() || len(v.Services()) != 20 || v.Services()[3] != "svc-3" {
		t.Errorf("String/Services: %s %v", v, v.Services())
	}
}

func TestValueConstructors(t *testing.T) {
	v := MapValue([]string{"b", "a", "", "c", "b"}, map[string]string{"a": " 1 ", "b": "2", "c": ""})
	if v.String() != `{"b":"2","a":"1"}` {
		t.Errorf("MapValue = %s", v)
	}
	if p := PlainValue(" 1.0 "); !p.IsPlain() || p.String() != "1.0" || p.Services() != nil {
		t.Errorf("PlainValue = %v", p)
	}
	if !PlainValue("  ").IsZero() || !MapValue(nil, nil).IsZero() {
		t.Error("empty constructors must give the zero Value")
	}
	var zero Value
	if s, ok := zero.For("x"); ok || s != "" || zero.String() != "" || zero.IsPlain() {
		t.Error("zero Value constrains")
	}
}

func TestParseWeights(t *testing.T) {
	ws, err := ParseWeights(" 1.0 = 90 ; 1.1=10 ")
	if err != nil || len(ws) != 2 || ws[0] != (Weight{"1.0", 90}) || ws[1] != (Weight{"1.1", 10}) {
		t.Fatalf("ParseWeights = %v, %v", ws, err)
	}
	// Nepxion cannot read an entry without key, and a list without a
	// weight above 0 routes nowhere.
	for _, bad := range []string{"", ";", "=", "a=1;=", "1.0", "1.0=", "=5", "a=0", "a=1.5", "a=-3", "a=x;b=0"} {
		if _, err := ParseWeights(bad); err == nil {
			t.Errorf("ParseWeights(%q) accepted", bad)
		}
	}
	// The rest reads as Nepxion's WeightEntityWrapper reads it: an
	// unreadable weight is 0, a repeated key keeps its place and its last
	// weight, empty entries are skipped.
	for _, tt := range []struct {
		give string
		want []Weight
	}{
		{"a=1;a=2;b=1", []Weight{{"a", 2}, {"b", 1}}},
		{"a=+1", []Weight{{"a", 1}}},
		{"a=1;;b=2;", []Weight{{"a", 1}, {"b", 2}}},
		{"a=9999999", []Weight{{"a", 9999999}}},
		{"a=5;b=x;c;d=-1;e=2147483648", []Weight{{"a", 5}, {"b", 0}, {"c", 0}, {"d", 0}, {"e", 0}}},
	} {
		if got, err := ParseWeights(tt.give); err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseWeights(%q) = %v, %v; want %v", tt.give, got, err, tt.want)
		}
	}
}

// TestParseLenientWeights checks that version and region weights a Java hop
// reads load on a Go hop too, with Rule.Ignored saying what was read
// leniently.
func TestParseLenientWeights(t *testing.T) {
	r, err := Parse([]byte(`<rule><strategy>
  <version-weight>{"svc":"1.0=90;1.1"}</version-weight>
  <region-weight>{"svc":"dev=0;qa=0"}</region-weight>
</strategy><strategy-release><routes><route id="w" type="version-weight">1.0=x;1.1=10</route></routes></strategy-release></rule>`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`strategy/version-weight: service "svc": "1.1" has no weight: read as 1.1=0`,
		`strategy/region-weight: service "svc": all weights are 0 in "dev=0;qa=0": routes nowhere`,
		`strategy-release/routes/route[id=w]: "1.0=x" has no usable weight: read as 1.0=0`,
	}
	if !slices.Equal(r.Ignored, want) {
		t.Errorf("Ignored = %q, want %q", r.Ignored, want)
	}
}
