package balancer

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

// Constraint is what one request asks of one service: each field holds the
// filter value for that service as an n-d-* header carries it ("1.0;1.1",
// "1.*", "10.0.0.5:8080"), "" meaning no constraint. [Route.Constraint]
// derives it from a route. Constraint is comparable: a [Selector] caches the
// instance set of each distinct Constraint.
type Constraint struct {
	Version, Region, Address, Env, Zone string
	// VersionWeight and RegionWeight are weight lists ("1.0=90;1.1=10"): the
	// version (region) is drawn by weight first, then an instance in it.
	VersionWeight, RegionWeight string
	// IDBlacklist and AddressBlacklist exclude instances by ID or address.
	IDBlacklist, AddressBlacklist string
	// VersionPrefer applies when Version is empty or routes nowhere;
	// VersionFailover when Version routes nowhere.
	VersionPrefer, VersionFailover string
}

// IsZero reports whether c constrains nothing.
func (c *Constraint) IsZero() bool { return *c == Constraint{} }

// String lists the non-empty fields as name=value, in n-d-* header names
// without the prefix, for errors and logs.
func (c *Constraint) String() string {
	if c.IsZero() {
		return "(none)"
	}
	var b strings.Builder
	add := func(name, v string) {
		if v == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(name)
		b.WriteByte('=')
		b.WriteString(v)
	}
	add("version", c.Version)
	add("region", c.Region)
	add("address", c.Address)
	add("env", c.Env)
	add("zone", c.Zone)
	add("version-weight", c.VersionWeight)
	add("region-weight", c.RegionWeight)
	add("id-blacklist", c.IDBlacklist)
	add("address-blacklist", c.AddressBlacklist)
	add("version-prefer", c.VersionPrefer)
	add("version-failover", c.VersionFailover)
	return b.String()
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
	policy    Policy
	failover  Failover
	stable    string
	maxCached int

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
	members []int32
	cum     uint64   // cumulative group weight, up to and including this group
	wcum    []uint64 // cumulative instance weights (WeightedRandom only)
	rr      atomic.Uint64
}

// NewSelector returns a selector over instances of service. The slice is
// kept, not copied: it must not change afterwards (snapshot slices never
// do). With a Tracker in cfg, the instances' records are looked up once
// here.
func NewSelector(service string, instances []discovery.Instance, cfg SelectorConfig) *Selector {
	s := &Selector{
		service:   service,
		instances: instances,
		tracker:   cfg.Tracker,
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
// success). Without a Tracker it returns a function that does nothing.
// It does not allocate: every call for one instance returns the same
// function (the instance's own, or one shared no-op), which callers may
// rely on, for example to hand it on without wrapping it per call.
func (s *Selector) Start(i int) func(error) {
	if s.states == nil {
		return noopDone
	}
	return s.states[i].Start()
}

func noopDone(error) {}

// Pick is Select with the constraint that r places on the selector's
// service. A nil r constrains nothing.
func (s *Selector) Pick(r *Route, draw uint64) (int, error) {
	var c Constraint
	if r != nil {
		r.constraintInto(s.service, &c)
	}
	return s.Select(&c, draw)
}

// Select returns the index of the instance to use for c. draw is a
// uniformly random number (math/rand/v2's Uint64, or a hash for sticky
// choices); it drives weighted draws and random policies. The error, when
// no instance qualifies, wraps ErrNoInstance in a *NoInstanceError.
func (s *Selector) Select(c *Constraint, draw uint64) (int, error) {
	cs := s.lookup(c)
	if cs.err != nil {
		return -1, cs.err
	}
	g := &cs.groups[0]
	if len(cs.groups) > 1 {
		x, _ := bits.Mul64(draw, cs.total)
		for i := range cs.groups {
			if x < cs.groups[i].cum {
				g = &cs.groups[i]
				break
			}
		}
		draw = mix(draw)
	}
	return s.choose(g, draw), nil
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
	default:
		at = int((g.rr.Add(1) - 1) % uint64(n))
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
		return s.byVersion.get(c.Version, s.maxCached, func() *candidates { return s.compute(c) })
	}
	return s.general.get(*c, s.maxCached, func() *candidates { return s.compute(c) })
}

// versionOnly reports whether c constrains the version and nothing else.
func (c *Constraint) versionOnly() bool {
	return len(c.Region)|len(c.Address)|len(c.Env)|len(c.Zone)|len(c.VersionWeight)|
		len(c.RegionWeight)|len(c.IDBlacklist)|len(c.AddressBlacklist)|len(c.VersionPrefer)|
		len(c.VersionFailover) == 0
}

// candidateCache is a bounded copy-on-write map: reads are one atomic load
// and a map look-up; writers (on a miss) serialise and publish a new map.
type candidateCache[K comparable] struct {
	m  atomic.Pointer[map[K]*candidates]
	mu sync.Mutex
}

func (cc *candidateCache[K]) get(k K, bound int, compute func() *candidates) *candidates {
	if m := cc.m.Load(); m != nil {
		if cs, ok := (*m)[k]; ok {
			return cs
		}
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	var cur map[K]*candidates
	if m := cc.m.Load(); m != nil {
		cur = *m
	}
	if cs, ok := cur[k]; ok {
		return cs
	}
	cs := compute()
	if len(cur) < bound {
		next := make(map[K]*candidates, len(cur)+1)
		for key, v := range cur {
			next[key] = v
		}
		next[k] = cs
		cc.m.Store(&next)
	}
	return cs
}

// len returns the number of cached entries.
func (cc *candidateCache[K]) len() int {
	if m := cc.m.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// compute builds the candidate set of c: filters, failover, weights.
func (s *Selector) compute(c *Constraint) *candidates {
	all := make([]int32, 0, len(s.instances))
	for i := range s.instances {
		all = append(all, int32(i))
	}
	// Blacklists: never used, whatever the failover.
	base := all
	if c.IDBlacklist != "" {
		m := compileMatcher(c.IDBlacklist)
		base = s.filter(base, func(in *discovery.Instance) bool { return !m.match(in.ID) })
	}
	if c.AddressBlacklist != "" {
		m := compileMatcher(c.AddressBlacklist)
		base = s.filter(base, func(in *discovery.Instance) bool {
			return !m.matchAddress(in.HostPort(), in.Address, in.Port)
		})
	}
	filtered := base
	for _, f := range [...]struct {
		value string
		field func(*discovery.Instance) string
	}{
		{c.Env, func(in *discovery.Instance) string { return in.Env }},
		{c.Zone, func(in *discovery.Instance) string { return in.Zone }},
		{c.Region, func(in *discovery.Instance) string { return in.Region }},
	} {
		if f.value == "" {
			continue
		}
		m := compileMatcher(f.value)
		field := f.field
		filtered = s.filter(filtered, func(in *discovery.Instance) bool { return m.match(field(in)) })
	}
	if c.Address != "" {
		m := compileMatcher(c.Address)
		filtered = s.filter(filtered, func(in *discovery.Instance) bool {
			return m.matchAddress(in.HostPort(), in.Address, in.Port)
		})
	}
	byVersion := func(from []int32, v string) []int32 {
		m := compileMatcher(v)
		return s.filter(from, func(in *discovery.Instance) bool { return m.match(in.Version) })
	}

	routed := filtered
	switch {
	case c.Version != "":
		routed = byVersion(filtered, c.Version)
	case c.VersionPrefer != "":
		// Preference without a version route: prefer, else anything.
		if p := byVersion(filtered, c.VersionPrefer); len(p) > 0 {
			routed = p
		}
	}
	routed = s.weigh(c, routed)
	if len(routed) == 0 {
		routed = s.fallback(c, filtered, base, byVersion)
	}
	if len(routed) == 0 {
		return &candidates{err: &NoInstanceError{Service: s.service, Constraint: *c, Instances: len(s.instances)}}
	}
	return s.group(c, routed)
}

// fallback walks the failover chain for a constraint whose routed set is
// empty.
func (s *Selector) fallback(c *Constraint, filtered, base []int32, byVersion func([]int32, string) []int32) []int32 {
	if c.Version != "" && c.VersionPrefer != "" {
		if p := byVersion(filtered, c.VersionPrefer); len(p) > 0 {
			return p
		}
	}
	if c.VersionFailover != "" {
		if p := byVersion(filtered, c.VersionFailover); len(p) > 0 {
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

// weigh drops the instances that a weight list gives no weight, so that an
// unweighted version counts as unroutable (it then takes the failover
// path). Without weight lists it returns set unchanged.
func (s *Selector) weigh(c *Constraint, set []int32) []int32 {
	if c.VersionWeight == "" && c.RegionWeight == "" {
		return set
	}
	vw, rw := parseWeightList(c.VersionWeight), parseWeightList(c.RegionWeight)
	return s.filter(set, func(in *discovery.Instance) bool {
		return vw.weight(in.Version) > 0 && rw.weight(in.Region) > 0
	})
}

// group splits a non-empty routed set into weighted groups.
func (s *Selector) group(c *Constraint, set []int32) *candidates {
	cs := &candidates{}
	if c.VersionWeight == "" && c.RegionWeight == "" {
		cs.groups = make([]group, 1)
		cs.groups[0].members = set
		cs.total = 1
		cs.groups[0].cum = 1
	} else {
		vw, rw := parseWeightList(c.VersionWeight), parseWeightList(c.RegionWeight)
		type key struct{ version, region string }
		index := make(map[key]int)
		var weights []uint64
		var members [][]int32
		for _, i := range set {
			in := &s.instances[i]
			k := key{in.Version, in.Region}
			if vw == nil {
				k.version = ""
			}
			if rw == nil {
				k.region = ""
			}
			at, ok := index[k]
			if !ok {
				at = len(members)
				index[k] = at
				members = append(members, nil)
				weights = append(weights, uint64(vw.weight(in.Version))*uint64(rw.weight(in.Region)))
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
