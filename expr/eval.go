package expr

import (
	"fmt"

	"github.com/expr-lang/expr/ast"
)

// nodeKind is the kind of a node of a compiled condition.
type nodeKind uint8

const (
	nFalse nodeKind = iota // the constant false
	nTrue                  // the constant true
	nCmp                   // comparison a, an index into Condition.cmps
	nNot                   // not node a
	nAnd                   // node a and node b, short-circuit
	nOr                    // node a or node b, short-circuit
	nIff                   // node a == node b, both conditions
	nXor                   // node a != node b, both conditions
)

// node is one node of a compiled condition. The nodes of a condition sit in
// one slice and refer to their children by index, so evaluating them reads
// a few adjacent cache lines and calls nothing but the request's Lookup.
type node struct {
	kind nodeKind
	a, b int32
}

// eval evaluates node i of c. Nesting depth is bounded by the length limit
// of an expression.
func (c *Condition) eval(i int32, v Values) bool {
	n := &c.nodes[i]
	switch n.kind {
	case nCmp:
		return c.cmps[n.a].eval(v)
	case nAnd:
		return c.test(n.a, v) && c.test(n.b, v)
	case nOr:
		return c.test(n.a, v) || c.test(n.b, v)
	case nNot:
		return !c.eval(n.a, v)
	case nIff:
		return c.eval(n.a, v) == c.eval(n.b, v)
	case nXor:
		return c.eval(n.a, v) != c.eval(n.b, v)
	}
	return n.kind == nTrue
}

// test evaluates node i of c, calling a comparison directly: and and or
// mostly join comparisons, and eval, being recursive, is never inlined.
func (c *Condition) test(i int32, v Values) bool {
	if n := &c.nodes[i]; n.kind == nCmp {
		return c.cmps[n.a].eval(v)
	}
	return c.eval(i, v)
}

// builder turns the tree that expr-lang parsed, once the rewriter has
// accepted it, into the nodes of a condition. Children are added before
// their parents, so the root is the last node.
type builder struct {
	nodes []node
	cmpAt map[*ast.BinaryNode]int32 // comparisons, by the node that compares
}

// build adds the nodes of the condition n and returns the index of its
// root. The rewriter has checked every node; anything else is a fault of
// this package, reported rather than evaluated.
func (b *builder) build(n ast.Node) (int32, error) {
	switch n := n.(type) {
	case *ast.BoolNode:
		if n.Value {
			return b.add(node{kind: nTrue}), nil
		}
		return b.add(node{kind: nFalse}), nil
	case *ast.UnaryNode:
		if n.Operator == "!" {
			x, err := b.build(n.Node)
			if err != nil {
				return 0, err
			}
			return b.add(node{kind: nNot, a: x}), nil
		}
	case *ast.BinaryNode:
		if i, ok := b.cmpAt[n]; ok {
			return b.add(node{kind: nCmp, a: i}), nil
		}
		var kind nodeKind
		switch n.Operator {
		case "&&":
			kind = nAnd
		case "||":
			kind = nOr
		case "==":
			kind = nIff
		case "!=":
			kind = nXor
		default:
			return 0, fmt.Errorf("operator %q", n.Operator)
		}
		l, err := b.build(n.Left)
		if err != nil {
			return 0, err
		}
		r, err := b.build(n.Right)
		if err != nil {
			return 0, err
		}
		return b.add(node{kind: kind, a: l, b: r}), nil
	}
	return 0, fmt.Errorf("node %T", n)
}

func (b *builder) add(n node) int32 {
	b.nodes = append(b.nodes, n)
	return int32(len(b.nodes) - 1)
}
