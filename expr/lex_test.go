package expr

import (
	"fmt"
	"math"
	"strings"
	"testing"
)

// tokString renders tokens compactly for comparison: the text of operators,
// kinds with their values in brackets for the rest.
func tokString(toks []token) string {
	var parts []string
	for _, t := range toks {
		switch t.kind {
		case tEOF:
			parts = append(parts, "EOF")
		case tIdent:
			parts = append(parts, "I["+t.val+"]")
		case tString:
			parts = append(parts, "S["+t.val+"]")
		case tInt:
			s := "N[" + t.val
			if t.hex {
				s += " hex"
			}
			if t.long {
				s += " long"
			}
			parts = append(parts, s+"]")
		case tReal:
			s := "R[" + t.val
			if t.flt {
				s += " float"
			}
			parts = append(parts, s+"]")
		default:
			parts = append(parts, opNames[t.kind]+":"+t.val)
		}
	}
	return strings.Join(parts, " ")
}

var opNames = map[tokKind]string{
	tHash: "hash", tLParen: "lparen", tRParen: "rparen", tLBracket: "lbracket", tRBracket: "rbracket",
	tLBrace: "lbrace", tRBrace: "rbrace", tComma: "comma", tColon: "colon", tQMark: "qmark", tElvis: "elvis",
	tPlus: "plus", tMinus: "minus", tStar: "star", tDiv: "div", tMod: "mod", tPower: "power", tInc: "inc",
	tDec: "dec", tNot: "not", tEq: "eq", tNe: "ne", tLt: "lt", tLe: "le", tGt: "gt", tGe: "ge", tAnd: "and",
	tOr: "or", tAssign: "assign", tDot: "dot", tSafeNav: "safenav", tSelect: "select", tBeanRef: "beanref",
}

func TestLex(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "#H['xyz'] == '1'", want: "hash:# I[H] lbracket:[ S[xyz] rbracket:] eq:== S[1] EOF"},
		{give: `'a\d' "b''" 'c""'`, want: `S[a\d] S[b'] S[c"] EOF`}, // Spring unescapes both quotes in both
		{give: `'''' """" 'a''''b'`, want: `S['] S["] S[a''b] EOF`},
		{give: "'' \"\"", want: "S[] S[] EOF"},
		{give: "and AND && or || not NOT !", want: "I[and] I[AND] and:&& I[or] or:|| not:not not:NOT not:! EOF"},
		{give: "eq EQ ne lt le gt ge div mod", want: "eq:eq eq:EQ ne:ne lt:lt le:le gt:gt ge:ge div:div mod:mod EOF"},
		{give: "eqs nota", want: "I[eqs] I[nota] EOF"},
		{give: "42 10L 10l 0x1F 0X1fL 0x", want: "N[42] N[10 long] N[10 long] N[1F hex] N[1f hex long] N[ hex] EOF"},
		{give: "1.5 2e3 2E-3 1.5e+2 1.5f 2d 3F 4D", want: "R[1.5] R[2e3] R[2E-3] R[1.5e+2] R[1.5f float] R[2d] R[3F float] R[4D] EOF"},
		{give: "3.x 3.5.x", want: "N[3] dot:. I[x] R[3.5] dot:. I[x] EOF"},
		{give: "-7 - 7", want: "minus:- N[7] minus:- N[7] EOF"},
		{give: "?: ? : ?. ?[ ![ ^[ $[ ++ -- = @ & $x _y", want: "elvis:?: qmark:? colon:: safenav:?. select:?[ select:![ select:^[ select:$[ inc:++ dec:-- assign:= beanref:@ beanref:& I[$x] I[_y] EOF"},
		{give: "{1, 2}", want: "lbrace:{ N[1] comma:, N[2] rbrace:} EOF"},
		{give: "", want: "EOF"},
		{give: " \t\r\n\x00", want: "EOF"}, // SpEL skips NUL too
	}
	for _, tt := range tests {
		toks, err := lex(tt.give)
		if err != nil {
			t.Errorf("lex(%q): %v", tt.give, err)
			continue
		}
		if got := tokString(toks); got != tt.want {
			t.Errorf("lex(%q) = %s\nwant %s", tt.give, got, tt.want)
		}
	}
}

func TestLexPositions(t *testing.T) {
	const src = "#H['a'] == 'x' and (1L < -2.5f)"
	toks, err := lex(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tok := range toks {
		got = append(got, fmt.Sprintf("%q", src[tok.pos:tok.end]))
	}
	want := `"#" "H" "[" "'a'" "]" "==" "'x'" "and" "(" "1L" "<" "-" "2.5f" ")" ""`
	if strings.Join(got, " ") != want {
		t.Errorf("token texts = %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestJavaFloatString(t *testing.T) {
	tenth := 0.1
	tests := []struct {
		f    float64
		bits int
		want string
	}{
		{1, 64, "1.0"}, {-1.5, 64, "-1.5"}, {0, 64, "0.0"}, {math.Copysign(0, -1), 64, "-0.0"},
		{1e7, 64, "1.0E7"}, {9999999, 64, "9999999.0"}, {1234567.5, 64, "1234567.5"},
		{0.001, 64, "0.001"}, {1e-4, 64, "1.0E-4"}, {123.456, 64, "123.456"}, {1e21, 64, "1.0E21"},
		{1.5e300, 64, "1.5E300"}, {tenth + 2*tenth, 64, "0.30000000000000004"}, {100, 64, "100.0"},
		{float64(float32(1.1)), 32, "1.1"}, {float64(float32(0.1)), 32, "0.1"}, {float64(float32(16777216)), 32, "1.6777216E7"},
		{float64(float32(3.4028235e38)), 32, "3.4028235E38"},
	}
	for _, tt := range tests {
		if got := javaFloatString(tt.f, tt.bits); got != tt.want {
			t.Errorf("javaFloatString(%v, %d) = %q, want %q", tt.f, tt.bits, got, tt.want)
		}
	}
}

func TestSpringBool(t *testing.T) {
	tests := []struct {
		give             string
		want, null, isOK bool
	}{
		{"true", true, false, true}, {" TRUE ", true, false, true}, {"On", true, false, true}, {"yes", true, false, true},
		{"1", true, false, true}, {"false", false, false, true}, {"OFF", false, false, true}, {"No", false, false, true},
		{"0", false, false, true}, {"", false, true, true}, {"\x01 \x1f", false, true, true}, {"y", false, false, false},
		{"01", false, false, false}, {"\u00a0true", false, false, false}, {"truE\t", true, false, true},
	}
	for _, tt := range tests {
		b, null, ok := springBool(tt.give)
		if b != tt.want || null != tt.null || ok != tt.isOK {
			t.Errorf("springBool(%q) = %v, %v, %v; want %v, %v, %v", tt.give, b, null, ok, tt.want, tt.null, tt.isOK)
		}
	}
}
