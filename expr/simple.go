package expr

// Most patterns in rules are a row of single characters with counts:
// u-[0-9]{3,}, [a-z]+-\d{2}, v1\.2. Such a pattern is matched here in one
// left-to-right pass, without the regexp engine, when that pass cannot go
// wrong: every item whose count varies is the last one or is followed by
// an item of fixed count whose characters it cannot take. Anything else
// (groups, alternation, flags, negated classes, non-ASCII, lazy or
// possessive counts, ...) is left to the regexp engine.

import "strconv"

// simplePattern is a pattern of single-character items.
type simplePattern []simpleItem

// simpleItem is one item: a set of ASCII characters and how many of them.
type simpleItem struct {
	set      [2]uint64 // bit c: ASCII character c
	min, max int       // max < 0: no upper bound
}

func (it *simpleItem) has(c byte) bool { return c < 128 && it.set[c>>6]&(1<<(c&63)) != 0 }

func (it *simpleItem) add(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		it.set[c>>6] |= 1 << (c & 63)
	}
}

// compileSimple returns the simple form of a Java pattern, or nil when the
// pattern is not one (see the top of this file).
func compileSimple(p string) simplePattern {
	var out simplePattern
	for i := 0; i < len(p); {
		var it simpleItem
		c := p[i]
		switch {
		case c == '[':
			n := simpleClass(p[i+1:], &it)
			if n == 0 {
				return nil
			}
			i += 1 + n
		case c == '\\':
			if i+1 >= len(p) {
				return nil
			}
			switch e := p[i+1]; {
			case e == 'd':
				it.add('0', '9')
			case e == 'w':
				it.add('0', '9')
				it.add('A', 'Z')
				it.add('a', 'z')
				it.add('_', '_')
			case simpleEscapable(e):
				it.add(e, e)
			default:
				return nil
			}
			i += 2
		case simpleLiteral(c):
			it.add(c, c)
			i++
		default:
			return nil
		}
		it.min, it.max = 1, 1
		if i < len(p) {
			n, ok := simpleCount(p[i:], &it)
			if !ok {
				return nil
			}
			i += n
		}
		out = append(out, it)
	}
	if len(out) == 0 {
		return nil
	}
	for k := range out {
		it := &out[k]
		if it.min == it.max || k == len(out)-1 {
			continue
		}
		next := &out[k+1]
		if next.min != next.max || next.min == 0 || it.set[0]&next.set[0] != 0 || it.set[1]&next.set[1] != 0 {
			return nil
		}
	}
	return out
}

// simpleLiteral reports whether c stands for itself in a Java pattern and
// may start an item: printable ASCII other than the metacharacters.
func simpleLiteral(c byte) bool {
	if c < ' ' || c > '~' {
		return false
	}
	switch c {
	case '.', '*', '+', '?', '(', ')', '[', ']', '{', '}', '|', '^', '$', '\\':
		return false
	}
	return true
}

// simpleEscapable reports whether \c is the character c in Java: an
// escaped ASCII punctuation character (Java reserves escaped letters and
// digits for constructs).
func simpleEscapable(c byte) bool {
	return c > ' ' && c <= '~' && !('0' <= c && c <= '9') && !('a' <= c && c <= 'z') && !('A' <= c && c <= 'Z')
}

// simpleClass reads a character class after its '[': ASCII letters and
// digits, ranges between two of the same kind, '_', '.', and '-' first or
// last. It returns the length read including the ']', 0 when the class is
// anything else.
func simpleClass(p string, it *simpleItem) int {
	kind := func(c byte) int {
		switch {
		case '0' <= c && c <= '9':
			return 1
		case 'a' <= c && c <= 'z':
			return 2
		case 'A' <= c && c <= 'Z':
			return 3
		}
		return 0
	}
	i := 0
	for i < len(p) && p[i] != ']' {
		c := p[i]
		switch {
		case kind(c) != 0 && i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']':
			hi := p[i+2]
			if kind(hi) != kind(c) || hi < c {
				return 0
			}
			it.add(c, hi)
			i += 3
		case kind(c) != 0, c == '_', c == '.':
			it.add(c, c)
			i++
		case c == '-' && (i == 0 || i+1 < len(p) && p[i+1] == ']'):
			it.add(c, c)
			i++
		default:
			return 0
		}
	}
	if i == 0 || i >= len(p) {
		return 0
	}
	return i + 1
}

// simpleCount reads an optional greedy count: * + ? {n} {n,} {n,m}, with
// bounds up to 1000. It returns the length read and false when what
// follows is a count it does not take (lazy, possessive, malformed).
func simpleCount(p string, it *simpleItem) (int, bool) {
	n := 0
	switch p[0] {
	case '*':
		it.min, it.max, n = 0, -1, 1
	case '+':
		it.min, it.max, n = 1, -1, 1
	case '?':
		it.min, it.max, n = 0, 1, 1
	case '{':
		end := 1
		for end < len(p) && p[end] != '}' {
			end++
		}
		if end >= len(p) {
			return 0, false
		}
		body := p[1:end]
		lo, hi, comma := body, "", false
		for j := 0; j < len(body); j++ {
			if body[j] == ',' {
				lo, hi, comma = body[:j], body[j+1:], true
				break
			}
		}
		a, ok := simpleBound(lo)
		if !ok {
			return 0, false
		}
		b := a
		if comma {
			b = -1
			if hi != "" {
				if b, ok = simpleBound(hi); !ok || b < a {
					return 0, false
				}
			}
		}
		it.min, it.max, n = a, b, end+1
	default:
		return 0, true
	}
	if n < len(p) && (p[n] == '?' || p[n] == '+') {
		return 0, false
	}
	return n, true
}

// simpleBound reads a count bound: ASCII digits, at most 1000.
func simpleBound(s string) (int, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	for j := 0; j < len(s); j++ {
		if s[j] < '0' || s[j] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n <= 1000
}

// match reports whether the whole of s matches.
func (sp simplePattern) match(s string) bool {
	i := 0
	for k := range sp {
		it := &sp[k]
		n := 0
		for (it.max < 0 || n < it.max) && i < len(s) && it.has(s[i]) {
			i++
			n++
		}
		if n < it.min {
			return false
		}
	}
	return i == len(s)
}
