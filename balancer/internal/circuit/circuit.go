// Package circuit is the circuit breaking shared by package balancer's
// HTTP transport and package grpcroute's gRPC picker: one breaker per
// service and version set, over github.com/sony/gobreaker, which admits a
// call when it is picked and counts its outcome when it ends.
//
// gobreaker's own two-step API (TwoStepCircuitBreaker.Allow) would fit an
// outcome that arrives later, as a gRPC pick's Done callback does, but it
// allocates a closure per call, and each of its counts takes its lock and
// reads the wall clock twice (some 125 ns), several times the cost of a
// pick. So a closed breaker, the usual case, counts its calls itself: the
// pick costs two atomic loads, and the outcome a monotonic clock read and a
// compare-and-swap on a rolling window of ten buckets (window), which
// ReadyToTrip reads. Only a failure goes through gobreaker
// (CircuitBreaker.Execute, which does not allocate), so that it opens the
// breaker when ReadyToTrip says so. gobreaker keeps the states, the open
// timeout and the half-open probes' count to closing; a half-open breaker
// admits its probes with a count of its own, bounded by that same number,
// and each probe reports to the round that admitted it (Ticket). A round
// whose probes are all out and none of which ended for the open timeout
// (streams, long polls) gives way to a new one, so that calls that never
// end do not hold the breaker half-open and shut forever.
package circuit

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/rule"
)

// Defaults of Config; package balancer documents and exports them.
const (
	DefaultFailureRatio     = 0.8
	DefaultMinRequests      = 20
	DefaultInterval         = 10 * time.Second
	DefaultOpenTimeout      = 5 * time.Second
	DefaultHalfOpenRequests = 3
)

// Config is a breaker policy. Its fields are those of
// balancer.BreakerPolicy, in the same order and of the same types, so that
// either converts to the other; balancer.BreakerPolicy documents them.
type Config struct {
	Disabled         bool
	FailureRatio     float64
	MinRequests      uint32
	Interval         time.Duration
	Failures         uint32
	OpenTimeout      time.Duration
	HalfOpenRequests uint32
}

// WithDefaults returns c with its zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.FailureRatio == 0 {
		c.FailureRatio = DefaultFailureRatio
	}
	if c.MinRequests == 0 {
		c.MinRequests = DefaultMinRequests
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.HalfOpenRequests == 0 {
		c.HalfOpenRequests = DefaultHalfOpenRequests
	}
	return c
}

// Validate reports what is wrong with c, if anything, without a package
// prefix: callers add theirs.
func (c Config) Validate() error {
	switch {
	case !(c.FailureRatio > 0):
		return errors.New("breaker failure ratio must be > 0")
	case c.Interval < 0:
		return errors.New("breaker interval < 0")
	case c.OpenTimeout < 0:
		return errors.New("breaker open timeout < 0")
	}
	return nil
}

// Outcome is what a call says about the version set it was sent to.
type Outcome uint8

const (
	// Success is an answer, whatever it says, that is not a failure.
	Success Outcome = iota
	// Failure is a connection error, a timeout of the attempt itself or
	// an answer saying that the set could not serve the call.
	Failure
	// Ignored is an end that says nothing about the set: the caller gave
	// up. It is counted as a request, not as a success or a failure.
	Ignored
)

// The errors gobreaker is given for an outcome.
var (
	errFailure = errors.New("circuit: failure")
	errIgnored = errors.New("circuit: ignored")
	outcomeErr = [...]error{Success: nil, Failure: errFailure, Ignored: errIgnored}
)

// Breaker is the circuit breaker of one version set. gobreaker's own state
// is behind a mutex; notClosed mirrors it (set by its state change
// callback) so that a call to a closed breaker, the usual case, does not
// take the lock when it is picked.
type Breaker struct {
	cb        *gobreaker.CircuitBreaker[struct{}]
	notClosed atomic.Bool
	// half is the breaker's round in the high 32 bits and, while it is
	// half-open, the probes the round admitted (at most maxProbes) in the
	// low 32: one word, so that a round that ends takes its count of
	// probes along. Every state change starts a round, and so does a
	// half-open round whose probes are all out when none has gone out or
	// ended for roundTimeout. A ticket reports to the round that admitted
	// it, or not at all.
	half      atomic.Uint64
	maxProbes uint64
	// active is when (on the window's clock) the current round last
	// admitted a probe or counted one's end.
	active       atomic.Int64
	roundTimeout time.Duration
	opened       atomic.Int64 // times it opened
	rejected     atomic.Int64 // calls failed fast
	// closed counts the calls while the breaker is closed.
	closed window
	// The errors of calls turned away, made once.
	openErr, halfOpenErr error
}

// Ticket is a call's admission by a breaker: report the call's outcome
// with Done once it ends, or Cancel if it was not sent. It carries the
// round (the breaker's state, see Breaker.half) that admitted it, closed
// or half-open, and counts in that round only. Tickets are comparable:
// two with the same breaker, round and kind report alike. The zero Ticket
// (no breaker) does nothing.
type Ticket struct {
	b     *Breaker
	round uint64
	probe bool
}

// Admit reports whether b lets a call through now: at once when it is
// closed; when it is open, no; when it is half-open, only as one of its
// probes. A call turned away gets the breaker's error (see Set). A nil b
// admits everything.
func (b *Breaker) Admit() (Ticket, error) {
	if b == nil {
		return Ticket{}, nil
	}
	// The round first: a state change moves it before notClosed, so a
	// ticket never carries the round of a closed state it was not
	// admitted in.
	round := b.half.Load() >> 32
	if !b.notClosed.Load() {
		return Ticket{b: b, round: round}, nil
	}
	return b.admitNotClosed(round)
}

func (b *Breaker) admitNotClosed(round uint64) (Ticket, error) {
	// State turns an open breaker whose timeout has ended half-open.
	switch b.cb.State() {
	case gobreaker.StateClosed:
		return Ticket{b: b, round: round}, nil
	case gobreaker.StateOpen:
		b.rejected.Add(1)
		return Ticket{}, b.openErr
	}
	for {
		h := b.half.Load()
		next := h + 1
		if h&probesMask >= b.maxProbes {
			now := b.closed.elapsed()
			if now-time.Duration(b.active.Load()) < b.roundTimeout {
				b.rejected.Add(1)
				return Ticket{}, b.halfOpenErr
			}
			// No probe of this round ended for roundTimeout (a stream or
			// a long poll, say): the next round, whose first probe this is.
			next = (h>>32+1)<<32 | 1
		}
		if b.half.CompareAndSwap(h, next) {
			b.active.Store(int64(b.closed.elapsed()))
			return Ticket{b: b, round: next >> 32, probe: true}, nil
		}
	}
}

const probesMask = 1<<32 - 1

// endProbe gives a probe of round back its place, if round is current.
func (b *Breaker) endProbe(round uint64) bool {
	for {
		h := b.half.Load()
		if h>>32 != round {
			return false
		}
		if b.half.CompareAndSwap(h, h-1) {
			return true
		}
	}
}

// Probe reports whether t admitted a half-open breaker's probe.
func (t Ticket) Probe() bool { return t.probe }

// Done counts the call's outcome, in the round that admitted it: a call
// admitted while the breaker was closed counts only while it is still
// closed without having changed state since (a call admitted before the
// breaker opened that ends after it closed again counts nothing), a probe
// only while its half-open round lasts.
func (t Ticket) Done(o Outcome) {
	b := t.b
	if b == nil || b.half.Load()>>32 != t.round {
		return
	}
	if !t.probe {
		b.report(o)
		return
	}
	if o == Ignored {
		// As gobreaker's exclusions do, an ignored probe frees its place.
		if !b.endProbe(t.round) {
			return
		}
	}
	b.active.Store(int64(b.closed.elapsed()))
	b.record(o)
}

// Cancel gives back the admission of a call that was not sent.
func (t Ticket) Cancel() {
	if t.probe {
		t.b.endProbe(t.round)
	}
}

// report counts the outcome of a call admitted while b was closed, if b
// still is.
func (b *Breaker) report(o Outcome) {
	if b.notClosed.Load() {
		return
	}
	b.closed.add(o)
	if o == Failure {
		// gobreaker asks ReadyToTrip, which reads the window.
		b.record(o)
	}
}

// record counts one call and its outcome; in a half-open round, that many
// successes close the breaker and one failure opens it again.
func (b *Breaker) record(o Outcome) {
	err := outcomeErr[o]
	_, _ = b.cb.Execute(func() (struct{}, error) { return struct{}{}, err })
}

// State is the breaker's state: "closed", "open" or "half-open".
func (b *Breaker) State() string { return b.cb.State().String() }

// Counts returns the calls counted in the current state (in the rolling
// interval while closed), their failures, and the failures in a row.
func (b *Breaker) Counts() (requests, failures, consecutiveFailures uint32) {
	if !b.notClosed.Load() {
		r, f, c := b.closed.counts()
		return uint32(r), uint32(f), uint32(c)
	}
	c := b.cb.Counts()
	return c.Requests, c.TotalFailures, c.ConsecutiveFailures
}

// window counts a closed breaker's calls over a rolling interval of ten
// buckets, with atomics only. Each bucket is one word holding the lap of
// the period it counts (the period divided by ten, the number of
// buckets) and its requests and failures, so that a bucket moves to its
// next period and counts a call in one compare-and-swap: a call counted by
// one goroutine is never cleared by another that moves the bucket on, a
// reader never sees more failures than requests, and a call whose period
// the bucket has already left is not counted in a later one. Its clock is
// the monotonic one, read once per call.
//
// The widths are bounded: a bucket counts at most maxCount requests (the
// calls past that, in one tenth of the interval, are not counted, their
// failures neither), and laps are kept modulo 2^26 (21 years at the
// default interval, 77 days at an interval of 100 ms): a bucket left
// untouched for a multiple of that many laps, give or take a thousand,
// would be read as current.
type window struct {
	elapsed func() time.Duration // since the window was made (tests set it)
	period  time.Duration        // of a bucket: a tenth of the interval
	buckets [10]atomic.Uint64
	// inARow counts the failures since the last success.
	inARow atomic.Int64
	// step, set by tests only, runs between a bucket's read and its
	// compare-and-swap, to interleave other calls there.
	step func()
}

// A bucket's word: lap, then requests, then failures, from the top. A
// bucket with no requests counts nothing, whatever lap it names.
const (
	countBits   = 19
	lapBits     = 64 - 2*countBits
	maxCount    = 1<<countBits - 1
	lapMask     = 1<<lapBits - 1
	countsMask  = 1<<lapShift - 1
	failureUnit = 1
	requestUnit = 1 << countBits
	lapShift    = 2 * countBits
	// lateLaps bounds how far behind its bucket a call may come and still
	// be taken as late (not counted) rather than as the bucket's next lap.
	lateLaps = 1 << 10
)

func (w *window) init(interval time.Duration) {
	start := time.Now()
	w.elapsed = func() time.Duration { return time.Since(start) }
	w.period = max(interval/10, time.Nanosecond)
	w.reset()
}

// reset forgets every call, as a change of state does.
func (w *window) reset() {
	for i := range w.buckets {
		w.buckets[i].Store(0)
	}
	w.inARow.Store(0)
}

func (w *window) now() uint64 { return uint64(w.elapsed() / w.period) }

// add counts a call with outcome o (an ignored call is a request, neither
// a success nor a failure, as gobreaker counts exclusions).
func (w *window) add(o Outcome) {
	n := w.now()
	b := &w.buckets[n%uint64(len(w.buckets))]
	lap := n / uint64(len(w.buckets)) & lapMask
	unit := uint64(requestUnit)
	if o == Failure {
		unit += failureUnit
	}
	for {
		old := b.Load()
		if w.step != nil {
			w.step()
		}
		var next uint64
		switch behind := (old>>lapShift - lap) & lapMask; {
		case old&countsMask == 0, behind >= lateLaps:
			next = lap<<lapShift | unit // the bucket's next lap: its first call
		case behind != 0:
			next = old // late: the bucket has moved past the call's period
		case old>>countBits&maxCount >= maxCount:
			next = old // full: the call is not counted
		default:
			next = old + unit
		}
		if next == old || b.CompareAndSwap(old, next) {
			break
		}
	}
	switch o {
	case Failure:
		w.inARow.Add(1)
	case Success:
		if w.inARow.Load() != 0 {
			w.inARow.Store(0)
		}
	}
}

// counts sums the buckets of the last interval.
func (w *window) counts() (requests, failures, inARow int64) {
	n := w.now()
	size := uint64(len(w.buckets))
	lap, cur := n/size, n%size
	for i := range w.buckets {
		v := w.buckets[i].Load()
		want := lap // buckets up to the current one count this lap
		if uint64(i) > cur {
			want = lap - 1 // the others the lap before
		}
		if v>>lapShift != want&lapMask {
			continue
		}
		requests += int64(v >> countBits & maxCount)
		failures += int64(v & maxCount)
	}
	return requests, failures, w.inARow.Load()
}

// Opened is how many times the breaker opened.
func (b *Breaker) Opened() int64 { return b.opened.Load() }

// Rejected is how many calls the breaker failed fast.
func (b *Breaker) Rejected() int64 { return b.rejected.Load() }

// key names a version set.
type key struct{ service, version string }

// Set holds the breakers of a balancer (or of a gRPC balancer builder),
// each made on its version set's first call.
type Set struct {
	m      sync.Map // key → *Breaker; nil when off for the service
	policy func(service string) Config
	newErr func(service, version string, halfOpen bool) error
	log    *zap.Logger
}

// NewSet returns an empty set whose breakers follow policy (its result,
// defaults applied, for a service), fail calls fast with the errors of
// newErr, and log their state changes to log.
func NewSet(policy func(service string) Config, newErr func(service, version string, halfOpen bool) error, log *zap.Logger) *Set {
	return &Set{policy: policy, newErr: newErr, log: log}
}

// Get returns the breaker of service's version set, or nil when circuit
// breaking is off for service. After the set's first call it is one map
// read.
func (s *Set) Get(service, version string) *Breaker {
	k := key{service, version}
	if v, ok := s.m.Load(k); ok {
		return v.(*Breaker)
	}
	p := s.policy(service)
	if p.Disabled {
		// Stored too: the lookup stays one map read.
		v, _ := s.m.LoadOrStore(k, (*Breaker)(nil))
		return v.(*Breaker)
	}
	b := &Breaker{
		maxProbes:    uint64(p.HalfOpenRequests),
		roundTimeout: p.OpenTimeout,
		openErr:      s.newErr(service, version, false),
		halfOpenErr:  s.newErr(service, version, true),
	}
	b.closed.init(p.Interval)
	failures, ratio, minReq := int64(p.Failures), p.FailureRatio, int64(p.MinRequests)
	log := s.log
	// gobreaker reads the wall clock itself (it takes no clock to inject):
	// the open timeout is real time, as the window's interval is (on the
	// monotonic clock). gobreaker's own closed counts, of the failures
	// alone, are not read. Its state changes reach us through
	// OnStateChange, under its lock.
	b.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         service + " " + version,
		MaxRequests:  p.HalfOpenRequests,
		Interval:     p.Interval,
		BucketPeriod: p.Interval / 10,
		Timeout:      p.OpenTimeout,
		// Asked at a failure while closed: the window has the counts.
		ReadyToTrip: func(gobreaker.Counts) bool {
			requests, failed, inARow := b.closed.counts()
			return failures > 0 && inARow >= failures ||
				requests >= minReq && float64(failed) >= ratio*float64(requests)
		},
		IsExcluded: func(err error) bool { return err == errIgnored },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			for h := b.half.Load(); !b.half.CompareAndSwap(h, (h>>32+1)<<32); h = b.half.Load() {
			}
			b.active.Store(int64(b.closed.elapsed()))
			b.closed.reset()
			b.notClosed.Store(to != gobreaker.StateClosed)
			if to == gobreaker.StateOpen {
				b.opened.Add(1)
			}
			log.Info("circuit breaker "+to.String(), zap.String("service", service),
				zap.String("version", version), zap.String("from", from.String()))
		},
	})
	v, _ := s.m.LoadOrStore(k, b)
	return v.(*Breaker)
}

// Range calls f for each breaker of the set (those that are off
// excluded), in no particular order, until f returns false.
func (s *Set) Range(f func(service, version string, b *Breaker) bool) {
	s.m.Range(func(k, v any) bool {
		b := v.(*Breaker)
		if b == nil {
			return true
		}
		key := k.(key)
		return f(key.service, key.version, b)
	})
}

// FailoverRoute returns r with its versions for service replaced by its
// version-failover ones (from the rule's <strategy-failover> or the
// n-d-version-failover header), or false when r has none: the route a
// call that lands on a breaker that turns it away is picked again with.
// Strict failover holds otherwise.
func FailoverRoute(r *pick.Route, service string) (*pick.Route, bool) {
	if r == nil {
		return nil, false
	}
	fv := r.Constraint(service)[rule.TypeVersionFailover]
	if fv == "" {
		return nil, false
	}
	f := *r
	f.Set(rule.TypeVersion, rule.PlainValue(fv))
	f.Set(rule.TypeVersionWeight, rule.Value{})
	f.Set(rule.TypeVersionPrefer, rule.Value{})
	f.Set(rule.TypeVersionFailover, rule.Value{})
	return &f, true
}
