package expr

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMatch(t *testing.T) {
	vals := Map{
		"xyz":    "1",
		"age":    "20",
		"a":      "abc",
		"ver":    "1.0",
		"blank":  "  ",
		"empty":  "",
		"neg":    "-3.5",
		"big":    "12345678901234567890",
		"big1":   "12345678901234567891",
		"exp":    "1e3",
		"sp":     " 5",
		"zh":     "灰度",
		"Case":   "upper",
		"vip":    " Yes",
		"off":    "OFF",
		"nl":     "a\nb",
		"cr":     "a\rb",
		"vt":     "x\x0By",
		"kelvin": "\u212A",
		"pat":    `\d+`,
	}
	tests := []struct {
		give string
		want bool
	}{
		// Equality against strings: exact.
		{give: "#H['xyz'] == '1'", want: true},
		{give: `#H["xyz"] == "1"`, want: true},
		{give: "#H['xyz'] == '2'", want: false},
		{give: "#H['xyz'] != '2'", want: true},
		{give: "#H['ver'] == '1'", want: false},
		{give: "#H['ver'] == '1.0'", want: true},
		{give: "'1.0' == '1'", want: false},
		{give: "#H['zh'] == '灰度'", want: true},
		{give: "#H['Case'] == 'upper'", want: true},
		{give: "#H['case'] == 'upper'", want: false}, // Map names are exact
		{give: "#H['xyz'] eq '1'", want: true},
		{give: "#H['xyz'] EQ '1'", want: true},
		{give: "#H['xyz'] ne '1'", want: false},
		{give: "#H['a'] == #H['a']", want: true},
		{give: "#H['a'] == #H['xyz']", want: false},

		// A string never equals a number (SpEL finds no common type); numbers
		// equal numbers by value.
		{give: "#H['xyz'] == 1", want: false},
		{give: "#H['ver'] == 1", want: false},
		{give: "#H['ver'] == 1.0", want: false},
		{give: "#H['ver'] == 1.00d", want: false},
		{give: "#H['xyz'] == 0x1", want: false},
		{give: "#H['xyz'] == 1L", want: false},
		{give: "#H['a'] == 1", want: false},
		{give: "#H['a'] != 1", want: true},
		{give: "#H['neg'] == -3.5", want: false},
		{give: "#H['neg'] == - 3.5", want: false},
		{give: "#H['exp'] == 1000", want: false},
		{give: "#H['sp'] == 5", want: false}, // BigDecimal rejects white space
		{give: "#H['big'] == 12345678901234567890d", want: false},
		{give: "#H['big1'] == 12345678901234567890d", want: false},
		{give: "1 == 1.0", want: true},
		{give: "1 == 1L", want: true},
		{give: "0x1F == 31", want: true},
		{give: "2f == 2.0", want: true},
		{give: "16777217 == 16777216f", want: true}, // as floats, as Java compares them
		{give: "#H['xyz'] == '1' + ''", want: true},
		{give: "#H['xyz'] + 1 == '11'", want: true},
		{give: "1 + 1 == 2", want: true},
		{give: "2147483647 + 1 < 0", want: true}, // ints wrap around
		{give: "-0 == 0", want: true},
		{give: "'5' == 5", want: false},

		// null.
		{give: "#H['missing'] == null", want: true},
		{give: "#H['missing'] == 'x'", want: false},
		{give: "#H['missing'] != 'x'", want: true},
		{give: "#H['missing'] != null", want: false},
		{give: "#H['missing'] == #H['other']", want: true},
		{give: "#H['missing'] == 1", want: false},
		{give: "#H['missing'] != 1", want: true},
		{give: "#H['xyz'] != null", want: true},
		{give: "#H['xyz'] == NULL", want: false},
		{give: "null == null", want: true},
		{give: "#H['blank'] == null", want: true},
		{give: "#H['empty'] == null", want: true},
		{give: "#H['empty'] == ''", want: false},

		// Ordering: numeric when both read as numbers.
		{give: "#H['age'] >= '18'", want: true},
		{give: "#H['age'] >= 18", want: true},
		{give: "#H['age'] > 20", want: false},
		{give: "#H['age'] >= 20.0", want: true},
		{give: "#H['age'] <= '20.00'", want: true},
		{give: "#H['age'] < '3'", want: false}, // 20 < 3 numerically; as strings "20" < "3"
		{give: "#H['neg'] < -3", want: true},
		{give: "#H['neg'] gt -4", want: true},
		{give: "#H['big'] < #H['big1']", want: true},
		{give: "#H['exp'] > 999.99", want: true},
		{give: "#H['age'] lt 100 and #H['age'] GE 18", want: true},

		// Ordering: strings otherwise, in Java's order.
		{give: "#H['a'] < 'abd'", want: true},
		{give: "#H['a'] > 'ab'", want: true},
		{give: "#H['a'] >= 'abc'", want: true},
		{give: "'B' < 'a'", want: true},
		{give: "#H['ver'] < '1.0.1'", want: true},
		{give: "'\uffff' < '\U00010000'", want: false}, // UTF-16: U+FFFF is above the surrogates

		// Ordering: null lowest; numbers against non-numbers are false.
		{give: "#H['missing'] < '5'", want: true},
		{give: "#H['missing'] <= '5'", want: true},
		{give: "#H['missing'] > '5'", want: false},
		{give: "#H['missing'] >= null", want: true},
		{give: "#H['missing'] < null", want: false},
		{give: "'5' > null", want: true},
		{give: "#H['missing'] < 5", want: true},
		{give: "#H['a'] < 5", want: false},
		{give: "#H['a'] >= 5", want: false},
		{give: "5 > #H['a']", want: false},

		// matches: whole string, null never.
		{give: "#H['a'] matches 'a.c'", want: true},
		{give: "#H['a'] matches 'b'", want: false},
		{give: "'xab1' matches 'ab[0-9]'", want: false},
		{give: "'ab1' matches 'ab[0-9]'", want: true},
		{give: "#H['a'] matches 'a|abc'", want: true},
		{give: `#H['age'] matches '\d+'`, want: true},
		{give: `#H['ver'] matches '\d+'`, want: false},
		{give: "#H['a'] MATCHES '(?i)ABC'", want: true},
		{give: "#H['missing'] matches '.*'", want: false},
		{give: "#H['empty'] matches '.*'", want: false},
		{give: `'a.b' matches '\Qa.b\E'`, want: true},
		{give: `'a[b' matches '[\[]*a\[b'`, want: true},
		{give: "'x]' matches '[]x]+'", want: true},

		// Logic and precedence.
		{give: "true", want: true},
		{give: "false", want: false},
		{give: "TRUE", want: true},
		{give: "!true", want: false},
		{give: "!!true", want: true},
		{give: "not false", want: true},
		{give: "!(#H['xyz'] == '1')", want: false},
		{give: "not(#H['xyz'] == '2')", want: true},
		{give: "#H['xyz'] == '1' and #H['a'] == 'abc'", want: true},
		{give: "#H['xyz'] == '1' && #H['a'] == 'x'", want: false},
		{give: "#H['xyz'] == '2' or #H['a'] == 'abc'", want: true},
		{give: "#H['xyz'] == '2' || #H['a'] == 'x'", want: false},
		{give: "true or true and false", want: true}, // and binds tighter
		{give: "(true or true) and false", want: false},
		{give: "false and false or true", want: true},
		{give: "!false and false", want: false}, // ! binds tightest
		{give: "!(false and false)", want: true},
		{give: "(#H['a'] == 'abc') == (#H['xyz'] == '1')", want: true},
		{give: "(#H['a'] == 'abc') != true", want: false},
		{give: "true == !false", want: true},
		{give: "((((#H['xyz'] == '1'))))", want: true},
		{give: "#H['xyz']=='1'&&#H['a']!='x'", want: true},
		{give: "\n#H['xyz'] ==\t'1'\r\n", want: true},
		{give: "#H [ 'xyz' ] == '1'", want: true},

		// An exception anywhere makes the whole condition false.
		{give: "not (#H['a'] < 5)", want: false},
		{give: "#H['a'] < 5 or #H['xyz'] == '1'", want: false},
		{give: "#H['xyz'] == '1' or #H['a'] < 5", want: true}, // the right side is not evaluated
		{give: "#H['xyz'] == '2' and #H['a'] < 5", want: false},
		{give: "not (#H['missing'] matches 'x')", want: false},
		{give: "not ('[' matches #H['a'] + '[')", want: false},

		// A value is a condition, by Spring's String-to-Boolean conversion.
		{give: "#H['vip']", want: true},
		{give: "#H['vip'] and true", want: true},
		{give: "#H['off']", want: false},
		{give: "not #H['off']", want: true},
		{give: "#H['xyz']", want: true},
		{give: "#H['a']", want: false},
		{give: "not #H['a']", want: false},
		{give: "not #H['missing']", want: false},
		{give: "'yes' and 'on'", want: true},
		{give: "1", want: false},                    // a number is no boolean
		{give: "not #H['xyz'] == '1'", want: false}, // (not #H['xyz']) == '1': a boolean is no string

		// Ternary, Elvis, between.
		{give: "#H['xyz'] == '1' ? 'yes' : 'no'", want: true},
		{give: "#H['xyz'] == '2' ? 'yes' : 'no'", want: false},
		{give: "(#H['age'] >= 18 ? 'adult' : 'minor') == 'adult'", want: true},
		{give: "#H['missing'] ? true : true", want: false},
		{give: "#H['missing'] ?: 'yes'", want: true},
		{give: "#H['off'] ?: 'yes'", want: false},
		{give: "#H['age'] between {18, 65}", want: true},
		{give: "#H['age'] between {'21', '65'}", want: false},
		{give: "#H['ver'] between {1, 1.0}", want: true},
		{give: "#H['a'] between {'abc', 'abd'}", want: true},
		{give: "#H['a'] between {1, 2}", want: false},
		{give: "#H['age'] between {1, 2, 3}", want: false},

		// Patterns with Java's meaning, and patterns from values.
		{give: "#H['nl'] matches 'a.b'", want: false},
		{give: "#H['cr'] matches 'a.b'", want: false},
		{give: "#H['cr'] matches '(?s)a.b'", want: true},
		{give: "#H['vt'] matches 'x\\sy'", want: true},
		{give: "#H['kelvin'] matches '(?i)k'", want: false},
		{give: "#H['kelvin'] matches '(?iu)k'", want: true},
		{give: "'A' matches '\\0101'", want: true},
		{give: "'A' matches '\\u0041'", want: true},
		{give: "#H['age'] matches #H['pat']", want: true},
		{give: "#H['a'] matches #H['pat']", want: false},
		{give: "#H['a'] matches 'a' + 'bc'", want: true},
		{give: "20 matches '\\d+'", want: true},

		// Strings.
		{give: "'it''s' == \"it's\"", want: true},
		{give: "\"it''s\" == \"it's\"", want: true}, // Spring 4.3 to 5.x unescape both quotes in both
		{give: "'say \"\"hi\"\"' == 'say \"hi\"'", want: true},
		{give: `"say ""hi""" == 'say "hi"'`, want: true},
		{give: `'a\b' == "a\b"`, want: true},
		{give: "'' == ''", want: true},
		{give: "#H['it''s'] == null", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			c, err := Compile(tt.give)
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := c.Match(vals); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		give    string
		wantCol int
		wantMsg string
	}{
		{give: "", wantCol: 1, wantMsg: "empty expression"},
		{give: " \t\n", wantCol: 1, wantMsg: "empty expression"},
		{give: "#H['a'] == ", wantCol: 12, wantMsg: "unexpected end of expression"},
		{give: "#H['a'] == 'b')", wantCol: 15, wantMsg: "unexpected ')'"},
		{give: "(#H['a'] == 'b'", wantCol: 16, wantMsg: "unexpected end of expression"},
		{give: "#H['a'] == 'x' or", wantCol: 18, wantMsg: "unexpected end of expression"},
		{give: "or #H['a'] == 'x'", wantCol: 1, wantMsg: "unexpected 'or'"},
		{give: "#H['a'] == 'x' #H['b'] == 'y'", wantCol: 16, wantMsg: "unexpected #H['b']"},
		{give: "#H['a'] == == 'b'", wantCol: 12, wantMsg: "unexpected '=='"},
		{give: "#H['a'] and and #H['b']", wantCol: 13, wantMsg: "unexpected 'and'"},

		{give: "#H['a'] ('b')", wantCol: 9, wantMsg: "unexpected '('"},
		{give: "#H['a'] == 'x' ? true", wantCol: 22, wantMsg: "expected ':' of the ternary operator"},
		{give: "#H['a'] ?:", wantCol: 11, wantMsg: "missing the value after '?:'"},

		// Chains.
		{give: "#H['a'] < #H['b'] < #H['c']", wantCol: 19, wantMsg: "comparisons cannot be chained"},
		{give: "#H['a'] == 'b' == 'c'", wantCol: 16, wantMsg: "comparisons cannot be chained"},
		{give: "#H['a'] == 'b' == true", wantCol: 16, wantMsg: "comparisons cannot be chained"},
		{give: "'a' matches 'b' == true", wantCol: 17, wantMsg: "comparisons cannot be chained"},
		{give: "#H['a'] == !#H['b'] == 'c'", wantCol: 21, wantMsg: "comparisons cannot be chained"},
		{give: "#H['a'] between {1, 2} matches 'x'", wantCol: 24, wantMsg: "comparisons cannot be chained"},

		// Patterns: what Java rejects, and what has no faithful translation.
		{give: "#H['a'] matches '(a'", wantCol: 17, wantMsg: "bad pattern: unclosed group"},
		{give: "#H['a'] matches 'a)'", wantCol: 17, wantMsg: "bad pattern: unmatched ')'"},
		{give: "#H['a'] matches '['", wantCol: 17, wantMsg: "bad pattern: unclosed character class"},
		{give: "#H['a'] matches '*a'", wantCol: 17, wantMsg: "bad pattern: dangling meta character '*'"},
		{give: "#H['a'] matches 'a{,2}'", wantCol: 17, wantMsg: "bad pattern: illegal repetition"},
		{give: "#H['a'] matches 'a{2,1}'", wantCol: 17, wantMsg: "bad pattern: illegal repetition range"},
		{give: `#H['a'] matches '\y'`, wantCol: 17, wantMsg: `bad pattern: illegal escape sequence \y`},
		{give: `#H['a'] matches '\09'`, wantCol: 17, wantMsg: "bad pattern: illegal octal escape"},
		{give: "#H['a'] matches '(?<n>a)(?<n>b)'", wantCol: 17, wantMsg: "named group <n> is already defined"},
		{give: "#H['a'] matches '(?q)a'", wantCol: 17, wantMsg: "unknown inline modifier 'q'"},
		{give: "#H['a'] matches 'a(?=b)'", wantCol: 17, wantMsg: "pattern not supported: look-ahead (?="},
		{give: "#H['a'] matches '(?<=a)b'", wantCol: 17, wantMsg: "pattern not supported: look-behind (?<="},
		{give: "#H['a'] matches '(?>a)'", wantCol: 17, wantMsg: "pattern not supported: atomic group"},
		{give: `#H['a'] matches '(a)\1'`, wantCol: 17, wantMsg: `pattern not supported: back reference \1`},
		{give: "#H['a'] matches 'a*+'", wantCol: 17, wantMsg: `pattern not supported: possessive quantifier "*+"`},
		{give: "#H['a'] matches 'a++'", wantCol: 17, wantMsg: `pattern not supported: possessive quantifier "++"`},
		{give: "#H['a'] matches 'a{2}+'", wantCol: 17, wantMsg: "possessive quantifier"},
		{give: "#H['a'] matches '[a-z&&[^e]]'", wantCol: 17, wantMsg: "class intersection"},
		{give: "#H['a'] matches '[a[bc]]'", wantCol: 17, wantMsg: "class union"},
		{give: "#H['a'] matches '[[:alpha:]]'", wantCol: 17, wantMsg: "class union"},
		{give: "#H['a'] matches '(?U)\\w'", wantCol: 17, wantMsg: "flag (?U): Unicode classes in Java, ungreedy in RE2"},
		{give: "#H['a'] matches '(?m)^a'", wantCol: 17, wantMsg: "flag (?m)"},
		{give: "#H['a'] matches '(?x)a b'", wantCol: 17, wantMsg: "flag (?x)"},
		{give: `#H['a'] matches '\p{Alpha}'`, wantCol: 17, wantMsg: `character property \p{Alpha}`},
		{give: `#H['a'] matches '\p{javaLowerCase}'`, wantCol: 17, wantMsg: "character property"},
		{give: `#H['a'] matches '\bx'`, wantCol: 17, wantMsg: `word boundary \b`},
		{give: `#H['a'] matches 'a\Z'`, wantCol: 17, wantMsg: `pattern not supported: \Z`},
		{give: `#H['a'] matches 'a$\n'`, wantCol: 17, wantMsg: "'$' followed by more pattern"},
		{give: `#H['a'] matches 'a{1001}'`, wantCol: 17, wantMsg: "repetition counts above 1000"},
		{give: `#H['a'] matches '\uD800'`, wantCol: 17, wantMsg: "lone surrogate"},
		{give: "#H['a'] matches '" + strings.Repeat("a", 1001) + "'", wantCol: 17, wantMsg: "pattern is 1001 characters long"},

		// What SpEL parses and graylane rejects.
		{give: "#H['a'].length() == 2", wantCol: 9, wantMsg: "method calls are not supported (.length)"},
		{give: "#H['a']?.length() == 2", wantCol: 10, wantMsg: "method calls are not supported"},
		{give: "#H['a'].bytes == 2", wantCol: 8, wantMsg: "property access '.' is not supported"},
		{give: "T(java.lang.Math).abs(1) == 1", wantCol: 1, wantMsg: "type references T(...) are not supported"},
		{give: "new String('a') == 'a'", wantCol: 1, wantMsg: "constructors (new) are not supported"},
		{give: "#H['a'] = 'x'", wantCol: 9, wantMsg: "assignment '=' is not supported; compare with '=='"},
		{give: "#H['a'] instanceof T(String)", wantCol: 9, wantMsg: "'instanceof' is not supported"},
		{give: "max(1, 2) == 2", wantCol: 1, wantMsg: "method and function calls are not supported (max(...))"},
		{give: "#f(1) == 2", wantCol: 1, wantMsg: "function calls (#f(...)) are not supported"},
		{give: "foo == 1", wantCol: 1, wantMsg: `unknown name "foo": request values are read as #H['foo']`},
		{give: "#X['a'] == 1", wantCol: 1, wantMsg: "unknown variable '#X'"},
		{give: "#h['a'] == 1", wantCol: 1, wantMsg: "unknown variable '#h'"},
		{give: "#root == null", wantCol: 1, wantMsg: "unknown variable '#root'"},
		{give: "#H == null", wantCol: 1, wantMsg: "#H alone is the map of all values"},
		{give: "#H[xyz] == 1", wantCol: 4, wantMsg: "write the name in quotes: #H['xyz']"},
		{give: "#H[1] == 1", wantCol: 4, wantMsg: "expected a quoted name in #H[...]"},
		{give: "#H['a']['b'] == 1", wantCol: 8, wantMsg: "indexing a value is not supported"},
		{give: "@bean == 1", wantCol: 1, wantMsg: "bean references ('@') are not supported"},
		{give: "{1, 2} == null", wantCol: 1, wantMsg: "inline lists and maps are not supported, except after 'between'"},
		{give: "#H['a'].?[true] == null", wantCol: 8, wantMsg: "property access"},
		{give: "#H['a'] - 1 == 1", wantCol: 9, wantMsg: "subtraction '-' is not supported"},
		{give: "#H['a'] * 2 == 1", wantCol: 9, wantMsg: "'*' is not supported"},
		{give: "#H['a'] div 2 == 1", wantCol: 9, wantMsg: "'div' is not supported"},
		{give: "#H['a'] % 2 == 1", wantCol: 9, wantMsg: "'%' is not supported"},
		{give: "#H['a'] ^ 2 == 1", wantCol: 9, wantMsg: "'^' is not supported"},
		{give: "#H['a']++ == 1", wantCol: 8, wantMsg: "'++' is not supported"},
		{give: "--#H['a'] == 1", wantCol: 1, wantMsg: "'--' is not supported"},
		{give: "() == 1", wantCol: 1, wantMsg: "empty parentheses ()"},

		// Lexer and literals.
		{give: "# == 1", wantCol: 1, wantMsg: "expected a variable name after '#'"},
		{give: "#H['a' == 1", wantCol: 8, wantMsg: "expected ']'"},
		{give: "#H['a] == 1", wantCol: 4, wantMsg: "unterminated string"},
		{give: "'abc", wantCol: 1, wantMsg: "unterminated string: no closing '"},
		{give: `"abc`, wantCol: 1, wantMsg: `unterminated string: no closing "`},
		{give: "#H['a'] == 'x' & true", wantCol: 16, wantMsg: "write '&&' or 'and'"},
		{give: "#H['a'] == 'x' | true", wantCol: 16, wantMsg: "write '||' or 'or'"},
		{give: "#H['a'] == «x»", wantCol: 12, wantMsg: "unexpected character '«'"},
		{give: "#H['a']\f== 'x'", wantCol: 8, wantMsg: "unexpected character '\\f'"},
		{give: "2147483648 == #H['a']", wantCol: 1, wantMsg: "number 2147483648 is too large for an int (add L for a long)"},
		{give: "-2147483648 == #H['a']", wantCol: 2, wantMsg: "too large for an int"}, // SpEL: minus applied to 2147483648
		{give: "9223372036854775808L == #H['a']", wantCol: 1, wantMsg: "too large for a long"},
		{give: "0x == #H['a']", wantCol: 1, wantMsg: "hex number 0x has no digits"},
		{give: "0x80000000 == #H['a']", wantCol: 1, wantMsg: "too large for an int"},
		{give: "1e == #H['a']", wantCol: 1, wantMsg: `number "1e" has no exponent digits`},
		{give: "1ex == #H['a']", wantCol: 1, wantMsg: `number "1e" has no exponent digits`},
		{give: "12abc == #H['a']", wantCol: 3, wantMsg: "unexpected 'abc'"},
		{give: "1.5L == #H['a']", wantCol: 1, wantMsg: "a real number cannot be long (1.5L)"},
		{give: "1. == #H['a']", wantCol: 2, wantMsg: "property access '.' is not supported"},

		// Limits and columns in characters.
		{give: strings.Repeat(" ", 4097), wantCol: 1, wantMsg: "4097 bytes long, more than the 4096 (4 KiB) allowed"},
		{give: strings.Repeat(" ", 10001), wantCol: 1, wantMsg: "10001 bytes long, more than the 4096 (4 KiB) allowed"},
		{give: "#H['x'] == '" + strings.Repeat("灰", 1362) + "'", wantCol: 1, wantMsg: "4099 bytes long"}, // 1,375 characters
		{give: strings.Repeat("(", 4000), wantCol: 4001, wantMsg: "unexpected end of expression"},
		{give: "#H['灰度'] == 'x' )", wantCol: 17, wantMsg: "unexpected ')'"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			c, err := Compile(tt.give)
			if err == nil {
				t.Fatalf("Compile = %v, want an error", c)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.Column != tt.wantCol || !strings.Contains(e.Msg, tt.wantMsg) {
				t.Errorf("error = column %d: %q\nwant    column %d: %q", e.Column, e.Msg, tt.wantCol, tt.wantMsg)
			}
			if e.Expr != tt.give {
				t.Errorf("Expr = %q, want the input", e.Expr)
			}
			if e.Offset < 0 || e.Offset > len(tt.give) {
				t.Errorf("Offset %d out of range", e.Offset)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Compile("#H['a'] ==\t)")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *Error", err)
	}
	if got, want := err.Error(), "column 12: unexpected ')'"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := e.Snippet(), "#H['a'] == )\n           ^"; got != want {
		t.Errorf("Snippet() =\n%s\nwant\n%s", got, want)
	}
	if e.Offset != 11 {
		t.Errorf("Offset = %d, want 11", e.Offset)
	}
}

func TestConditionAccessors(t *testing.T) {
	const src = "#H['b'] == '1' or #H['a'] matches 'x' or #H['b'] == '2'"
	c, err := Compile(src)
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != src {
		t.Errorf("String() = %q, want %q", c.String(), src)
	}
	names := c.Names()
	if strings.Join(names, ",") != "b,a" {
		t.Errorf("Names() = %q, want [b a]", names)
	}
	names[0] = "changed"
	if c.Names()[0] != "b" {
		t.Error("Names() returned the condition's own slice")
	}
	if n := (&Condition{}).Names(); n != nil {
		t.Errorf("Names() of a condition without lookups = %v, want nil", n)
	}
}

func TestNilConditionAndValues(t *testing.T) {
	var c *Condition
	if !c.Match(Map{"a": "1"}) {
		t.Error("nil Condition: Match = false, want true (a condition without expression always holds)")
	}
	if c.String() != "" || c.Names() != nil {
		t.Error("nil Condition: String or Names not empty")
	}
	if !new(Condition).Match(Map{"a": "1"}) {
		t.Error("zero Condition: Match = false, want true")
	}
	c, err := Compile("#H['a'] == null")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Match(nil) {
		t.Error("Match(nil) = false, want true: nil Values hold no values")
	}
}

// panicky is a Values whose Lookup panics.
type panicky struct{}

func (panicky) Lookup(string) (string, bool) { panic("boom") }

func TestMatchRecoversAndLogs(t *testing.T) {
	core, logs := observer.New(zapcore.ErrorLevel)
	c, err := Compile("#H['a'] != 'x'", WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	if c.Match(panicky{}) {
		t.Error("Match with a panicking Values = true, want false")
	}
	if logs.Len() != 1 {
		t.Fatalf("logged %d entries, want 1", logs.Len())
	}
	e := logs.All()[0]
	if e.ContextMap()["expression"] != "#H['a'] != 'x'" || !strings.Contains(e.ContextMap()["error"].(string), "boom") {
		t.Errorf("log entry = %v %v", e.Message, e.ContextMap())
	}
	// The condition is still usable after the fault.
	if !c.Match(Map{"a": "y"}) {
		t.Error("Match after a fault = false, want true")
	}
	// A nil logger leaves the default in place.
	if _, err := Compile("true", WithLogger(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestMatchConcurrent(t *testing.T) {
	c, err := Compile("#H['n'] >= 50 and (#H['s'] matches 'v[0-9]+' or #H['m'] == null)")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				n := (i + g) % 100
				v := Map{"n": itoa(n), "s": "v" + itoa(i)}
				if i%3 == 0 {
					v["m"] = "set"
					v["s"] = "x"
				}
				want := n >= 50 && i%3 != 0
				if got := c.Match(v); got != want {
					t.Errorf("n=%d i=%d: Match = %v, want %v", n, i, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// countingValues records the names looked up.
type countingValues struct {
	m    Map
	seen []string
}

func (c *countingValues) Lookup(name string) (string, bool) {
	c.seen = append(c.seen, name)
	return c.m.Lookup(name)
}

func TestMatchShortCircuits(t *testing.T) {
	tests := []struct {
		give     string
		want     bool
		wantSeen string
	}{
		{give: "#H['a'] == 'x' and #H['b'] == '2'", want: false, wantSeen: "a"},
		{give: "#H['a'] == '1' and #H['b'] == '2'", want: true, wantSeen: "a,b"},
		{give: "#H['a'] == '1' or #H['b'] == '2'", want: true, wantSeen: "a"},
		{give: "#H['a'] == 'x' or #H['b'] == '2'", want: true, wantSeen: "a,b"},
		{give: "false and #H['a'] == '1'", want: false, wantSeen: ""},
		{give: "not (#H['a'] == '1') and #H['b'] >= 2", want: false, wantSeen: "a"},
		{give: "#H['c'] == 'x' or #H['a'] == '1' and #H['b'] < 1", want: false, wantSeen: "c,a,b"},
		{give: "(#H['a'] == '1') == (#H['b'] == '2')", want: true, wantSeen: "a,b"}, // == needs both sides
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			c, err := Compile(tt.give)
			if err != nil {
				t.Fatal(err)
			}
			v := &countingValues{m: Map{"a": "1", "b": "2"}}
			if got := c.Match(v); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
			if got := strings.Join(v.seen, ","); got != tt.wantSeen {
				t.Errorf("looked up %q, want %q", got, tt.wantSeen)
			}
		})
	}
}

func TestCompileLimit(t *testing.T) {
	const cond = "#H['xyz'] == '1'"
	src := cond + strings.Repeat(" ", 4096-len(cond))
	c, err := Compile(src)
	if err != nil {
		t.Fatalf("Compile of %d bytes: %v", len(src), err)
	}
	if !c.Match(Map{"xyz": "1"}) {
		t.Error("Match = false, want true")
	}
	_, err = Compile(src + " ")
	var e *Error
	if !errors.As(err, &e) || !strings.Contains(e.Msg, "4097 bytes long, more than the 4096 (4 KiB) allowed") {
		t.Errorf("Compile of 4097 bytes: %v, want the 4 KiB limit", err)
	}
}

func TestMatchDeep(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: strings.Repeat("!", 2001) + "true", want: false},
		{give: strings.Repeat("!", 2000) + "(#H['a'] == '1')", want: true},
		{give: strings.Repeat("(", 1000) + "#H['a'] == '1'" + strings.Repeat(")", 1000), want: true},
		{give: "#H['a'] == '2'" + strings.Repeat(" or #H['a'] == '2'", 200) + " or #H['a'] == '1'", want: true},
		{give: strings.Repeat("(true and ", 300) + "#H['a'] == '1'" + strings.Repeat(")", 300), want: true},
		{give: strings.Repeat("(true == ", 300) + "(#H['a'] != '1')" + strings.Repeat(")", 300), want: false},
		{give: strings.Repeat("(true != ", 301) + "(#H['a'] == '1')" + strings.Repeat(")", 301), want: false},
	}
	for _, tt := range tests {
		c, err := Compile(tt.give)
		if err != nil {
			t.Fatalf("Compile(%.40q...): %v", tt.give, err)
		}
		if got := c.Match(Map{"a": "1"}); got != tt.want {
			t.Errorf("Match(%.40q...) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestMatchAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	vals := Map{"xyz": "1", "age": "20", "region": "us", "user": "u-12345", "f": "1.5"}
	for _, src := range []string{
		benchEq, benchAnd4, benchMixed, benchRegex,
		"#H['xyz'] != '2' and #H['f'] > 1.25 and #H['age'] <= '20.0' and #H['region'] > 'eu'",
		"(#H['xyz'] == '1') == !(#H['age'] < 18) and (true != false) and #H['missing'] == null",
		"#H['xyz'] == 1 or true",
		"#H['age'] between {18, 65} and (#H['xyz'] == '1' ? true : false)",
		"#H['vip'] ?: true",
		"#H['age'] >= 18.5f and #H['age'] > 19 and #H['user'] >= 'u' and #H['f'] < 2",
	} {
		c, err := Compile(src)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Match(vals) {
			t.Errorf("Match(%q) = false, want true", src)
		}
		if n := testing.AllocsPerRun(100, func() { c.Match(vals) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times, want 0", src, n)
		}
	}
}
