package rule

import (
	"testing"

	"github.com/graylane/graylane/expr"
)

// BenchmarkDecide decides for the orchestration guide's mixed rule with the
// request header xyz=3, with either header priority (built-in first: the
// built-in xyz=1 routes green; request first: gray 90/10).
func BenchmarkDecide(b *testing.B) {
	r := mustParse(b, string(readFile(b, "orchestration/mixed.xml")))
	v := expr.Map{"xyz": "3"}
	for _, bm := range []struct {
		name string
		prio HeaderPriority
	}{{"BuiltInFirst", BuiltInFirst}, {"RequestFirst", RequestFirst}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			var draw uint64
			for b.Loop() {
				draw += 0x9E3779B97F4A7C15
				d := r.DecideWith(v, draw, bm.prio)
				if d.Version.IsZero() {
					b.Fatal("no version")
				}
			}
		})
	}
}

func BenchmarkDecideParallel(b *testing.B) {
	r := mustParse(b, string(readFile(b, "orchestration/mixed.xml")))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := expr.Map{"xyz": "3"}
		var draw uint64
		for pb.Next() {
			draw += 0x9E3779B97F4A7C15
			r.Decide(v, draw)
		}
	})
}

// BenchmarkDecideFull decides for a rule using every route type and a sticky
// key.
func BenchmarkDecideFull(b *testing.B) {
	r := mustParse(b, string(readFile(b, "full.xml")))
	v := expr.Map{"beta": "1", "user-id": "u-12345"}
	b.ReportAllocs()
	for b.Loop() {
		r.Decide(v, 42)
	}
}

func BenchmarkParseValue(b *testing.B) {
	for _, bm := range []struct{ name, give string }{
		{"map2", `{"discovery-guide-service-a":"1.1","discovery-guide-service-b":"1.1"}`},
		{"plain", "1.0;1.1"},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseValue(bm.give); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValueFor(b *testing.B) {
	v, _ := ParseValue(`{"discovery-guide-service-a":"1.1","discovery-guide-service-b":"1.1"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := v.For(svcB); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkParseXML(b *testing.B) {
	data := readFile(b, "orchestration/mixed.xml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOrchestrate(b *testing.B) {
	spec, err := ParseSpec(readFile(b, "orchestration/mixed.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	inv := guideInventory()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Orchestrate(spec, inv); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseNepxion parses Nepxion's full example rule, with every
// section, in its two notations: the XML and the JSON of its RuleEntity.
func BenchmarkParseNepxion(b *testing.B) {
	for _, name := range []string{"example-service--rule.xml", "example-service--rule.json"} {
		data := readFile(b, "nepxion/"+name)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
