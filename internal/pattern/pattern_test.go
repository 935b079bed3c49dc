package pattern

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlob(t *testing.T) {
	tests := []struct {
		give, s string
		want    bool
	}{
		{"1.0", "1.0", true},
		{"1.0", "1.00", false},
		{"1.*", "1.0", true},
		{"1.*", "1.", true},
		{"1.*", "2.0", false},
		{"1.*", "2.1", false},
		{"*", "", true},
		{"?", "", false},
		{"?", "a", true},
		{"?", "é", true},
		{"??", "é", false},
		{"?.0", "1.0", true},
		{"?.0", "10.0", false},
		{"1.?", "1.10", false},
		{"*.0", "1.2.0", true},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXbYbZ", false},
		{"*a*b", "xxaxxb", true},
		{"*a*b", "xxaxxbc", false},
		{"**", "x", true},
		{"a**", "a", true},
		{"10.0.*.1", "10.0.3.1", true},
		{"10.0.*.1", "10.0.3.2", false},
		{"é*", "éa", true},
		{"*é", "aé", true},
		{"?é", "éé", true},
		{"", "", true},
		{"", "x", false},
		{"exact", "exact", true},
	}
	for _, tt := range tests {
		if got := Glob(tt.give, tt.s); got != tt.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", tt.give, tt.s, got, tt.want)
		}
	}
}

func TestMatcher(t *testing.T) {
	tests := []struct {
		give string
		s    string
		want bool
	}{
		{"1.0;1.1", "1.1", true},
		{"1.0; 1.1 ", "1.1", true},
		{" 1.0 ", "1.0", true},
		{"1.0;1.1", "1.2", false},
		{"1.0;2.*", "2.5", true},
		{"0.9; 1.*", "1.3", true},
		{"0.9; 1.*", "0.95", false},
		{"?;x", "y", true},
		{";;", "", false},
		{"", "", false},
		{" ", "", false},
	}
	for _, tt := range tests {
		m := Compile(tt.give)
		if got := m.Match(tt.s); got != tt.want {
			t.Errorf("Compile(%q).Match(%q) = %v, want %v", tt.give, tt.s, got, tt.want)
		}
		if got := MatchAny(tt.give, tt.s); got != tt.want {
			t.Errorf("MatchAny(%q, %q) = %v, want %v", tt.give, tt.s, got, tt.want)
		}
		if empty := strings.Trim(tt.give, " ;") == ""; m.Empty() != empty {
			t.Errorf("Compile(%q).Empty() = %v, want %v", tt.give, m.Empty(), empty)
		}
	}
	var zero Matcher
	if zero.Match("") || !zero.Empty() {
		t.Error("the zero Matcher matches something")
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	m := Compile("1.0;1.1;2.*;?.9")
	if n := testing.AllocsPerRun(100, func() {
		m.Match("2.5")
		m.Match("3.0")
		MatchAny("1.0;1.1;2.*;?.9", "3.0")
	}); n != 0 {
		t.Errorf("%v allocations per match, want 0", n)
	}
}

// globRegexp is an independent reading of a single pattern, for the fuzz
// target: '*' is (?s:.*), '?' is (?s:.), everything else is literal.
func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s)`)
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`$`)
	return regexp.MustCompile(b.String())
}

// FuzzMatcher checks, for any value and string: matching never panics; a
// compiled Matcher and MatchAny agree; an exact alternative matches itself;
// '*' alone matches everything; and, for valid UTF-8, Glob agrees with the
// same pattern read as a regular expression.
func FuzzMatcher(f *testing.F) {
	for _, s := range []string{"1.0;1.1", "1.*", "?", "*a*b*", "", ";", "é?*", "\xff*", "?.0", " 1.0 ", "a**", "0.9; 1.*"} {
		f.Add(s, "1.0")
		f.Add(s, "é1.")
	}
	f.Fuzz(func(t *testing.T, value, s string) {
		m := Compile(value)
		if got, want := MatchAny(value, s), m.Match(s); got != want {
			t.Fatalf("MatchAny(%q, %q) = %v, Compile.Match = %v", value, s, got, want)
		}
		if !Glob("*", s) {
			t.Fatalf("* does not match %q", s)
		}
		for _, e := range m.exact {
			if !m.Match(e) {
				t.Fatalf("exact alternative %q does not match itself", e)
			}
		}
		if len(value) > 64 || !utf8.ValidString(value) || !utf8.ValidString(s) {
			return
		}
		if got, want := Glob(value, s), globRegexp(value).MatchString(s); got != want {
			t.Fatalf("Glob(%q, %q) = %v, regexp says %v", value, s, got, want)
		}
	})
}

func BenchmarkMatch(b *testing.B) {
	m := Compile("1.0;1.1;2.*;?.9")
	for _, bb := range []struct {
		name string
		s    string
	}{{"exact", "1.1"}, {"glob", "2.5"}, {"miss", "3.0"}} {
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				m.Match(bb.s)
			}
		})
	}
	b.Run("MatchAny", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			MatchAny("1.0;1.1;2.*;?.9", "3.0")
		}
	})
}
