package rule

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// hostileDocs are documents built to cost a parser as much memory as
// possible: deep nesting, alias expansion, and padding with the smallest
// items, both just beyond the limits (rejected) and just within them
// (read, then accepted or rejected by the rule model).
func hostileDocs() []struct {
	name string
	doc  []byte
} {
	n := MaxDocumentSize
	rep := func(head, unit, tail string) []byte {
		k := (n - len(head) - len(tail)) / len(unit)
		return []byte(head + strings.Repeat(unit, k) + tail)
	}
	lol := "a: &a [x,x,x,x,x,x,x,x,x]\n"
	for i, c := range "bcdefghi" {
		prev := string("abcdefghi"[i])
		lol += string(c) + ": &" + string(c) + " [" + strings.TrimSuffix(strings.Repeat("*"+prev+",", 9), ",") + "]\n"
	}
	return []struct {
		name string
		doc  []byte
	}{
		{"json [ nesting", bytes.Repeat([]byte("["), n)},
		{"json { nesting", bytes.Repeat([]byte("{"), n)},
		{"json object nesting", rep("{", `"a":{`, "")},
		{"xml <a> nesting", rep("", "<a>", "")},
		{"xml <a> nesting with attributes", rep("", `<a b="">`, "")},
		{"yaml [ nesting", rep("a: ", "[", "")},
		{"yaml - nesting", rep("", "- ", "")},
		{"yaml billion laughs", []byte(lol)},
		{"yaml anchors at size", rep(lol, "j: [*i]\n", "")},
		{"json padding", rep("[", "1,", "1]")},
		{"json padding at the limit", rep("[", "1              ,", "1]")},
		{"json object padding at the limit", rep(`{"strategy":{`, `"a":1          ,`, `"a":1}}`)},
		{"xml padding", rep("<rule>", "<a/>", "</rule>")},
		{"xml padding at the limit", rep("<rule>", "<a/>            ", "</rule>")},
		{"xml attribute padding", rep("<rule", ` a=""`, "/>")},
		{"yaml padding", rep("", "- 1\n", "")},
		{"yaml padding at the limit", rep("", "- 1            \n", "")},
		{"yaml map padding at the limit", rep("", "a: 1                           \n", "")},
	}
}

// maxAllocRatio bounds the bytes the parser allocates for a hostile
// document, as a multiple of the document's size (plus a fixed
// allowance). Before the limits, 512 KiB of '[' allocated 245 times its
// size.
const (
	maxAllocRatio     = 32
	maxAllocAllowance = 1 << 20
)

// TestHostileDocumentMemory measures the bytes allocated while parsing
// (runtime.MemStats.TotalAlloc: every allocation, freed or not), so it
// bounds the peak too.
func TestHostileDocumentMemory(t *testing.T) {
	for _, tt := range hostileDocs() {
		if len(tt.doc) > MaxDocumentSize {
			t.Fatalf("%s: %d bytes, over the limit", tt.name, len(tt.doc))
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, _, err := ParseDocument(tt.doc)
		runtime.ReadMemStats(&after)
		alloc := after.TotalAlloc - before.TotalAlloc
		limit := uint64(maxAllocRatio*len(tt.doc) + maxAllocAllowance)
		t.Logf("%s: %d bytes in, %d allocated (%.1fx): %v", tt.name, len(tt.doc), alloc, float64(alloc)/float64(len(tt.doc)), err)
		if alloc > limit {
			t.Errorf("%s: %d bytes allocated for %d bytes of input, want at most %d", tt.name, alloc, len(tt.doc), limit)
		}
	}
}

func TestHostileDocumentErrors(t *testing.T) {
	tests := []struct {
		give []byte
		want string
	}{
		{bytes.Repeat([]byte("["), 100), "line 1, column 65: document nested more than 64 levels deep"},
		{[]byte("<rule>\n" + strings.Repeat("<a>", 70)), "line 2, column 190: document nested more than 64 levels deep"},
		{[]byte("[" + strings.Repeat("1,", 20000) + "1]"), "document holds too many values for its size"},
		{[]byte("<rule>" + strings.Repeat("<a/>", 20000) + "</rule>"), "document holds too many values for its size"},
		{[]byte(strings.Repeat("- 1\n", 20000)), "document holds too many values for its size"},
		{make([]byte, MaxDocumentSize+1), "document of 524289 bytes exceeds the limit of 524288 bytes"},
	}
	for _, tt := range tests {
		_, _, err := ParseDocument(tt.give)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%.20q...: got %v, want %q", tt.give, err, tt.want)
		}
		if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrInvalid) {
			t.Errorf("%.20q...: %v wraps neither ErrSyntax nor ErrInvalid", tt.give, err)
		}
	}
	// Nesting within the limit, in comments, strings, CDATA and attribute
	// values does not count.
	ok := [][]byte{
		[]byte(`{"strategy": {"version": "` + strings.Repeat("[{", 100) + `"}} // ` + strings.Repeat("[", 100)),
		[]byte(`<rule><!-- ` + strings.Repeat("<a>", 100) + ` --><strategy><version><![CDATA[` + strings.Repeat("<a>", 100) + `]]></version></strategy></rule>`),
		[]byte(`<rule><strategy><version>1.0</version></strategy><strategy-release><conditions type="blue-green"><condition id="c" expression="` + strings.Repeat("#H['a'] &gt; '1' &amp;&amp; ", 50) + `#H['a'] == '1'" version-id="r"/></conditions><routes><route id="r" type="version">1.1</route></routes></strategy-release></rule>`),
	}
	for _, d := range ok {
		if _, err := Parse(d); err != nil {
			t.Errorf("%.40q...: %v", d, err)
		}
	}
}

// BenchmarkParseHostile parses each hostile document; the allocated bytes
// per operation show the memory bound at work.
func BenchmarkParseHostile(b *testing.B) {
	for _, tt := range hostileDocs() {
		b.Run(strings.ReplaceAll(tt.name, " ", "_"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tt.doc)))
			for b.Loop() {
				_, _, _ = ParseDocument(tt.doc)
			}
		})
	}
}
