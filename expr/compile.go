package expr

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// Option configures [Compile].
type Option interface{ apply(*options) }

type options struct {
	log *zap.Logger
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger that reports evaluation faults: a condition
// that could not be evaluated because its Values panicked counts as false
// and is logged at error level, since it means a bug rather than bad
// input. The default is zap.NewNop().
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.log = l
		}
	})
}

// Condition is a compiled condition expression, such as #H['xyz'] == '1'.
//
// Compile once, when a rule is loaded; Match on every request. A Condition is
// immutable and safe for concurrent use by any number of goroutines.
type Condition struct {
	src   string
	nodes []node // the condition's tree, children before parents
	root  int32  // the index of the root in nodes
	names []string
	log   *zap.Logger
	err   error // why the expression did not compile (Invalid): it never holds
}

// Invalid returns a condition for an expression that did not compile
// (err, from [Compile]): one that never holds and keeps src, so that a rule
// carrying it loads and is written back unchanged. That is what a Nepxion
// hop makes of an expression it cannot evaluate: SpEL throws at every
// request and Nepxion counts the exception as false.
func Invalid(src string, err error) *Condition {
	if err == nil {
		err = newError(src, 0, "invalid expression")
	}
	return &Condition{src: src, err: err, log: zap.NewNop()}
}

// Err returns why the condition's expression did not compile, for a
// condition made by [Invalid]; nil otherwise.
func (c *Condition) Err() error {
	if c == nil {
		return nil
	}
	return c.err
}

// Compile compiles a condition written in the SpEL subset that Nepxion
// Discovery's rules use (see the package documentation). It returns an
// *[Error] that says what is wrong and at which column.
func Compile(src string, opts ...Option) (*Condition, error) {
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	if len(src) > maxExprBytes {
		return nil, newError(src, 0, "expression is %d bytes long, more than the %d (4 KiB) allowed; split it into several conditions", len(src), maxExprBytes)
	}
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tEOF {
		return nil, newError(src, 0, "empty expression")
	}
	p := &parser{src: src, toks: toks}
	root := p.expression()
	if p.err == nil && p.peek().kind != tEOF {
		p.unexpected()
	}
	if p.err != nil {
		return nil, p.err
	}
	prepareNodes(p.nodes)
	c := &Condition{src: src, log: o.log, nodes: slices.Clip(p.nodes), root: root}
	for _, n := range c.nodes {
		if n.kind == nLookup && !slices.Contains(c.names, n.name) {
			c.names = append(c.names, n.name)
		}
	}
	return c, nil
}

// Match reports whether the condition holds for a request's values, as
// Nepxion's evaluation decides it: anything that would throw in SpEL makes
// the whole condition false. Match never panics and never fails: a fault
// during evaluation (only a panicking Values can cause one) counts as false
// and is logged.
//
// A nil or zero Condition stands for a condition without an expression,
// which in Nepxion's rules always holds: Match returns true. A condition
// made by [Invalid] never holds. A nil v has no values.
func (c *Condition) Match(v Values) (ok bool) {
	if c == nil || len(c.nodes) == 0 {
		return c == nil || c.err == nil
	}
	if v == nil {
		v = Map(nil)
	}
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("expr: condition evaluation failed; treating it as false",
				zap.String("expression", c.src), zap.Error(fmt.Errorf("evaluation panicked: %v", r)))
			ok = false
		}
	}()
	b, good := c.test(c.root, v)
	return good && b
}

// String returns the expression as it was written, so that a rule written
// back out round-trips.
func (c *Condition) String() string {
	if c == nil {
		return ""
	}
	return c.src
}

// Names returns the names the condition reads with #H['name'], each once,
// in order of first appearance.
func (c *Condition) Names() []string {
	if c == nil {
		return nil
	}
	return slices.Clone(c.names)
}

// parser is a recursive descent parser of SpEL's grammar, as in Spring's
// InternalSpelExpressionParser, that builds the nodes of a condition and
// rejects, with a message saying so, the parts of SpEL that conditions do
// not use. Children are added before their parents.
type parser struct {
	src   string
	toks  []token
	i     int
	nodes []node
	err   *Error
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) take() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

// peekWord reports whether the next token is the word w, in any case.
func (p *parser) peekWord(w string) bool {
	t := p.peek()
	return t.kind == tIdent && strings.EqualFold(t.val, w)
}

func (p *parser) add(n node) int32 {
	p.nodes = append(p.nodes, n)
	return int32(len(p.nodes) - 1)
}

// failAt records the first error.
func (p *parser) failAt(pos int, format string, args ...any) int32 {
	if p.err == nil {
		p.err = newError(p.src, pos, format, args...)
	}
	return 0
}

// reject records an error for a construct SpEL has and graylane does not
// support.
func (p *parser) reject(pos int, format string, args ...any) int32 {
	if p.err == nil {
		p.failAt(pos, format, args...)
		p.err.unsupported = true
	}
	return 0
}

func (p *parser) unexpected() int32 {
	t := p.peek()
	switch {
	case t.kind == tEOF:
		return p.failAt(len(p.src), "unexpected end of expression")
	case t.kind == tBeanRef && t.val == "&":
		return p.failAt(t.pos, "unexpected '&'; write '&&' or 'and'")
	case t.kind == tHash:
		// Show the whole #H['name'] when that is what it is.
		if k := p.i + 4; k < len(p.toks) && p.toks[p.i+1].kind == tIdent && p.toks[p.i+2].kind == tLBracket &&
			p.toks[p.i+3].kind == tString && p.toks[k].kind == tRBracket {
			return p.failAt(t.pos, "unexpected %s", p.src[t.pos:p.toks[k].end])
		}
	}
	return p.failAt(t.pos, "unexpected %s", p.text(t))
}

// text returns a token as written, quoted for messages.
func (p *parser) text(t token) string {
	switch t.kind {
	case tEOF:
		return "end of expression"
	case tString, tInt, tReal:
		return p.src[t.pos:t.end]
	}
	return "'" + p.src[t.pos:t.end] + "'"
}

func (p *parser) expect(kind tokKind, what string) bool {
	if p.err != nil {
		return false
	}
	if p.peek().kind != kind {
		t := p.peek()
		if t.kind == tEOF {
			p.failAt(len(p.src), "unexpected end of expression: expected %s", what)
		} else {
			p.failAt(t.pos, "unexpected %s: expected %s", p.text(t), what)
		}
		return false
	}
	p.take()
	return true
}

// expression: logicalOr ( '?' expression ':' expression | '?:' expression
// | '=' expression )?
func (p *parser) expression() int32 {
	start := p.peek().pos
	x := p.or()
	if p.err != nil {
		return 0
	}
	switch t := p.peek(); t.kind {
	case tAssign:
		return p.reject(t.pos, "assignment '=' is not supported; compare with '=='")
	case tElvis:
		p.take()
		if k := p.peek().kind; k == tEOF || k == tRParen || k == tColon || k == tComma || k == tRBrace {
			return p.reject(t.end, "missing the value after '?:'")
		}
		y := p.expression()
		return p.add(node{kind: nElvis, a: x, b: y, pos: start})
	case tQMark:
		p.take()
		y := p.expression()
		if !p.expect(tColon, "':' of the ternary operator") {
			return 0
		}
		z := p.expression()
		return p.add(node{kind: nTernary, a: x, b: y, c: z, pos: start})
	}
	return x
}

// or: and ( ('or' | '||') and )*
func (p *parser) or() int32 {
	x := p.and()
	for p.err == nil && (p.peek().kind == tOr || p.peekWord("or")) {
		t := p.take()
		y := p.and()
		x = p.add(node{kind: nOr, a: x, b: y, pos: t.pos})
	}
	return x
}

// and: relational ( ('and' | '&&') relational )*
func (p *parser) and() int32 {
	x := p.relational()
	for p.err == nil && (p.peek().kind == tAnd || p.peekWord("and")) {
		t := p.take()
		y := p.relational()
		x = p.add(node{kind: nAnd, a: x, b: y, pos: t.pos})
	}
	return x
}

// relational: sum ( relationalOperator sum )? — one comparison only, as in
// SpEL: a < b < c is an error.
func (p *parser) relational() int32 {
	x := p.sum()
	if p.err != nil {
		return 0
	}
	t := p.peek()
	var op cmpOp
	switch {
	case t.kind == tEq:
		op = cmpEq
	case t.kind == tNe:
		op = cmpNe
	case t.kind == tLt:
		op = cmpLt
	case t.kind == tLe:
		op = cmpLe
	case t.kind == tGt:
		op = cmpGt
	case t.kind == tGe:
		op = cmpGe
	case p.peekWord("matches"):
		p.take()
		return p.matches(x, t)
	case p.peekWord("between"):
		p.take()
		return p.between(x, t)
	case p.peekWord("instanceof"):
		return p.reject(t.pos, "'instanceof' is not supported")
	default:
		return x
	}
	p.take()
	y := p.sum()
	p.noChain()
	return p.add(node{kind: nCmp, op: op, a: x, b: y, pos: t.pos})
}

// noChain rejects a second comparison right after one, as SpEL does.
func (p *parser) noChain() {
	if p.err != nil {
		return
	}
	t := p.peek()
	switch {
	case t.kind >= tEq && t.kind <= tGe, p.peekWord("matches"), p.peekWord("between"):
		p.failAt(t.pos, "comparisons cannot be chained; join them with 'and', or use parentheses")
	}
}

// matches compiles x matches <pattern>. A pattern written as a string
// literal is translated and compiled once, here; any other pattern when
// the condition is evaluated.
func (p *parser) matches(x int32, op token) int32 {
	y := p.sum()
	if p.err != nil {
		return 0
	}
	n := node{kind: nMatches, a: x, b: y, pos: op.pos}
	if lit := p.nodes[y]; lit.kind == nLit && lit.lit.k == kStr {
		re, err := compilePattern(lit.lit.s)
		if err != nil {
			p.failAt(lit.pos, "%v", err)
			if pe, ok := err.(*patternError); ok && pe.unsupported {
				p.err.unsupported = true
			}
			return 0
		}
		n.re = re
		n.simple = compileSimple(lit.lit.s)
	}
	p.noChain()
	return p.add(n)
}

// between compiles x between {low, high}.
func (p *parser) between(x int32, op token) int32 {
	t := p.peek()
	if t.kind != tLBrace {
		// Not a list: SpEL fails every evaluation of it; so does Match.
		p.sum()
		return p.add(node{kind: nFail, pos: op.pos})
	}
	p.take()
	var elems []int32
	if p.peek().kind != tRBrace {
		for p.err == nil {
			elems = append(elems, p.expression())
			if p.peek().kind != tComma {
				break
			}
			p.take()
		}
	}
	if !p.expect(tRBrace, "',' or '}'") {
		return 0
	}
	if len(elems) != 2 {
		// SpEL fails every evaluation of it; so does Match.
		return p.add(node{kind: nFail, pos: op.pos})
	}
	p.noChain()
	return p.add(node{kind: nBetween, a: x, b: elems[0], c: elems[1], pos: op.pos})
}

// sum: product ( ('+' | '-') product )*
func (p *parser) sum() int32 {
	x := p.product()
	for p.err == nil {
		t := p.peek()
		switch t.kind {
		case tPlus:
			p.take()
			y := p.product()
			x = p.add(node{kind: nPlus, a: x, b: y, pos: t.pos})
		case tMinus:
			return p.reject(t.pos, "subtraction '-' is not supported (of the arithmetic operators, only '+' is)")
		default:
			return x
		}
	}
	return x
}

// product: power ( ('*' | '/' | '%') power )* — rejected: conditions do
// not multiply.
func (p *parser) product() int32 {
	x := p.power()
	if p.err != nil {
		return 0
	}
	switch t := p.peek(); t.kind {
	case tStar, tDiv, tMod:
		return p.reject(t.pos, "%s is not supported (of the arithmetic operators, only '+' is)", p.text(t))
	}
	return x
}

// power: unary ('^' unary)? ('++' | '--')? — rejected.
func (p *parser) power() int32 {
	x := p.unary()
	if p.err != nil {
		return 0
	}
	switch t := p.peek(); t.kind {
	case tPower, tInc, tDec:
		return p.reject(t.pos, "%s is not supported (of the arithmetic operators, only '+' is)", p.text(t))
	}
	return x
}

// unary: ('+' | '-' | '!' | 'not') unary | primary
func (p *parser) unary() int32 {
	t := p.peek()
	switch t.kind {
	case tNot:
		p.take()
		x := p.unary()
		return p.add(node{kind: nNot, a: x, pos: t.pos})
	case tPlus, tMinus:
		p.take()
		x := p.unary()
		if p.err != nil {
			return 0
		}
		k := nPos
		if t.kind == tMinus {
			k = nNeg
		}
		return p.add(node{kind: k, a: x, pos: t.pos})
	case tInc, tDec:
		return p.reject(t.pos, "%s is not supported (of the arithmetic operators, only '+' is)", p.text(t))
	}
	return p.primary()
}

// primary: a literal, a parenthesized expression or #H['name'], and
// nothing after it: SpEL's property access, method calls and indexing of
// values are not supported.
func (p *parser) primary() int32 {
	x := p.start()
	if p.err != nil {
		return 0
	}
	switch t := p.peek(); t.kind {
	case tDot, tSafeNav:
		if n := p.toks[p.i+1]; n.kind == tIdent && p.toks[p.i+2].kind == tLParen {
			return p.reject(n.pos, "method calls are not supported (%s)", p.src[t.pos:n.end])
		}
		return p.reject(t.pos, "property access %s is not supported", p.text(t))
	case tLBracket:
		return p.reject(t.pos, "indexing a value is not supported; read request values as #H['name']")
	case tSelect:
		return p.reject(t.pos, "collection selection and projection are not supported")
	}
	return x
}

// start: the first node of a primary expression.
func (p *parser) start() int32 {
	t := p.peek()
	switch t.kind {
	case tInt, tReal:
		p.take()
		return p.number(t)
	case tString:
		p.take()
		return p.add(node{kind: nLit, lit: value{k: kStr, s: t.val}, pos: t.pos})
	case tLParen:
		p.take()
		if p.peek().kind == tRParen {
			return p.reject(t.pos, "empty parentheses ()")
		}
		x := p.expression()
		if !p.expect(tRParen, "')'") {
			return 0
		}
		return x
	case tHash:
		return p.variable()
	case tIdent:
		return p.word(t)
	case tBeanRef:
		return p.reject(t.pos, "bean references (%s) are not supported", p.text(t))
	case tLBrace:
		return p.reject(t.pos, "inline lists and maps are not supported, except after 'between'")
	case tSelect:
		return p.reject(t.pos, "collection selection and projection are not supported")
	case tLBracket:
		return p.reject(t.pos, "indexing is not supported; read request values as #H['name']")
	}
	return p.unexpected()
}

// word handles a name at the start of a primary expression: a literal, or
// one of SpEL's constructs conditions do not use.
func (p *parser) word(t token) int32 {
	next := p.toks[p.i+1]
	switch w := strings.ToLower(t.val); {
	case w == "true" || w == "false":
		p.take()
		return p.add(node{kind: nLit, lit: boolValue(w == "true"), pos: t.pos})
	case w == "null":
		p.take()
		return p.add(node{kind: nLit, lit: value{k: kNull}, pos: t.pos})
	case t.val == "T" && next.kind == tLParen:
		return p.reject(t.pos, "type references T(...) are not supported")
	case w == "new":
		return p.reject(t.pos, "constructors (new) are not supported")
	case next.kind == tLParen:
		return p.reject(t.pos, "method and function calls are not supported (%s(...))", t.val)
	case w == "and" || w == "or" || w == "matches" || w == "between" || w == "instanceof":
		return p.failAt(t.pos, "unexpected '%s'", t.val)
	}
	return p.reject(t.pos, "unknown name %q: request values are read as #H['%s']", t.val, t.val)
}

// variable reads #H['name'] (or #H["name"]), the only variable Nepxion's
// conditions use.
func (p *parser) variable() int32 {
	hash := p.take()
	t := p.peek()
	if t.kind != tIdent || t.pos != hash.end {
		return p.failAt(hash.pos, "expected a variable name after '#'")
	}
	p.take()
	if p.peek().kind == tLParen {
		return p.reject(hash.pos, "function calls (#%s(...)) are not supported", t.val)
	}
	if t.val != "H" {
		return p.reject(hash.pos, "unknown variable '#%s': only #H (the request's values) is defined", t.val)
	}
	if p.peek().kind != tLBracket {
		return p.reject(hash.pos, "#H alone is the map of all values; read one as #H['name']")
	}
	p.take()
	name := p.peek()
	if name.kind != tString {
		if name.kind == tIdent && p.toks[p.i+1].kind == tRBracket {
			return p.reject(name.pos, "write the name in quotes: #H['%s']", name.val)
		}
		return p.reject(name.pos, "expected a quoted name in #H[...], as in #H['name']")
	}
	p.take()
	if !p.expect(tRBracket, "']' to close #H[") {
		return 0
	}
	return p.add(node{kind: nLookup, name: name.val, pos: hash.pos})
}

// number reads a number literal as SpEL's Literal does: an int or long
// (decimal or hex) must fit its type; a real is a double, or a float with
// the f suffix, read by Java's Double.parseDouble or Float.parseFloat.
func (p *parser) number(t token) int32 {
	var v value
	text := p.src[t.pos:t.end]
	switch {
	case t.kind == tInt:
		base := 10
		if t.hex {
			base = 16
			if t.val == "" {
				return p.failAt(t.pos, "hex number %s has no digits", text)
			}
		}
		bits, name, k := 32, "an int (add L for a long)", kInt
		if t.long {
			bits, name, k = 64, "a long", kLong
		}
		n, err := strconv.ParseInt(t.val, base, bits)
		if err != nil {
			return p.failAt(t.pos, "number %s is too large for %s", text, name)
		}
		v = value{k: k, n: n}
	case t.flt:
		f, err := strconv.ParseFloat(strings.TrimRight(t.val, "fF"), 32)
		if err != nil && !isRange(err) {
			return p.failAt(t.pos, "malformed number %s", text)
		}
		v = value{k: kFloat, f: float64(float32(f))}
	default:
		f, err := strconv.ParseFloat(strings.TrimRight(t.val, "dD"), 64)
		if err != nil && !isRange(err) {
			return p.failAt(t.pos, "malformed number %s", text)
		}
		v = value{k: kDouble, f: f}
	}
	v.prepare()
	return p.add(node{kind: nLit, lit: v, pos: t.pos})
}

// isRange reports whether err is strconv's out-of-range error; Java reads
// such a number as an infinity or zero, as strconv returns it.
func isRange(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// nodeKind is the kind of a node of a compiled condition.
type nodeKind uint8

const (
	nLit     nodeKind = iota // the literal lit
	nLookup                  // #H['name']
	nNot                     // not a
	nAnd                     // a and b, short-circuit
	nOr                      // a or b, short-circuit
	nCmp                     // a op b
	nMatches                 // a matches b; re when b is a string literal
	nBetween                 // a between {b, c}
	nPlus                    // a + b
	nPos                     // +a
	nNeg                     // -a
	nTernary                 // a ? b : c
	nElvis                   // a ?: b
	nFail                    // fails whenever evaluated, as SpEL does (between without a two-element list)
)

// node is one node of a compiled condition. The nodes of a condition sit in
// one slice and refer to their children by index.
type node struct {
	kind    nodeKind
	op      cmpOp
	a, b, c int32
	fast    fastPath
	pos     int   // where the node starts in the source
	lit     value // nLit: the literal; nCmp: what the fast path compares with
	dec     literalDec
	name    string // nLookup: the name; nCmp and nMatches with a fast path: the name looked up
	re      *regexp.Regexp
	simple  simplePattern // nMatches: re as a simple pattern, when it is one
}

// cmpOp is a comparison operator.
type cmpOp uint8

const (
	cmpEq cmpOp = iota
	cmpNe
	cmpLt
	cmpLe
	cmpGt
	cmpGe
)
