package pick

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/graylane/graylane/rule"
)

// mapCarrier is the plainest carrier: one value per lower-case key.
type mapCarrier map[string]string

func (m mapCarrier) Get(k string) string { return m[strings.ToLower(k)] }
func (m mapCarrier) Set(k, v string) {
	if v == "" {
		delete(m, strings.ToLower(k))
		return
	}
	m[strings.ToLower(k)] = v
}
func (m mapCarrier) Keys() []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestCodecRoundTrip(t *testing.T) {
	var r Route
	for ty := range rule.NumTypes {
		r.Set(ty, rule.PlainValue("v-"+ty.String()))
	}
	r.Header = map[string][]string{"X-User": {"u1", "u2"}}
	c := mapCarrier{"n-d-stale": "keep", "n-d-version": "old"}
	Inject(&r, c)
	if c["x-user"] != "u1, u2" {
		t.Errorf("business header %q, want the values joined", c["x-user"])
	}
	if c["n-d-stale"] != "keep" {
		t.Error("Inject removed an n-d-* key no route type owns")
	}
	back, ok, err := Extract(c)
	if !ok || err != nil {
		t.Fatalf("Extract: %v %v", ok, err)
	}
	for ty := range rule.NumTypes {
		want := "v-" + ty.String()
		if ty.HeaderName() == "" {
			want = "" // a type without header stays in the process
		}
		if got := back.Get(ty).String(); got != want {
			t.Errorf("%s: %q, want %q", ty, got, want)
		}
	}
	// A zero route clears every routing header it owns.
	Inject(&Route{}, c)
	if Carries(c) {
		t.Errorf("zero route left routing headers: %v", c)
	}
	if !Drop(c) || len(c) != 1 || c["x-user"] == "" {
		t.Errorf("Drop left %v, want only x-user", c)
	}
}

func TestExtractReportsBadHeaders(t *testing.T) {
	c := mapCarrier{"n-d-region": "{bad", "n-d-version": "1.1", "n-d-env": " "}
	r, ok, err := Extract(c)
	var he *HeaderError
	if !ok || !errors.As(err, &he) || he.Name != "n-d-region" {
		t.Fatalf("Extract: ok %v err %v", ok, err)
	}
	if r.Get(rule.TypeVersion).String() != "1.1" || !r.Get(rule.TypeRegion).IsZero() || !r.Get(rule.TypeEnv).IsZero() {
		t.Errorf("route %s", r.String())
	}
}

func TestIsRoutingKey(t *testing.T) {
	for _, tt := range []struct {
		give string
		want bool
	}{{"n-d-version", true}, {"N-D-Version", true}, {"n-D-x", true}, {"n-d", false}, {"x-n-d-a", false}, {"n_d_version", false}} {
		if got := IsRoutingKey(tt.give); got != tt.want {
			t.Errorf("IsRoutingKey(%q) = %v", tt.give, got)
		}
	}
}

// TestZoneIsWired checks that a route's zone reaches the selector: the
// zone row of the route type table filters by Instance.Zone.
func TestZoneIsWired(t *testing.T) {
	list := fleet("svc", 2, "1.0").Instances
	list[1].Zone = "z1"
	s := NewSelector("svc", list, SelectorConfig{})
	r := Route{}.With(rule.TypeZone, rule.PlainValue("z1"))
	for range 4 {
		if i, err := s.Pick(&r, 0); err != nil || s.Instance(i).Zone != "z1" {
			t.Fatalf("picked %d, %v", i, err)
		}
	}
}

// TestMatchingTable checks that the engine's table gives every route type
// a role, that the single-role types are single, and that attributes are
// set where needed.
func TestMatchingTable(t *testing.T) {
	seen := map[role]int{}
	for ty := range rule.NumTypes {
		m := matchings[ty]
		if m.role == 0 {
			t.Errorf("%s has no role", ty)
		}
		if (m.attr == nil) != m.address {
			t.Errorf("%s: an address type has no attribute, every other one has", ty)
		}
		weighs := m.role == weigh || m.role == ruleWeigh
		if weighs != (ty.Kind() == rule.Weights) {
			t.Errorf("%s: weigh roles and weight values go together", ty)
		}
		if m.role == alternate && matchings[m.of].alt != ty {
			t.Errorf("%s stands in for %s, whose failover element is %s", ty, m.of, matchings[m.of].alt)
		}
		seen[m.role]++
	}
	for _, r := range []role{routed, prefer, transfer, boundary} {
		if seen[r] != 1 {
			t.Errorf("role %d has %d types, want 1", r, seen[r])
		}
	}
}

// BenchmarkCodec measures writing a route to a carrier and reading it back
// (a middle hop's work per call), over the plainest carrier.
func BenchmarkCodec(b *testing.B) {
	v, err := rule.ParseValue(`{"svc-a":"1.1","svc-b":"1.1"}`)
	if err != nil {
		b.Fatal(err)
	}
	r := Route{Header: map[string][]string{"X-User": {"u7"}}}.With(rule.TypeVersion, v)
	c := exactCarrier{}
	b.Run("Inject", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Inject(&r, c)
		}
	})
	b.Run("Extract", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, ok, err := Extract(c); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// exactCarrier matches keys exactly, as a carrier holding the codec's own
// (canonical) names may: the benchmark then measures the codec, not key
// folding.
type exactCarrier map[string]string

func (m exactCarrier) Get(k string) string { return m[k] }
func (m exactCarrier) Set(k, v string) {
	if v == "" {
		delete(m, k)
		return
	}
	m[k] = v
}
func (m exactCarrier) Keys() []string { return nil }
