package pick

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graylane/graylane/discovery/instance"
)

// Defaults of passive health checking (see [Ejection]).
const (
	// DefaultEjectFailures is how many failures in a row eject an instance.
	DefaultEjectFailures = 5
	// DefaultEjectDuration is the first ejection's length; each further
	// ejection in a row lasts one more multiple of it, up to
	// [MaxEjectMultiplier] times.
	DefaultEjectDuration = 10 * time.Second
	// MaxEjectMultiplier caps how long repeated ejections grow.
	MaxEjectMultiplier = 10
)

// Ejection configures passive health checking: an instance whose calls fail
// Failures times in a row is not picked for Duration (times the number of
// ejections in a row, capped at [MaxEjectMultiplier]). A success resets both
// counts. The zero value means the defaults; Failures < 0 turns ejection off.
//
// Ejection never empties a set: when every instance a request may use is
// ejected, the picker uses them anyway rather than fail the request.
type Ejection struct {
	Failures int           // if 0, DefaultEjectFailures; < 0: never eject
	Duration time.Duration // if <= 0, DefaultEjectDuration
}

func (e Ejection) withDefaults() Ejection {
	if e.Failures == 0 {
		e.Failures = DefaultEjectFailures
	}
	if e.Duration <= 0 {
		e.Duration = DefaultEjectDuration
	}
	return e
}

// Tracker holds the mutable per-instance records of one service (in-flight
// calls, failures in a row, ejection) keyed by instance ID, so they survive
// snapshot changes. It is safe for concurrent use; its read paths do not
// lock or allocate.
type Tracker struct {
	ejection Ejection
	now      func() time.Time
	// ejected counts instances currently marked ejected, so pickers can skip
	// the clock entirely in the common case where nothing is.
	ejected atomic.Int32

	mu     sync.Mutex
	states map[string]*InstanceState
}

// NewTracker returns an empty tracker applying e.
func NewTracker(e Ejection) *Tracker {
	return NewTrackerClock(e, time.Now)
}

// NewTrackerClock is NewTracker reading the time from now (nil:
// time.Now), so that ejections can be tested without waiting.
func NewTrackerClock(e Ejection, now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{ejection: e.withDefaults(), now: now, states: make(map[string]*InstanceState)}
}

// States returns the records of instances, index for index, creating those
// it has not seen and forgetting those of IDs no longer listed. Call it once
// per new instance list (a snapshot change), not per pick.
func (t *Tracker) States(instances []instance.Instance) []*InstanceState {
	out := make([]*InstanceState, len(instances))
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := make(map[string]*InstanceState, len(instances))
	for i := range instances {
		id := instances[i].ID
		st, ok := t.states[id]
		if !ok {
			st = newInstanceState(t)
		}
		keep[id] = st
		out[i] = st
	}
	for id, st := range t.states {
		if _, ok := keep[id]; !ok {
			st.gone.Store(true)
			st.clearEjection()
		}
	}
	t.states = keep
	return out
}

// State returns the record of one instance ID, or nil if the tracker does
// not know it.
func (t *Tracker) State(id string) *InstanceState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.states[id]
}

// anyEjected reports whether some instance may be ejected right now.
func (t *Tracker) anyEjected() bool { return t.ejected.Load() > 0 }

// InstanceState is the live record of one instance: calls in flight,
// failures in a row and ejection. Its methods are safe for concurrent use
// and do not allocate.
type InstanceState struct {
	t            *Tracker
	inflight     atomic.Int64
	failures     atomic.Int32
	ejections    atomic.Int32 // ejections in a row, for the growing back-off
	ejectedUntil atomic.Int64 // Unix nanoseconds; 0 when not ejected
	gone         atomic.Bool  // forgotten by the tracker: never eject again
	// One func value each per instance, so that starting a call never
	// allocates: done ends a counted call, outcome an uncounted one.
	done    func(error)
	outcome func(error)
}

func newInstanceState(t *Tracker) *InstanceState {
	s := &InstanceState{t: t}
	s.done = s.finish
	s.outcome = s.record
	return s
}

// Start records a call to the instance, counting it in flight, and returns
// the function that ends it. Call the returned function exactly once with
// the call's outcome.
func (s *InstanceState) Start() func(error) {
	s.inflight.Add(1)
	return s.done
}

// startUncounted is Start without the in-flight count: the returned
// function records the outcome alone. It costs no atomic write, which is
// why a Selector uses it unless something reads the counts (see
// SelectorConfig.CountInFlight).
func (s *InstanceState) startUncounted() func(error) { return s.outcome }

// InFlight returns the number of calls started and not yet ended, among
// the calls that were counted: those started with Start, or through a
// Selector that counts in flight (see SelectorConfig.CountInFlight).
func (s *InstanceState) InFlight() int64 { return s.inflight.Load() }

// EjectedUntil returns when the instance's ejection ends, in Unix
// nanoseconds; 0 when it is not ejected. An ejection that has ended may
// still show until the instance is next considered for a pick.
func (s *InstanceState) EjectedUntil() int64 { return s.ejectedUntil.Load() }

// Failures returns the number of failed calls in a row.
func (s *InstanceState) Failures() int { return int(s.failures.Load()) }

// Ejected reports whether the instance is currently ejected.
func (s *InstanceState) Ejected() bool {
	return s.ejectedAt(s.t.now().UnixNano())
}

// ejectedAt reports whether the instance is ejected at now (Unix
// nanoseconds), clearing an expired ejection.
func (s *InstanceState) ejectedAt(now int64) bool {
	until := s.ejectedUntil.Load()
	if until == 0 {
		return false
	}
	if now < until {
		return true
	}
	if s.ejectedUntil.CompareAndSwap(until, 0) {
		s.t.ejected.Add(-1)
	}
	return false
}

func (s *InstanceState) clearEjection() {
	if s.ejectedUntil.Swap(0) != 0 {
		s.t.ejected.Add(-1)
	}
}

// finish ends one counted call: see record.
func (s *InstanceState) finish(err error) {
	s.inflight.Add(-1)
	s.record(err)
}

// record takes one call's outcome. A nil error resets the failure counts;
// a cancellation by the caller counts nothing against the instance; any
// other error counts as a failure. A success writes only when there were
// failures to reset, so the common call costs loads alone.
func (s *InstanceState) record(err error) {
	if err == nil {
		if s.failures.Load() != 0 {
			s.failures.Store(0)
		}
		if s.ejections.Load() != 0 {
			s.ejections.Store(0)
		}
		return
	}
	if errors.Is(err, context.Canceled) {
		return // the caller gave up; not the instance's fault
	}
	e := s.t.ejection
	if e.Failures < 0 || s.gone.Load() {
		return
	}
	if n := s.failures.Add(1); int(n) < e.Failures {
		return
	}
	s.failures.Store(0)
	mult := s.ejections.Add(1)
	if mult > MaxEjectMultiplier {
		mult = MaxEjectMultiplier
		s.ejections.Store(MaxEjectMultiplier)
	}
	until := s.t.now().Add(time.Duration(mult) * e.Duration).UnixNano()
	if s.ejectedUntil.Swap(until) == 0 {
		s.t.ejected.Add(1)
	}
}
