package expr

import (
	"strings"
	"unicode/utf8"
)

// Limits on input. An expression is a condition written by a person into
// a rule in Consul KV; 4 KiB is far more than one needs, and bounds the work
// and the nesting of both Compile and Match. The pattern limit, in
// characters, is the one later Spring versions apply to matches.
const (
	maxExprBytes     = 4096
	maxPatternLength = 1000
)

type tokKind uint8

// The tokens of SpEL's tokenizer (org.springframework.expression.spel.
// standard.Tokenizer), named after its TokenKind. Word operators (and, or,
// matches, between, true, null...) are identifiers the parser recognizes,
// as in SpEL; the alternative operator names (eq, ne, lt, le, gt, ge, not,
// div, mod) become operator tokens here, as in SpEL's tokenizer.
const (
	tEOF      tokKind = iota
	tIdent            // a name; val is the name
	tInt              // 42, 0x1F, 10L; val is the text without 0x and L
	tReal             // 1.5, 2e3, 1.5f, 2d; val is the text as written
	tString           // 'text' or "text"; val is the unescaped text
	tHash             // #
	tLParen           // (
	tRParen           // )
	tLBracket         // [
	tRBracket         // ]
	tLBrace           // {
	tRBrace           // }
	tComma            // ,
	tColon            // :
	tQMark            // ?
	tElvis            // ?:
	tPlus             // +
	tMinus            // -
	tStar             // *
	tDiv              // /, div
	tMod              // %, mod
	tPower            // ^
	tInc              // ++
	tDec              // --
	tNot              // !, not
	tEq               // ==, eq
	tNe               // !=, ne
	tLt               // <, lt
	tLe               // <=, le
	tGt               // >, gt
	tGe               // >=, ge
	tAnd              // &&
	tOr               // ||
	tAssign           // =
	tDot              // .
	tSafeNav          // ?.
	tSelect           // ?[ ![ ^[ $[ (selection and projection)
	tBeanRef          // @ or &
)

// token is one lexeme of a SpEL expression. pos and end are byte offsets
// into the source, used to point errors at what the user wrote.
type token struct {
	kind tokKind
	val  string
	pos  int
	end  int
	hex  bool // tInt: hexadecimal
	long bool // tInt: L suffix
	flt  bool // tReal: f suffix (a float, not a double)
}

// altOperators are SpEL's alternative (textual) operator names, which its
// tokenizer turns into operator tokens when they stand alone as a word of
// two or three letters, in any case.
var altOperators = map[string]tokKind{
	"div": tDiv, "eq": tEq, "ge": tGe, "gt": tGt, "le": tLe,
	"lt": tLt, "mod": tMod, "ne": tNe, "not": tNot,
}

// lexer splits a SpEL expression into tokens.
type lexer struct {
	src  string
	pos  int
	toks []token
}

// lex tokenizes src as SpEL's tokenizer does. The returned slice always
// ends with a tEOF token.
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

// skipSpace skips the white space SpEL skips between tokens: space, tab,
// carriage return and line feed. SpEL also skips a NUL character.
func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		switch l.src[l.pos] {
		case ' ', '\t', '\r', '\n', 0:
			l.pos++
		default:
			return
		}
	}
}

func (l *lexer) emit(t token) {
	t.end = l.pos
	l.toks = append(l.toks, t)
}

func (l *lexer) peekAt(i int) byte {
	if i < len(l.src) {
		return l.src[i]
	}
	return 0
}

// next reads one token starting at l.pos, which is not white space.
func (l *lexer) next() error {
	start := l.pos
	c := l.src[start]
	switch {
	case c == '\'' || c == '"':
		s, err := l.str()
		if err != nil {
			return err
		}
		l.emit(token{kind: tString, val: s, pos: start})
		return nil
	case isDigit(c):
		return l.number()
	case isIdentStart(c) || (c == '$' && l.peekAt(start+1) != '['):
		for l.pos < len(l.src) && isIdentPart(l.src[l.pos]) {
			l.pos++
		}
		word := l.src[start:l.pos]
		if n := len(word); n == 2 || n == 3 {
			if kind, ok := altOperators[strings.ToLower(word)]; ok {
				l.emit(token{kind: kind, val: word, pos: start})
				return nil
			}
		}
		l.emit(token{kind: tIdent, val: word, pos: start})
		return nil
	}
	two := ""
	if start+1 < len(l.src) {
		two = l.src[start : start+2]
	}
	if kind, ok := twoCharTokens[two]; ok {
		l.pos += 2
		l.emit(token{kind: kind, val: two, pos: start})
		return nil
	}
	if kind, ok := oneCharTokens[c]; ok {
		l.pos++
		l.emit(token{kind: kind, val: string(c), pos: start})
		return nil
	}
	switch c {
	case '|':
		return l.errorf(start, "unexpected '|'; write '||' or 'or'")
	case '\\':
		return l.errorf(start, "unexpected '\\' outside a string")
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	return l.errorf(start, "unexpected character %q", r)
}

var twoCharTokens = map[string]tokKind{
	"==": tEq, "!=": tNe, "<=": tLe, ">=": tGe, "&&": tAnd, "||": tOr,
	"++": tInc, "--": tDec, "?:": tElvis, "?.": tSafeNav,
	"?[": tSelect, "![": tSelect, "^[": tSelect, "$[": tSelect,
}

var oneCharTokens = map[byte]tokKind{
	'#': tHash, '(': tLParen, ')': tRParen, '[': tLBracket, ']': tRBracket,
	'{': tLBrace, '}': tRBrace, ',': tComma, ':': tColon, '?': tQMark,
	'+': tPlus, '-': tMinus, '*': tStar, '/': tDiv, '%': tMod, '^': tPower,
	'!': tNot, '<': tLt, '>': tGt, '=': tAssign, '.': tDot, '@': tBeanRef,
	'&': tBeanRef,
}

// str reads a quoted string at l.pos. As in SpEL, a quote inside a string
// is written twice, and a backslash is an ordinary character, which keeps
// regular expressions such as \d+ readable. The text is unescaped as
// Spring 4.3 to 5.x do it: two single quotes become one, then two double
// quotes become one, in either kind of literal.
func (l *lexer) str() (string, error) {
	start := l.pos
	q := l.src[start]
	l.pos++
	for {
		i := strings.IndexByte(l.src[l.pos:], q)
		if i < 0 {
			l.pos = len(l.src)
			return "", l.errorf(start, "unterminated string: no closing %c", q)
		}
		l.pos += i + 1
		if l.pos < len(l.src) && l.src[l.pos] == q { // doubled quote
			l.pos++
			continue
		}
		return unescapeString(l.src[start+1 : l.pos-1]), nil
	}
}

// unescapeString unescapes the text between the quotes of a string literal
// as Spring's StringLiteral does.
func unescapeString(s string) string {
	if strings.Contains(s, "''") {
		s = strings.ReplaceAll(s, "''", "'")
	}
	if strings.Contains(s, `""`) {
		s = strings.ReplaceAll(s, `""`, `"`)
	}
	return s
}

// number reads a number literal as SpEL's tokenizer does (lexNumericLiteral):
// a hex int (0x1F, with L for long), a decimal int (42, 10L), or a real
// (1.5, 1e3, 2f, 1.5d). "3." is the int 3 followed by a dot. The literal's
// value is checked by the parser, as SpEL's Literal does.
func (l *lexer) number() error {
	start := l.pos
	if l.src[start] == '0' && (l.peekAt(start+1) == 'x' || l.peekAt(start+1) == 'X') {
		l.pos += 2
		for l.pos < len(l.src) && isHexDigit(l.src[l.pos]) {
			l.pos++
		}
		t := token{kind: tInt, val: l.src[start+2 : l.pos], pos: start, hex: true}
		t.long = l.eat('L', 'l')
		l.emit(t)
		return nil
	}
	for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
		l.pos++
	}
	real := false
	if l.peekAt(l.pos) == '.' {
		if !isDigit(l.peekAt(l.pos + 1)) {
			// 3. is an int followed by a dot, as in 3.toString()
			l.emit(token{kind: tInt, val: l.src[start:l.pos], pos: start})
			return nil
		}
		real = true
		l.pos++
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
	}
	switch c := l.peekAt(l.pos); {
	case c == 'L' || c == 'l':
		if real {
			return l.errorf(start, "a real number cannot be long (%s)", l.src[start:l.pos+1])
		}
		l.emit(token{kind: tInt, val: l.src[start:l.pos], pos: start, long: true})
		l.pos++
		l.toks[len(l.toks)-1].end = l.pos
		return nil
	case c == 'e' || c == 'E':
		l.pos++
		if c := l.peekAt(l.pos); c == '+' || c == '-' {
			l.pos++
		}
		// SpEL takes the next character as a digit of the exponent
		// whatever it is, then any further digits.
		if l.pos >= len(l.src) || !isDigit(l.src[l.pos]) {
			return l.errorf(start, "number %q has no exponent digits", l.src[start:l.pos])
		}
		for l.pos < len(l.src) && isDigit(l.src[l.pos]) {
			l.pos++
		}
		real = true
	}
	t := token{kind: tReal, pos: start}
	switch l.peekAt(l.pos) {
	case 'f', 'F':
		t.flt, real = true, true
		l.pos++
	case 'd', 'D':
		real = true
		l.pos++
	}
	if !real {
		t.kind = tInt
	}
	t.val = l.src[start:l.pos]
	l.emit(t)
	return nil
}

// eat consumes the next byte if it is one of bs.
func (l *lexer) eat(bs ...byte) bool {
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
