package expr

import (
	"errors"
	"testing"
	"unicode/utf8"
)

// compileSeeds are the seed corpus of FuzzCompile: the shapes of real
// Nepxion conditions and of the mistakes people make in them.
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
	"#X['a'] == 1",
	"#H['a'] + 1",
	"'unterminated",
	"((((true))))",
	"#H['灰度'] == '蓝'",
}

// FuzzCompile checks that Compile never panics, that every rejection is an
// *Error pointing inside the input, and that what it accepts means what the
// SpEL grammar says: it is checked against refParse, a direct recursive
// descent over the same tokens, on several sets of values.
func FuzzCompile(f *testing.F) {
	for _, s := range compileSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		c, err := Compile(src)
		ref, refErr := refCompile(src)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Compile(%q) error %v is %T, not *Error", src, err, err)
			}
			if e.Offset < 0 || e.Offset > len(src) || e.Column < 1 || e.Column > utf8.RuneCountInString(src)+1 {
				t.Fatalf("Compile(%q): position out of range: offset %d, column %d", src, e.Offset, e.Column)
			}
			if refErr == nil {
				t.Fatalf("Compile(%q) = %v, but the reference grammar accepts it", src, err)
			}
			return
		}
		if refErr != nil {
			t.Fatalf("Compile(%q) accepted what the reference grammar rejects: %v", src, refErr)
		}
		for i, v := range fuzzValues(c.Names()) {
			if got, want := c.Match(v), ref(v); got != want {
				t.Fatalf("Compile(%q).Match(values %d: %v) = %v, reference says %v", src, i, v, got, want)
			}
		}
	})
}

// fuzzValues returns value sets that give the names a mix of numbers,
// words, blanks and absences.
func fuzzValues(names []string) []Map {
	pool := []string{"1", "abc", "", "2.5", "-1", " ", "1.0", "v1"}
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

// refCompile parses src with SpEL's grammar,
//
//	or    := and (OR and)*
//	and   := rel (AND rel)*
//	rel   := unary (RELOP unary)?
//	unary := NOT unary | primary
//	primary := value | '(' or ')'
//
// and returns an evaluator built from closures. It shares the lexer and the
// comparison semantics with Compile, so it checks what lies between them:
// the translation to expr-lang, the patching and the evaluation order.
func refCompile(src string) (func(Values) bool, error) {
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	p := &refParser{toks: toks}
	n := p.or()
	if p.err == nil && p.peek() != tEOF {
		p.fail("trailing tokens")
	}
	if p.err == nil && n.eval == nil {
		p.fail("not a condition")
	}
	if p.err != nil {
		return nil, p.err
	}
	return n.eval, nil
}

// refNode is a condition (eval set) or an operand (tok set).
type refNode struct {
	eval func(Values) bool
	tok  token
}

type refParser struct {
	toks []token
	i    int
	err  error
}

func (p *refParser) peek() tokKind {
	if p.i >= len(p.toks) {
		return tEOF
	}
	return p.toks[p.i].kind
}

func (p *refParser) fail(msg string) {
	if p.err == nil {
		p.err = errors.New(msg)
	}
}

func (p *refParser) cond(n refNode) func(Values) bool {
	if n.eval == nil {
		p.fail("operand where a condition is needed")
		return func(Values) bool { return false }
	}
	return n.eval
}

func (p *refParser) or() refNode {
	l := p.and()
	for p.err == nil && p.peek() == tOr {
		p.i++
		a, b := p.cond(l), p.cond(p.and())
		l = refNode{eval: func(v Values) bool { return a(v) || b(v) }}
	}
	return l
}

func (p *refParser) and() refNode {
	l := p.rel()
	for p.err == nil && p.peek() == tAnd {
		p.i++
		a, b := p.cond(l), p.cond(p.rel())
		l = refNode{eval: func(v Values) bool { return a(v) && b(v) }}
	}
	return l
}

func (p *refParser) rel() refNode {
	l := p.unary()
	k := p.peek()
	ops := map[tokKind]cmpOp{tEq: cmpEq, tNe: cmpNe, tLt: cmpLt, tLe: cmpLe, tGt: cmpGt, tGe: cmpGe, tMatches: cmpMatches}
	op, ok := ops[k]
	if p.err != nil || !ok {
		return l
	}
	p.i++
	r := p.unary()
	if p.err != nil {
		return l
	}
	if l.eval != nil && r.eval != nil && (k == tEq || k == tNe) {
		a, b := l.eval, r.eval
		return refNode{eval: func(v Values) bool { return (a(v) == b(v)) == (k == tEq) }}
	}
	if l.eval != nil || r.eval != nil {
		p.fail("comparison of a condition")
		return l
	}
	c := &comparison{op: op, l: operandOf(l.tok), r: operandOf(r.tok)}
	if op == cmpMatches {
		if c.l.kind != opLookup && c.l.kind != opText || c.r.kind != opText {
			p.fail("bad matches operands")
			return l
		}
		re, err := compilePattern(c.r.s)
		if err != nil {
			p.fail(err.Error())
			return l
		}
		c.re = re
	}
	return refNode{eval: c.eval}
}

func (p *refParser) unary() refNode {
	if p.peek() == tNot {
		p.i++
		x := p.cond(p.unary())
		return refNode{eval: func(v Values) bool { return !x(v) }}
	}
	return p.primary()
}

func (p *refParser) primary() refNode {
	if p.peek() == tEOF {
		p.fail("unexpected end")
		return refNode{}
	}
	t := p.toks[p.i]
	switch t.kind {
	case tLParen:
		p.i++
		n := p.or()
		if p.err == nil && p.peek() != tRParen {
			p.fail("missing )")
		}
		p.i++
		return n
	case tTrue, tFalse:
		p.i++
		b := t.kind == tTrue
		return refNode{eval: func(Values) bool { return b }}
	case tLookup, tString, tNumber, tNull:
		p.i++
		return refNode{tok: t}
	}
	p.fail("unexpected token")
	return refNode{}
}
