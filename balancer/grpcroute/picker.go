package grpcroute

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync/atomic"

	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/internal/circuit"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
)

// NoReadyInstanceError is the pick error of a call whose route no ready
// endpoint may take (with strict failover, or when the failover found
// nothing either). gRPC ends such a call with codes.Unavailable and this
// message, unless the call waits for ready (grpc.WaitForReady), in which
// case it waits for the next picker: a new instance or a connection
// becoming ready. It wraps pick.ErrNoInstance.
type NoReadyInstanceError struct {
	Service    string          // the service called
	Constraint pick.Constraint // what the route asked of it
	Ready      int             // ready endpoints
	Endpoints  int             // endpoints in all
}

// Error names the service, the route and the endpoint counts.
func (e *NoReadyInstanceError) Error() string {
	msg := "grpcroute: no ready instance of " + strconv.Quote(e.Service)
	if !e.Constraint.IsZero() {
		msg += " for route " + e.Constraint.String()
	}
	return msg + " (" + strconv.Itoa(e.Ready) + " ready of " + strconv.Itoa(e.Endpoints) + " endpoints)"
}

// Unwrap returns pick.ErrNoInstance.
func (e *NoReadyInstanceError) Unwrap() error { return pick.ErrNoInstance }

// picker routes calls over the ready endpoints of one service. It is
// immutable apart from the selector's caches and counters and the slots'
// caches; a new one replaces it whenever an endpoint's state changes.
type picker struct {
	sel     *pick.Selector        // over the ready endpoints
	pickers []grpcbalancer.Picker // the ready children's pickers, index-aligned with sel
	// slots is index-aligned with sel; nil with neither tracking nor
	// circuit breaking.
	slots    []doneSlot
	track    bool           // calls are tracked (passive ejection, least-in-flight)
	breakers *circuit.Set   // nil when circuit breaking is off
	pending  *pick.Selector // strict, over connecting and idle endpoints; nil if none
	ready    int
	total    int
	rules    *balancer.Balancer // WithBalancer; nil when none
	observe  bool               // tell a call's observer the instance (metrics.go)
}

func newPicker(service string, ready []discovery.Instance, pickers []grpcbalancer.Picker, pending []discovery.Instance, total int, cfg Config, tracker *pick.Tracker) *picker {
	sc := pick.SelectorConfig{Policy: cfg.Policy, Failover: cfg.Failover, MaxCached: cfg.MaxCachedRoutes, Self: cfg.Self, Switches: cfg.Switches}
	// Calls are tracked for passive ejection and least-in-flight; with
	// neither, and without circuit breaking, the Done callback is left
	// out.
	track := cfg.Ejection.Failures >= 0 || cfg.Policy == pick.LeastInFlight
	if track {
		sc.Tracker = tracker
	}
	p := &picker{
		rules:    cfg.rules,
		sel:      pick.NewSelector(service, ready, sc),
		pickers:  pickers,
		track:    track,
		breakers: cfg.breakers,
		ready:    len(ready),
		total:    total,
	}
	if track || p.breakers != nil {
		p.slots = make([]doneSlot, len(ready))
		for i := range p.slots {
			p.slots[i].done = p.slots[i].finishCall
		}
	}
	if len(pending) > 0 {
		// No tracker: it would forget the ready instances' records.
		p.pending = pick.NewSelector(service, pending, pick.SelectorConfig{Failover: pick.Strict, MaxCached: cfg.MaxCachedRoutes, Self: cfg.Self, Switches: cfg.Switches})
	}
	return p
}

// Pick routes the call by the pick.Route in info.Ctx (put there by the
// interceptors, the balancer's HTTP middleware or balancer.WithRoute), or,
// without one, by the n-d-* keys of the outgoing metadata, and has the
// circuit breaker of the picked version set admit it (see admit). With the
// route in the context, Pick neither locks nor allocates once the route's
// candidate set is cached, unless the breaker is not closed or has changed
// state since the instance's last call (one closure per instance and
// closed state, see doneSlot); the Done of a call through a closed breaker
// counts its outcome with atomics, without allocating (a failure also
// takes gobreaker's lock), and only if the breaker has not changed state
// since the call was admitted.
func (p *picker) Pick(info grpcbalancer.PickInfo) (grpcbalancer.PickResult, error) {
	route := pick.FromContext(info.Ctx)
	if route == nil {
		route = outgoingRoute(info.Ctx)
	}
	var scratch pick.Route
	if p.rules != nil {
		route = p.rules.WithRuleLocal(p.sel.Service(), route, &scratch)
	}
	i, err := p.sel.PickWith(route, rand.Uint64)
	if err != nil {
		return grpcbalancer.PickResult{}, p.noInstance(route, err)
	}
	var tk circuit.Ticket
	if p.breakers != nil {
		if i, tk, err = p.admit(route, i); err != nil {
			return grpcbalancer.PickResult{}, err
		}
	}
	res, err := p.pickers[i].Pick(info)
	if p.observe && err == nil {
		picked(info.Ctx, p.sel.Instance(i))
	}
	if err != nil {
		tk.Cancel()
		return res, err
	}
	if p.slots == nil {
		return res, nil
	}
	slot := &p.slots[i]
	if p.track {
		finish := p.sel.Start(i)
		if slot.finish.Load() == nil {
			slot.set(finish)
		}
	}
	done := slot.done
	switch {
	case tk.Probe():
		// A half-open breaker's probe reports to its own round.
		done = func(di grpcbalancer.DoneInfo) {
			slot.finishCall(di)
			if notSent(di) {
				tk.Cancel()
				return
			}
			tk.Done(breakerOutcome(di.Err))
		}
	case tk != (circuit.Ticket{}):
		done = slot.closedDone(tk)
	}
	if res.Done == nil {
		res.Done = done
	} else {
		child := res.Done
		res.Done = func(di grpcbalancer.DoneInfo) { done(di); child(di) }
	}
	return res, nil
}

// admit has the circuit breaker of the version set of instance i admit
// the call. One that turns it away (open, or half-open with its probes
// under way) sends the call to the route's version-failover, picked
// again, if it has one; otherwise, or when the failover's breaker turns it
// away too, the call fails at once with a *BreakerOpenError's status,
// whether or not it waits for ready: strict failover holds, as for HTTP
// requests. When the failover has no ready instance but one is
// connecting, the call waits for it (gRPC picks again with the next
// picker), as a call whose own route has only connecting instances does.
func (p *picker) admit(route *pick.Route, i int) (int, circuit.Ticket, error) {
	tk, err := p.breakerAt(i).Admit()
	if err == nil {
		return i, tk, nil
	}
	if fr, ok := circuit.FailoverRoute(route, p.sel.Service()); ok {
		j, ferr := p.sel.PickWith(fr, rand.Uint64)
		if ferr == nil {
			if ftk, ferr := p.breakerAt(j).Admit(); ferr == nil {
				return j, ftk, nil
			}
		} else if p.pending != nil {
			if _, perr := p.pending.Pick(fr, 0); perr == nil {
				return -1, circuit.Ticket{}, grpcbalancer.ErrNoSubConnAvailable
			}
		}
	}
	return -1, tk, &breakerError{err: err}
}

// breakerAt returns the breaker of the version set of instance i, nil
// when circuit breaking is off for the service; the slot keeps it.
func (p *picker) breakerAt(i int) *circuit.Breaker {
	s := &p.slots[i]
	if br := s.br.Load(); br != nil || s.resolved.Load() {
		return br
	}
	br := p.breakers.Get(p.sel.Service(), p.sel.Instance(i).Version)
	s.br.Store(br)
	s.resolved.Store(true)
	return br
}

// breakerError is the pick error of a call that a circuit breaker turned
// away: gRPC ends the call with its status, codes.Unavailable and the
// message of the *balancer.BreakerOpenError it wraps (naming service,
// version and state), and hands the error itself to the caller, so that
// errors.Is(err, balancer.ErrBreakerOpen) holds and errors.As finds the
// *balancer.BreakerOpenError.
type breakerError struct{ err error }

func (e *breakerError) Error() string {
	return "rpc error: code = " + codes.Unavailable.String() + " desc = " + e.err.Error()
}

// GRPCStatus returns the call's status: codes.Unavailable.
func (e *breakerError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.err.Error())
}

// Unwrap returns the *balancer.BreakerOpenError.
func (e *breakerError) Unwrap() error { return e.err }

// noInstance turns the selector's error into the pick's: wait when a
// connecting endpoint would take the call, else a NoReadyInstanceError.
func (p *picker) noInstance(route *pick.Route, err error) error {
	if p.pending != nil {
		if _, perr := p.pending.Pick(route, 0); perr == nil {
			return grpcbalancer.ErrNoSubConnAvailable
		}
	}
	e := &NoReadyInstanceError{Service: p.sel.Service(), Ready: p.ready, Endpoints: p.total}
	var nie *pick.NoInstanceError
	if errors.As(err, &nie) {
		e.Constraint = nie.Constraint
	} else if route != nil {
		e.Constraint = route.Constraint(e.Service)
	}
	return e
}

// doneSlot ends the calls of one instance. The selector's Start returns
// the same end function for every call of an instance (that is how it
// avoids allocating), so the slot keeps the first one it sees and its
// bound finishCall method serves every call without a closure per pick.
// It also keeps the instance's circuit breaker and, for the calls its
// breaker admits while closed, the end function of the breaker's current
// closed state: tickets of one closed state are alike, so one closure
// made at the state's first call serves them all, and a call admitted in
// an earlier closed state keeps the end function of its own (it counts
// nothing once the state has changed).
type doneSlot struct {
	finish   atomic.Pointer[func(error)]     // nil without tracking
	br       atomic.Pointer[circuit.Breaker] // see breakerAt
	resolved atomic.Bool                     // br is known (nil: off)
	done     func(grpcbalancer.DoneInfo)     // s.finishCall, bound once
	closed   atomic.Pointer[closedDone]      // see closedDone
}

// closedDone is the end function of the calls a breaker admitted in one
// closed state: tk is their ticket.
type closedDone struct {
	tk   circuit.Ticket
	done func(grpcbalancer.DoneInfo)
}

//go:noinline
func (s *doneSlot) set(f func(error)) { s.finish.CompareAndSwap(nil, &f) }

// closedDone returns the end function of a call that a closed breaker
// admitted with tk: the slot's own for tk's closed state, made at the
// first call of that state (once per state change, not per pick).
func (s *doneSlot) closedDone(tk circuit.Ticket) func(grpcbalancer.DoneInfo) {
	if c := s.closed.Load(); c != nil && c.tk == tk {
		return c.done
	}
	return s.newClosedDone(tk)
}

//go:noinline
func (s *doneSlot) newClosedDone(tk circuit.Ticket) func(grpcbalancer.DoneInfo) {
	c := &closedDone{tk: tk}
	c.done = func(di grpcbalancer.DoneInfo) {
		s.finishCall(di)
		if !notSent(di) {
			tk.Done(breakerOutcome(di.Err))
		}
	}
	s.closed.Store(c)
	return c.done
}

// notSent reports whether di ends a pick that sent nothing: gRPC ends a
// pick whose SubConn turned out not ready with an empty DoneInfo and picks
// again. No call reached the instance, so neither its version set's
// breaker (a probe's place is given back) nor passive ejection counts it
// (a success would reset the instance's failures in a row). A call that
// did go out has a stream (BytesSent), and one that failed before it has
// an error.
func notSent(di grpcbalancer.DoneInfo) bool {
	return di.Err == nil && !di.BytesSent
}

// finishCall ends a call for the tracker; one not sent counts nothing
// against or for the instance (see notSent).
func (s *doneSlot) finishCall(di grpcbalancer.DoneInfo) {
	if f := s.finish.Load(); f != nil {
		err := instanceOutcome(di.Err)
		if notSent(di) {
			err = context.Canceled
		}
		(*f)(err)
	}
}

// breakerOutcome maps a call's error to what it says to the circuit
// breaker of its version set, as the HTTP transport's attempts do (a
// connection error, or 502, 503 or 504, is a failure; an attempt its
// caller ended counts nothing): codes.Unavailable, the status of a
// connection error and of a server that cannot take calls (HTTP's 502,
// 503 and 504 become it), is a failure. Canceled and DeadlineExceeded
// count nothing: gRPC has no deadline of its own per attempt, so both are
// the caller's (its deadline travels with the call, down to the server's
// handler). Every other status is the version answering: a success for
// the breaker (ResourceExhausted included: a rate limit, or a message too
// large, as HTTP's 429 does not count either).
func breakerOutcome(err error) circuit.Outcome {
	if err == nil {
		return circuit.Success
	}
	switch status.Code(err) {
	case codes.Unavailable:
		return circuit.Failure
	case codes.Canceled, codes.DeadlineExceeded:
		return circuit.Ignored
	}
	return circuit.Success
}

// instanceOutcome maps a call's error to what it says about the instance:
// transport and server failures count against it; errors of the call
// itself (NotFound, InvalidArgument, PermissionDenied, ...) are the
// instance working as meant and count as success; a cancellation by the
// caller counts as nothing.
func instanceOutcome(err error) error {
	if err == nil {
		return nil
	}
	switch status.Code(err) {
	case codes.Canceled:
		return context.Canceled
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown,
		codes.DataLoss, codes.ResourceExhausted:
		return err
	}
	return nil
}

// outgoingRoute reads a route from the n-d-* keys of the outgoing
// metadata, for calls made without the client interceptor. Values that do
// not parse are left out. It allocates; the interceptor's route in the
// context is the fast path.
func outgoingRoute(ctx context.Context) *pick.Route {
	md, ok := metadata.FromOutgoingContext(ctx)
	if !ok || !hasRoutingKey(md) {
		return nil
	}
	r, _, _ := pick.Extract(mdCarrier(md))
	return &r
}
