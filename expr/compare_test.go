package expr

import (
	"math/big"
	"slices"
	"strings"
	"testing"
)

func TestParseDecimal(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: "0", want: true},
		{give: "-0", want: true},
		{give: "+1", want: true},
		{give: "1.", want: true},
		{give: ".5", want: true},
		{give: "-.5", want: true},
		{give: "1.50", want: true},
		{give: "007", want: true},
		{give: "1e3", want: true},
		{give: "1E+3", want: true},
		{give: "1.5e-3", want: true},
		{give: "1e2147483647", want: true},
		{give: "1e-2147483647", want: true},
		{give: "1.5e2147483647", want: true},
		{give: "1e00000000002147483647", want: true},  // leading zeros of the exponent do not count
		{give: "1e-2147483648", want: false},          // the scale, 2147483648, does not fit an int
		{give: "0.5e-2147483647", want: false},        // nor does 2147483648 here
		{give: "1e2147483648", want: false},           // the exponent does not fit an int
		{give: "1e000000000000000000001", want: true}, // 21 exponent digits, 1 significant
		{give: "1e12345678901", want: false},          // 11 significant exponent digits
		{give: "1e99999999999999999999", want: false},
		{give: "", want: false},
		{give: "+", want: false},
		{give: ".", want: false},
		{give: "-.", want: false},
		{give: "e3", want: false},
		{give: "1e", want: false},
		{give: "1e+", want: false},
		{give: " 1", want: false},
		{give: "1 ", want: false},
		{give: "1,0", want: false},
		{give: "1_000", want: false},
		{give: "0x10", want: false},
		{give: "NaN", want: false},
		{give: "Infinity", want: false},
		{give: "1.2.3", want: false},
		{give: "--1", want: false},
		{give: "1e3.5", want: false},
		{give: "abc", want: false},
		{give: "١", want: true},    // Arabic-Indic one: Java's Character.isDigit
		{give: "١٢.٥", want: true}, // 12.5
		{give: "１２", want: true},   // fullwidth
		{give: "1e٢", want: true},  // exponent digits too
		{give: "𝟏", want: false},   // U+1D7CF: a digit, but two UTF-16 units
		{give: "1²", want: false},  // superscript two: No, not Nd
		{give: "Ⅻ", want: false},   // Roman numeral twelve: Nl
	}
	for _, tt := range tests {
		if _, got := parseDecimal(tt.give); got != tt.want {
			t.Errorf("parseDecimal(%q) ok = %v, want %v", tt.give, got, tt.want)
		}
	}
}

func TestDecimalCmp(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{a: "0", b: "-0", want: 0},
		{a: "0.000", b: "0e5", want: 0},
		{a: "1", b: "1.0", want: 0},
		{a: "1", b: "+1.000e0", want: 0},
		{a: "100", b: "1e2", want: 0},
		{a: "0.01", b: "1e-2", want: 0},
		{a: "1", b: "2", want: -1},
		{a: "2", b: "10", want: -1},
		{a: "-2", b: "-10", want: 1},
		{a: "-1", b: "0", want: -1},
		{a: "0", b: "-1", want: 1},
		{a: "0", b: "0.001", want: -1},
		{a: "-0.001", b: "0", want: -1},
		{a: "1.5", b: "1.49999", want: 1},
		{a: "1.5", b: "1.50001", want: -1},
		{a: "12345678901234567890", b: "12345678901234567891", want: -1},
		{a: "99.9", b: "100", want: -1},
		{a: "0.1", b: "0.09", want: 1},
		{a: "-5", b: "5", want: -1},
		{a: "1e2147483647", b: "1e-2147483647", want: 1},
		{a: "١٢.٥", b: "12.5", want: 0},
		{a: "１２", b: "11", want: 1},
		{a: "৯", b: "9", want: 0},
		{a: "10", b: "1", want: 1},
		{a: "1.10", b: "1.1", want: 0},
	}
	for _, tt := range tests {
		a, aok := parseDecimal(tt.a)
		b, bok := parseDecimal(tt.b)
		if !aok || !bok {
			t.Fatalf("parseDecimal(%q, %q) failed", tt.a, tt.b)
		}
		if got := a.cmp(b); got != tt.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.cmp(a); got != -tt.want {
			t.Errorf("cmp(%s, %s) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

// FuzzDecimalCmp checks the comparison of decimals against math/big.
func FuzzDecimalCmp(f *testing.F) {
	for _, s := range [][2]string{{"1", "1.0"}, {"-0.5", ".5"}, {"1e3", "999.9"}, {"007", "7e0"}, {"-1e-3", "0"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		da, aok := parseDecimal(a)
		db, bok := parseDecimal(b)
		if !aok || !bok {
			return
		}
		ra, rb := bigRat(t, a, aok), bigRat(t, b, bok)
		if ra == nil || rb == nil {
			return
		}
		if got, want := da.cmp(db), ra.Cmp(rb); got != want {
			t.Errorf("cmp(%q, %q) = %d, want %d", a, b, got, want)
		}
	})
}

// bigRat parses a decimal with math/big for reference, skipping exponents
// too large to expand.
func bigRat(t *testing.T, s string, ok bool) *big.Rat {
	t.Helper()
	d, _ := parseDecimal(s)
	if !ok || d.exp > 400 || d.exp < -400 {
		return nil
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		// big.Rat does not take "1." or ".5" everywhere; those are not what
		// this reference is for.
		return nil
	}
	return r
}

func TestCompareJava(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{a: "", b: "", want: 0},
		{a: "", b: "a", want: -1},
		{a: "a", b: "", want: 1},
		{a: "abc", b: "abd", want: -1},
		{a: "ab", b: "abc", want: -1},
		{a: "B", b: "a", want: -1},
		{a: "é", b: "z", want: 1},
		{a: "\uffff", b: "\U00010000", want: 1},      // Go's byte order says -1
		{a: "\ue000", b: "\U0001F600", want: 1},      // private use area above the surrogates
		{a: "\ud7ff", b: "\U0001F600", want: -1},     // below the surrogates
		{a: "\U0001F600", b: "\U0001F601", want: -1}, // same high surrogate
		{a: "\U00010000", b: "\U0010FFFF", want: -1},
		{a: "a\xff", b: "a\xfe", want: 1}, // not UTF-8: byte order
	}
	for _, tt := range tests {
		if got := compareJava(tt.a, tt.b); got != tt.want {
			t.Errorf("compareJava(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := compareJava(tt.b, tt.a); got != -tt.want {
			t.Errorf("compareJava(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestIsBlank(t *testing.T) {
	tests := []struct {
		give string
		want bool
	}{
		{give: "", want: true},
		{give: " ", want: true},
		{give: "\t\n\v\f\r", want: true},
		{give: "\x1c\x1f", want: true},
		{give: "\u2003\u3000", want: true},
		{give: "\u00a0", want: false}, // non-breaking space: not white space to Java
		{give: "\u2007", want: false},
		{give: "\u202f", want: false},
		{give: "\u0085", want: false},
		{give: " a ", want: false},
		{give: "0", want: false},
	}
	for _, tt := range tests {
		if got := isBlank(tt.give); got != tt.want {
			t.Errorf("isBlank(%q) = %v, want %v", tt.give, got, tt.want)
		}
	}
}

// fastPathValues are request values around the edges of the fast paths:
// integers of every form BigDecimal reads, numbers that are no int64,
// blanks and words.
var fastPathValues = []string{
	"", " ", "\t", "0", "-0", "+0", "18", "+18", "-18", "018", "17", "19", "18.0", "1.8e1",
	"999999999999999999", "-999999999999999999", "1000000000000000000", "9223372036854775808",
	"abc", "1", "1 ", " 1", "+", "-", "0x12", "1_8", "u-1", "灰度",
}

// TestFastPaths checks that every fast path of a comparison agrees with the
// general path it short-cuts.
func TestFastPaths(t *testing.T) {
	lits := []string{"'18'", "'-3'", "'abc'", "''", "' '", "'1'", "18", "-18", "0", "999999999999999999L", "1.5", "18L", "0x12", "null"}
	fast := map[fastPath]int{}
	for _, op := range []string{"==", "!=", "<", "<=", ">", ">="} {
		for _, lit := range lits {
			for _, val := range append(fastPathValues, "missing") {
				fast[checkFastPath(t, op, lit, val)]++
			}
		}
	}
	for _, p := range []fastPath{fastEqText, fastOrderInt, fastNull} {
		if fast[p] == 0 {
			t.Errorf("fast path %d never taken", p)
		}
	}
}

// checkFastPath compares #H['v'] op lit on the value val ("missing" for
// none) with and without the fast path, and returns the path taken.
func checkFastPath(t *testing.T, op, lit, val string) fastPath {
	t.Helper()
	src := "#H['v'] " + op + " " + lit
	c, err := Compile(src)
	if err != nil {
		return fastNone // the fuzzer's literals need not compile
	}
	general := *c
	general.nodes = slices.Clone(c.nodes)
	path := fastNone
	for i := range general.nodes {
		path = max(path, general.nodes[i].fast)
		general.nodes[i].fast = fastNone
	}
	vals := Map{"v": val}
	if val == "missing" {
		vals = Map{}
	}
	if got, want := c.Match(vals), general.Match(vals); got != want {
		t.Errorf("%s on %q: fast path %d says %v, general path %v", src, val, path, got, want)
	}
	return path
}

// FuzzFastPaths checks the fast paths against the general path on any
// value and literal.
func FuzzFastPaths(f *testing.F) {
	for i, v := range fastPathValues {
		f.Add(uint8(i%6), "18", i%2 == 0, v)
	}
	f.Fuzz(func(t *testing.T, op uint8, lit string, number bool, val string) {
		if !number {
			lit = "'" + strings.ReplaceAll(lit, "'", "''") + "'"
		}
		checkFastPath(t, []string{"==", "!=", "<", "<=", ">", ">="}[op%6], lit, val)
	})
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		give   string
		want   int64
		wantOK bool
	}{
		{give: "0", want: 0, wantOK: true},
		{give: "-0", want: 0, wantOK: true},
		{give: "+18", want: 18, wantOK: true},
		{give: "-18", want: -18, wantOK: true},
		{give: "007", want: 7, wantOK: true},
		{give: "999999999999999999", want: 999999999999999999, wantOK: true},
		{give: "-999999999999999999", want: -999999999999999999, wantOK: true},
		{give: "1000000000000000000"}, // 19 digits: left to decimal
		{give: ""},
		{give: "+"},
		{give: "-"},
		{give: " 1"},
		{give: "1 "},
		{give: "1.0"},
		{give: "1e3"},
		{give: "0x1"},
		{give: "--1"},
	}
	for _, tt := range tests {
		got, ok := parseInt(tt.give)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tt.give, got, ok, tt.want, tt.wantOK)
		}
	}
}
