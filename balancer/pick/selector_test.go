package pick

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery/instance"
	"github.com/graylane/graylane/rule"
)

// fleet returns a snapshot of svc with n instances of each version, on
// addresses 10.0.<v>.<i>:8080, regions alternating dev/qa.
func fleet(svc string, n int, versions ...string) *instance.Snapshot {
	var list []instance.Instance
	for vi, v := range versions {
		for i := range n {
			region := "dev"
			if i%2 == 1 {
				region = "qa"
			}
			list = append(list, instance.Instance{
				ID:      fmt.Sprintf("%s-%s-%d", svc, v, i),
				Service: svc,
				Address: fmt.Sprintf("10.0.%d.%d", vi, i),
				Port:    8080,
				Version: v,
				Region:  region,
			})
		}
	}
	return instance.NewSnapshot(svc, 1, list)
}

// seq returns a deterministic draw source.
func seq(seed uint64) func() uint64 {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	return r.Uint64
}

func pickMany(t *testing.T, s *Selector, c Constraint, n int) map[string]int {
	t.Helper()
	draw := seq(1)
	got := make(map[string]int)
	for range n {
		i, err := s.Select(&c, draw())
		if err != nil {
			t.Fatalf("Select(%s): %v", c.String(), err)
		}
		got[s.Instance(i).ID]++
	}
	return got
}

func versionsOf(s *Selector, ids map[string]int) []string {
	var vs []string
	for i := range s.Len() {
		in := s.Instance(i)
		if ids[in.ID] > 0 && !slices.Contains(vs, in.Version) {
			vs = append(vs, in.Version)
		}
	}
	slices.Sort(vs)
	return vs
}

func TestSelectorFilters(t *testing.T) {
	snap := fleet("svc", 4, "1.0", "1.1", "2.0")
	envd := slices.Clone(snap.Instances)
	envd[0].Env, envd[1].Env = "canary", "canary"
	snap = instance.NewSnapshot("svc", 2, envd)
	tests := []struct {
		name string
		give Constraint
		want []string // the IDs allowed
	}{
		{"version", Constraint{rule.TypeVersion: "1.1"}, []string{"svc-1.1-0", "svc-1.1-1", "svc-1.1-2", "svc-1.1-3"}},
		{"alternatives", Constraint{rule.TypeVersion: "1.0;2.0", rule.TypeRegion: "qa"}, []string{"svc-1.0-1", "svc-1.0-3", "svc-2.0-1", "svc-2.0-3"}},
		{"wildcard", Constraint{rule.TypeVersion: "1.*", rule.TypeRegion: "d?v"}, []string{"svc-1.0-0", "svc-1.0-2", "svc-1.1-0", "svc-1.1-2"}},
		{"address host:port", Constraint{rule.TypeAddress: "10.0.2.3:8080"}, []string{"svc-2.0-3"}},
		{"address host", Constraint{rule.TypeAddress: "10.0.1.1;10.0.1.2"}, []string{"svc-1.1-1", "svc-1.1-2"}},
		{"address port", Constraint{rule.TypeAddress: "8080", rule.TypeVersion: "2.0", rule.TypeRegion: "dev"}, []string{"svc-2.0-0", "svc-2.0-2"}},
		{"address wildcard", Constraint{rule.TypeAddress: "10.0.0.*"}, []string{"svc-1.0-0", "svc-1.0-1", "svc-1.0-2", "svc-1.0-3"}},
		{"env", Constraint{rule.TypeEnv: "canary"}, []string{"svc-1.0-0", "svc-1.0-1"}},
		{"id blacklist", Constraint{rule.TypeVersion: "2.0", rule.TypeIDBlacklist: "svc-2.0-0;svc-2.0-1"}, []string{"svc-2.0-2", "svc-2.0-3"}},
		{"address blacklist", Constraint{rule.TypeVersion: "2.0", rule.TypeAddressBlacklist: "10.0.2.0;10.0.2.1:8080"}, []string{"svc-2.0-2", "svc-2.0-3"}},
		{"prefer without version", Constraint{rule.TypeVersionPrefer: "2.0", rule.TypeRegion: "dev"}, []string{"svc-2.0-0", "svc-2.0-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSelector("svc", snap.Instances, SelectorConfig{})
			got := pickMany(t, s, tt.give, 200)
			var ids []string
			for id := range got {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, tt.want) {
				t.Errorf("picked %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestSelectorRoundRobinIsEven(t *testing.T) {
	s := NewSelector("svc", fleet("svc", 5, "1.0", "1.1").Instances, SelectorConfig{})
	got := pickMany(t, s, Constraint{rule.TypeVersion: "1.1"}, 500)
	if len(got) != 5 {
		t.Fatalf("picked %d instances, want 5: %v", len(got), got)
	}
	for id, n := range got {
		if n != 100 {
			t.Errorf("%s picked %d times, want 100", id, n)
		}
	}
}

func TestSelectorVersionWeightIgnoresInstanceCounts(t *testing.T) {
	// 1.0 has 9 instances, 1.1 has 1: the split must follow the weights,
	// not the instance counts.
	list := append(fleet("svc", 9, "1.0").Instances, fleet("svc", 1, "1.1").Instances...)
	for i := range list {
		list[i].ID = fmt.Sprintf("%s-%d", list[i].ID, i)
	}
	s := NewSelector("svc", instance.NewSnapshot("svc", 1, list).Instances, SelectorConfig{})
	const n = 100_000
	got := pickMany(t, s, Constraint{rule.TypeVersionWeight: "1.0=80;1.1=20"}, n)
	new := 0
	for id, k := range got {
		if s.Instance(slices.IndexFunc(list, func(in instance.Instance) bool { return in.ID == id })).Version == "1.1" {
			new += k
		}
	}
	if share := float64(new) / n; share < 0.19 || share > 0.21 {
		t.Errorf("1.1 share %.3f, want 0.20 +- 0.01", share)
	}
}

func TestSelectorWeightedRandom(t *testing.T) {
	list := fleet("svc", 2, "1.0").Instances
	list[0].Weight, list[1].Weight = 300, 100
	s := NewSelector("svc", list, SelectorConfig{Policy: WeightedRandom})
	got := pickMany(t, s, Constraint{}, 40_000)
	if share := float64(got[list[0].ID]) / 40_000; share < 0.73 || share > 0.77 {
		t.Errorf("heavy instance share %.3f, want 0.75", share)
	}
}

func TestSelectorLeastInFlight(t *testing.T) {
	tr := NewTracker(Ejection{})
	list := fleet("svc", 3, "1.0").Instances
	s := NewSelector("svc", list, SelectorConfig{Policy: LeastInFlight, Tracker: tr})
	// Load two instances; P2C must then never pick the busiest of a pair, so
	// the idle one wins every draw it takes part in and the busiest never
	// wins.
	for range 5 {
		s.Start(0)
	}
	s.Start(1)
	got := pickMany(t, s, Constraint{}, 3000)
	if got[list[0].ID] != 0 {
		t.Errorf("busiest instance picked %d times", got[list[0].ID])
	}
	if got[list[2].ID] < got[list[1].ID] {
		t.Errorf("idle instance picked less than the loaded one: %v", got)
	}
}

func TestSelectorFailover(t *testing.T) {
	list := fleet("svc", 2, "1.0", "1.1").Instances
	tests := []struct {
		name string
		mode Failover
		give Constraint
		want []string // versions picked; nil: ErrNoInstance
	}{
		{"strict", Strict, Constraint{rule.TypeVersion: "2.0"}, nil},
		{"strict honours explicit failover", Strict, Constraint{rule.TypeVersion: "2.0", rule.TypeVersionFailover: "1.1"}, []string{"1.1"}},
		// Nepxion's StrategyVersionEnabledFilter (Discovery 6.x.x): version-prefer
		// applies only when no version is routed, and it routes to the
		// preferred versions alone.
		{"prefer ignored under a version route", Strict, Constraint{rule.TypeVersion: "2.0", rule.TypeVersionPrefer: "1.1", rule.TypeVersionFailover: "1.0"}, []string{"1.0"}},
		{"prefer matching nothing", Strict, Constraint{rule.TypeVersionPrefer: "9.9"}, nil},
		{"prefer matching nothing, permissive", Permissive, Constraint{rule.TypeVersionPrefer: "9.9"}, []string{"1.0"}},
		{"permissive: failover first", Permissive, Constraint{rule.TypeVersion: "2.0", rule.TypeVersionFailover: "1.1"}, []string{"1.1"}},
		{"permissive: stable", Permissive, Constraint{rule.TypeVersion: "2.0", rule.TypeVersionFailover: "3.0"}, []string{"1.0"}},
		{"permissive: stable within region", Permissive, Constraint{rule.TypeVersion: "2.0", rule.TypeRegion: "qa"}, []string{"1.0"}},
		{"permissive: any instance", Permissive, Constraint{rule.TypeRegion: "nowhere"}, []string{"1.0", "1.1"}},
		{"permissive keeps blacklist", Permissive, Constraint{rule.TypeVersion: "2.0", rule.TypeIDBlacklist: "svc-1.0-*"}, []string{"1.1"}},
		// Nepxion's PredicateBasedRuleDecorator and WeightEntityWrapper
		// (Discovery 6.x.x): a running version the list does not name makes
		// checkWeight fail and the weights are ignored; an unreadable weight
		// counts 0; all weights 0 make an unweighted choice.
		{"a running version missing from the weights ignores them", Strict, Constraint{rule.TypeVersionWeight: "2.0=100"}, []string{"1.0", "1.1"}},
		{"an unreadable weight counts 0", Strict, Constraint{rule.TypeVersionWeight: "1.0=x;1.1=50"}, []string{"1.1"}},
		{"all weights 0: unweighted", Strict, Constraint{rule.TypeVersionWeight: "1.0=x;1.1=0"}, []string{"1.0", "1.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSelector("svc", list, SelectorConfig{Failover: tt.mode})
			if tt.want == nil {
				_, err := s.Select(&tt.give, 1)
				var nie *NoInstanceError
				if !errors.Is(err, ErrNoInstance) || !errors.As(err, &nie) || nie.Service != "svc" || nie.Constraint != tt.give {
					t.Fatalf("err = %v, want a *NoInstanceError for svc", err)
				}
				return
			}
			if got := versionsOf(s, pickMany(t, s, tt.give, 100)); !slices.Equal(got, tt.want) {
				t.Errorf("versions %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNoInstanceErrorNamesServiceAndRoute(t *testing.T) {
	s := NewSelector("svc-b", fleet("svc-b", 1, "1.0").Instances, SelectorConfig{})
	_, err := s.Select(&Constraint{rule.TypeVersion: "1.1", rule.TypeRegion: "qa"}, 0)
	want := `balancer: no instance of "svc-b" for route version=1.1 region=qa (1 live)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	empty := NewSelector("svc-c", nil, SelectorConfig{})
	if _, err := empty.Select(&Constraint{}, 0); !errors.Is(err, ErrNoInstance) {
		t.Errorf("empty selector: err = %v", err)
	}
}

type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func TestEjection(t *testing.T) {
	clock := newFakeClock()
	tr := NewTrackerClock(Ejection{Failures: 3, Duration: time.Second}, clock.now)
	list := fleet("svc", 3, "1.0").Instances
	s := NewSelector("svc", list, SelectorConfig{Tracker: tr})
	fail := errors.New("connection refused")
	bad := 1
	for range 2 {
		s.Start(bad)(fail)
	}
	s.Start(bad)(nil) // a success resets the count
	for range 2 {
		s.Start(bad)(fail)
	}
	if got := pickMany(t, s, Constraint{}, 30); got[list[bad].ID] == 0 {
		t.Fatal("instance ejected before 3 failures in a row")
	}
	s.Start(bad)(fail)
	if !tr.State(list[bad].ID).Ejected() {
		t.Fatal("not ejected after 3 failures in a row")
	}
	if got := pickMany(t, s, Constraint{}, 30); got[list[bad].ID] != 0 {
		t.Fatalf("ejected instance picked %d times", got[list[bad].ID])
	}
	clock.advance(time.Second)
	if got := pickMany(t, s, Constraint{}, 30); got[list[bad].ID] == 0 {
		t.Fatal("instance still ejected after its back-off")
	}
	// A second ejection in a row lasts twice as long.
	for range 3 {
		s.Start(bad)(fail)
	}
	clock.advance(1500 * time.Millisecond)
	if !tr.State(list[bad].ID).Ejected() {
		t.Fatal("second ejection shorter than twice the duration")
	}
	clock.advance(time.Second)
	if tr.State(list[bad].ID).Ejected() {
		t.Fatal("second ejection longer than twice the duration")
	}
	// Cancellations by the caller are not the instance's fault.
	for range 5 {
		s.Start(0)(fmt.Errorf("read: %w", errContextCanceled()))
	}
	if tr.State(list[0].ID).Ejected() {
		t.Fatal("cancelled calls ejected an instance")
	}
}

func TestEjectionNeverEmptiesASet(t *testing.T) {
	clock := newFakeClock()
	tr := NewTrackerClock(Ejection{Failures: 1, Duration: time.Minute}, clock.now)
	list := fleet("svc", 2, "1.0", "1.1").Instances
	s := NewSelector("svc", list, SelectorConfig{Tracker: tr})
	for i := range list {
		if list[i].Version == "1.1" {
			s.Start(i)(errors.New("boom"))
		}
	}
	got := pickMany(t, s, Constraint{rule.TypeVersion: "1.1"}, 10)
	if n := got["svc-1.1-0"] + got["svc-1.1-1"]; n != 10 {
		t.Fatalf("all-ejected set: picked %v, want its instances anyway", got)
	}
	for _, policy := range []Policy{LeastInFlight, WeightedRandom} {
		s := NewSelector("svc", list, SelectorConfig{Tracker: tr, Policy: policy})
		if got := versionsOf(s, pickMany(t, s, Constraint{}, 50)); !slices.Equal(got, []string{"1.0"}) {
			t.Errorf("%v: picked versions %v, want only the healthy 1.0", policy, got)
		}
	}
}

func TestTrackerSurvivesSnapshotChanges(t *testing.T) {
	tr := NewTracker(Ejection{Failures: 1, Duration: time.Hour})
	a := fleet("svc", 2, "1.0").Instances
	s1 := NewSelector("svc", a, SelectorConfig{Tracker: tr, CountInFlight: true})
	s1.Start(0)(errors.New("boom"))
	s1.Start(1)
	b := append(slices.Clone(a), fleet("svc", 1, "1.1").Instances...)
	s2 := NewSelector("svc", instance.NewSnapshot("svc", 2, b).Instances, SelectorConfig{Tracker: tr})
	if !tr.State(a[0].ID).Ejected() || tr.State(a[1].ID).InFlight() != 1 {
		t.Fatal("records lost across a snapshot change")
	}
	// Dropping an ejected instance clears its ejection from the count.
	NewSelector("svc", a[1:], SelectorConfig{Tracker: tr})
	if tr.anyEjected() {
		t.Fatal("forgotten instance still counted as ejected")
	}
	_ = s2
}

func TestSelectorCacheBound(t *testing.T) {
	s := NewSelector("svc", fleet("svc", 2, "1.0", "1.1").Instances, SelectorConfig{MaxCached: 2})
	for _, v := range []string{"1.0", "1.1", "1.*", "1.0;1.1"} {
		for _, c := range []Constraint{{rule.TypeVersion: v}, {rule.TypeVersion: v, rule.TypeRegion: "dev"}} {
			if _, err := s.Select(&c, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Select(&c, 0); err != nil { // uncached: computed again
				t.Fatal(err)
			}
		}
	}
	if n, m := s.byVersion.len(), s.general.len(); n != 2 || m != 2 {
		t.Errorf("caches hold %d and %d entries, want the bound 2", n, m)
	}
}

func TestPolicyAndFailoverNames(t *testing.T) {
	if RoundRobin.String() != "round-robin" || LeastInFlight.String() != "least-in-flight" ||
		WeightedRandom.String() != "weighted-random" || Policy(9).String() != "Policy(9)" {
		t.Error("policy names")
	}
	if Strict.String() != "strict" || Permissive.String() != "permissive" || Failover(7).String() != "Failover(7)" {
		t.Error("failover names")
	}
}

func errContextCanceled() error { return context.Canceled }

// TestSelectorStartSameFunc checks Start's contract: every call of one
// selector for one instance returns the same function (grpcroute's picker
// hands it to gRPC as Done without wrapping it), and that function ends the
// call on its own instance, counted in flight or not as the selector says.
func TestSelectorStartSameFunc(t *testing.T) {
	ptr := func(f func(error)) uintptr { return reflect.ValueOf(f).Pointer() }
	for _, tt := range []struct {
		name string
		cfg  SelectorConfig
		want bool // counts in flight
	}{
		{name: "round-robin", cfg: SelectorConfig{}},
		{name: "round-robin/counted", cfg: SelectorConfig{CountInFlight: true}, want: true},
		{name: "least-in-flight", cfg: SelectorConfig{Policy: LeastInFlight}, want: true},
		{name: "weighted-random", cfg: SelectorConfig{Policy: WeightedRandom}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list := fleet("svc", 2, "1.0").Instances
			tr := NewTracker(Ejection{Failures: 1, Duration: time.Hour})
			tt.cfg.Tracker = tr
			s := NewSelector("svc", list, tt.cfg)
			if s.CountsInFlight() != tt.want {
				t.Fatalf("CountsInFlight() = %v, want %v", s.CountsInFlight(), tt.want)
			}
			f0, f0again, f1 := s.Start(0), s.Start(0), s.Start(1)
			if ptr(f0) != ptr(f0again) {
				t.Error("Start(0) returned two different functions")
			}
			count := func(n int64) int64 {
				if tt.want {
					return n
				}
				return 0
			}
			s0, s1 := tr.State(list[0].ID), tr.State(list[1].ID)
			if s0.InFlight() != count(2) || s1.InFlight() != count(1) {
				t.Fatalf("in flight %d and %d, want %d and %d", s0.InFlight(), s1.InFlight(), count(2), count(1))
			}
			f0(nil)
			f0again(nil)
			if s0.InFlight() != 0 || s1.InFlight() != count(1) {
				t.Errorf("after instance 0's calls ended: in flight %d and %d, want 0 and %d", s0.InFlight(), s1.InFlight(), count(1))
			}
			// The outcome counts whether or not the call did.
			f1(errors.New("connection refused"))
			if s1.InFlight() != 0 || !s1.Ejected() || s0.Ejected() {
				t.Errorf("instance 1: in flight %d, ejected %v after its failed call ended", s1.InFlight(), s1.Ejected())
			}
			// The same code pointer alone would also hold for a closure or
			// method value made per call; that it is one value is what makes
			// Start free.
			if n := testing.AllocsPerRun(100, func() { s.Start(0)(nil) }); n != 0 {
				t.Errorf("Start allocates %v per call", n)
			}
		})
	}
	// Without a Tracker: one shared no-op for every instance.
	list := fleet("svc", 2, "1.0").Instances
	plain := NewSelector("svc", list, SelectorConfig{CountInFlight: true})
	if p0, p1 := plain.Start(0), plain.Start(1); ptr(p0) != ptr(p1) {
		t.Error("Start without a Tracker returned different functions")
	}
	if plain.CountsInFlight() {
		t.Error("a selector without a Tracker claims to count in flight")
	}
}

// TestInFlightAcrossSelectors checks that selectors that count and
// selectors that do not can share a Tracker (the balancer switches from one
// to the other when its debug view is first asked for): each call ends as
// it started, so the counts stay exact for the counted calls.
func TestInFlightAcrossSelectors(t *testing.T) {
	list := fleet("svc", 1, "1.0").Instances
	tr := NewTracker(Ejection{})
	uncounted := NewSelector("svc", list, SelectorConfig{Tracker: tr})
	counted := NewSelector("svc", list, SelectorConfig{Tracker: tr, CountInFlight: true})
	st := tr.State(list[0].ID)
	early := uncounted.Start(0) // under way when counting starts
	late := counted.Start(0)
	if st.InFlight() != 1 {
		t.Fatalf("in flight %d, want the 1 counted call", st.InFlight())
	}
	early(nil)
	if st.InFlight() != 1 {
		t.Errorf("ending an uncounted call changed the count to %d", st.InFlight())
	}
	late(nil)
	if st.InFlight() != 0 {
		t.Errorf("in flight %d after every call ended", st.InFlight())
	}
}

// TestRoundRobinFastmod checks the division-free modulo of round robin
// against the % operator for group sizes up to 1,000 and counters across
// the whole 32-bit range.
func TestRoundRobinFastmod(t *testing.T) {
	for n := uint64(1); n <= 1000; n++ {
		m := ^uint64(0)/n + 1
		for _, x := range []uint32{0, 1, 2, uint32(n) - 1, uint32(n), uint32(n) + 1, 1<<31 - 1, 1 << 31, 1<<32 - 2, 1<<32 - 1, 123456789} {
			if hi, _ := bits.Mul64(m*uint64(x), n); hi != uint64(x)%n {
				t.Fatalf("fastmod(%d, %d) = %d, want %d", x, n, hi, uint64(x)%n)
			}
		}
	}
}
