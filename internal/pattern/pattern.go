// Package pattern matches route filter values, in one place for every
// package that reads them: the balancer's picks (versions, regions,
// addresses, ids, weight keys) and the drain gate's verdicts must agree on
// what "1.*" admits.
//
// A value lists alternatives separated by ';'; white space around an
// alternative is ignored and empty alternatives are dropped. An alternative
// is an exact string or a wildcard pattern, in which '*' matches any run of
// characters (including none) and '?' exactly one character; every other
// character matches itself. Matching never panics, never recurses, and
// runs in O(len(pattern)*len(s)) at worst, so hostile values from request
// headers cannot blow the stack or run away.
package pattern

import (
	"strings"
	"unicode/utf8"
)

// Matcher is a compiled value, for matching many strings against one value
// without splitting it again: matching does not allocate. The zero Matcher
// (no alternatives) matches nothing. A Matcher is read-only once compiled
// and safe for concurrent use.
type Matcher struct {
	exact []string
	globs []string
}

// Compile splits value at ';' and sorts the alternatives into exact strings
// and wildcard patterns.
func Compile(value string) Matcher {
	var m Matcher
	for alt := range strings.SplitSeq(value, ";") {
		alt = strings.TrimSpace(alt)
		switch {
		case alt == "":
		case isGlob(alt):
			m.globs = append(m.globs, alt)
		default:
			m.exact = append(m.exact, alt)
		}
	}
	return m
}

// Match reports whether s matches one of the alternatives.
func (m *Matcher) Match(s string) bool {
	for _, e := range m.exact {
		if e == s {
			return true
		}
	}
	for _, g := range m.globs {
		if Glob(g, s) {
			return true
		}
	}
	return false
}

// Empty reports whether m has no alternatives (and so matches nothing).
func (m *Matcher) Empty() bool { return len(m.exact) == 0 && len(m.globs) == 0 }

// MatchAny reports whether s matches one of the alternatives of value:
// Compile(value).Match(s) for a value matched once, without allocating.
func MatchAny(value, s string) bool {
	for alt := range strings.SplitSeq(value, ";") {
		if alt = strings.TrimSpace(alt); alt == "" {
			continue
		}
		if isGlob(alt) {
			if Glob(alt, s) {
				return true
			}
		} else if alt == s {
			return true
		}
	}
	return false
}

func isGlob(alt string) bool { return strings.ContainsAny(alt, "*?") }

// Glob reports whether s matches the single pattern p ('*' any run, '?' any
// one character, every other byte itself; no ';' alternatives and no
// trimming). '?' consumes one UTF-8 character of s, or one byte where s is
// not valid UTF-8.
func Glob(p, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starP, starS = px, sx
				px++
				continue
			case '?':
				_, size := utf8.DecodeRuneInString(s[sx:])
				px++
				sx += size
				continue
			default:
				if c == s[sx] {
					px++
					sx++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		// Backtrack: let the last '*' swallow one more character.
		_, size := utf8.DecodeRuneInString(s[starS:])
		starS += size
		px, sx = starP+1, starS
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}
