package expr

import (
	"slices"
	"strings"
	"testing"
)

// TestNepxionNames checks the name extraction against Nepxion's pattern
// (Discovery 6.x.x, DiscoveryConstant.EXPRESSION_REGEX "\#H\['\S+'\]" and
// DiscoveryExpressionResolver.extractList).
func TestNepxionNames(t *testing.T) {
	tests := []struct {
		give string
		want []string
	}{
		{`#H['a'] == '1' && #H['b'] == '2'`, []string{"a", "b"}},
		{`#H['a']=='1'&&#H['b']=='2'`, []string{"a"}}, // greedy: one match, substringBetween takes a
		{`#H["a"] == '1'`, nil},
		{`#H[ 'a' ] == '1'`, nil},
		{`#H['a b'] == '1'`, nil},
		{"#H['a\x0Bb'] == '1'", nil}, // \x0B is white space to Java's \S
		{`#H['a'] == '1' and #H['a'] == '2'`, []string{"a", "a"}},
	}
	for _, tt := range tests {
		if got := NepxionNames(tt.give); !slices.Equal(got, tt.want) {
			t.Errorf("NepxionNames(%q) = %q, want %q", tt.give, got, tt.want)
		}
	}
}

func TestNotes(t *testing.T) {
	tests := []struct {
		give   string
		offset []int
		want   []string // one substring per note
	}{
		{`#H['a'] == '1' && #H['b'] == '2'`, nil, nil},
		{`#H["a"] == '1'`, []int{0}, []string{"write #H['a']"}},
		{`#H[ 'a' ] == '1'`, []int{0}, []string{"a Java hop reads null"}},
		{`#H['a']=='1'&&#H['b']=='2'`, []int{14}, []string{"does not see #H['b']"}},
		{`#H['a'] == 2`, []int{8}, []string{"always false"}},
		{`2 != #H['a']`, []int{2}, []string{"always true"}},
		{`#H['a'] < 2`, nil, nil},
		{`#H['a'] == '2'`, nil, nil},
		{`#H['a'] matches '[a-z]+'`, nil, nil},
		{`#H['a'] matches 'a.b'`, []int{16}, []string{"translated"}},
		{`#H['a'] matches #H['b']`, nil, nil},
	}
	for _, tt := range tests {
		c, err := Compile(tt.give)
		if err != nil {
			t.Fatalf("%s: %v", tt.give, err)
		}
		notes := c.Notes()
		if len(notes) != len(tt.want) {
			t.Errorf("%s: %d notes %v, want %d", tt.give, len(notes), notes, len(tt.want))
			continue
		}
		for i, n := range notes {
			if n.Offset != tt.offset[i] || !strings.Contains(n.Msg, tt.want[i]) {
				t.Errorf("%s: note %d = %d %q, want offset %d and %q", tt.give, i, n.Offset, n.Msg, tt.offset[i], tt.want[i])
			}
		}
	}
	if (*Condition)(nil).Notes() != nil {
		t.Error("nil condition has notes")
	}
}

func TestInvalid(t *testing.T) {
	_, err := Compile("#H['a'].startsWith('x')")
	if err == nil {
		t.Fatal("a method call compiled")
	}
	c := Invalid("#H['a'].startsWith('x')", err)
	if c.Match(Map{"a": "xyz"}) || c.Match(nil) {
		t.Error("an invalid condition matched")
	}
	if c.String() != "#H['a'].startsWith('x')" || c.Err() != err || c.Names() != nil || c.Notes() != nil {
		t.Errorf("String %q, Err %v, Names %v, Notes %v", c.String(), c.Err(), c.Names(), c.Notes())
	}
	if Invalid("x", nil).Err() == nil {
		t.Error("Invalid without error has no Err")
	}
	ok, _ := Compile("#H['a'] == '1'")
	if ok.Err() != nil || (*Condition)(nil).Err() != nil {
		t.Error("Err of a compiled condition")
	}
}
