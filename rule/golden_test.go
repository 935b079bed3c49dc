package rule

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const (
	svcA = "discovery-guide-service-a"
	svcB = "discovery-guide-service-b"
)

var t0 = time.Date(2024, 5, 31, 10, 0, 0, 0, time.UTC)

// guideInventory is the orchestration guide's setting: both services live in
// 1.0 and 1.1.
func guideInventory() Inventory {
	return Inventory{
		svcA: {{Version: "1.1", Started: t0.Add(time.Hour)}, {Version: "1.0", Started: t0}, {Version: "1.0", Started: t0}},
		svcB: {{Version: "1.0", Started: t0}, {Version: "1.1", Started: t0.Add(time.Hour)}},
	}
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOrchestrateGuideGoldens(t *testing.T) {
	timeInv := Inventory{
		// service-a started base first; service-b started gray first, so
		// for service-b the name order (base < gray) is the wrong answer.
		svcA: {{Version: "gray", Started: t0.Add(2 * time.Hour)}, {Version: "base", Started: t0}},
		svcB: {{Version: "base", Started: t0.Add(3 * time.Hour)}, {Version: "gray", Started: t0.Add(time.Hour)}, {Version: "base", Started: t0.Add(4 * time.Hour)}},
	}
	threeInv := Inventory{
		svcA: {{Version: "3.0"}, {Version: "1.0"}, {Version: "2.0"}, {Version: "2.0"}},
		svcB: {{Version: "1.1"}, {Version: ""}, {Version: "1.1"}},
	}
	tests := []struct {
		give string // spec file
		inv  Inventory
		want string // golden XML
	}{
		{"orchestration/basic.yaml", guideInventory(), "orchestration/basic.xml"},
		{"orchestration/basic.json", guideInventory(), "orchestration/basic.xml"},
		{"orchestration/bluegreen.yaml", guideInventory(), "orchestration/bluegreen.xml"},
		{"orchestration/bluegreen.json", guideInventory(), "orchestration/bluegreen.xml"},
		{"orchestration/gray.yaml", guideInventory(), "orchestration/gray.xml"},
		{"orchestration/gray.json", guideInventory(), "orchestration/gray.xml"},
		{"orchestration/mixed.yaml", guideInventory(), "orchestration/mixed.xml"},
		{"orchestration/mixed.json", guideInventory(), "orchestration/mixed.xml"},
		{"orchestration/time.yaml", timeInv, "orchestration/time.xml"},
		{"orchestration/time.json", timeInv, "orchestration/time.xml"},
		{"orchestration/three.yaml", threeInv, "orchestration/three.xml"},
	}
	for _, tt := range tests {
		t.Run(tt.give, func(t *testing.T) {
			spec, err := ParseSpec(readFile(t, tt.give))
			if err != nil {
				t.Fatalf("ParseSpec: %v", err)
			}
			r, err := Orchestrate(spec, tt.inv)
			if err != nil {
				t.Fatalf("Orchestrate: %v", err)
			}
			got, err := EncodeXML(r)
			if err != nil {
				t.Fatalf("EncodeXML: %v", err)
			}
			want := readFile(t, tt.want)
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
			// The golden XML parses to a rule that encodes to the same bytes.
			r2, err := Parse(want)
			if err != nil {
				t.Fatalf("Parse golden: %v", err)
			}
			again, err := EncodeXML(r2)
			if err != nil || !bytes.Equal(again, want) {
				t.Errorf("golden does not round-trip (%v):\n%s", err, again)
			}
			// Orchestrating again gives the same bytes (the balancer relies
			// on it to skip republishing an unchanged rule).
			r3, err := Orchestrate(spec, tt.inv)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := EncodeXML(r3); !bytes.Equal(b, got) {
				t.Error("Orchestrate is not deterministic")
			}
		})
	}
}

func TestOrchestrateSortVersionIgnoresTime(t *testing.T) {
	spec := &Spec{Service: []string{svcA}, Gray: []GrayEntry{{Weight: [2]int{50, 50}}}}
	inv := Inventory{svcA: {{Version: "gray", Started: t0}, {Version: "base", Started: t0.Add(time.Hour)}}}
	r, err := Orchestrate(spec, inv)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Strategy.Version.For(svcA); got != "base" {
		t.Errorf("sort version: old = %q, want base", got)
	}
	spec.Sort = SortTime
	if r, err = Orchestrate(spec, inv); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.Strategy.Version.For(svcA); got != "gray" {
		t.Errorf("sort time: old = %q, want gray", got)
	}
}

func TestOrderVersions(t *testing.T) {
	tests := []struct {
		name string
		give []Instance
		by   Sort
		want []string
	}{
		{"numeric runs", []Instance{{Version: "1.10"}, {Version: "1.9"}, {Version: "1.2"}}, SortVersion, []string{"1.2", "1.9", "1.10"}},
		{"timestamps", []Instance{{Version: "20240601"}, {Version: "20240531"}}, SortVersion, []string{"20240531", "20240601"}},
		{"default first", []Instance{{Version: "0.1"}, {}, {Version: "default"}}, SortVersion, []string{"default", "0.1"}},
		{"dedupe", []Instance{{Version: "b"}, {Version: "a"}, {Version: "b"}}, SortVersion, []string{"a", "b"}},
		{"leading zeros total", []Instance{{Version: "1.1"}, {Version: "1.01"}}, SortVersion, []string{"1.01", "1.1"}},
		{"time earliest instance", []Instance{
			{Version: "x", Started: t0.Add(3 * time.Hour)}, {Version: "y", Started: t0.Add(2 * time.Hour)},
			{Version: "x", Started: t0.Add(time.Hour)},
		}, SortTime, []string{"x", "y"}},
		{"time unknown last", []Instance{{Version: "a"}, {Version: "b", Started: t0}}, SortTime, []string{"b", "a"}},
		{"time ties by name", []Instance{{Version: "b", Started: t0}, {Version: "a", Started: t0}}, SortTime, []string{"a", "b"}},
		{"time default first", []Instance{{Version: "a", Started: t0}, {Started: t0.Add(time.Hour)}}, SortTime, []string{"default", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := orderVersions(tt.give, tt.by)
			if len(got) != len(tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestOrchestrateSingleVersion(t *testing.T) {
	spec := &Spec{Service: []string{svcA}, BlueGreen: []BlueGreenEntry{
		{Expression: "#H['a'] == '1'", Route: SideOld}, {Expression: "#H['a'] == '2'", Route: SideNew},
	}}
	r, err := Orchestrate(spec, Inventory{svcA: {{Version: "1.0"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range r.Release.Routes {
		if got, _ := rt.Value.For(svcA); got != "1.0" {
			t.Errorf("%s = %q, want 1.0 (new = old with one version)", rt.ID, got)
		}
	}
}

func TestOrchestrateNoInstances(t *testing.T) {
	spec := &Spec{Service: []string{svcA, svcB}}
	_, err := Orchestrate(spec, Inventory{svcA: {{Version: "1.0"}}, svcB: {}})
	if !errors.Is(err, ErrNoInstances) {
		t.Fatalf("err = %v, want ErrNoInstances", err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Path != "service[2]" {
		t.Fatalf("err = %#v, want path service[2]", err)
	}
	if want := `rule: service[2]: service "discovery-guide-service-b" has no live instances`; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}
