package expr

import (
	"cmp"
	"regexp"
	"unicode/utf8"
)

// operandKind says where a comparison operand's value comes from.
type operandKind uint8

const (
	opLookup operandKind = iota // a request value, #H['name']
	opText                      // a string literal
	opNumber                    // a number literal
	opNull                      // the null literal
)

// operand is one side of a comparison. Literals are decoded once, at compile
// time; only lookups do work per evaluation.
type operand struct {
	kind  operandKind
	s     string  // the name (lookup), the text (text) or the decimal text (number)
	dec   decimal // s as a number, for literals where isDec
	isDec bool
}

// value returns the operand's value for one evaluation; null reports a
// missing value. Like Nepxion, which only reads non-blank headers into #H,
// a blank value (empty or white space only) counts as missing.
func (o *operand) value(v Values) (s string, null bool) {
	switch o.kind {
	case opLookup:
		s, ok := v.Lookup(o.s)
		if !ok || isBlank(s) {
			return "", true
		}
		return s, false
	case opNull:
		return "", true
	}
	return o.s, false
}

// decimal returns the operand's value as a number, if it is one.
func (o *operand) decimal(s string) (decimal, bool) {
	if o.kind != opLookup {
		return o.dec, o.isDec
	}
	return parseDecimal(s)
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
	cmpMatches
)

// comparison is one compiled comparison: two operands and an operator.
// All the semantics of the supported SpEL subset live in eval.
type comparison struct {
	op   cmpOp
	l, r operand
	re   *regexp.Regexp // for cmpMatches: the pattern, anchored at both ends
	fast fastPath
	rInt int64 // for fastOrderInt: the right operand
}

// fastPath names a shape of comparison that eval answers with less work
// than the general path, with the same result. Most conditions compare one
// request value with a string.
type fastPath uint8

const (
	fastNone     fastPath = iota
	fastEqText            // #H['name'] == 'text', text not blank
	fastNeText            // #H['name'] != 'text', text not blank
	fastOrderInt          // #H['name'] < 18 or < '18' (any ordering), an integer literal
)

// prepare picks the comparison's fast path, if it has one.
func (c *comparison) prepare() {
	if c.l.kind != opLookup || (c.r.kind != opText && c.r.kind != opNumber) {
		return
	}
	switch c.op {
	case cmpEq, cmpNe:
		// A value equal to a text that is not blank is not blank either,
		// so it is not null: the general path's blank check can go.
		if c.r.kind == opText && !isBlank(c.r.s) {
			c.fast = fastEqText
			if c.op == cmpNe {
				c.fast = fastNeText
			}
		}
	case cmpLt, cmpLe, cmpGt, cmpGe:
		if n, ok := parseInt(c.r.s); ok {
			c.fast, c.rInt = fastOrderInt, n
		}
	}
}

// eval evaluates the comparison against one request's values. It never
// fails: a comparison SpEL could not evaluate is false.
func (c *comparison) eval(v Values) bool {
	switch c.fast {
	case fastEqText:
		s, ok := v.Lookup(c.l.s)
		return ok && s == c.r.s
	case fastNeText:
		s, ok := v.Lookup(c.l.s)
		return !ok || s != c.r.s
	}
	ls, lnull := c.l.value(v)
	if c.op == cmpMatches {
		return !lnull && c.re.MatchString(ls)
	}
	if c.fast == fastOrderInt && !lnull {
		// Two integers compare as the decimals they are.
		if a, ok := parseInt(ls); ok {
			return c.holds(cmp.Compare(a, c.rInt))
		}
	}
	rs, rnull := c.r.value(v)
	switch c.op {
	case cmpEq:
		return c.equal(ls, lnull, rs, rnull)
	case cmpNe:
		return !c.equal(ls, lnull, rs, rnull)
	}
	n, ok := c.order(ls, lnull, rs, rnull)
	if !ok {
		return false
	}
	return c.holds(n)
}

// holds reports whether the ordering operator holds for the outcome n of a
// three-way comparison.
func (c *comparison) holds(n int) bool {
	switch c.op {
	case cmpLt:
		return n < 0
	case cmpLe:
		return n <= 0
	case cmpGt:
		return n > 0
	default: // cmpGe
		return n >= 0
	}
}

// equal implements == : against a number literal the values are compared as
// numbers (a value that is no number is unequal); otherwise as exact strings.
// null equals only null.
func (c *comparison) equal(ls string, lnull bool, rs string, rnull bool) bool {
	if c.l.kind == opNumber || c.r.kind == opNumber {
		if lnull || rnull {
			return false
		}
		a, aok := c.l.decimal(ls)
		b, bok := c.r.decimal(rs)
		return aok && bok && a.cmp(b) == 0
	}
	if lnull || rnull {
		return lnull && rnull
	}
	return ls == rs
}

// order implements Nepxion's comparator for < <= > >=: null is lowest; two
// values that both read as decimal numbers compare as numbers; otherwise two
// strings compare as Java compares strings. A number literal against a value
// that is no number cannot be compared (Java throws), reported as !ok.
func (c *comparison) order(ls string, lnull bool, rs string, rnull bool) (int, bool) {
	switch {
	case lnull && rnull:
		return 0, true
	case lnull:
		return -1, true
	case rnull:
		return 1, true
	}
	a, aok := c.l.decimal(ls)
	b, bok := c.r.decimal(rs)
	if aok && bok {
		return a.cmp(b), true
	}
	if c.l.kind == opNumber || c.r.kind == opNumber {
		return 0, false
	}
	return compareJava(ls, rs), true
}

// parseInt reads s as an integer in the syntax BigDecimal(String) accepts
// (an optional sign and decimal digits) when it has at most 18 digits, so
// that it fits an int64; it reports false for anything else, which may
// still be a decimal.
func parseInt(s string) (int64, bool) {
	i, neg := 0, false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg, i = s[0] == '-', 1
	}
	if i == len(s) || len(s)-i > 18 {
		return 0, false
	}
	var n int64
	for ; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int64(s[i]-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// decimal is a number in the syntax of Java's BigDecimal(String), kept as
// slices of its source text so that reading one does not allocate.
//
// A non-zero value is 0.D × 10^exp, where D is the digit string formed by
// the integer part followed by the fraction, from index lead (the first
// non-zero digit) up to but not including index trail (after the last
// non-zero digit).
type decimal struct {
	neg         bool
	zero        bool
	intPart     string
	frac        string
	lead, trail int
	exp         int64
}

// parseDecimal reads s as Java's new BigDecimal(s) would: an optional sign,
// digits with an optional decimal point (at least one digit), and an
// optional exponent that fits in an int. It reports false for anything else,
// including white space, hex, "NaN" and "Infinity".
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	d.intPart = s[start:i]
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		d.frac = s[fs:i]
	}
	if d.intPart == "" && d.frac == "" {
		return decimal{}, false
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		es := i
		for i < len(s) && isDigit(s[i]) {
			if exp = exp*10 + int64(s[i]-'0'); exp > 1<<31 {
				return decimal{}, false
			}
			i++
		}
		if i == es {
			return decimal{}, false
		}
		if eneg {
			exp = -exp
		}
		if exp > 1<<31-1 {
			return decimal{}, false
		}
	}
	if i != len(s) {
		return decimal{}, false
	}
	n := len(d.intPart) + len(d.frac)
	for d.lead < n && d.digit(d.lead) == '0' {
		d.lead++
	}
	if d.lead == n {
		d.zero, d.neg = true, false
		return d, true
	}
	d.trail = n
	for d.digit(d.trail-1) == '0' {
		d.trail--
	}
	d.exp = int64(len(d.intPart)-d.lead) + exp
	return d, true
}

// digit returns the i-th digit of the integer part followed by the fraction.
func (d *decimal) digit(i int) byte {
	if i < len(d.intPart) {
		return d.intPart[i]
	}
	return d.frac[i-len(d.intPart)]
}

// cmp compares two decimals by value, as BigDecimal.compareTo does (so 1.0
// equals 1 and -0 equals 0). It returns -1, 0 or +1.
func (d decimal) cmp(o decimal) int {
	switch {
	case d.zero && o.zero:
		return 0
	case d.zero:
		return o.sign() * -1
	case o.zero, d.neg != o.neg:
		return d.sign()
	}
	return d.sign() * d.cmpAbs(o)
}

// sign returns -1, 0 or +1.
func (d decimal) sign() int {
	switch {
	case d.zero:
		return 0
	case d.neg:
		return -1
	}
	return 1
}

// cmpAbs compares the magnitudes of two non-zero decimals.
func (d decimal) cmpAbs(o decimal) int {
	if d.exp != o.exp {
		if d.exp < o.exp {
			return -1
		}
		return 1
	}
	i, j := d.lead, o.lead
	for ; i < d.trail && j < o.trail; i, j = i+1, j+1 {
		a, b := d.digit(i), o.digit(j)
		if a != b {
			if a < b {
				return -1
			}
			return 1
		}
	}
	switch {
	case i < d.trail: // d has more non-zero digits
		return 1
	case j < o.trail:
		return -1
	}
	return 0
}

// compareJava compares two strings as Java's String.compareTo does: by
// UTF-16 code units. That differs from Go's byte order only when a
// character above U+FFFF meets one in U+E000..U+FFFF.
func compareJava(a, b string) int {
	for a != "" && b != "" {
		if a[0] == b[0] {
			a, b = a[1:], b[1:]
			continue
		}
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if (ra == utf8.RuneError && na <= 1) || (rb == utf8.RuneError && nb <= 1) {
			break // not UTF-8: plain byte order
		}
		ua, ub := utf16Lead(ra), utf16Lead(rb)
		if ua == ub { // both above U+FFFF with the same high surrogate
			ua, ub = ra, rb
		}
		if ua < ub {
			return -1
		}
		return 1
	}
	switch {
	case a == b:
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	case a[0] < b[0]:
		return -1
	}
	return 1
}

// utf16Lead returns the first UTF-16 code unit of r.
func utf16Lead(r rune) rune {
	if r >= 0x10000 {
		return 0xD800 + (r-0x10000)>>10
	}
	return r
}

// isBlank reports whether s is empty or only white space in the sense of
// Java's Character.isWhitespace, as used by StringUtils.isNotBlank.
func isBlank(s string) bool {
	for _, r := range s {
		switch {
		case r == ' ', r >= '\t' && r <= '\r', r >= 0x1C && r <= 0x1F:
		case r == 0x1680, r >= 0x2000 && r <= 0x2006, r >= 0x2008 && r <= 0x200A,
			r == 0x2028, r == 0x2029, r == 0x205F, r == 0x3000:
		default:
			return false
		}
	}
	return true
}
