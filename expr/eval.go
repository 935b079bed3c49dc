package expr

// test evaluates node i in a boolean context, as SpEL's and, or, not and
// ?: convert their operands, and as Nepxion reads the whole condition
// (getValue(context, Boolean.class), null being false). ok is false where
// SpEL throws, which makes the whole condition false: Nepxion catches the
// exception. Nesting depth is bounded by the length limit of an expression.
func (c *Condition) test(i int32, v Values) (b, ok bool) {
	n := &c.nodes[i]
	switch n.kind {
	case nCmp:
		return c.compare(n, v)
	case nAnd:
		if b, ok = c.test(n.a, v); !ok || !b {
			return false, ok
		}
		return c.test(n.b, v)
	case nOr:
		if b, ok = c.test(n.a, v); !ok || b {
			return b, ok
		}
		return c.test(n.b, v)
	case nNot:
		b, ok = c.test(n.a, v)
		return !b, ok
	case nMatches:
		return c.matches(n, v)
	case nBetween:
		return c.between(n, v)
	case nFail:
		return false, false
	}
	return c.testValue(i, v)
}

// testValue evaluates node i, a value, and converts it to a boolean. It is
// apart from test so that test, on the hot path, has a small frame.
func (c *Condition) testValue(i int32, v Values) (bool, bool) {
	x, ok := c.eval(i, v)
	if !ok {
		return false, false
	}
	return toBool(x)
}

// eval evaluates node i to a value; ok is false where SpEL throws.
func (c *Condition) eval(i int32, v Values) (value, bool) {
	n := &c.nodes[i]
	switch n.kind {
	case nLit:
		return n.lit, true
	case nLookup:
		return lookup(v, n.name), true
	case nPlus:
		l, ok := c.eval(n.a, v)
		if !ok {
			return value{}, false
		}
		r, ok := c.eval(n.b, v)
		if !ok {
			return value{}, false
		}
		return plus(l, r)
	case nPos:
		x, ok := c.eval(n.a, v)
		return x, ok && x.isNum()
	case nNeg:
		x, ok := c.eval(n.a, v)
		if !ok {
			return value{}, false
		}
		return negate(x)
	case nTernary:
		b, ok := c.test(n.a, v)
		if !ok {
			return value{}, false
		}
		if b {
			return c.eval(n.b, v)
		}
		return c.eval(n.c, v)
	case nElvis:
		x, ok := c.eval(n.a, v)
		if !ok {
			return value{}, false
		}
		if x.k != kNull && (x.k != kStr || x.s != "") {
			return x, true
		}
		return c.eval(n.b, v)
	}
	b, ok := c.test(i, v)
	return boolValue(b), ok
}

// lookup reads #H['name']. Nepxion puts only non-blank values into #H, so
// a blank value (empty or only white space) is null, as a missing one is.
func lookup(v Values, name string) value {
	s, ok := v.Lookup(name)
	if !ok || isBlank(s) {
		return value{}
	}
	return value{k: kStr, s: s}
}

// dec returns the precomputed decimal of node i if it is a literal.
func (c *Condition) dec(i int32) *literalDec {
	if n := &c.nodes[i]; n.kind == nLit {
		return &n.dec
	}
	return nil
}

// compare evaluates a comparison node: == and != by SpEL's equality, the
// others on two numbers directly, else through Nepxion's comparator.
func (c *Condition) compare(n *node, v Values) (bool, bool) {
	switch n.fast {
	case fastEqText:
		s, ok := v.Lookup(n.name)
		return (ok && s == n.lit.s) == (n.op == cmpEq), true
	case fastNull:
		s, ok := v.Lookup(n.name)
		return (!ok || isBlank(s)) == (n.op == cmpEq), true
	case fastOrderInt:
		if s, ok := v.Lookup(n.name); ok {
			if a, ok := parseInt(s); ok {
				return holds(n.op, order(a, n.lit.n)), true
			}
		}
	}
	return c.compareValues(n, v)
}

// compareValues is the general path of compare, apart so that compare has
// a small frame.
func (c *Condition) compareValues(n *node, v Values) (bool, bool) {
	l, ok := c.eval(n.a, v)
	if !ok {
		return false, false
	}
	r, ok := c.eval(n.b, v)
	if !ok {
		return false, false
	}
	switch n.op {
	case cmpEq:
		return equal(l, r), true
	case cmpNe:
		return !equal(l, r), true
	}
	if l.isNum() && r.isNum() {
		return holds(n.op, numOrder(l, r)), true
	}
	o, ok := compareValues(l, c.dec(n.a), r, c.dec(n.b))
	return ok && holds(n.op, o), ok
}

// holds reports whether the ordering operator holds for the outcome o of a
// three-way comparison.
func holds(op cmpOp, o int) bool {
	switch op {
	case cmpLt:
		return o < 0
	case cmpLe:
		return o <= 0
	case cmpGt:
		return o > 0
	}
	return o >= 0 // cmpGe
}

// matches is SpEL's matches: the left side as a string (null fails), the
// pattern a string (anything else fails), matched whole, with Java's
// meaning. A pattern that is not a literal is translated and compiled
// here; one that does not compile, or has no faithful translation, fails.
func (c *Condition) matches(n *node, v Values) (bool, bool) {
	if n.fast == fastMatchLookup { // the common case: #H['name'] matches 'literal'
		s, ok := v.Lookup(n.name)
		if !ok || isBlank(s) {
			return false, false // null
		}
		if n.simple != nil {
			return n.simple.match(s), true
		}
		return n.re.MatchString(s), true
	}
	return c.matchesValue(n, v)
}

// matchesValue is the general path of matches, apart so that matches has
// a small frame.
func (c *Condition) matchesValue(n *node, v Values) (bool, bool) {
	l, ok := c.eval(n.a, v)
	if !ok {
		return false, false
	}
	s, ok := matchString(l)
	if !ok {
		return false, false
	}
	if n.simple != nil {
		return n.simple.match(s), true
	}
	re := n.re
	if re == nil {
		p, ok := c.eval(n.b, v)
		if !ok || p.k != kStr {
			return false, false
		}
		var err error
		if re, err = compilePattern(p.s); err != nil {
			return false, false
		}
	}
	return re.MatchString(s), true
}

// between is SpEL's between: low <= x <= high by Nepxion's comparator,
// the second comparison made only if the first holds.
func (c *Condition) between(n *node, v Values) (bool, bool) {
	x, ok := c.eval(n.a, v)
	if !ok {
		return false, false
	}
	lo, ok := c.eval(n.b, v)
	if !ok {
		return false, false
	}
	hi, ok := c.eval(n.c, v)
	if !ok {
		return false, false
	}
	o, ok := compareValues(x, c.dec(n.a), lo, c.dec(n.b))
	if !ok || o < 0 {
		return false, ok
	}
	o, ok = compareValues(x, c.dec(n.a), hi, c.dec(n.c))
	return ok && o <= 0, ok
}

// fastPath names a shape of comparison that compare answers with less work
// than the general path, with the same result. Most conditions compare one
// request value with a string.
type fastPath uint8

const (
	fastNone        fastPath = iota
	fastEqText               // #H['name'] == 'text' (or !=), text not blank; lit is the text
	fastOrderInt             // #H['name'] < 18 or < '18' (any ordering); lit.n is the integer
	fastMatchLookup          // #H['name'] matches 'pattern'
	fastNull                 // #H['name'] == null (or !=)
)

// prepareNodes computes what evaluation needs once: the decimals of
// literals and the fast paths of comparisons.
func prepareNodes(nodes []node) {
	for i := range nodes {
		n := &nodes[i]
		if n.kind == nLit && n.lit.k != kNull && n.lit.k != kBool {
			n.dec.dec, n.dec.ok = parseDecimal(javaString(n.lit))
		}
	}
	for i := range nodes {
		n := &nodes[i]
		if n.kind == nMatches && n.re != nil && nodes[n.a].kind == nLookup {
			n.fast, n.name = fastMatchLookup, nodes[n.a].name
		}
		if n.kind != nCmp || nodes[n.a].kind != nLookup || nodes[n.b].kind != nLit {
			continue
		}
		n.name = nodes[n.a].name // the fast paths read it here, not in another node
		r := nodes[n.b].lit
		switch n.op {
		case cmpEq, cmpNe:
			// A value equal to a text that is not blank is not blank
			// either, so it is not null: the blank check can go.
			switch {
			case r.k == kStr && !isBlank(r.s):
				n.fast, n.lit = fastEqText, r
			case r.k == kNull:
				n.fast = fastNull
			}
		default:
			// A request value that is an integer and an integer literal
			// (or a string literal that is one) compare as integers,
			// which is what BigDecimal's comparison gives.
			if r.k == kStr || r.k == kInt || r.k == kLong {
				if x, ok := parseInt(javaString(r)); ok {
					n.fast, n.lit = fastOrderInt, value{k: kLong, n: x}
				}
			}
		}
	}
}
