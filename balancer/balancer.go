package balancer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graylane/graylane/balancer/internal/circuit"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
	"go.uber.org/zap"
)

// Balancer is a client-side load balancer with full-chain routing: it picks
// an instance of a service for each call, following the route that the call
// chain carries (or that its rule decides at the entry), over the live
// instances its registry watches.
//
// Its methods are safe for concurrent use. Pick never does I/O and, once a
// service is known, neither locks nor allocates.
type Balancer struct {
	reg discovery.Registry
	o   options
	log *zap.Logger

	services atomic.Pointer[map[string]*service]
	// few is services as a list while there are at most maxFew of them
	// (nil after): comparing a few names is quicker than hashing one.
	few atomic.Pointer[[]*service]
	smu sync.Mutex // serialises additions to services

	// breakers are the circuit breakers of the version sets called.
	breakers *circuit.Set

	// counting makes new selectors count calls in flight, for the debug
	// view: it is off until Debug or DebugHandler is first called (see
	// countInFlight). LeastInFlight counts regardless.
	counting atomic.Bool

	rule atomic.Pointer[activeRule]
	// rejected is the last document that did not parse; orchestration the
	// current failure to expand the followed spec (nil once it succeeds).
	rejected      atomic.Pointer[rejection]
	orchestration atomic.Pointer[rejection]
	following     atomic.Pointer[provenance] // the spec followed, if any

	ruleSubs discovery.Notifier // wakes SubscribeRule's subscribers

	// unrunLast is the last reported set of versions the rule routes to
	// that no instance runs (see checkVersions).
	unrunMu   sync.Mutex
	unrunLast string

	// rulesReady is closed once the rule source's first document is
	// handled, in force or rejected (at once without a source); rulesSeen
	// caches that for the decide path.
	rulesReady chan struct{}
	rulesSeen  atomic.Bool
	// ruleInForce is closed once a document of the rule source is in force
	// (before rulesReady when the first one is): Ready's answer.
	ruleInForce chan struct{}
	inForceOnce sync.Once

	// tel is the OpenTelemetry instruments, nil when none were given.
	tel *telemetry
	// routedIn is set once a route arrives with an inbound call; unrouted
	// holds the services already logged for a call without one (see
	// Transport.route).
	routedIn atomic.Bool
	unrouted sync.Map

	closed    atomic.Bool
	done      chan struct{} // closed by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// service is the balancer's view of one service: its watch, its instance
// records, and the selector built from its current snapshot.
type service struct {
	name    string
	watch   *discovery.Watch
	tracker *Tracker
	ready   atomic.Bool
	cur     atomic.Pointer[pickerState]
	mu      sync.Mutex // serialises rebuilds
}

// pickerState is the immutable selector of one snapshot, and, with a
// removal grace, the selector of instances that left discovery within it.
type pickerState struct {
	snap *discovery.Snapshot
	sel  *Selector
	gone *lingering // nil when none
}

// lingering are instances that discovery no longer lists, kept for routes
// that no listed instance can take until each one's grace ends.
type lingering struct {
	sel   *Selector
	until []int64 // Unix nanoseconds, index for index with sel's instances
	first int64   // the earliest of until: from then on some entry is over
}

// New returns a balancer over reg, which it uses but does not close. With
// WithRuleSource it starts one goroutine following the rule; Close stops it.
func New(reg discovery.Registry, opts ...Option) (*Balancer, error) {
	if reg == nil {
		return nil, errors.New("balancer: nil registry")
	}
	o := newOptions(opts)
	if o.trustedEdge {
		o.entry = true
	}
	switch o.policy {
	case RoundRobin, LeastInFlight, WeightedRandom:
	default:
		return nil, errors.New("balancer: unknown policy " + o.policy.String())
	}
	switch o.failover {
	case Strict, Permissive:
	default:
		return nil, errors.New("balancer: unknown failover " + o.failover.String())
	}
	if err := o.validateRetry(); err != nil {
		return nil, err
	}
	if err := o.validateBreakers(); err != nil {
		return nil, err
	}
	tel, err := newTelemetry(&o)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Balancer{reg: reg, o: o, log: o.log, tel: tel, done: make(chan struct{}), cancel: cancel, rulesReady: make(chan struct{}), ruleInForce: make(chan struct{})}
	b.breakers = b.newBreakers()
	m := make(map[string]*service)
	b.services.Store(&m)
	switch {
	case o.ruleSource != nil:
		b.wg.Add(1)
		go b.followRules(ctx, o.ruleSource)
	case o.fixedRule != nil:
		b.setRule(o.fixedRule, nil, provenance{source: "fixed"})
		close(b.ruleInForce)
		close(b.rulesReady)
	default:
		close(b.ruleInForce)
		close(b.rulesReady)
	}
	return b, nil
}

// Ready waits until the rule source's first document is in force — for a
// spec, expanded against the first discovery answers of its services — and
// returns nil, or ctx's error, or ErrClosed. Without a rule source it
// returns at once. When the first document is rejected (it does not
// parse), Ready waits up to the ready wait (WithReadyWait) for a good one
// and then returns an error wrapping ErrRuleRejected that names the
// rejected document: no rule is in force. Decisions do not need it (they
// wait for the first document themselves, up to the ready wait); it is for
// start-up sequences that want to open for traffic only once routing is in
// place.
//
// A service the balancer has picked for that discovery cannot answer (its
// reads fail, say because the Consul agent refuses this host's connections:
// errors.Is(err, discovery.ErrAgentLimit)) makes Ready return that failure,
// naming the service, instead of nil.
func (b *Balancer) Ready(ctx context.Context) error {
	select {
	case <-b.ruleInForce:
		return b.watchesErr()
	case <-b.rulesReady:
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return ErrClosed
	}
	// The first document was handled; ruleInForce is closed before
	// rulesReady when it went into force.
	select {
	case <-b.ruleInForce:
		return b.watchesErr()
	default:
	}
	if b.o.readyWait < 0 {
		return b.rejectedError()
	}
	t := time.NewTimer(b.o.readyWait)
	defer t.Stop()
	select {
	case <-b.ruleInForce:
		return b.watchesErr()
	case <-t.C:
		return b.rejectedError()
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return ErrClosed
	}
}

// watchesErr reports the services with no discovery answer whose reads
// fail.
func (b *Balancer) watchesErr() error {
	services := *b.services.Load()
	names := make([]string, 0, len(services))
	for name := range services {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		w := services[name].watch
		if isClosed(w.Ready()) {
			continue
		}
		if err := w.Err(); err != nil {
			errs = append(errs, fmt.Errorf("balancer: no instances known for %q: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// currentRule returns the rule in force for a decision. Until the rule
// source's first document is in force it waits for it, up to the ready wait
// (as a pick waits for its service's first discovery answer), so that the
// first requests after start-up are not routed without the rule.
func (b *Balancer) currentRule(ctx context.Context) *activeRule {
	if !b.rulesSeen.Load() {
		b.waitRules(ctx)
	}
	return b.rule.Load()
}

func (b *Balancer) waitRules(ctx context.Context) {
	select {
	case <-b.rulesReady:
		b.rulesSeen.Store(true)
		return
	default:
	}
	if b.o.readyWait < 0 {
		return
	}
	t := time.NewTimer(b.o.readyWait)
	defer t.Stop()
	select {
	case <-b.rulesReady:
		b.rulesSeen.Store(true)
	case <-t.C:
	case <-ctx.Done():
	case <-b.done:
	}
}

// Close stops the balancer's goroutines and waits for them. Later picks
// fail with ErrClosed. The registry and rule source stay open: they belong
// to the caller.
func (b *Balancer) Close() error {
	b.closeOnce.Do(func() {
		b.smu.Lock() // no service starts a goroutine after this
		b.closed.Store(true)
		b.smu.Unlock()
		close(b.done)
		b.cancel()
		b.wg.Wait()
	})
	return nil
}

// Pick chooses an instance of service for the route ctx carries (see
// WithRoute and Middleware). Without a route in ctx, the balancer's rule,
// if any, decides with no request values. done must be called exactly once
// with the call's outcome (nil for success): it feeds the in-flight counts
// of LeastInFlight and passive ejection. On error, the instance is nil and
// done is a no-op.
//
// The instance is the balancer's own, in the immutable snapshot it was
// picked from: read it, do not modify it (copy it to keep a changed
// version). It stays valid, and unchanged, when the service's instances
// change later. Returning it in place rather than as a copy keeps a pick
// at a few loads and one atomic add.
//
// The first picks of a service wait up to the ready wait (WithReadyWait)
// for its first discovery answer; after that Pick never blocks. The error
// wraps ErrNoInstance (in a *NoInstanceError naming service and route),
// ErrClosed, or the context's error.
func (b *Balancer) Pick(ctx context.Context, service string) (*discovery.Instance, func(error), error) {
	sel, i, err := b.pick(ctx, service, "")
	if err != nil {
		return nil, noopDone, err
	}
	return sel.Instance(i), sel.Start(i), nil
}

func noopDone(error) {}

// pick returns the selector and index chosen for service, with the route
// of ctx or, without one, the rule's decision for no request values.
func (b *Balancer) pick(ctx context.Context, name, avoid string) (*Selector, int, error) {
	r := routeFrom(ctx)
	var local Route
	if r == nil {
		if ar := b.rule.Load(); ar != nil {
			local = b.decide(ar, nil, nil)
			r = &local
		}
	}
	return b.pickRoute(ctx, name, r, avoid)
}

// pickRoute returns the selector and index chosen for service under r (nil:
// unconstrained), avoiding the instance ID avoid when another one qualifies
// (a retry).
func (b *Balancer) pickRoute(ctx context.Context, name string, r *Route, avoid string) (*Selector, int, error) {
	if b.closed.Load() {
		return nil, -1, ErrClosed
	}
	svc := b.service(name)
	if !svc.ready.Load() {
		if err := b.waitReady(ctx, svc); err != nil {
			return nil, -1, err
		}
	}
	ps := svc.picker(b)
	sel := ps.sel
	var scratch Route
	r = b.withDiscovery(name, r, &scratch)
	i, err := sel.PickWith(r, b.o.draw)
	if err != nil {
		if g := ps.gone; g != nil {
			now := b.o.now().UnixNano()
			j, ok := g.pick(r, b.o.draw(), now)
			if !ok && g.first <= now {
				// An entry's grace is over: drop those and draw again
				// among the rest, so that one expired instance does not
				// fail the picks another lingering one can take.
				if g = svc.prune(ps, now, b.o.policy); g != nil {
					j, ok = g.pick(r, b.o.draw(), now)
				}
			}
			if ok {
				return g.sel, j, nil
			}
		}
		return sel, i, err
	}
	if avoid == "" {
		return sel, i, nil
	}
	// A retry: a few more draws for another instance. Round robin moves on
	// by itself; random policies draw again.
	for range 3 {
		if sel.Instance(i).ID != avoid {
			break
		}
		j, err := sel.PickWith(r, b.o.draw)
		if err != nil {
			break
		}
		i = j
	}
	return sel, i, nil
}

// waitReady waits for the service's first discovery answer, the ready wait,
// ctx or Close, whichever comes first. Only a cancelled ctx or Close is an
// error: after the wait the pick goes ahead with whatever is known.
func (b *Balancer) waitReady(ctx context.Context, svc *service) error {
	ready := svc.watch.Ready()
	select {
	case <-ready:
		svc.ready.Store(true)
		return nil
	default:
	}
	if b.o.readyWait < 0 {
		return nil
	}
	t := time.NewTimer(b.o.readyWait)
	defer t.Stop()
	select {
	case <-ready:
		svc.ready.Store(true)
		return nil
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.done:
		return ErrClosed
	}
}

// maxFew is how many services Balancer.service finds by comparing names.
const maxFew = 4

// service returns the record of name, starting its watch on first use.
func (b *Balancer) service(name string) *service {
	if few := b.few.Load(); few != nil {
		for _, s := range *few {
			if s.name == name {
				return s
			}
		}
	} else if s, ok := (*b.services.Load())[name]; ok {
		return s
	}
	return b.addService(name)
}

// addService is service's slow path: the record of name, created and
// published under smu unless another pick just did.
func (b *Balancer) addService(name string) *service {
	b.smu.Lock()
	defer b.smu.Unlock()
	m := *b.services.Load()
	if s, ok := m[name]; ok {
		return s
	}
	s := &service{name: name, watch: b.reg.Watch(name), tracker: pick.NewTrackerClock(b.o.ejection, b.o.now)}
	if b.o.removalGrace > 0 && !b.closed.Load() {
		// The grace counts from when the change arrives, not from the
		// next pick, which may come much later: follow the watch.
		changed, unsubscribe := s.watch.Subscribe()
		b.wg.Add(1)
		go b.followInstances(s, changed, unsubscribe)
	}
	next := make(map[string]*service, len(m)+1)
	for k, v := range m {
		next[k] = v
	}
	next[name] = s
	b.services.Store(&next)
	if len(next) <= maxFew {
		few := make([]*service, 0, len(next))
		if cur := b.few.Load(); cur != nil {
			few = append(few, *cur...)
		}
		few = append(few, s)
		b.few.Store(&few)
	} else {
		b.few.Store(nil)
	}
	return s
}

// followInstances builds the selector state of each snapshot of s as it
// arrives, so that instances it no longer lists start their removal grace
// then, until Close.
func (b *Balancer) followInstances(s *service, changed <-chan struct{}, unsubscribe func()) {
	defer b.wg.Done()
	defer unsubscribe()
	for {
		select {
		case <-b.done:
			return
		case <-changed:
			s.picker(b)
		}
	}
}

// prune returns the lingering instances of ps without those whose grace
// is over at now, publishing them in place of ps's (nil: none left).
func (s *service) prune(ps *pickerState, now int64, policy Policy) *lingering {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	if cur != ps {
		return cur.gone // rebuilt meanwhile: that one is current
	}
	next := *ps
	next.gone = ps.gone.without(s.name, now, policy)
	s.cur.Store(&next)
	return next.gone
}

// picker returns the selector state of the watch's current snapshot,
// building it on the first pick after a change (with a removal grace, as
// the change arrives: see followInstances).
func (s *service) picker(b *Balancer) *pickerState {
	if ps := s.cur.Load(); ps != nil && ps.snap == s.watch.Snapshot() {
		return ps
	}
	return s.rebuild(b)
}

// rebuild is picker's slow path: the selector state of the watch's current
// snapshot, built under mu unless another pick just did.
func (s *service) rebuild(b *Balancer) *pickerState {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.watch.Snapshot()
	prev := s.cur.Load()
	if prev != nil && prev.snap == snap {
		return prev
	}
	ps := &pickerState{snap: snap, sel: b.newSelector(s, snap.Instances)}
	if b.o.removalGrace > 0 && prev != nil {
		ps.gone = linger(s.name, prev, snap, b.o.now(), b.o.removalGrace, b.o.policy)
	}
	s.cur.Store(ps)
	if prev == nil || !slices.Equal(prev.snap.Versions, snap.Versions) {
		b.checkVersions()
	}
	if b.log.Core().Enabled(zap.DebugLevel) {
		b.log.Debug("instances changed", zap.String("service", s.name),
			zap.Int("instances", len(snap.Instances)), zap.Strings("versions", snap.Versions),
			zap.Uint64("index", snap.Index))
	}
	return ps
}

// newSelector returns the selector of s over instances, tracked.
func (b *Balancer) newSelector(s *service, instances []discovery.Instance) *Selector {
	return NewSelector(s.name, instances, SelectorConfig{
		Policy:        b.o.policy,
		Failover:      b.o.failover,
		Self:          b.o.self,
		Switches:      b.o.switches,
		Tracker:       s.tracker,
		CountInFlight: b.counting.Load(),
		MaxCached:     b.o.maxCached,
	})
}

// countInFlight makes every service's selector count calls in flight from
// now on, for the debug view. Counting costs two atomic writes per call,
// so the balancer pays for it only once something reads the counts.
// Calls already under way stay uncounted: each ends through the function
// its own selector's Start returned, so the counts stay exact.
func (b *Balancer) countInFlight() {
	if b.counting.Load() || !b.counting.CompareAndSwap(false, true) {
		return
	}
	// A service added meanwhile either is in this map or builds its first
	// selector after the swap above, counting.
	for _, s := range *b.services.Load() {
		s.mu.Lock()
		if ps := s.cur.Load(); ps != nil && !ps.sel.CountsInFlight() {
			next := *ps
			next.sel = b.newSelector(s, ps.snap.Instances)
			s.cur.Store(&next)
		}
		s.mu.Unlock()
	}
}

// linger returns the instances of prev (listed or still lingering) that
// snap no longer lists and whose grace has not ended, or nil.
func linger(service string, prev *pickerState, snap *discovery.Snapshot, now time.Time, grace time.Duration, policy Policy) *lingering {
	live := make(map[string]struct{}, len(snap.Instances))
	for i := range snap.Instances {
		live[snap.Instances[i].ID] = struct{}{}
	}
	var list []discovery.Instance
	var until []int64
	nowNS := now.UnixNano()
	end := now.Add(grace).UnixNano()
	for i := range prev.snap.Instances {
		if _, ok := live[prev.snap.Instances[i].ID]; !ok {
			live[prev.snap.Instances[i].ID] = struct{}{}
			list = append(list, prev.snap.Instances[i])
			until = append(until, end)
		}
	}
	if g := prev.gone; g != nil {
		for i, u := range g.until {
			in := g.sel.Instance(i)
			if _, ok := live[in.ID]; !ok && u > nowNS {
				live[in.ID] = struct{}{}
				list = append(list, *in)
				until = append(until, u)
			}
		}
	}
	return newLingering(service, list, until, policy)
}

func newLingering(service string, list []discovery.Instance, until []int64, policy Policy) *lingering {
	if len(list) == 0 {
		return nil
	}
	return &lingering{sel: NewSelector(service, list, SelectorConfig{Policy: policy}), until: until, first: slices.Min(until)}
}

// without returns g without the entries whose grace is over at now, or nil
// when none is left.
func (g *lingering) without(service string, now int64, policy Policy) *lingering {
	var list []discovery.Instance
	var until []int64
	for i, u := range g.until {
		if u > now {
			list = append(list, *g.sel.Instance(i))
			until = append(until, u)
		}
	}
	return newLingering(service, list, until, policy)
}

// pick chooses a lingering instance for r whose grace has not ended at now.
func (g *lingering) pick(r *Route, draw uint64, now int64) (int, bool) {
	i, err := g.sel.Pick(r, draw)
	if err != nil || g.until[i] <= now {
		return -1, false
	}
	return i, true
}

// Decide evaluates the balancer's rule for values (for code that is
// neither an inbound nor an outbound HTTP call, such as a message consumer)
// and returns ctx carrying the resulting route. A route already in ctx
// overrides the decision per route header, as inbound headers do. Without
// a rule, ctx is returned with its route unchanged.
func (b *Balancer) Decide(ctx context.Context, values rule.Values) context.Context {
	ar := b.currentRule(ctx)
	if ar == nil {
		return ctx
	}
	r := b.decide(ar, values, routeFrom(ctx))
	return WithRoute(ctx, r)
}

// decide evaluates ar for values and overlays inbound (route values that
// arrived with the request; they win per route type).
func (b *Balancer) decide(ar *activeRule, values rule.Values, inbound *Route) Route {
	d := ar.rule.DecideWith(values, b.o.draw(), b.o.priority)
	r := ar.base
	for t := range rule.NumTypes {
		if t.Decided() {
			r.Set(t, d.Get(t))
		}
	}
	r.Origin = pick.Origin{Source: pick.SourceOf(d.Tier), Condition: d.ConditionID}
	if inbound != nil {
		r.Override(inbound)
		if !inbound.Get(rule.TypeVersion).IsZero() {
			r.Origin = pick.Origin{Source: pick.SourceHeader}
		}
	}
	if len(ar.header) > 0 {
		h := make(map[string][]string, len(r.Header)+len(ar.header))
		for k, vs := range r.Header {
			h[k] = vs
		}
		for _, f := range ar.header {
			if _, ok := h[f.name]; !b.o.priority.BuiltInWins(ok) {
				continue
			}
			h[f.name] = f.value
		}
		r.Header = h
	}
	return r
}
