package expr

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// compileSeeds are the seed corpus of FuzzCompile: the shapes of real
// Nepxion conditions, the rest of the supported syntax, and the mistakes
// people make.
var compileSeeds = []string{
	"#H['xyz'] == '1'",
	"#H['xyz'] == '1' && #H['a'] != 'x' || !(#H['b'] matches 'v[0-9]+')",
	"#H['age'] >= '18' and #H['age'] lt 65",
	"#H['user'] == 'it''s' or #H[\"user\"] == \"say \"\"hi\"\"\"",
	"not (#H['region'] == 'eu') and #H['n'] == -1.5e3",
	"(#H['a'] == 'b') == (#H['c'] != null)",
	"#H['v'] > 0x1F or #H['v'] <= 10L or #H['v'] == 2.5f",
	"TRUE AND Not FALSE",
	"#H['a'] < #H['b'] < #H['c']",
	"#H['a'] == ",
	"!#H['a'] == 'x'",
	"#H['a'] matches '(a'",
	"#H['a'] matches '[a-z&&[^e]]'",
	"#H['a'] matches #H['b']",
	"#H['a'] matches '(?i)[a-c]+\\s\\0101.'",
	"#X['a'] == 1",
	"#H['a'] + 1 == '21'",
	"#H['a'] ?: 'yes'",
	"#H['a'] == '1' ? #H['b'] : 'off'",
	"#H['a'] between {1, #H['b']}",
	"-#H['a'] < +2",
	"#H['vip']",
	"#H['a'].length() == T(Math).abs(-1)",
	"'unterminated",
	"((((true))))",
	"#H['灰度'] == '蓝'",
}

// FuzzCompile checks that Compile never panics, that every rejection is an
// *Error pointing inside the input, and, for what it accepts, that Match
// never panics and keeps SpEL's logic: and and or short-circuit (true or
// (c) holds and false and (c) does not, whatever c throws), and c and
// not (c) never both hold.
func FuzzCompile(f *testing.F) {
	for _, s := range compileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Compile(src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) error %v is %T, not *Error", src, err, err)
			}
			if e.Offset < 0 || e.Offset > len(src) || e.Column < 1 || e.Column > utf8.RuneCountInString(src)+1 {
				t.Fatalf("Compile(%q): position out of range: offset %d, column %d", src, e.Offset, e.Column)
			}
			return
		}
		if len(src) > maxExprBytes-20 {
			return
		}
		or, err := Compile("true or (" + src + ")")
		if err != nil {
			t.Fatalf("Compile(%q) succeeds, but not inside true or (...): %v", src, err)
		}
		and, err := Compile("false and (" + src + ")")
		if err != nil {
			t.Fatalf("Compile(%q) succeeds, but not inside false and (...): %v", src, err)
		}
		not, err := Compile("not (" + src + ")")
		if err != nil {
			t.Fatalf("Compile(%q) succeeds, but not inside not (...): %v", src, err)
		}
		for i, v := range fuzzValues(c.Names()) {
			got := c.Match(v)
			if got != c.Match(v) {
				t.Fatalf("Compile(%q).Match(values %d) is not deterministic", src, i)
			}
			if !or.Match(v) || and.Match(v) {
				t.Fatalf("Compile(%q): and/or do not short-circuit on values %d: %v", src, i, v)
			}
			if got && not.Match(v) {
				t.Fatalf("Compile(%q): both it and its negation hold on values %d: %v", src, i, v)
			}
		}
	})
}

// FuzzTranslatePattern checks that a Java pattern either translates into
// one Go compiles, or is rejected with a *patternError; never a panic. A
// pattern of letters and digits only matches itself alone.
func FuzzTranslatePattern(f *testing.F) {
	for _, p := range []string{
		`a.c`, `(?i)[a-z]+`, `(?iu)k`, `\s\S\h\v`, `\0101\x41\u0041\x{1F600}`, `[^\d&&]`, `a++`, `(?<n>a)\k<n>`,
		`\Qa.b\E*`, `\p{Lu}\P{IsL}`, `a{2,3}?`, `^a$`, `a$|b`, `(?s:.)(?d).`, `[]a]`, `[\x41-\x5A]`, `\cA\e`,
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		re, err := compilePattern(p)
		if err != nil {
			var pe *patternError
			if !errors.As(err, &pe) {
				t.Fatalf("compilePattern(%q): error %v is %T, not *patternError", p, err, err)
			}
			return
		}
		plain := p != ""
		for _, r := range p {
			plain = plain && r < utf8.RuneSelf && (isIdentStart(byte(r)) || isDigit(byte(r))) && r != '_'
		}
		if plain && (!re.MatchString(p) || re.MatchString(p+p) || re.MatchString("x"+p)) {
			t.Fatalf("compilePattern(%q) does not match exactly itself", p)
		}
		re.MatchString("a\nb\r\u0085" + p)
	})
}

// fuzzValues returns value sets that give the names a mix of numbers,
// words, booleans, blanks and absences.
func fuzzValues(names []string) []Map {
	pool := []string{"1", "abc", "", "2.5", "-1", " ", "1.0", "v1", "yes", "٣", `\d+`}
	sets := []Map{{}}
	for k := range 4 {
		m := Map{}
		for i, n := range names {
			if (i+k)%5 != 4 {
				m[n] = pool[(i*3+k)%len(pool)]
			}
		}
		sets = append(sets, m)
	}
	return sets
}
