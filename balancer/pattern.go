package balancer

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// matcher is a compiled filter value: alternatives separated by ';', each an
// exact string or a wildcard pattern ('*' any run, '?' any one character).
// A zero matcher (no alternatives) matches nothing; callers only build one
// for a non-empty value. Matchers are built when a candidate set is
// computed, never on the pick path.
type matcher struct {
	exact []string
	globs []string
}

// compileMatcher splits s at ';' and sorts the parts into exact strings and
// patterns. White space around parts is ignored and empty parts are dropped.
func compileMatcher(s string) matcher {
	var m matcher
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if strings.ContainsAny(part, "*?") {
			m.globs = append(m.globs, part)
		} else {
			m.exact = append(m.exact, part)
		}
	}
	return m
}

// match reports whether s matches one of the alternatives.
func (m *matcher) match(s string) bool {
	for _, e := range m.exact {
		if e == s {
			return true
		}
	}
	for _, g := range m.globs {
		if globMatch(g, s) {
			return true
		}
	}
	return false
}

// matchAddress reports whether an instance's address matches: an
// alternative may name "host:port", the host alone or the port alone.
func (m *matcher) matchAddress(hostPort, host string, port int) bool {
	return m.match(hostPort) || m.match(host) || m.match(strconv.Itoa(port))
}

// globMatch reports whether s matches the pattern p, where '*' matches any
// run of bytes (including none) and '?' any single character. It runs in
// O(len(p)*len(s)) at worst, without recursion, so hostile patterns from
// headers cannot blow the stack or run away.
func globMatch(p, s string) bool {
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
