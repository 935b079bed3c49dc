package expr

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
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
// that could not be evaluated counts as false and is logged at error level,
// since it means a bug rather than bad input. The default is zap.NewNop().
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
	nodes []node       // the condition's tree, children before parents
	root  int32        // the index of the root in nodes
	cmps  []comparison // the comparisons nodes refer to
	names []string
	log   *zap.Logger
}

// Compile compiles a condition written in the SpEL subset that Nepxion
// Discovery's rules use (see the package documentation). It returns an
// *[Error] that says what is wrong and at which column.
func Compile(src string, opts ...Option) (*Condition, error) {
	o := options{log: zap.NewNop()}
	for _, opt := range opts {
		opt.apply(&o)
	}
	toks, err := lexExpr(src)
	if err != nil {
		return nil, err
	}
	c := &Condition{src: src, log: o.log}
	code, spans := translate(toks)
	rw := &rewriter{src: src, toks: toks, spans: spans, c: c, cmpAt: map[*ast.BinaryNode]int32{}}
	tree, err := parser.ParseWithConfig(code, &conf.Config{DisableIfOperator: true, MaxNodes: conf.DefaultMaxNodes})
	if err != nil {
		return nil, rw.syntaxError(err)
	}
	if err := checkChains(src, toks); err != nil {
		return nil, err
	}
	ast.Walk(&tree.Node, rw)
	switch {
	case rw.err != nil:
		return nil, rw.err
	case !isCondition(tree.Node):
		what := rw.describe(tree.Node)
		return nil, newError(src, toks[rw.tokenOf(tree.Node)].pos,
			"expected a condition, found only the value %s; compare it, as in %s == 'x'", what, what)
	}
	b := builder{cmpAt: rw.cmpAt}
	root, err := b.build(tree.Node)
	if err != nil { // the rewriter let through what it should have rejected
		return nil, newError(src, 0, "cannot compile: unexpected %v", err)
	}
	c.nodes, c.root = slices.Clip(b.nodes), root
	for _, t := range toks {
		if t.kind == tLookup && !slices.Contains(c.names, t.val) {
			c.names = append(c.names, t.val)
		}
	}
	return c, nil
}

// checkChains rejects a second comparison in a row, as in a < b < c or
// a == b == c. SpEL's grammar allows one comparison between two logical
// operators; expr-lang would read a < b < c as a < b && b < c and
// a == b == c as (a == b) == c. Parentheses start a new level: (a == b) == c
// is fine.
func checkChains(src string, toks []token) error {
	seen := []bool{false} // per parenthesis depth: a comparison since the last and/or
	for _, t := range toks {
		top := len(seen) - 1
		switch t.kind {
		case tLParen:
			seen = append(seen, false)
		case tRParen:
			if top > 0 {
				seen = seen[:top]
			}
		case tAnd, tOr:
			seen[top] = false
		case tEq, tNe, tLt, tLe, tGt, tGe, tMatches:
			if seen[top] {
				return newError(src, t.pos, "comparisons cannot be chained; join them with 'and', or use parentheses")
			}
			seen[top] = true
		}
	}
	return nil
}

// lexExpr tokenizes src and checks the limits that apply before parsing.
func lexExpr(src string) ([]token, error) {
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
	return toks, nil
}

// Match reports whether the condition holds for a request's values. It never
// panics and never fails: a fault during evaluation (only a panicking Values
// can cause one) counts as false and is logged.
//
// A nil or zero Condition stands for a condition without an expression,
// which in Nepxion's rules always holds: Match returns true. A nil v has no
// values.
func (c *Condition) Match(v Values) (ok bool) {
	if c == nil || len(c.nodes) == 0 {
		return true
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
	return c.eval(c.root, v)
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

// span is where a token's translation sits in the translated code.
type span struct{ from, to int }

// translate writes the tokens as expr-lang source. Operators map to their
// expr-lang spelling (and to &&, not to !, null to nil); every operand
// becomes a placeholder identifier t<i>, i being its token index, so that
// the rewriter finds the decoded literal or name, and the position the user
// wrote it at, for each operand. The code is plain ASCII, so byte offsets
// and expr-lang's rune offsets agree.
func translate(toks []token) (string, []span) {
	var b strings.Builder
	spans := make([]span, len(toks))
	for i, t := range toks {
		if t.kind == tEOF {
			spans[i] = span{b.Len(), b.Len()}
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		from := b.Len()
		switch t.kind {
		case tLookup, tString, tNumber:
			b.WriteString("t")
			b.WriteString(strconv.Itoa(i))
		default:
			b.WriteString(exprOps[t.kind])
		}
		spans[i] = span{from, b.Len()}
	}
	return b.String(), spans
}

// exprOps spells each operator and constant token in expr-lang.
var exprOps = [...]string{
	tNull: "nil", tTrue: "true", tFalse: "false",
	tAnd: "&&", tOr: "||", tNot: "!",
	tEq: "==", tNe: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">=", tMatches: "matches",
	tLParen: "(", tRParen: ")",
}

// rewriter checks the tree expr-lang parsed against SpEL's meaning, in
// place of expr-lang's type checker, whose types are not SpEL's. Visited
// bottom-up, it checks that each operator gets the kind of operands it
// takes, and compiles each comparison of two values, recording it in cmpAt.
// What is left around the comparisons is and, or, not and == or != between
// conditions, all on booleans, which the builder turns into nodes.
type rewriter struct {
	src   string
	toks  []token
	spans []span
	c     *Condition
	cmpAt map[*ast.BinaryNode]int32 // compiled comparisons, by index into c.cmps
	err   *Error
}

// isCondition reports whether a node of the rewritten tree yields a boolean.
// Operands (placeholders and nil) are the only nodes that don't.
func isCondition(n ast.Node) bool {
	switch n.(type) {
	case *ast.IdentifierNode, *ast.NilNode:
		return false
	}
	return true
}

func (rw *rewriter) Visit(node *ast.Node) {
	if rw.err != nil {
		return
	}
	switch n := (*node).(type) {
	case *ast.IdentifierNode:
		if _, ok := rw.placeholder(n); !ok {
			rw.fail(n, "unexpected %s", rw.describe(n))
		}
	case *ast.NilNode, *ast.BoolNode:
	case *ast.UnaryNode:
		if n.Operator != "!" {
			rw.fail(n, "unexpected %s", rw.describe(n))
		} else if !isCondition(n.Node) {
			op := rw.toks[rw.tokenAt(n.Location().From)]
			rw.fail(n.Node, "%s needs a condition, found %s; to negate a comparison, put it in parentheses: %s(a == b)",
				rw.opText(n), rw.describe(n.Node), rw.src[op.pos:op.end])
		}
	case *ast.BinaryNode:
		lc, rc := isCondition(n.Left), isCondition(n.Right)
		switch n.Operator {
		case "&&", "||":
			if !lc {
				rw.fail(n.Left, "%s needs a condition on its left, found %s", rw.opText(n), rw.describe(n.Left))
			} else if !rc {
				rw.fail(n.Right, "%s needs a condition on its right, found %s", rw.opText(n), rw.describe(n.Right))
			}
		case "==", "!=":
			if lc && rc {
				return // two conditions: the booleans are compared
			}
			if lc || rc {
				rw.fail(n, "%s compares two values or two conditions, not a condition with a value", rw.opText(n))
				return
			}
			rw.comparison(n)
		case "<", "<=", ">", ">=", "matches":
			if lc || rc {
				rw.fail(n, "%s compares two values, not conditions", rw.opText(n))
				return
			}
			rw.comparison(n)
		default:
			rw.fail(n, "unexpected %s", rw.opText(n))
		}
	case *ast.CallNode:
		rw.fail(n, "unexpected '(' after %s: nothing can be called", rw.describe(n.Callee))
	default:
		rw.fail(n, "unexpected %s", rw.describe(n))
	}
}

// comparison compiles the comparison n of two operands and records it.
func (rw *rewriter) comparison(n *ast.BinaryNode) {
	cmp := comparison{l: rw.operand(n.Left), r: rw.operand(n.Right)}
	switch n.Operator {
	case "==":
		cmp.op = cmpEq
	case "!=":
		cmp.op = cmpNe
	case "<":
		cmp.op = cmpLt
	case "<=":
		cmp.op = cmpLe
	case ">":
		cmp.op = cmpGt
	case ">=":
		cmp.op = cmpGe
	case "matches":
		cmp.op = cmpMatches
		if k := cmp.l.kind; k != opLookup && k != opText {
			rw.fail(n.Left, "'matches' needs a text on its left, found %s", rw.describe(n.Left))
			return
		}
		if cmp.r.kind != opText {
			rw.fail(n.Right, "the pattern of 'matches' must be a quoted string, found %s", rw.describe(n.Right))
			return
		}
		re, err := compilePattern(cmp.r.s)
		if err != nil {
			rw.fail(n.Right, "%v", err)
			return
		}
		cmp.re = re
	}
	cmp.prepare()
	rw.cmpAt[n] = int32(len(rw.c.cmps))
	rw.c.cmps = append(rw.c.cmps, cmp)
}

// operand decodes an operand node: a placeholder or nil.
func (rw *rewriter) operand(n ast.Node) operand {
	id, ok := n.(*ast.IdentifierNode)
	if !ok {
		return operand{kind: opNull}
	}
	i, _ := rw.placeholder(id)
	return operandOf(rw.toks[i])
}

// operandOf decodes an operand token, parsing literals as numbers once.
func operandOf(t token) operand {
	o := operand{s: t.val}
	switch t.kind {
	case tLookup:
		o.kind = opLookup
		return o
	case tNull:
		o.kind = opNull
		return o
	case tNumber:
		o.kind = opNumber
	default:
		o.kind = opText
	}
	o.dec, o.isDec = parseDecimal(t.val)
	return o
}

// placeholder returns the token index behind a placeholder identifier.
func (rw *rewriter) placeholder(n *ast.IdentifierNode) (int, bool) {
	s, ok := strings.CutPrefix(n.Value, "t")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 || i >= len(rw.toks) || !rw.toks[i].isValue() {
		return 0, false
	}
	return i, true
}

// tokenAt returns the index of the token whose translation covers the
// offset off of the translated code, or of the next token after it.
func (rw *rewriter) tokenAt(off int) int {
	for i, s := range rw.spans {
		if off < s.to || rw.toks[i].kind == tEOF {
			return i
		}
	}
	return len(rw.toks) - 1
}

// tokenOf returns the index of the token a node stands for.
func (rw *rewriter) tokenOf(n ast.Node) int {
	if id, ok := n.(*ast.IdentifierNode); ok {
		if i, ok := rw.placeholder(id); ok {
			return i
		}
	}
	return rw.tokenAt(n.Location().From)
}

// tokenText returns token i as written in the source, operators quoted.
func (rw *rewriter) tokenText(i int) string {
	t := rw.toks[i]
	switch {
	case t.kind == tEOF:
		return "end of expression"
	case t.isValue():
		return rw.src[t.pos:t.end]
	}
	return "'" + rw.src[t.pos:t.end] + "'"
}

// describe returns an operand as the user wrote it, for messages, or "a
// condition" for anything else.
func (rw *rewriter) describe(n ast.Node) string {
	switch n.(type) {
	case *ast.IdentifierNode, *ast.NilNode, *ast.BoolNode:
		return rw.tokenText(rw.tokenOf(n))
	}
	return "a condition"
}

// opText returns the operator of n as the user wrote it ('and', '&&', 'eq').
func (rw *rewriter) opText(n ast.Node) string {
	return rw.tokenText(rw.tokenAt(n.Location().From))
}

// fail records the first error, pointing at the token of node n.
func (rw *rewriter) fail(n ast.Node, format string, args ...any) {
	if rw.err == nil {
		rw.err = newError(rw.src, rw.toks[rw.tokenOf(n)].pos, format, args...)
	}
}

// syntaxError turns an error of expr-lang's parser, which points into the
// translated code, into an *Error that points into the source.
func (rw *rewriter) syntaxError(err error) *Error {
	var fe *file.Error
	if !errors.As(err, &fe) {
		return newError(rw.src, 0, "cannot compile: %v", err)
	}
	if strings.Contains(fe.Message, "exceeds maximum allowed nodes") {
		return newError(rw.src, 0, "expression is too complex")
	}
	i := rw.tokenAt(fe.From)
	if strings.Contains(fe.Message, "EOF") || rw.toks[i].kind == tEOF {
		return newError(rw.src, len(rw.src), "unexpected end of expression")
	}
	return newError(rw.src, rw.toks[i].pos, "unexpected %s", rw.tokenText(i))
}
