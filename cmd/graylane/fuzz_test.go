package main

import (
	"io"
	"os"
	"strings"
	"testing"

	"github.com/graylane/graylane/rule"
)

// FuzzExplain feeds arbitrary documents and -H values through the parts of
// explain and validate that read input: the header flag parser, the
// explanation of any rule that parses and validate's warnings about it.
// None may panic; a set flag must read back; every warning has a message.
func FuzzExplain(f *testing.F) {
	for _, name := range []string{"testdata/rule.xml", "testdata/header.xml", "testdata/weights.yaml", "testdata/bad.json", "testdata/java-differs.xml", "testdata/discovery-filters.xml"} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, "xyz=3")
	}
	f.Add([]byte(`{"strategy":{"version":"1.*"}}`), "a: b")
	f.Fuzz(func(t *testing.T, doc []byte, header string) {
		var h headerFlags
		if err := h.Set(header); err == nil {
			if len(h.names) != 1 || !strings.Contains(h.String(), h.names[0]+"=") {
				t.Fatalf("Set(%q) gave %q", header, h.String())
			}
		}
		r, err := rule.Parse(doc)
		if err != nil {
			return
		}
		explain(io.Discard, r, "fuzz", &h, []string{"svc"}, rule.BuiltInFirst)
		for _, w := range nepxionWarnings(doc, r) {
			if w.msg == "" || w.line < 0 || w.col < 0 {
				t.Fatalf("warning %+v", w)
			}
		}
	})
}
