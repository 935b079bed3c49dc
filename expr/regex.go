package expr

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// patternError is why a pattern was rejected. unsupported marks a valid
// Java pattern that has no faithful translation to Go's regexp; otherwise
// Java rejects the pattern too.
type patternError struct {
	msg         string
	unsupported bool
}

func (e *patternError) Error() string { return e.msg }

func badPattern(format string, args ...any) *patternError {
	return &patternError{msg: "bad pattern: " + fmt.Sprintf(format, args...)}
}

func unsupportedPattern(format string, args ...any) *patternError {
	return &patternError{msg: "pattern not supported: " + fmt.Sprintf(format, args...), unsupported: true}
}

// compilePattern compiles the pattern of a matches operator with the
// meaning of Java's String.matches: java.util.regex syntax, the whole
// string must match. The pattern is translated into Go's RE2 syntax where
// the two read it differently (see translatePattern); a Java construct
// with no faithful translation is rejected with an error naming it.
func compilePattern(p string) (*regexp.Regexp, error) {
	if n := utf8.RuneCountInString(p); n > maxPatternLength {
		return nil, unsupportedPattern("pattern is %d characters long, more than the %d allowed", n, maxPatternLength)
	}
	re2, err := translatePattern(p)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile(`^(?:` + re2 + `)$`)
	if err != nil {
		// regexp's messages start with "error parsing regexp: ".
		return nil, unsupportedPattern("%s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	return re, nil
}

// jflags are the Java pattern flags the translation follows.
type jflags struct {
	i bool // CASE_INSENSITIVE: ASCII only, unless u
	u bool // UNICODE_CASE
	s bool // DOTALL
	d bool // UNIX_LINES: . excludes only \n
}

// translator turns a java.util.regex pattern into RE2 syntax:
//   - . excludes \r, U+0085, U+2028 and U+2029 as well as \n (unless (?s);
//     only \n under (?d));
//   - \s is [ \t\n\x0B\f\r]; \h, \v, \H, \V are spelled out;
//   - (?i) folds ASCII letters only, unless (?u) is on too;
//   - octal \0101, \uFFFF, \cX, \e and \Q...\E become literals;
//   - (?<name>...) becomes (?P<name>...).
//
// It rejects, naming the construct, what RE2 cannot express the Java way:
// back references, look-around, atomic groups, possessive quantifiers,
// class union and intersection, \b and \B (Unicode-aware in Java), \Z, \G,
// \R, \X, the flags (?m), (?x), (?U) and (?c), and \p{...} other than
// Unicode general categories (\p{Alpha} and other POSIX and java names).
// Patterns Java itself rejects are rejected as bad patterns.
type translator struct {
	p        string
	i        int
	out      strings.Builder
	flags    jflags
	stack    []jflags
	canQuant bool     // whether a quantifier may follow what was written
	names    []string // the names of named groups
}

// translatePattern translates a Java pattern into RE2 syntax.
func translatePattern(p string) (string, error) {
	t := &translator{p: p}
	for t.i < len(p) {
		if err := t.next(); err != nil {
			return "", err
		}
	}
	if len(t.stack) > 0 {
		return "", badPattern("unclosed group: missing ')'")
	}
	return t.out.String(), nil
}

func (t *translator) peek() rune {
	if t.i >= len(t.p) {
		return -1
	}
	r, _ := utf8.DecodeRuneInString(t.p[t.i:])
	return r
}

func (t *translator) read() rune {
	r, n := utf8.DecodeRuneInString(t.p[t.i:])
	t.i += n
	return r
}

func (t *translator) atom(s string) {
	t.out.WriteString(s)
	t.canQuant = true
}

func (t *translator) next() error {
	c := t.read()
	switch c {
	case '\\':
		s, err := t.escape(false)
		if err != nil {
			return err
		}
		if s == `\A` || s == `\z` {
			t.atom(`(?:` + s + `)`) // Java lets a quantifier follow an anchor
			return nil
		}
		if s != "" {
			t.atom(s)
		}
		return nil
	case '[':
		s, err := t.class()
		if err != nil {
			return err
		}
		t.atom(s)
	case '(':
		return t.group()
	case ')':
		if len(t.stack) == 0 {
			return badPattern("unmatched ')'")
		}
		t.flags = t.stack[len(t.stack)-1]
		t.stack = t.stack[:len(t.stack)-1]
		t.atom(")")
	case '|':
		t.out.WriteByte('|')
		t.canQuant = false
	case '.':
		switch {
		case t.flags.s:
			t.atom(`(?s:.)`)
		case t.flags.d:
			t.atom(`[^\n]`)
		default:
			t.atom(`[^\n\r\x{85}\x{2028}\x{2029}]`)
		}
	case '^':
		t.atom(`(?:^)`) // Java lets a quantifier follow an anchor
	case '$':
		if !t.endFollows() {
			return unsupportedPattern("'$' followed by more pattern (Java's $ also matches before a final line break)")
		}
		t.out.WriteByte('$')
		t.canQuant = false
	case '*', '+', '?', '{':
		return t.quantifier(c)
	default:
		t.atom(t.literal(c))
	}
	return nil
}

// endFollows reports whether nothing but closing parentheses and '$'
// follow, or an alternative at the top level: then Java's $ can only
// match at the very end, as RE2's does.
func (t *translator) endFollows() bool {
	rest := strings.TrimLeft(t.p[t.i:], ")$")
	return rest == "" || (rest[0] == '|' && len(t.stack) == 0 && !strings.Contains(t.p[t.i:], ")"))
}

// literal writes the character c, folding ASCII letters under (?i).
func (t *translator) literal(c rune) string {
	if t.flags.i {
		if t.flags.u {
			return "[" + t.classRange(c, c) + "]"
		}
		if o := asciiOtherCase(c); o != c {
			return "[" + string(c) + string(o) + "]"
		}
	}
	return regexp.QuoteMeta(string(c))
}

func asciiOtherCase(c rune) rune {
	switch {
	case 'a' <= c && c <= 'z':
		return c - 'a' + 'A'
	case 'A' <= c && c <= 'Z':
		return c - 'A' + 'a'
	}
	return c
}

// quantifier writes a quantifier: * + ? {n} {n,} {n,m}, lazy with a
// trailing '?'; possessive ones (a trailing '+') are rejected.
func (t *translator) quantifier(c rune) error {
	start := t.i - 1
	if !t.canQuant {
		return badPattern("dangling meta character %q", c)
	}
	if c == '{' {
		j := t.i
		for j < len(t.p) && isDigit(t.p[j]) {
			j++
		}
		if j == t.i {
			return badPattern("illegal repetition %q", t.p[start:min(j+1, len(t.p))])
		}
		lo, _ := strconv.Atoi(t.p[t.i:j])
		hi := lo
		if j < len(t.p) && t.p[j] == ',' {
			j++
			k := j
			for j < len(t.p) && isDigit(t.p[j]) {
				j++
			}
			hi = -1
			if j > k {
				hi, _ = strconv.Atoi(t.p[k:j])
			}
		}
		if j >= len(t.p) || t.p[j] != '}' {
			return badPattern("unclosed counted closure %q", t.p[start:j])
		}
		if len(t.p[t.i:j]) > 9 || (hi >= 0 && hi < lo) {
			return badPattern("illegal repetition range %q", t.p[start:j+1])
		}
		if lo > 1000 || hi > 1000 {
			return unsupportedPattern("repetition counts above 1000 (%s)", t.p[start:j+1])
		}
		t.i = j + 1
	}
	t.out.WriteString(t.p[start:t.i])
	switch t.peek() {
	case '?':
		t.i++
		t.out.WriteByte('?')
	case '+':
		return unsupportedPattern("possessive quantifier %q", t.p[start:t.i+1])
	}
	t.canQuant = false
	return nil
}

// group handles '(' and what may follow it.
func (t *translator) group() error {
	t.stack = append(t.stack, t.flags)
	if t.peek() != '?' {
		t.out.WriteByte('(')
		t.canQuant = false
		return nil
	}
	t.i++
	switch c := t.peek(); c {
	case ':':
		t.i++
		t.out.WriteString("(?:")
	case '=', '!':
		return unsupportedPattern("look-ahead (?%c", c)
	case '>':
		return unsupportedPattern("atomic group (?>")
	case '<':
		t.i++
		switch n := t.peek(); {
		case n == '=' || n == '!':
			return unsupportedPattern("look-behind (?<%c", n)
		case n < utf8.RuneSelf && isIdentStart(byte(n)) && n != '_':
			j := t.i
			for j < len(t.p) && (isIdentStart(t.p[j]) || isDigit(t.p[j])) && t.p[j] != '_' {
				j++
			}
			if j >= len(t.p) || t.p[j] != '>' {
				return badPattern("named group without closing '>'")
			}
			name := t.p[t.i:j]
			if slices.Contains(t.names, name) {
				return badPattern("named group <%s> is already defined", name)
			}
			t.names = append(t.names, name)
			t.out.WriteString("(?P<" + name + ">")
			t.i = j + 1
		default:
			return badPattern("unknown group type (?<")
		}
	default:
		return t.flagGroup()
	}
	t.canQuant = false
	return nil
}

// flagGroup reads (?flags) or (?flags:...) after "(?".
func (t *translator) flagGroup() error {
	on := true
	f := t.flags
	for {
		c := t.peek()
		t.i++
		switch c {
		case 'i':
			f.i = on
		case 'u':
			f.u = on
		case 's':
			f.s = on
		case 'd':
			f.d = on
		case '-':
			on = false
		case 'm':
			return unsupportedPattern("flag (?m): Java's multiline anchors know more line breaks than \\n")
		case 'x':
			return unsupportedPattern("flag (?x) (comments mode)")
		case 'U':
			return unsupportedPattern("flag (?U): Unicode classes in Java, ungreedy in RE2")
		case 'c':
			return unsupportedPattern("flag (?c) (canonical equivalence)")
		case ')':
			// (?flags) sets the flags for the rest of the enclosing group.
			t.stack = t.stack[:len(t.stack)-1]
			t.flags = f
			t.canQuant = false
			return nil
		case ':':
			t.flags = f
			t.out.WriteString("(?:")
			t.canQuant = false
			return nil
		case -1:
			return badPattern("unclosed group")
		default:
			return badPattern("unknown inline modifier %q", c)
		}
	}
}

// escape reads the escape after a backslash, outside (inClass false) or
// inside a character class, and returns its RE2 form. Inside a class the
// form is a class member (a range such as \x{41}-\x{41}, or \d,
// [:space:]...).
func (t *translator) escape(inClass bool) (string, error) {
	if t.i >= len(t.p) {
		return "", badPattern("trailing backslash")
	}
	c := t.read()
	if r, ok, err := t.charEscape(c); err != nil || ok {
		if err != nil || inClass {
			return t.classRange(r, r), err
		}
		return t.literal(r), nil
	}
	switch c {
	case '1', '2', '3', '4', '5', '6', '7', '8', '9':
		if inClass {
			return "", badPattern("illegal escape \\%c in a character class", c)
		}
		return "", unsupportedPattern("back reference \\%c", c)
	case 'k':
		return "", unsupportedPattern("back reference \\k")
	case 'd', 'D', 'w', 'W':
		return `\` + string(c), nil
	case 's':
		if inClass {
			return `[:space:]`, nil
		}
		return `[\t\n\x0B\f\r ]`, nil
	case 'S':
		if inClass {
			return `[:^space:]`, nil
		}
		return `[^\t\n\x0B\f\r ]`, nil
	case 'h':
		if inClass {
			return hSpace, nil
		}
		return "[" + hSpace + "]", nil
	case 'v':
		if inClass {
			return vSpace, nil
		}
		return "[" + vSpace + "]", nil
	case 'H', 'V':
		if inClass {
			return "", unsupportedPattern("\\%c inside a character class", c)
		}
		if c == 'H' {
			return "[^" + hSpace + "]", nil
		}
		return "[^" + vSpace + "]", nil
	case 'p', 'P':
		return t.property(c, inClass)
	case 'Q':
		quoted := t.p[t.i:]
		if end := strings.Index(quoted, `\E`); end >= 0 {
			quoted = quoted[:end]
			t.i += end + 2
		} else {
			t.i = len(t.p)
		}
		var b strings.Builder
		for _, r := range quoted {
			if inClass {
				b.WriteString(t.classRange(r, r))
			} else {
				b.WriteString(t.literal(r))
			}
		}
		if !inClass && quoted != "" {
			// Written as one atom each; a quantifier applies to the last.
			t.out.WriteString(b.String())
			t.canQuant = true
			return "", nil
		}
		return b.String(), nil
	case 'A', 'z':
		if inClass {
			return "", badPattern("illegal escape \\%c in a character class", c)
		}
		return `\` + string(c), nil
	case 'b', 'B':
		return "", unsupportedPattern("word boundary \\%c (Unicode-aware in Java)", c)
	case 'Z', 'G', 'R', 'X', 'N', 'E':
		return "", unsupportedPattern("\\%c", c)
	}
	return "", badPattern("illegal escape sequence \\%c", c)
}

// charEscape reads the escape after "\c" if it stands for one character:
// octal \0n, hex \xhh and \x{h...}, \uhhhh (a surrogate pair read as
// one character), \t \n \r \f \a \e, control \cX, and a backslash
// before any character that is not an ASCII letter or digit. ok is false
// for other escapes.
func (t *translator) charEscape(c rune) (r rune, ok bool, err error) {
	switch c {
	case '0':
		r, ok := t.octal()
		if !ok {
			return 0, false, badPattern("illegal octal escape sequence")
		}
		return r, true, nil
	case 'x':
		r, err := t.hexEscape()
		return r, err == nil, err
	case 'u':
		r, err := t.unicodeEscape()
		return r, err == nil, err
	case 't':
		return '\t', true, nil
	case 'n':
		return '\n', true, nil
	case 'r':
		return '\r', true, nil
	case 'f':
		return '\f', true, nil
	case 'a':
		return '\a', true, nil
	case 'e':
		return 0x1B, true, nil
	case 'c':
		if t.i >= len(t.p) {
			return 0, false, badPattern("illegal control escape sequence")
		}
		return t.read() ^ 64, true, nil
	}
	if c >= utf8.RuneSelf || !(isIdentStart(byte(c)) || isDigit(byte(c))) || c == '_' {
		return c, true, nil
	}
	return 0, false, nil
}

// hSpace and vSpace are Java's \h and \v, as RE2 class members.
const (
	hSpace = `\t \x{A0}\x{1680}\x{180E}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}`
	vSpace = `\n\x0B\f\r\x{85}\x{2028}\x{2029}`
)

// octal reads the digits of \0n, \0nn or \0mnn (m at most 3).
func (t *translator) octal() (rune, bool) {
	isOct := func(j int) bool { return j < len(t.p) && t.p[j] >= '0' && t.p[j] <= '7' }
	if !isOct(t.i) {
		return 0, false
	}
	n := 1
	if isOct(t.i + 1) {
		n = 2
		if isOct(t.i+2) && t.p[t.i] <= '3' {
			n = 3
		}
	}
	v, _ := strconv.ParseInt(t.p[t.i:t.i+n], 8, 32)
	t.i += n
	return rune(v), true
}

func (t *translator) hexEscape() (rune, error) {
	if t.peek() == '{' {
		end := strings.IndexByte(t.p[t.i:], '}')
		if end < 2 {
			return 0, badPattern("illegal hexadecimal escape sequence")
		}
		v, err := strconv.ParseUint(t.p[t.i+1:t.i+end], 16, 32)
		if err != nil || v > unicode.MaxRune {
			return 0, badPattern("illegal hexadecimal escape sequence")
		}
		t.i += end + 1
		return rune(v), nil
	}
	if t.i+2 > len(t.p) {
		return 0, badPattern("illegal hexadecimal escape sequence")
	}
	v, err := strconv.ParseUint(t.p[t.i:t.i+2], 16, 8)
	if err != nil {
		return 0, badPattern("illegal hexadecimal escape sequence")
	}
	t.i += 2
	return rune(v), nil
}

func (t *translator) unicodeEscape() (rune, error) {
	read4 := func() (rune, bool) {
		if t.i+4 > len(t.p) {
			return 0, false
		}
		v, err := strconv.ParseUint(t.p[t.i:t.i+4], 16, 16)
		if err != nil {
			return 0, false
		}
		t.i += 4
		return rune(v), true
	}
	r, ok := read4()
	if !ok {
		return 0, badPattern("illegal Unicode escape sequence")
	}
	if utf16IsHigh(r) && strings.HasPrefix(t.p[t.i:], `\u`) {
		save := t.i
		t.i += 2
		if lo, ok := read4(); ok && lo >= 0xDC00 && lo <= 0xDFFF {
			return (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000, nil
		}
		t.i = save
	}
	if r >= 0xD800 && r <= 0xDFFF {
		return 0, unsupportedPattern("lone surrogate \\u%04X", r)
	}
	return r, nil
}

func utf16IsHigh(r rune) bool { return r >= 0xD800 && r <= 0xDBFF }

// property translates \p{Cat} and \P{Cat} for Unicode general categories
// (with or without Java's "Is" prefix), and rejects Java's other property
// names, which RE2 does not know or reads otherwise.
func (t *translator) property(c rune, inClass bool) (string, error) {
	var name string
	if t.peek() == '{' {
		end := strings.IndexByte(t.p[t.i:], '}')
		if end < 0 {
			return "", badPattern("unclosed character family")
		}
		name = t.p[t.i+1 : t.i+end]
		t.i += end + 1
	} else {
		if t.i >= len(t.p) {
			return "", badPattern("illegal character family")
		}
		name = string(t.read())
	}
	cat := strings.TrimPrefix(name, "Is")
	if _, ok := unicode.Categories[cat]; !ok || cat == "C" {
		return "", unsupportedPattern("character property \\%c{%s}; only Unicode general categories such as \\p{L} or \\p{Lu} are", c, name)
	}
	if t.flags.i && (cat == "Lu" || cat == "Ll" || cat == "Lt") {
		// Under CASE_INSENSITIVE, Java reads each of these as all three.
		switch {
		case !inClass && c == 'p':
			return `[\p{Lu}\p{Ll}\p{Lt}]`, nil
		case !inClass:
			return `[^\p{Lu}\p{Ll}\p{Lt}]`, nil
		case c == 'p':
			return `\p{Lu}\p{Ll}\p{Lt}`, nil
		}
		return "", unsupportedPattern("\\P{%s} inside a character class under (?i)", name)
	}
	return `\` + string(c) + "{" + cat + "}", nil
}

// class translates a character class, the '[' read.
func (t *translator) class() (string, error) {
	var b strings.Builder
	b.WriteByte('[')
	if t.peek() == '^' {
		t.i++
		b.WriteByte('^')
	}
	first := true
	for {
		if t.i >= len(t.p) {
			return "", badPattern("unclosed character class")
		}
		c := t.read()
		switch {
		case c == ']' && !first:
			b.WriteByte(']')
			return b.String(), nil
		case c == '[':
			return "", unsupportedPattern("nested character class (Java's class union)")
		case c == '&' && t.peek() == '&':
			return "", unsupportedPattern("&& inside a character class (Java's class intersection)")
		case c == '\\':
			if t.i >= len(t.p) {
				return "", badPattern("unclosed character class")
			}
			save := t.i
			r, ok, err := t.charEscape(t.read())
			if err != nil {
				return "", err
			}
			if ok {
				if err := t.rangeFrom(&b, r); err != nil {
					return "", err
				}
				break
			}
			t.i = save
			s, err := t.escape(true)
			if err != nil {
				return "", err
			}
			if t.peek() == '-' && t.i+1 < len(t.p) && t.p[t.i+1] != ']' {
				return "", unsupportedPattern("range from a class escape in a character class")
			}
			b.WriteString(s)
		default:
			if err := t.rangeFrom(&b, c); err != nil {
				return "", err
			}
		}
		first = false
	}
}

// rangeFrom writes the class member that starts with the character lo: a
// range lo-hi if a '-' and an end follow, else lo alone.
func (t *translator) rangeFrom(b *strings.Builder, lo rune) error {
	if t.peek() == '-' && t.i+1 < len(t.p) && t.p[t.i+1] != ']' {
		save := t.i
		t.i++
		var hi rune
		switch c := t.read(); c {
		case '\\':
			if t.i >= len(t.p) {
				return badPattern("unclosed character class")
			}
			r, ok, err := t.charEscape(t.read())
			if err != nil {
				return err
			}
			if !ok {
				return unsupportedPattern("range to a class escape in a character class")
			}
			hi = r
		case '[':
			return unsupportedPattern("nested character class (Java's class union)")
		case '&':
			if t.peek() == '&' {
				t.i = save
				b.WriteString(t.classRange(lo, lo))
				return nil
			}
			hi = c
		default:
			hi = c
		}
		if hi < lo {
			return badPattern("illegal character range %c-%c", lo, hi)
		}
		b.WriteString(t.classRange(lo, hi))
		return nil
	}
	b.WriteString(t.classRange(lo, lo))
	return nil
}

// classRange writes lo-hi as a class member. Under (?i) without (?u) the
// other case of every ASCII letter in it is added, as Java's CIRange does;
// under (?i) and (?u), every character whose upper case, or the lower case
// of that, lies in it, as Java's CIRangeU does (a single character as
// Java's SingleU: the same lower case of the upper case).
func (t *translator) classRange(lo, hi rune) string {
	s := classChar(lo)
	if hi != lo {
		s += "-" + classChar(hi)
	}
	if !t.flags.i {
		return s
	}
	if !t.flags.u {
		for _, r := range [][2]rune{{'a', 'z'}, {'A', 'Z'}} {
			a, z := max(lo, r[0]), min(hi, r[1])
			if a <= z {
				s += classChar(asciiOtherCase(a)) + "-" + classChar(asciiOtherCase(z))
			}
		}
		return s
	}
	ft := foldTables()
	var extra []rune
	if lo == hi {
		lower := unicode.ToLower(unicode.ToUpper(lo))
		extra = append(extra, lower)
		extra = append(extra, ft.byKey[lower]...)
	} else {
		for _, m := range []map[rune][]rune{ft.byUpper, ft.byKey} {
			for x, rs := range m {
				if lo <= x && x <= hi {
					extra = append(extra, rs...)
				}
			}
		}
		slices.Sort(extra)
	}
	for _, r := range extra {
		if r < lo || r > hi {
			s += classChar(r)
		}
	}
	return s
}

// classChar writes a character as a class member: letters and digits as
// they are, anything else as \x{...}.
func classChar(r rune) string {
	if r < utf8.RuneSelf && (isIdentStart(byte(r)) || isDigit(byte(r))) && r != '_' {
		return string(r)
	}
	return fmt.Sprintf(`\x{%X}`, r)
}

// caseFolds inverts Unicode's simple case mappings, for (?iu): byUpper
// lists the characters with a given upper case, byKey those with a given
// lower case of their upper case (each without the character itself).
type caseFolds struct {
	byUpper, byKey map[rune][]rune
}

var (
	caseFoldsOnce sync.Once
	caseFoldsVal  caseFolds
)

func foldTables() *caseFolds {
	caseFoldsOnce.Do(func() {
		f := caseFolds{byUpper: map[rune][]rune{}, byKey: map[rune][]rune{}}
		for _, cr := range unicode.CaseRanges {
			for r := rune(cr.Lo); r <= rune(cr.Hi); r++ {
				u := unicode.ToUpper(r)
				if u != r {
					f.byUpper[u] = append(f.byUpper[u], r)
				}
				if k := unicode.ToLower(u); k != r {
					f.byKey[k] = append(f.byKey[k], r)
				}
			}
		}
		caseFoldsVal = f
	})
	return &caseFoldsVal
}
