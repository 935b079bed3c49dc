package expr

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// TestSimplePatternAgainstRegexp checks the one-pass matcher against the
// regexp engine (with the Java translation) on generated patterns of
// single-character items and generated values: they must agree on every
// pair, and the patterns the matcher takes must be the expected ones.
func TestSimplePatternAgainstRegexp(t *testing.T) {
	atoms := []string{"a", "b", "-", "_", "1", "x", "/", ":", "@", `\.`, `\-`, `\d`, `\w`, "[0-9]", "[a-z]", "[a-c]", "[A-Z0-9]", "[a-z_-]", "[-.]", "[ab]", "[0-9.]"}
	counts := []string{"", "", "", "*", "+", "?", "{2}", "{1,}", "{0,2}", "{3,}", "{2,4}", "{0}"}
	alphabet := []string{"a", "b", "c", "x", "0", "1", "5", "9", "-", "_", ".", "/", ":", "@", "A", "Z", " ", "é", "\n", "ab", "12"}
	rng := rand.New(rand.NewPCG(7, 11))
	simple, pairs := 0, 0
	for range 4000 {
		var b strings.Builder
		for range 1 + rng.IntN(4) {
			b.WriteString(atoms[rng.IntN(len(atoms))])
			b.WriteString(counts[rng.IntN(len(counts))])
		}
		p := b.String()
		sp := compileSimple(p)
		if sp == nil {
			continue
		}
		re, err := compilePattern(p)
		if err != nil {
			t.Fatalf("pattern %q: simple, but the regexp path rejects it: %v", p, err)
		}
		simple++
		for range 60 {
			var v strings.Builder
			for range rng.IntN(9) {
				v.WriteString(alphabet[rng.IntN(len(alphabet))])
			}
			s := v.String()
			pairs++
			if got, want := sp.match(s), re.MatchString(s); got != want {
				t.Fatalf("%q matches %q: one pass says %v, regexp %v", s, p, got, want)
			}
		}
	}
	if simple < 1000 {
		t.Errorf("only %d of 4000 generated patterns were simple", simple)
	}
	t.Logf("%d simple patterns, %d pairs", simple, pairs)

	for _, p := range []string{"u-[0-9]{3,}", `[a-z]+-\d{2}`, `v1\.2`, "a*b", "[0-9]+"} {
		if compileSimple(p) == nil {
			t.Errorf("%q is not simple", p)
		}
	}
	for _, p := range []string{"a*a", "[0-9]+[0-9]", "a+b*", "a.b", "(a)", "a|b", "[^a]", "a+?", "a++", "é", `\1`, `\s`, "a{1,2", "a{,2}", "a{2000}", "[a-]b+c?", "", "(?i)a", "[a-Z]", "[z-a]", "a$", "^a"} {
		if compileSimple(p) != nil {
			t.Errorf("%q is simple", p)
		}
	}
}

// FuzzSimplePattern checks the one-pass matcher against the regexp engine
// on any pattern it takes.
func FuzzSimplePattern(f *testing.F) {
	for _, s := range [][2]string{{"u-[0-9]{3,}", "u-12345"}, {`[a-z]+-\d{2}`, "ab-12"}, {"a?b", "b"}, {`\w*`, "a_1"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, p, s string) {
		re, err := compilePattern(p)
		sp := compileSimple(p)
		if err != nil || sp == nil {
			return // only patterns that compile get a simple form (parser.matches)
		}
		if got, want := sp.match(s), re.MatchString(s); got != want {
			t.Fatalf("%q matches %q: one pass says %v, regexp %v", s, p, got, want)
		}
	})
}
