package expr

import (
	"fmt"
	"strings"
	"testing"
)

// tokString renders tokens compactly for comparison: kinds by name, values
// in brackets.
func tokString(toks []token) string {
	names := map[tokKind]string{
		tEOF: "EOF", tLookup: "H", tString: "S", tNumber: "N", tNull: "null", tTrue: "true", tFalse: "false",
		tAnd: "and", tOr: "or", tNot: "not", tEq: "==", tNe: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">=",
		tMatches: "matches", tLParen: "(", tRParen: ")",
	}
	var parts []string
	for _, t := range toks {
		s := names[t.kind]
		if t.kind == tLookup || t.kind == tString || t.kind == tNumber {
			s += "[" + t.val + "]"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

func TestLex(t *testing.T) {
	tests := []struct {
		give string
		want string
	}{
		{give: "#H['xyz'] == '1'", want: "H[xyz] == S[1] EOF"},
		{give: `#H["a b"] != "x"`, want: "H[a b] != S[x] EOF"},
		{give: "#H [ 'a' ]", want: "H[a] EOF"},
		{give: "#H['it''s']", want: "H[it's] EOF"},
		{give: `'a\d' "b''" 'c""'`, want: `S[a\d] S[b''] S[c""] EOF`},
		{give: `'''' """"`, want: `S['] S["] EOF`},
		{give: "'' \"\"", want: "S[] S[] EOF"},
		{give: "AND and And && OR or || NOT not !", want: "and and and and or or or not not not EOF"},
		{give: "eq EQ ne lt le gt ge == != < <= > >=", want: "== == != < <= > >= == != < <= > >= EOF"},
		{give: "matches Matches null NULL true False", want: "matches matches null null true false EOF"},
		{give: "((!))", want: "( ( not ) ) EOF"},
		{give: "42 10L 10l 0x1F 0X1fL", want: "N[42] N[10] N[10] N[31] N[31] EOF"},
		{give: "-7 < - 7 < -0x10 < -0.5", want: "N[-7] < N[-7] < N[-16] < N[-0.5] EOF"},
		{give: "1.5 2e3 2E-3 1.5e+2 1.5f 2d 3F 4D", want: "N[1.5] N[2e3] N[2E-3] N[1.5e+2] N[1.5] N[2] N[3] N[4] EOF"},
		{give: "2147483647 9223372036854775807L", want: "N[2147483647] N[9223372036854775807] EOF"},
		{give: "-2147483648 == -9223372036854775808L", want: "N[-2147483648] == N[-9223372036854775808] EOF"},
		{give: "(-1)", want: "( N[-1] ) EOF"},
		{give: "#H['a']<-1", want: "H[a] < N[-1] EOF"},
		{give: "#H['a']==#H['b']", want: "H[a] == H[b] EOF"},
		{give: "", want: "EOF"},
		{give: " \t\r\n", want: "EOF"},
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
	const src = "#H['a'] == 'x' and (1 < -2)"
	toks, err := lex(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tok := range toks {
		got = append(got, fmt.Sprintf("%q", src[tok.pos:tok.end]))
	}
	want := `"#H['a']" "==" "'x'" "and" "(" "1" "<" "-2" ")" ""`
	if strings.Join(got, " ") != want {
		t.Errorf("token texts = %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestCheckChains(t *testing.T) {
	tests := []struct {
		give    string
		wantErr bool
	}{
		{give: "#H['a'] == '1' and #H['b'] == '2' or #H['c'] < 3", wantErr: false},
		{give: "(#H['a'] == '1') == (#H['b'] == '2')", wantErr: false},
		{give: "((#H['a'] == '1') == true) == false", wantErr: false},
		{give: "!(#H['a'] == '1') == true", wantErr: false},
		{give: "#H['a'] == '1' == true", wantErr: true},
		{give: "#H['a'] < 1 < 2", wantErr: true},
		{give: "(#H['a'] < 1) < 2", wantErr: false}, // a chain no more; the rewriter rejects comparing a condition
		{give: "#H['a'] == ('1' == '1')", wantErr: false},
		{give: "#H['a'] == !true == false", wantErr: true},
		{give: "(#H['a'] == 1 and #H['b'] == 2) == true", wantErr: false},
	}
	for _, tt := range tests {
		toks, err := lex(tt.give)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkChains(tt.give, toks); (err != nil) != tt.wantErr {
			t.Errorf("checkChains(%q) = %v, want error %v", tt.give, err, tt.wantErr)
		}
	}
}
