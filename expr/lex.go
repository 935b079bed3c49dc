package expr

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits on input. An expression is a condition written by a person into
// a rule in Consul KV; 4 KiB is far more than one needs, and bounds the work
// and the nesting of both Compile and Match. The pattern limit, in
// characters, is the one Spring's SpEL applies.
const (
	maxExprBytes     = 4096
	maxPatternLength = 1000
)

type tokKind uint8

const (
	tEOF     tokKind = iota
	tLookup          // #H['name']; val is the name
	tString          // 'text' or "text"; val is the unquoted text
	tNumber          // 42, -1.5, 0x1F, 10L; val is the number in decimal
	tNull            // null
	tTrue            // true
	tFalse           // false
	tAnd             // and, &&
	tOr              // or, ||
	tNot             // not, !
	tEq              // ==, eq
	tNe              // !=, ne
	tLt              // <, lt
	tLe              // <=, le
	tGt              // >, gt
	tGe              // >=, ge
	tMatches         // matches
	tLParen          // (
	tRParen          // )
)

// token is one lexeme of a SpEL expression. pos and end are byte offsets
// into the source, used to point errors at what the user wrote.
type token struct {
	kind tokKind
	val  string
	pos  int
	end  int
}

// isValue reports whether the token stands for a value (as opposed to an
// operator or a parenthesis).
func (t token) isValue() bool {
	switch t.kind {
	case tLookup, tString, tNumber, tNull, tTrue, tFalse:
		return true
	}
	return false
}

// keywords are SpEL's word operators and literals. SpEL matches them without
// regard to case (AND, Or, NULL all work), so the lexer lower-cases first.
var keywords = map[string]tokKind{
	"and":     tAnd,
	"or":      tOr,
	"not":     tNot,
	"eq":      tEq,
	"ne":      tNe,
	"lt":      tLt,
	"le":      tLe,
	"gt":      tGt,
	"ge":      tGe,
	"matches": tMatches,
	"null":    tNull,
	"true":    tTrue,
	"false":   tFalse,
}

// twoCharOps are the operators written with two characters.
var twoCharOps = map[string]tokKind{"==": tEq, "!=": tNe, "<=": tLe, ">=": tGe, "&&": tAnd, "||": tOr}

// unsupportedWords are SpEL operators outside the supported subset, named so
// the error can say "not supported" instead of "unknown name".
var unsupportedWords = map[string]bool{
	"div": true, "mod": true, "instanceof": true, "between": true, "new": true,
}

// lexer splits a SpEL expression into tokens.
type lexer struct {
	src  string
	pos  int
	toks []token
}

// lex tokenizes src. The returned slice always ends with a tEOF token.
func lex(src string) ([]token, error) {
	l := &lexer{src: src}
	for {
		l.skipSpace()
		if l.pos >= len(l.src) {
			l.toks = append(l.toks, token{kind: tEOF, pos: len(l.src), end: len(l.src)})
			return l.toks, nil
		}
		if err := l.next(); err != nil {
			return nil, err
		}
	}
}

func (l *lexer) errorf(pos int, format string, args ...any) error {
	return newError(l.src, pos, format, args...)
}

// skipSpace skips the white space SpEL skips between tokens.
func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case ' ', '\t', '\r', '\n':
			l.pos++
		default:
			return
		}
	}
}

func (l *lexer) emit(kind tokKind, val string, pos int) {
	l.toks = append(l.toks, token{kind: kind, val: val, pos: pos, end: l.pos})
}

// prevIsValue reports whether the last token ends an operand, which decides
// whether a '-' is a sign or a (not supported) subtraction.
func (l *lexer) prevIsValue() bool {
	if len(l.toks) == 0 {
		return false
	}
	t := l.toks[len(l.toks)-1]
	return t.isValue() || t.kind == tRParen
}

// next reads one token starting at l.pos, which is not white space.
func (l *lexer) next() error {
	start := l.pos
	c := l.src[start]
	switch {
	case c == '#':
		return l.lookup()
	case c == '\'' || c == '"':
		s, err := l.str()
		if err != nil {
			return err
		}
		l.emit(tString, s, start)
		return nil
	case isDigit(c):
		return l.number(start, false)
	case c == '-':
		if !l.prevIsValue() {
			l.pos++
			l.skipSpace()
			if l.pos < len(l.src) && isDigit(l.src[l.pos]) {
				return l.number(start, true)
			}
		}
		return l.errorf(start, "'-' is not supported (only comparisons, and, or, not and matches are)")
	case isIdentStart(c):
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		word := l.src[start:l.pos]
		if kind, ok := keywords[strings.ToLower(word)]; ok {
			l.emit(kind, "", start)
			return nil
		}
		if unsupportedWords[strings.ToLower(word)] {
			return l.errorf(start, "%q is not supported (only comparisons, and, or, not and matches are)", word)
		}
		return l.errorf(start, "unknown name %q: request values are read as #H['%s']", word, word)
	}
	two := ""
	if start+1 < len(l.src) {
		two = l.src[start : start+2]
	}
	if kind, ok := twoCharOps[two]; ok {
		l.pos += 2
		l.emit(kind, "", start)
		return nil
	}
	l.pos++
	switch c {
	case '(':
		l.emit(tLParen, "", start)
	case ')':
		l.emit(tRParen, "", start)
	case '<':
		l.emit(tLt, "", start)
	case '>':
		l.emit(tGt, "", start)
	case '!':
		l.emit(tNot, "", start)
	case '=':
		return l.errorf(start, "'=' is an assignment; compare with '=='")
	case '&':
		return l.errorf(start, "unexpected '&'; write '&&' or 'and'")
	case '|':
		return l.errorf(start, "unexpected '|'; write '||' or 'or'")
	case '+', '*', '/', '%', '^', '?', ':', '.', ',', '[', ']', '{', '}', '@', '$', '~':
		return l.errorf(start, "'%c' is not supported (only comparisons, and, or, not and matches are)", c)
	default:
		r, _ := utf8.DecodeRuneInString(l.src[start:])
		return l.errorf(start, "unexpected character %q", r)
	}
	return nil
}

// lookup reads #H['name'] (or #H["name"]), the only variable reference
// Nepxion's conditions use.
func (l *lexer) lookup() error {
	start := l.pos
	l.pos++ // '#'
	nameStart := l.pos
	for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
		l.pos++
	}
	switch name := l.src[nameStart:l.pos]; name {
	case "H":
	case "":
		return l.errorf(start, "expected a variable name after '#'")
	default:
		return l.errorf(start, "unknown variable '#%s': only #H (the request's values) is defined", name)
	}
	l.skipSpace()
	if l.pos >= len(l.src) || l.src[l.pos] != '[' {
		return l.errorf(l.pos, "expected '[' after #H, as in #H['name']")
	}
	l.pos++
	l.skipSpace()
	if l.pos >= len(l.src) || (l.src[l.pos] != '\'' && l.src[l.pos] != '"') {
		return l.errorf(l.pos, "expected a quoted name in #H[...], as in #H['name']")
	}
	name, err := l.str()
	if err != nil {
		return err
	}
	l.skipSpace()
	if l.pos >= len(l.src) || l.src[l.pos] != ']' {
		return l.errorf(l.pos, "expected ']' to close #H[")
	}
	l.pos++
	l.emit(tLookup, name, start)
	return nil
}

// str reads a quoted string at l.pos. As in SpEL, a quote inside a string
// is written twice, and a backslash is an ordinary character, which keeps
// regular expressions such as \d+ readable.
func (l *lexer) str() (string, error) {
	start := l.pos
	q := l.src[start]
	l.pos++
	var b strings.Builder
	from := l.pos
	for {
		i := strings.IndexByte(l.src[l.pos:], q)
		if i < 0 {
			l.pos = len(l.src)
			return "", l.errorf(start, "unterminated string: no closing %c", q)
		}
		l.pos += i + 1
		if l.pos < len(l.src) && l.src[l.pos] == q { // doubled quote
			b.WriteString(l.src[from:l.pos])
			l.pos++
			from = l.pos
			continue
		}
		if b.Len() == 0 {
			return l.src[from : l.pos-1], nil
		}
		b.WriteString(l.src[from : l.pos-1])
		return b.String(), nil
	}
}

// number reads a SpEL number literal: an int (42, with L for long), a hex int
// (0x1F), or a real (1.5, 1e3, with an optional f or d). The value is kept as
// decimal text, which is what Nepxion's comparator converts numbers to.
// neg means a '-' sign was already consumed at start.
func (l *lexer) number(start int, neg bool) error {
	sign := ""
	if neg {
		sign = "-"
	}
	digits := l.pos
	if l.src[l.pos] == '0' && l.pos+1 < len(l.src) && (l.src[l.pos+1] == 'x' || l.src[l.pos+1] == 'X') {
		l.pos += 2
		hexStart := l.pos
		for l.pos < len(l.src) && isHexDigit(l.src[l.pos]) {
			l.pos++
		}
		hex := l.src[hexStart:l.pos]
		bits, kind := intSize(l.eatByte('L', 'l'))
		if hex == "" {
			return l.errorf(start, "hex number %q has no digits", l.src[start:l.pos])
		}
		v, err := strconv.ParseInt(sign+hex, 16, bits)
		if err != nil {
			return l.errorf(start, "number %s is too large for %s", l.src[start:l.pos], kind)
		}
		return l.endNumber(start, strconv.FormatInt(v, 10))
	}
	for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
		l.pos++
	}
	real := false
	if l.pos+1 < len(l.src) && l.src[l.pos] == '.' && isDigit(l.src[l.pos+1]) {
		real = true
		l.pos++
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
	}
	if l.pos < len(l.src) && (l.src[l.pos] == 'e' || l.src[l.pos] == 'E') {
		p := l.pos + 1
		if p < len(l.src) && (l.src[p] == '+' || l.src[p] == '-') {
			p++
		}
		if p >= len(l.src) || !isDigit(l.src[p]) {
			return l.errorf(l.pos, "exponent of number %q has no digits", l.src[start:p])
		}
		for p < len(l.src) && isDigit(l.src[p]) {
			p++
		}
		real = true
		l.pos = p
	}
	text := sign + l.src[digits:l.pos]
	if l.eatByte('f', 'F', 'd', 'D') || real {
		if _, ok := parseDecimal(text); !ok {
			return l.errorf(start, "number %s is out of range", l.src[start:l.pos])
		}
		return l.endNumber(start, text)
	}
	bits, kind := intSize(l.eatByte('L', 'l'))
	if _, err := strconv.ParseInt(text, 10, bits); err != nil {
		return l.errorf(start, "number %s is too large for %s", l.src[start:l.pos], kind)
	}
	return l.endNumber(start, text)
}

// intSize gives the bit size and the name of a SpEL int literal's type.
func intSize(long bool) (int, string) {
	if long {
		return 64, "a long"
	}
	return 32, "an int (add L for a long)"
}

// endNumber emits a number token after checking that it is not glued to a
// name, as in 12abc.
func (l *lexer) endNumber(start int, val string) error {
	if l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
		return l.errorf(start, "malformed number %q", l.src[start:l.pos+1])
	}
	l.emit(tNumber, val, start)
	return nil
}

// eatByte consumes the next byte if it is one of bs.
func (l *lexer) eatByte(bs ...byte) bool {
	if l.pos < len(l.src) {
		for _, b := range bs {
			if l.src[l.pos] == b {
				l.pos++
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool      { return '0' <= c && c <= '9' }
func isHexDigit(c byte) bool   { return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') }
func isIdentStart(c byte) bool { return c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) || c == '$' }
