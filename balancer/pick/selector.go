package pick

import (
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// Policy chooses an instance within the set a request may use.
type Policy uint8

const (
	// RoundRobin takes the instances of a set in turn (the default).
	RoundRobin Policy = iota
	// LeastInFlight draws two instances at random and takes the one with
	// fewer calls in flight ("power of two choices"). It needs a Tracker.
	LeastInFlight
	// WeightedRandom draws an instance with probability proportional to its
	// weight (discovery.Instance.EffectiveWeight).
	WeightedRandom
)

// String returns the policy's name.
func (p Policy) String() string {
	switch p {
	case RoundRobin:
		return "round-robin"
	case LeastInFlight:
		return "least-in-flight"
	case WeightedRandom:
		return "weighted-random"
	}
	return "Policy(" + strconv.Itoa(int(p)) + ")"
}

// Failover says what to do when no instance matches a request's route.
type Failover uint8

const (
	// Strict fails such a request with ErrNoInstance (the default): a
	// request routed to 1.1 never silently lands on 1.0. Explicit fallbacks
	// that the route itself carries (version-prefer and version-failover,
	// from the rule's <strategy-failover> or the n-d-* headers) still apply,
	// because someone asked for them.
	Strict Failover = iota
	// Permissive tries, in order: the route's version-prefer versions, its
	// version-failover versions, the stable (oldest) version, then any
	// instance that is not blacklisted.
	Permissive
)

// String returns the mode's name.
func (f Failover) String() string {
	switch f {
	case Strict:
		return "strict"
	case Permissive:
		return "permissive"
	}
	return "Failover(" + strconv.Itoa(int(f)) + ")"
}

// DefaultMaxCached bounds how many distinct constraints a Selector caches.
// Past it, candidate sets are computed per pick (correct, but allocating),
// so hostile headers cannot grow memory without bound.
const DefaultMaxCached = 256

// SelectorConfig configures a Selector. The zero value is round robin,
// strict failover, no load tracking.
type SelectorConfig struct {
	Policy   Policy
	Failover Failover
	// Tracker, if set, supplies in-flight counts (LeastInFlight) and
	// ejections, and records calls through Start. Without one, nothing is
	// ever ejected and LeastInFlight behaves like a uniform random draw.
	Tracker *Tracker
	// CountInFlight makes Start count calls in flight in the Tracker's
	// records (InstanceState.InFlight), for a reader such as a debug page.
	// Counting costs two atomic writes per call (one at Start, one when the
	// call ends), so it is off unless asked for; LeastInFlight, which picks
	// by the counts, always counts. Outcomes (for ejection) are recorded
	// either way. Every call is ended by the function its own Start
	// returned, so selectors that count and selectors that do not may share
	// a Tracker: the counts stay exact for the calls that were counted.
	CountInFlight bool
	// MaxCached bounds the constraint cache; if 0, DefaultMaxCached.
	MaxCached int
}

// Selector filters and chooses among a fixed list of instances of one
// service: the shared core of the HTTP balancer and of any other transport
// (such as a gRPC picker over its ready sub-connections), so every surface
// routes the same way.
//
// Filters apply in this order: blacklist (id, address), env, zone, address,
// region, version. A filter value lists alternatives separated by ';' and
// may use the wildcards '*' and '?'; an address alternative matches
// "host:port", the host or the port. With version-weight or region-weight,
// the version (region) is drawn by weight first and an instance in it
// second, so instance counts do not skew the split. When nothing matches,
// the configured [Failover] applies.
//
// A Selector is immutable apart from its caches and counters: build a new
// one when the instance list changes. Select and Pick are safe for
// concurrent use and, once a constraint's set is cached, neither lock nor
// allocate.
type Selector struct {
	service   string
	instances []discovery.Instance
	states    []*InstanceState
	tracker   *Tracker
	counting  bool // Start counts calls in flight
	policy    Policy
	failover  Failover
	stable    string
	maxCached int

	all       atomic.Pointer[candidates] // the zero constraint's
	byVersion candidateCache[string]     // constraints on the version alone
	general   candidateCache[Constraint] // all others
}

// candidates is the cached answer for one constraint: weighted groups of
// instance indexes, or the error to return.
type candidates struct {
	groups []group
	total  uint64 // sum of group weights
	err    error
}

type group struct {
	// Read by every pick; never written after the set is built.
	members []int32
	cum     uint64   // cumulative group weight, up to and including this group
	wcum    []uint64 // cumulative instance weights (WeightedRandom only)
	mod     uint64   // ^uint64(0)/len(members)+1: round robin's modulo without a division

	// The round-robin counter, written by every pick, on a cache line of
	// its own: sharing one with the fields above (or with the next group's)
	// would make each core's write evict the line every other core reads.
	_  [cacheLine]byte
	rr atomic.Uint32
	_  [cacheLine - 4]byte
}

// cacheLine is an upper bound on the CPU's cache line size (64 bytes on
// amd64 and most arm64 cores).
const cacheLine = 64

// NewSelector returns a selector over instances of service. The slice is
// kept, not copied: it must not change afterwards (snapshot slices never
// do). With a Tracker in cfg, the instances' records are looked up once
// here.
func NewSelector(service string, instances []discovery.Instance, cfg SelectorConfig) *Selector {
	s := &Selector{
		service:   service,
		instances: instances,
		tracker:   cfg.Tracker,
		counting:  cfg.CountInFlight || cfg.Policy == LeastInFlight,
		policy:    cfg.Policy,
		failover:  cfg.Failover,
		maxCached: cfg.MaxCached,
	}
	if s.maxCached <= 0 {
		s.maxCached = DefaultMaxCached
	}
	if s.tracker != nil {
		s.states = s.tracker.States(instances)
	}
	for i := range instances {
		if i == 0 || discovery.CompareVersions(instances[i].Version, s.stable) < 0 {
			s.stable = instances[i].Version
		}
	}
	return s
}

// Service returns the service the selector picks for.
func (s *Selector) Service() string { return s.service }

// Len returns the number of instances.
func (s *Selector) Len() int { return len(s.instances) }

// Instance returns the instance at index i (as returned by Select or Pick).
// The pointer is into the selector's list: read-only.
func (s *Selector) Instance(i int) *discovery.Instance { return &s.instances[i] }

// Stable returns the stable (oldest) version among the instances, the
// third step of permissive failover; "" without instances.
func (s *Selector) Stable() string { return s.stable }

// Start records a call to the instance at index i and returns the function
// that ends it, to be called exactly once with the outcome (nil for
// success). The call counts in flight if the selector counts (see
// SelectorConfig.CountInFlight); its outcome feeds ejection either way.
// Without a Tracker it returns a function that does nothing. It does not
// allocate: every call of one selector for one instance returns the same
// function (the instance's own, or one shared no-op), which callers may
// rely on, for example to hand it on without wrapping it per call.
func (s *Selector) Start(i int) func(error) {
	if s.states == nil {
		return noopDone
	}
	if s.counting {
		return s.states[i].Start()
	}
	return s.states[i].startUncounted()
}

// CountsInFlight reports whether Start counts calls in flight.
func (s *Selector) CountsInFlight() bool { return s.counting && s.states != nil }

func noopDone(error) {}

// State returns the record of the instance at index i, nil without a
// Tracker.
func (s *Selector) State(i int) *InstanceState {
	if s.states == nil {
		return nil
	}
	return s.states[i]
}

// Pick is Select with the constraint that r places on the selector's
// service. A nil r constrains nothing.
func (s *Selector) Pick(r *Route, draw uint64) (int, error) {
	return s.PickWith(r, func() uint64 { return draw })
}

// PickWith is Pick calling draw only when the choice needs a random
// number (a weighted split, or a random policy): round robin over one set
// draws nothing.
func (s *Selector) PickWith(r *Route, draw func() uint64) (int, error) {
	var cs *candidates
	switch {
	case r == nil || r.set == 0:
		cs = s.unconstrained()
	case r.set == 1<<rule.TypeVersion:
		// The common route, a version alone: cached by that one string,
		// without deriving the whole Constraint.
		v, _ := r.values[rule.TypeVersion].For(s.service)
		cs = s.lookupVersion(v)
	default:
		var c Constraint
		r.constraintInto(s.service, &c)
		cs = s.lookup(&c)
	}
	return s.selectFrom(cs, draw)
}

// unconstrained returns the candidate set of the zero constraint, kept
// apart from the caches: every unrouted pick needs it.
func (s *Selector) unconstrained() *candidates {
	if cs := s.all.Load(); cs != nil {
		return cs
	}
	cs := s.lookupVersion("")
	s.all.Store(cs)
	return cs
}

// lookupVersion is lookup for a constraint on the version alone.
func (s *Selector) lookupVersion(v string) *candidates {
	if cs, ok := s.byVersion.st.Load().find(v); ok { // the hit, without building the miss's closure
		return cs
	}
	return s.byVersion.get(v, s.maxCached, func() *candidates {
		var c Constraint
		c[rule.TypeVersion] = v
		return s.compute(&c)
	})
}

// Select returns the index of the instance to use for c. draw is a
// uniformly random number (math/rand/v2's Uint64, or a hash for sticky
// choices); it drives weighted draws and random policies. The error, when
// no instance qualifies, wraps ErrNoInstance in a *NoInstanceError.
func (s *Selector) Select(c *Constraint, draw uint64) (int, error) {
	return s.selectFrom(s.lookup(c), func() uint64 { return draw })
}

// selectFrom chooses in a candidate set; draw is called at most once.
func (s *Selector) selectFrom(cs *candidates, draw func() uint64) (int, error) {
	if cs.err != nil {
		return -1, cs.err
	}
	g := &cs.groups[0]
	var d uint64
	drawn := false
	if len(cs.groups) > 1 {
		d, drawn = draw(), true
		x, _ := bits.Mul64(d, cs.total)
		for i := range cs.groups {
			if x < cs.groups[i].cum {
				g = &cs.groups[i]
				break
			}
		}
		d = mix(d)
	}
	if !drawn && s.policy != RoundRobin && len(g.members) > 1 {
		d = draw()
	}
	return s.choose(g, d), nil
}

// mix derives an independent-looking number from draw (splitmix64's
// finaliser), so one draw can serve two choices.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// choose applies the policy within one group, stepping over ejected
// instances unless every member is ejected.
func (s *Selector) choose(g *group, draw uint64) int {
	n := len(g.members)
	if n == 1 {
		return int(g.members[0])
	}
	var at int
	switch s.policy {
	case RoundRobin: // first: the default, and the one on the hottest path
		at = g.next(n)
	case LeastInFlight:
		a, _ := bits.Mul64(draw, uint64(n))
		b, _ := bits.Mul64(mix(draw), uint64(n-1))
		if b >= a {
			b++
		}
		at = int(a)
		if s.states != nil {
			ia, ib := g.members[a], g.members[b]
			ea, eb := s.ejected(int(ia)), s.ejected(int(ib))
			switch {
			case ea && !eb:
				return int(ib)
			case eb && !ea:
				return int(ia)
			case s.states[ib].InFlight() < s.states[ia].InFlight():
				at = int(b)
			}
		}
	case WeightedRandom:
		if g.wcum != nil {
			total := g.wcum[n-1]
			x, _ := bits.Mul64(draw, total)
			lo, hi := 0, n-1
			for lo < hi {
				mid := int(uint(lo+hi) >> 1)
				if x < g.wcum[mid] {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			at = lo
		} else {
			x, _ := bits.Mul64(draw, uint64(n))
			at = int(x)
		}
	default: // an unknown policy: round robin
		at = g.next(n)
	}
	if s.tracker == nil || !s.tracker.anyEjected() {
		return int(g.members[at])
	}
	for k := range n {
		i := int(g.members[(at+k)%n])
		if !s.ejected(i) {
			return i
		}
	}
	return int(g.members[at]) // all ejected: never empty the set
}

// next returns the group's next position in round robin order: the
// counter modulo n, as Lemire's fastmod computes it for a 32-bit counter.
func (g *group) next(n int) int {
	hi, _ := bits.Mul64(g.mod*uint64(g.rr.Add(1)-1), uint64(n))
	return int(hi)
}

func (s *Selector) ejected(i int) bool {
	if s.tracker == nil || !s.tracker.anyEjected() {
		return false
	}
	return s.states[i].ejectedAt(s.tracker.now().UnixNano())
}

// lookup returns the cached candidate set of c, computing it on a miss.
// Constraints on the version alone (the common case: a blue-green or gray
// route) are cached by that one string, which hashes far faster than the
// whole Constraint.
func (s *Selector) lookup(c *Constraint) *candidates {
	if c.versionOnly() {
		return s.byVersion.get(c[rule.TypeVersion], s.maxCached, func() *candidates { return s.compute(c) })
	}
	return s.general.get(*c, s.maxCached, func() *candidates { return s.compute(c) })
}

// candidateCache is a bounded copy-on-write map: reads are one atomic load
// and a look-up; writers (on a miss) serialise and publish a new state.
// While it holds a few entries (most selectors see one or two routes) the
// look-up compares keys in a list, which is quicker than hashing one.
type candidateCache[K comparable] struct {
	st atomic.Pointer[cacheState[K]]
	mu sync.Mutex
}

// cacheState is one published state: few while there are at most
// maxFewCached entries, m after.
type cacheState[K comparable] struct {
	few []cacheEntry[K]
	m   map[K]*candidates
}

type cacheEntry[K comparable] struct {
	k  K
	cs *candidates
}

const maxFewCached = 4

func (st *cacheState[K]) find(k K) (*candidates, bool) {
	if st == nil {
		return nil, false
	}
	if st.m == nil {
		for i := range st.few {
			if st.few[i].k == k {
				return st.few[i].cs, true
			}
		}
		return nil, false
	}
	cs, ok := st.m[k]
	return cs, ok
}

func (st *cacheState[K]) len() int {
	switch {
	case st == nil:
		return 0
	case st.m == nil:
		return len(st.few)
	}
	return len(st.m)
}

func (cc *candidateCache[K]) get(k K, bound int, compute func() *candidates) *candidates {
	if cs, ok := cc.st.Load().find(k); ok {
		return cs
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cur := cc.st.Load()
	if cs, ok := cur.find(k); ok {
		return cs
	}
	cs := compute()
	n := cur.len()
	if n >= bound {
		return cs
	}
	next := &cacheState[K]{}
	if n < maxFewCached {
		next.few = make([]cacheEntry[K], 0, n+1)
		if cur != nil {
			next.few = append(next.few, cur.few...)
		}
		next.few = append(next.few, cacheEntry[K]{k, cs})
	} else {
		next.m = make(map[K]*candidates, n+1)
		if cur.m == nil {
			for _, e := range cur.few {
				next.m[e.k] = e.cs
			}
		} else {
			for key, v := range cur.m {
				next.m[key] = v
			}
		}
		next.m[k] = cs
	}
	cc.st.Store(next)
	return cs
}

// len returns the number of cached entries.
func (cc *candidateCache[K]) len() int { return cc.st.Load().len() }

// The route types by role, from the matching table.
var (
	routedType   = typeOf(routed)
	preferType   = typeOf(prefer)
	failoverType = typeOf(failover)
)

func typeOf(r role) rule.RouteType {
	for t := range rule.NumTypes {
		if matchings[t].role == r {
			return t
		}
	}
	panic("pick: no route type has role " + strconv.Itoa(int(r))) // the table is wrong: a programming error
}

// compute builds the candidate set of c: filters, failover, weights.
func (s *Selector) compute(c *Constraint) *candidates {
	all := make([]int32, 0, len(s.instances))
	for i := range s.instances {
		all = append(all, int32(i))
	}
	// Blacklists: never used, whatever the failover.
	base := all
	for t := range rule.NumTypes {
		if matchings[t].role == exclude && c[t] != "" {
			k := keep(t, c[t])
			base = s.filter(base, func(in *discovery.Instance) bool { return !k(in) })
		}
	}
	filtered := base
	for t := range rule.NumTypes {
		if matchings[t].role == narrow && c[t] != "" {
			filtered = s.filter(filtered, keep(t, c[t]))
		}
	}

	routed := filtered
	switch {
	case c[routedType] != "":
		routed = s.filter(filtered, keep(routedType, c[routedType]))
	case c[preferType] != "":
		// Preference without a route: prefer, else anything.
		if p := s.filter(filtered, keep(preferType, c[preferType])); len(p) > 0 {
			routed = p
		}
	}
	ws := weightLists(c)
	routed = s.weigh(ws, routed)
	if len(routed) == 0 {
		routed = s.fallback(c, filtered, base)
	}
	if len(routed) == 0 {
		return &candidates{err: &NoInstanceError{Service: s.service, Constraint: *c, Instances: len(s.instances)}}
	}
	return s.group(ws, routed)
}

// fallback walks the failover chain for a constraint whose routed set is
// empty.
func (s *Selector) fallback(c *Constraint, filtered, base []int32) []int32 {
	if c[routedType] != "" && c[preferType] != "" {
		if p := s.filter(filtered, keep(preferType, c[preferType])); len(p) > 0 {
			return p
		}
	}
	if c[failoverType] != "" {
		if p := s.filter(filtered, keep(failoverType, c[failoverType])); len(p) > 0 {
			return p
		}
	}
	if s.failover != Permissive {
		return nil
	}
	if s.stable != "" {
		stable := s.filter(filtered, func(in *discovery.Instance) bool { return in.Version == s.stable })
		if len(stable) > 0 {
			return stable
		}
	}
	if len(filtered) > 0 {
		return filtered
	}
	return base
}

// typedWeights is the weight list a constraint gives one weight type.
type typedWeights struct {
	attr func(*discovery.Instance) string
	list weightList
}

// weightLists returns the parsed weight lists of c, nil without any.
func weightLists(c *Constraint) []typedWeights {
	var out []typedWeights
	for t := range rule.NumTypes {
		if matchings[t].role == weigh && c[t] != "" {
			out = append(out, typedWeights{attr: matchings[t].attr, list: parseWeightList(c[t])})
		}
	}
	return out
}

// weigh drops the instances that a weight list gives no weight, so that an
// unweighted version counts as unroutable (it then takes the failover
// path). Without weight lists it returns set unchanged.
func (s *Selector) weigh(ws []typedWeights, set []int32) []int32 {
	if len(ws) == 0 {
		return set
	}
	return s.filter(set, func(in *discovery.Instance) bool {
		for _, w := range ws {
			if w.list.weight(w.attr(in)) <= 0 {
				return false
			}
		}
		return true
	})
}

// group splits a non-empty routed set into weighted groups: one per
// distinct combination of the weighted attributes, weighing the product of
// their weights.
func (s *Selector) group(ws []typedWeights, set []int32) *candidates {
	cs := &candidates{}
	if len(ws) == 0 {
		cs.groups = make([]group, 1)
		cs.groups[0].members = set
		cs.total = 1
		cs.groups[0].cum = 1
	} else {
		index := make(map[string]int)
		var weights []uint64
		var members [][]int32
		var key strings.Builder
		for _, i := range set {
			in := &s.instances[i]
			key.Reset()
			weight := uint64(1)
			for _, w := range ws {
				a := w.attr(in)
				key.WriteString(a)
				key.WriteByte(0)
				weight *= uint64(w.list.weight(a))
			}
			at, ok := index[key.String()]
			if !ok {
				at = len(members)
				index[key.String()] = at
				members = append(members, nil)
				weights = append(weights, weight)
			}
			members[at] = append(members[at], i)
		}
		cs.groups = make([]group, len(members))
		for i := range members {
			cs.total += weights[i]
			cs.groups[i].members = members[i]
			cs.groups[i].cum = cs.total
		}
	}
	for gi := range cs.groups {
		cs.groups[gi].mod = ^uint64(0)/uint64(len(cs.groups[gi].members)) + 1
	}
	if s.policy == WeightedRandom {
		for gi := range cs.groups {
			g := &cs.groups[gi]
			g.wcum = make([]uint64, len(g.members))
			var sum uint64
			for k, i := range g.members {
				sum += uint64(s.instances[i].EffectiveWeight())
				g.wcum[k] = sum
			}
		}
	}
	return cs
}

func (s *Selector) filter(from []int32, keep func(*discovery.Instance) bool) []int32 {
	out := make([]int32, 0, len(from))
	for _, i := range from {
		if keep(&s.instances[i]) {
			out = append(out, i)
		}
	}
	return out
}

// weightList is a parsed weight list whose keys may use wildcards; nil
// means "no list", giving every key weight 1.
type weightList []weightEntry

type weightEntry struct {
	m      matcher
	weight int
}

// parseWeightList parses "key=W;key=W" with rule.ParseWeights. A list that
// does not parse gives every key weight 0 (it routes nowhere, so the
// failover decides), rather than being silently ignored.
func parseWeightList(s string) weightList {
	if s == "" {
		return nil
	}
	ws, err := rule.ParseWeights(s)
	if err != nil {
		return weightList{}
	}
	out := make(weightList, 0, len(ws))
	for _, w := range ws {
		out = append(out, weightEntry{m: compileMatcher(w.Key), weight: w.Weight})
	}
	return out
}

// weight returns the weight of the first entry matching key; 1 for a nil
// list, 0 when no entry matches.
func (l weightList) weight(key string) int {
	if l == nil {
		return 1
	}
	for i := range l {
		if l[i].m.match(key) {
			return l[i].weight
		}
	}
	return 0
}
