package expr

import (
	"testing"

	exprlang "github.com/expr-lang/expr"
)

// Conditions of the sizes real rules use: one header test; four
// comparisons, one of them numeric, all four evaluated (the or's left side
// is false); a typical blue/green mix; and a regular expression.
const (
	benchEq    = "#H['xyz'] == '1'"
	benchAnd4  = "#H['vip'] == 'true' or #H['xyz'] == '1' and #H['age'] >= '18' and #H['region'] != 'eu'"
	benchMixed = "#H['xyz'] == '1' and (#H['age'] >= 18 or #H['vip'] != null) and not (#H['region'] == 'eu')"
	benchRegex = "#H['user'] matches 'u-[0-9]{3,}'"
)

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(benchMixed); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMatch measures Match on a Map; exprRun is the baseline: the eq
// condition in expr-lang's own syntax, compiled once by expr-lang and run
// on its virtual machine with an environment map.
func BenchmarkMatch(b *testing.B) {
	vals := Map{"xyz": "1", "age": "20", "region": "us", "user": "u-12345"}
	for _, bb := range []struct{ name, src string }{
		{"eq", benchEq},
		{"and4", benchAnd4},
		{"mixed", benchMixed},
		{"regex", benchRegex},
	} {
		c, err := Compile(bb.src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !c.Match(vals) {
					b.Fatal("no match")
				}
			}
		})
	}
	b.Run("exprRun", func(b *testing.B) {
		env := map[string]any{"H": map[string]string(vals)}
		program, err := exprlang.Compile("H['xyz'] == '1'", exprlang.Env(env), exprlang.AsBool())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			out, err := exprlang.Run(program, env)
			if err != nil || out != true {
				b.Fatal("no match:", out, err)
			}
		}
	})
}

func BenchmarkMatchParallel(b *testing.B) {
	c, err := Compile(benchMixed)
	if err != nil {
		b.Fatal(err)
	}
	vals := Map{"xyz": "1", "age": "20", "region": "us"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if !c.Match(vals) {
				b.Error("no match")
				return
			}
		}
	})
}
