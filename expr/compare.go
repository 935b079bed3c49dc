package expr

import (
	"math"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// kind is the Java type of a value during evaluation. These are the types
// a Nepxion condition can produce: the strings of #H and string literals,
// null, booleans, and the number types of SpEL's literals.
type kind uint8

const (
	kNull   kind = iota
	kStr         // java.lang.String
	kBool        // java.lang.Boolean; n is 0 or 1
	kInt         // java.lang.Integer; n holds the int32
	kLong        // java.lang.Long
	kFloat       // java.lang.Float; f holds the float32
	kDouble      // java.lang.Double
)

// value is one value during evaluation. s is the string of kStr; for a
// number literal, prepare puts Java's toString of it in s, once.
type value struct {
	k kind
	s string
	n int64
	f float64
}

func boolValue(b bool) value {
	if b {
		return value{k: kBool, n: 1}
	}
	return value{k: kBool}
}

func (v value) isNum() bool { return v.k >= kInt }

// prepare computes a number literal's Java string once, at compile time.
func (v *value) prepare() {
	if v.isNum() && v.s == "" {
		v.s = javaString(*v)
	}
}

// javaString returns the value as Java's toString (or String.valueOf)
// writes it: what SpEL's + appends and what Nepxion's comparator reads as a
// BigDecimal.
func javaString(v value) string {
	switch v.k {
	case kStr:
		return v.s
	case kNull:
		return "null"
	case kBool:
		if v.n != 0 {
			return "true"
		}
		return "false"
	}
	if v.s != "" {
		return v.s
	}
	switch v.k {
	case kInt, kLong:
		return strconv.FormatInt(v.n, 10)
	case kFloat:
		return javaFloatString(v.f, 32)
	}
	return javaFloatString(v.f, 64)
}

// javaFloatString writes f as Java's Double.toString (bits 64) or
// Float.toString (bits 32) does: plain notation with at least one fraction
// digit for magnitudes in [10^-3, 10^7), computerized scientific notation
// (1.0E10) otherwise, with the shortest digits that read back as f.
func javaFloatString(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	sign := ""
	if f < 0 {
		sign, f = "-", -f
	}
	e := strconv.FormatFloat(f, 'e', -1, bits) // d.ddde±XX
	mant, expText, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	if f >= 1e-3 && f < 1e7 {
		if exp >= 0 {
			for len(digits) < exp+2 {
				digits += "0"
			}
			return sign + digits[:exp+1] + "." + digits[exp+1:]
		}
		return sign + "0." + strings.Repeat("0", -exp-1) + digits
	}
	frac := digits[1:]
	if frac == "" {
		frac = "0"
	}
	return sign + digits[:1] + "." + frac + "E" + strconv.Itoa(exp)
}

// springBool converts a string to a boolean as Spring's
// StringToBooleanConverter does: trimmed (of everything up to U+0020, as
// Java's trim) and in any case, true, on, yes and 1 are true and false,
// off, no and 0 false; an empty string is null (null reports true), and
// anything else is an error (ok false).
func springBool(s string) (b, null, ok bool) {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	switch {
	case s == "":
		return false, true, true
	case strings.EqualFold(s, "true"), strings.EqualFold(s, "on"), strings.EqualFold(s, "yes"), s == "1":
		return true, false, true
	case strings.EqualFold(s, "false"), strings.EqualFold(s, "off"), strings.EqualFold(s, "no"), s == "0":
		return false, false, true
	}
	return false, false, false
}

// toBool converts a value to a boolean as SpEL's and, or, not and ?: do
// (getValue(Boolean.class), then a null check): ok is false where SpEL
// throws. At the top of a condition null is false, which Match gets the
// same way.
func toBool(v value) (b, ok bool) {
	switch v.k {
	case kBool:
		return v.n != 0, true
	case kStr:
		b, null, ok := springBool(v.s)
		return b, ok && !null
	}
	return false, false
}

// numOrder compares two numbers as SpEL's operators do (OpLT, OpEQ, ...):
// as doubles if either is a Double, else as floats if either is a Float,
// else as longs if either is a Long, else as ints.
func numOrder(l, r value) int {
	switch {
	case l.k == kDouble || r.k == kDouble:
		return order(asFloat64(l), asFloat64(r))
	case l.k == kFloat || r.k == kFloat:
		return order(asFloat32(l), asFloat32(r))
	}
	return order(l.n, r.n) // ints are held in int64 exactly
}

func asFloat64(v value) float64 {
	if v.k == kFloat || v.k == kDouble {
		return v.f
	}
	return float64(v.n)
}

func asFloat32(v value) float32 {
	if v.k == kFloat || v.k == kDouble {
		return float32(v.f)
	}
	return float32(v.n)
}

func order[T int64 | float32 | float64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// equal is SpEL's equalityCheck: numbers by value (see numOrder), strings
// and booleans exactly, null equal only to null, and values of different
// types (a string and a number, say) never equal.
func equal(l, r value) bool {
	switch {
	case l.isNum() && r.isNum():
		return numOrder(l, r) == 0
	case l.k != r.k:
		return false
	case l.k == kStr:
		return l.s == r.s
	}
	return l.n == r.n // null, or two booleans
}

// plus is SpEL's OpPlus on two values: numbers add in the type numOrder
// picks (ints and longs wrap around as in Java), a string concatenates
// with the Java string of the other side (null as "null"), and anything
// else fails.
func plus(l, r value) (value, bool) {
	switch {
	case l.isNum() && r.isNum():
		switch {
		case l.k == kDouble || r.k == kDouble:
			return value{k: kDouble, f: asFloat64(l) + asFloat64(r)}, true
		case l.k == kFloat || r.k == kFloat:
			return value{k: kFloat, f: float64(asFloat32(l) + asFloat32(r))}, true
		case l.k == kLong || r.k == kLong:
			return value{k: kLong, n: l.n + r.n}, true
		}
		return value{k: kInt, n: int64(int32(l.n) + int32(r.n))}, true
	case l.k == kStr || r.k == kStr:
		return value{k: kStr, s: javaString(l) + javaString(r)}, true
	}
	return value{}, false
}

// negate is SpEL's unary minus: 0 - x for a number (so -0.0 is 0.0), a
// failure for anything else.
func negate(v value) (value, bool) {
	switch v.k {
	case kInt:
		return value{k: kInt, n: int64(0 - int32(v.n))}, true
	case kLong:
		return value{k: kLong, n: 0 - v.n}, true
	case kFloat:
		return value{k: kFloat, f: float64(0 - float32(v.f))}, true
	case kDouble:
		return value{k: kDouble, f: 0 - v.f}, true
	}
	return value{}, false
}

// compareValues is Nepxion's DiscoveryTypeComparator: null is lowest; two
// values whose Java strings both read as BigDecimal compare as numbers;
// otherwise Spring's StandardTypeComparator: numbers by numOrder, two
// strings as Java's String.compareTo, two booleans false before true, and
// anything else fails (a ClassCastException in Java). ld and rd are the
// decimals of l and r where known in advance (literals).
func compareValues(l value, ld *literalDec, r value, rd *literalDec) (int, bool) {
	switch {
	case l.k == kNull && r.k == kNull:
		return 0, true
	case l.k == kNull:
		return -1, true
	case r.k == kNull:
		return 1, true
	}
	a, aok := decimalOf(l, ld)
	if aok {
		if b, bok := decimalOf(r, rd); bok {
			return a.cmp(b), true
		}
	}
	switch {
	case l.isNum() && r.isNum():
		return numOrder(l, r), true
	case l.k != r.k:
		return 0, false
	case l.k == kStr:
		return compareJava(l.s, r.s), true
	}
	return int(l.n - r.n), true // two booleans
}

// literalDec is a literal's BigDecimal reading, computed at compile time.
type literalDec struct {
	dec decimal
	ok  bool
}

func decimalOf(v value, known *literalDec) (decimal, bool) {
	if known != nil {
		return known.dec, known.ok
	}
	switch v.k {
	case kNull, kBool:
		return decimal{}, false
	}
	return parseDecimal(javaString(v))
}

// matchString is the left side of matches as SpEL reads it: converted to
// a String (numbers and booleans by toString); null fails.
func matchString(v value) (string, bool) {
	if v.k == kNull {
		return "", false
	}
	return javaString(v), true
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
// optional exponent, such that the number's scale fits in an int. Digits
// are any decimal digits Java's Character.isDigit accepts in one UTF-16
// unit (Arabic-Indic, fullwidth and so on), read for their value. It
// reports false for anything else, including white space, hex, "NaN" and
// "Infinity".
func parseDecimal(s string) (decimal, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			var ok bool
			if s, ok = asciiDigits(s); !ok {
				return decimal{}, false
			}
			break
		}
	}
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
		for i+1 < len(s) && s[i] == '0' { // leading zeros
			i++
		}
		es := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		// BigDecimal takes at most 10 exponent digits, into a long.
		if i == es || i-es > 10 {
			return decimal{}, false
		}
		exp, _ = strconv.ParseInt(s[es:i], 10, 64)
		if eneg {
			exp = -exp
		}
		if exp > math.MaxInt32 || exp < math.MinInt32 { // "Exponent overflow."
			return decimal{}, false
		}
	}
	if i != len(s) {
		return decimal{}, false
	}
	// The scale (fraction digits less the exponent) must fit in an int.
	if scale := int64(len(d.frac)) - exp; scale > math.MaxInt32 || scale < math.MinInt32 {
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

// asciiDigits replaces the non-ASCII decimal digits of s by ASCII ones, for
// parseDecimal. It reports false if s has any other non-ASCII character,
// which no number has. Only digits in the Basic Multilingual Plane count:
// BigDecimal reads UTF-16 units one at a time.
func asciiDigits(s string) (string, bool) {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r <= 0xFFFF && unicode.IsDigit(r):
			b.WriteByte('0' + byte(digitValue(r)))
		default:
			return "", false
		}
	}
	return b.String(), true
}

// digitValue returns the value of a decimal digit (Unicode category Nd).
// Unicode assigns them in runs of ten, from zero to nine, so the value is
// the distance from the start of the run, modulo ten.
func digitValue(r rune) int {
	z := r
	for z > 0 && unicode.IsDigit(z-1) {
		z--
	}
	return int(r-z) % 10
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
