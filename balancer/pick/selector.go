package pick

import (
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/graylane/graylane/discovery/instance"
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
	// weight ([instance.Instance.EffectiveWeight]).
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
	// request routed to 1.1 never silently lands on 1.0. The failover
	// elements the route itself carries (from the rule's
	// <strategy-failover> or the n-d-* headers) and those [Switches] turn
	// on still apply, because someone asked for them.
	Strict Failover = iota
	// Permissive, after those, takes the stable (oldest) version of what
	// the zone, address and region steps left, else any of it, else any
	// instance inside the boundaries: never a blacklisted instance, one
	// another env (n-d-env) or group (group isolation) holds, or one the
	// rule's <discovery> section hides from the caller (by host, version
	// or region).
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
	// Self is the calling instance: its group for group isolation, its
	// zone and region for affinity.
	Self Identity
	// Switches turns on Nepxion's failover and affinity behaviours.
	Switches Switches
}

// Switches are Nepxion's failover, affinity and isolation switches
// (spring.application.strategy.*.enabled), all off by default as there. A
// failover element whose value the route carries (from the rule's
// <strategy-failover> or an n-d-* header) applies whatever its switch: a
// switch adds the behaviour Nepxion gives the element without a value.
type Switches struct {
	// VersionPrefer: with no version routed, the stable (oldest) version
	// (version.prefer.enabled).
	VersionPrefer bool
	// VersionFailover: when the routed version has no instance, any version
	// (version.failover.enabled), or with VersionFailoverStable the stable
	// one (version.failover.stable.enabled).
	VersionFailover, VersionFailoverStable bool
	// RegionTransfer: with no region routed, only region-transfer's regions
	// (region.transfer.enabled); without a region-transfer value such a call
	// finds no instance, as it fails in Nepxion.
	RegionTransfer bool
	// RegionFailover: when the routed region (or, with RegionAffinity, the
	// caller's) has no instance, any region (region.failover.enabled).
	RegionFailover bool
	// EnvFailover: when the n-d-env environment has no instance, the
	// "common" one (environment.failover.enabled).
	EnvFailover bool
	// ZoneAffinity: only instances in the caller's own zone while there are
	// any (zone.affinity.enabled); ZoneFailover: otherwise any zone
	// (zone.failover.enabled), else none.
	ZoneAffinity, ZoneFailover bool
	// RegionAffinity: with no region routed, only instances in the caller's
	// own region while there are any, falling back as RegionFailover says
	// (graylane's; Nepxion has zone affinity only).
	RegionAffinity bool
	// AddressFailover: when the routed address has no instance, any address
	// (address.failover.enabled).
	AddressFailover bool
	// GroupIsolation: only instances of the caller's own group, and
	// gateways (consumer.isolation.enabled).
	GroupIsolation bool
}

// Selector filters and chooses among a fixed list of instances of one
// service: the shared core of the HTTP balancer and of any other transport
// (such as a gRPC picker over its ready sub-connections), so every surface
// routes the same way.
//
// Filters apply in Nepxion's order, each on what the previous ones left:
// the blacklists (id, address), the rule's <discovery> host filter
// (<blacklist> or <whitelist>: host prefixes), versions and regions, group
// isolation, env, zone (and zone affinity), address, region, version; each
// with its failover element (see [Switches]). A filter value lists
// alternatives separated by ';' and may use the wildcards '*' and '?'; an
// address alternative matches "host:port", the host or the port. With
// weights, the version (region) is drawn by weight first and an instance
// in it second, so instance counts do not skew the split. When nothing
// qualifies, the configured [Failover] applies.
//
// A Selector is immutable apart from its caches and counters: build a new
// one when the instance list changes. Select and Pick are safe for
// concurrent use and, once a constraint's set is cached, neither lock nor
// allocate.
type Selector struct {
	service   string
	instances []instance.Instance
	states    []*InstanceState
	tracker   *Tracker
	counting  bool // Start counts calls in flight
	policy    Policy
	failover  Failover
	self      Identity
	sw        Switches
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
func NewSelector(service string, instances []instance.Instance, cfg SelectorConfig) *Selector {
	s := &Selector{
		service:   service,
		instances: instances,
		tracker:   cfg.Tracker,
		counting:  cfg.CountInFlight || cfg.Policy == LeastInFlight,
		policy:    cfg.Policy,
		failover:  cfg.Failover,
		self:      cfg.Self,
		sw:        cfg.Switches,
		maxCached: cfg.MaxCached,
	}
	if s.maxCached <= 0 {
		s.maxCached = DefaultMaxCached
	}
	if s.tracker != nil {
		s.states = s.tracker.States(instances)
	}
	for i := range instances {
		if i == 0 || instance.CompareVersions(instances[i].Version, s.stable) < 0 {
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
func (s *Selector) Instance(i int) *instance.Instance { return &s.instances[i] }

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

// compute builds the candidate set of c. It filters as Nepxion's strategy
// filters do, in their order, each on what the previous ones left:
//
//  1. boundaries no failover crosses: the id and address blacklists, the
//     rule's <discovery> host filter, versions and regions for the caller
//     (Nepxion's discovery listeners, which run before every strategy
//     filter), group isolation, and the env (only env-failover, or
//     "common" with its switch, may stand in);
//  2. the zone (the route's, then the caller's own with zone affinity,
//     falling back per zone-failover);
//  3. the address, falling back per address-failover;
//  4. the region, falling back per region-failover; with no region routed,
//     region-transfer, or region affinity;
//  5. the version: the routed one, else version-failover, else (with the
//     switches) the stable version or any; with no version routed,
//     version-prefer or (with its switch) the stable version.
//
// A failover element applies when the route carries its value or its
// switch is on. When the result is empty, the Permissive mode takes the
// stable version of what steps 1-4 left, else any of it, else any instance
// within the boundaries. Weights then split the set (see group).
func (s *Selector) compute(c *Constraint) *candidates {
	set := make([]int32, 0, len(s.instances))
	for i := range s.instances {
		set = append(set, int32(i))
	}
	for t := range rule.NumTypes {
		switch {
		case c[t] == "":
		case matchings[t].role == exclude:
			k := keep(t, c[t])
			set = s.filter(set, func(in *instance.Instance) bool { return !k(in) })
		case matchings[t].role == allow:
			set = s.filter(set, keep(t, c[t]))
		}
	}
	if s.sw.GroupIsolation {
		g := s.self.Group
		set = s.filter(set, func(in *instance.Instance) bool {
			return in.Group == g || metaOf(in, typeKeys[:]) == "gateway"
		})
	}
	if c[rule.TypeEnv] != "" {
		set = s.steer(set, c, rule.TypeEnv, s.sw.EnvFailover, commonEnv)
	}
	bounded := set

	if c[rule.TypeZone] != "" {
		set = s.filter(set, keep(rule.TypeZone, c[rule.TypeZone]))
	}
	if s.sw.ZoneAffinity && s.self.Zone != "" {
		set = s.affinity(set, c, zone, s.self.Zone, rule.TypeZoneFailover, s.sw.ZoneFailover)
	}
	if c[rule.TypeAddress] != "" {
		set = s.steer(set, c, rule.TypeAddress, s.sw.AddressFailover, "")
	}
	switch {
	case c[rule.TypeRegion] != "":
		set = s.steer(set, c, rule.TypeRegion, s.sw.RegionFailover, "")
	case c[rule.TypeRegionTransfer] != "":
		set = s.filter(set, keep(rule.TypeRegionTransfer, c[rule.TypeRegionTransfer]))
	case s.sw.RegionTransfer:
		// Nepxion fails such a call ("The Region Transfer value is
		// missing"): the switch is on and nothing says where to go.
		set = nil
	case s.sw.RegionAffinity && s.self.Region != "":
		set = s.affinity(set, c, region, s.self.Region, rule.TypeRegionFailover, s.sw.RegionFailover)
	}
	narrowed := set

	routed := s.version(set, c)
	if len(routed) == 0 && s.failover == Permissive {
		switch {
		case len(narrowed) > 0:
			routed = s.stableOf(narrowed)
		default:
			routed = bounded
		}
	}
	if len(routed) == 0 {
		return &candidates{err: &NoInstanceError{Service: s.service, Constraint: *c, Instances: len(s.instances)}}
	}
	return s.group(c, routed)
}

// commonEnv is the environment env failover goes to when the route names
// none (Nepxion's SPRING_APPLICATION_STRATEGY_ENVIRONMENT_FAILOVER_VALUE).
const commonEnv = "common"

// steer keeps the instances of set that match c's value for t. When none
// does, t's failover element decides: its value when c carries one;
// otherwise, with the switch on, def ("" meaning every instance of set);
// otherwise nothing.
func (s *Selector) steer(set []int32, c *Constraint, t rule.RouteType, on bool, def string) []int32 {
	if m := s.filter(set, keep(t, c[t])); len(m) > 0 {
		return m
	}
	alt := matchings[t].alt
	if alt == rule.TypeRegionFailover {
		set = s.filter(set, notActive)
	}
	v := c[alt]
	if v == "" {
		if !on {
			return nil
		}
		if def == "" {
			return set
		}
		v = def
	}
	return s.filter(set, keep(alt, v))
}

// affinity keeps the instances of set whose attribute equals own (the
// caller's zone or region). When none does, the failover element alt
// decides as in steer.
func (s *Selector) affinity(set []int32, c *Constraint, attr func(*instance.Instance) string, own string, alt rule.RouteType, on bool) []int32 {
	if m := s.filter(set, func(in *instance.Instance) bool { return attr(in) == own }); len(m) > 0 {
		return m
	}
	if alt == rule.TypeRegionFailover {
		set = s.filter(set, notActive)
	}
	v := c[alt]
	if v == "" {
		if !on {
			return nil
		}
		return set
	}
	return s.filter(set, keep(alt, v))
}

// notActive reports whether an instance is not marked active
// (multi-active: metadata active=true, DiscoveryConstant.ACTIVE): an active
// provider is never a region failover target, as in Nepxion's
// StrategyRegionEnabledFilter.
func notActive(in *instance.Instance) bool { return !strings.EqualFold(in.Meta["active"], "true") }

// version applies the version step (Nepxion's StrategyVersionEnabledFilter)
// to set.
func (s *Selector) version(set []int32, c *Constraint) []int32 {
	if c[rule.TypeVersion] == "" {
		switch {
		case c[rule.TypeVersionPrefer] != "":
			return s.filter(set, keep(rule.TypeVersionPrefer, c[rule.TypeVersionPrefer]))
		case s.sw.VersionPrefer:
			return s.stableOf(set)
		}
		return set
	}
	if m := s.filter(set, keep(rule.TypeVersion, c[rule.TypeVersion])); len(m) > 0 {
		return m
	}
	switch {
	case c[rule.TypeVersionFailover] != "":
		return s.filter(set, keep(rule.TypeVersionFailover, c[rule.TypeVersionFailover]))
	case s.sw.VersionFailover && s.sw.VersionFailoverStable:
		return s.stableOf(set)
	case s.sw.VersionFailover:
		return set
	}
	return nil
}

// stableOf returns the instances of set in its oldest version, and those
// that declare no version ("default"), as Nepxion's containVersion does; a
// set of at most one version is returned whole.
func (s *Selector) stableOf(set []int32) []int32 {
	oldest := ""
	versions := 0
	for _, i := range set {
		v := s.instances[i].Version
		if v == instance.DefaultVersion {
			continue
		}
		switch {
		case versions == 0:
			oldest, versions = v, 1
		case v != oldest:
			versions++
			if instance.CompareVersions(v, oldest) < 0 {
				oldest = v
			}
		}
	}
	if versions <= 1 {
		return set
	}
	return s.filter(set, func(in *instance.Instance) bool {
		return in.Version == oldest || in.Version == instance.DefaultVersion
	})
}

// weightLists returns the parsed weight lists that split a set for c: the
// route's (version-weight, region-weight) or, when it has none, the
// rule's <discovery> weights for the caller, as Nepxion's
// PredicateBasedRuleDecorator takes the strategy's weights first. nil
// without any.
func weightLists(c *Constraint) []typedWeights {
	var out []typedWeights
	for _, r := range [...]role{weigh, ruleWeigh} {
		for t := range rule.NumTypes {
			if matchings[t].role == r && c[t] != "" {
				out = append(out, typedWeights{attr: matchings[t].attr, list: parseWeightList(c[t])})
			}
		}
		if out != nil {
			return out
		}
	}
	return nil
}

// typedWeights is the weight list a constraint gives one weight type.
type typedWeights struct {
	attr func(*instance.Instance) string
	list weightList
}

// group splits a non-empty routed set into weighted groups. An instance
// weighs what the first weight list naming its attribute gives (the
// version list before the region list: Nepxion takes the version weight
// when both apply, WeightEntityWrapper.getWeight), and the instances of one
// group share the list and the attribute value. The group is drawn by its
// weight and the instance within it by the policy, so instance counts do
// not skew a split (Nepxion weights each instance: a deliberate
// difference). As in Nepxion, the weights are ignored (one group) when an
// instance of the set is named by no list, or when every weight is 0; a
// group weighing 0 is never drawn otherwise.
func (s *Selector) group(c *Constraint, set []int32) *candidates {
	cs := &candidates{}
	members, weights := s.split(weightLists(c), set)
	if members == nil {
		members, weights = [][]int32{set}, []uint64{1}
	}
	for i := range members {
		if weights[i] == 0 {
			continue
		}
		cs.total += weights[i]
		cs.groups = append(cs.groups, group{members: members[i], cum: cs.total})
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

// split divides set by weight (see group); nil when the weights do not
// apply.
func (s *Selector) split(ws []typedWeights, set []int32) (members [][]int32, weights []uint64) {
	if len(ws) == 0 {
		return nil, nil
	}
	type key struct {
		list int
		attr string
	}
	index := make(map[key]int)
	var total uint64
	for _, i := range set {
		in := &s.instances[i]
		k, w := key{list: -1}, -1
		for li := range ws {
			a := ws[li].attr(in)
			if w = ws[li].list.weight(a); w >= 0 {
				k = key{li, a}
				break
			}
		}
		if w < 0 {
			return nil, nil // an instance no list names: Nepxion's checkWeight fails
		}
		at, ok := index[k]
		if !ok {
			at = len(members)
			index[k] = at
			members = append(members, nil)
			weights = append(weights, uint64(w))
			total += uint64(w)
		}
		members[at] = append(members[at], i)
	}
	if total == 0 {
		return nil, nil // Nepxion: "Weight values are all <= 0", then an unweighted choice
	}
	return members, weights
}

func (s *Selector) filter(from []int32, keep func(*instance.Instance) bool) []int32 {
	out := make([]int32, 0, len(from))
	for _, i := range from {
		if keep(&s.instances[i]) {
			out = append(out, i)
		}
	}
	return out
}

// weightList is a parsed weight list whose keys may use wildcards.
type weightList []weightEntry

type weightEntry struct {
	m      matcher
	weight int
}

// parseWeightList reads "key=W;key=W" as Nepxion's
// WeightEntityWrapper.parseWeightEntity does: an entry whose weight is not
// a number (or that has none) counts 0, a negative weight counts 0, and
// blank entries are skipped. Unlike Nepxion's exact keys, a key may use
// wildcards; the first entry matching a value gives its weight.
func parseWeightList(s string) weightList {
	var out weightList
	for len(s) > 0 {
		var e string
		e, s, _ = strings.Cut(s, ";")
		k, v, _ := strings.Cut(e, "=")
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		w, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || w < 0 {
			w = 0
		}
		out = append(out, weightEntry{m: compileMatcher(k), weight: w})
	}
	return out
}

// weight returns the weight of the first entry matching key; -1 when no
// entry matches.
func (l weightList) weight(key string) int {
	for i := range l {
		if l[i].m.match(key) {
			return l[i].weight
		}
	}
	return -1
}
