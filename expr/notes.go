package expr

import (
	"regexp"
	"strconv"
	"strings"
)

// A Note marks a place in a condition that a Nepxion (Java) hop reads
// differently from what it says, or that reads the same only because
// graylane follows Java: what graylane validate warns about.
type Note struct {
	// Offset is the byte offset in the expression of what the note is
	// about.
	Offset int
	// Msg says what and why.
	Msg string
}

// nepxionName is the pattern with which Nepxion finds the names a
// condition reads (DiscoveryConstant.EXPRESSION_REGEX, #H['\S+'], read by
// DiscoveryExpressionResolver.extractList), with Java's \S spelled out.
// Only the names it finds are put into #H, so any other lookup reads null
// on a Java hop.
var nepxionName = regexp.MustCompile(`#H\['[^ \t\n\x0B\f\r]+'\]`)

// NepxionNames returns the names a Nepxion hop puts into #H for an
// expression: what its name extraction finds, the text between #H[' and
// the first '] of each match, trimmed. It is greedy: in
// #H['a']=='1'&&#H['b']=='2', written without white space, it finds only a.
func NepxionNames(src string) []string {
	var out []string
	for _, m := range nepxionName.FindAllString(src, -1) {
		m = m[len("#H['"):]
		if i := strings.Index(m, "']"); i >= 0 {
			m = m[:i]
		}
		out = append(out, strings.TrimSpace(m))
	}
	return out
}

// Notes returns what a release engineer mixing Java and Go hops should know
// about the condition, in source order:
//   - a lookup Nepxion's name extraction does not see (#H["a"], #H[ 'a' ],
//     or #H['b'] after another lookup without white space between them):
//     a Java hop reads null there, graylane the request's value;
//   - == or != between a request value and a number literal: never equal
//     in Java (SpEL finds no common type for a string and a number), so
//     graylane says the same; the literal wants quotes;
//   - a matches pattern that graylane translates to give it Java's meaning
//     in Go's regexp engine.
func (c *Condition) Notes() []Note {
	if c == nil {
		return nil
	}
	var out []Note
	java := NepxionNames(c.src)
	for i := range c.nodes {
		n := &c.nodes[i]
		switch n.kind {
		case nLookup:
			if contains(java, n.name) {
				continue
			}
			ref := c.src[n.pos:]
			if strings.HasPrefix(ref, "#H['") {
				out = append(out, Note{n.pos, "Nepxion's name extraction does not see #H['" + n.name +
					"'] after the #H['...'] before it (written without white space between them, its greedy pattern takes both as one name): a Java hop reads null here"})
				continue
			}
			out = append(out, Note{n.pos, "Nepxion's name extraction reads only #H['name'] (single quotes right inside the brackets): a Java hop reads null here; write #H['" + n.name + "']"})
		case nCmp:
			if n.op != cmpEq && n.op != cmpNe {
				continue
			}
			a, b := &c.nodes[n.a], &c.nodes[n.b]
			if a.kind != nLookup {
				a, b = b, a
			}
			if a.kind == nLookup && b.kind == nLit && b.lit.isNum() {
				always := "false"
				if n.op == cmpNe {
					always = "true"
				}
				out = append(out, Note{n.pos, "compares a request value (a string) with the number " + javaString(b.lit) +
					": never equal in Java, so always " + always + "; write '" + javaString(b.lit) + "' to compare the text"})
			}
		case nMatches:
			p := &c.nodes[n.b]
			if n.re == nil || p.kind != nLit || p.lit.k != kStr {
				continue
			}
			if re2, err := translatePattern(p.lit.s); err == nil && re2 != p.lit.s {
				out = append(out, Note{p.pos, "pattern " + strconv.Quote(p.lit.s) + " has Java's meaning (java.util.regex, whole string); graylane runs it translated for Go's regexp as " + strconv.Quote(re2)})
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
