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
// immutable apart from the selector's caches and counters; a new one
// replaces it whenever an endpoint's state changes.
type picker struct {
	sel     *pick.Selector        // over the ready endpoints
	pickers []grpcbalancer.Picker // the ready children's pickers, index-aligned with sel
	slots   []doneSlot            // index-aligned with sel; nil without tracking
	pending *pick.Selector        // strict, over connecting and idle endpoints; nil if none
	ready   int
	total   int
	rules   *balancer.Balancer // WithBalancer; nil when none
	observe bool               // tell a call's observer the instance (metrics.go)
}

func newPicker(service string, ready []discovery.Instance, pickers []grpcbalancer.Picker, pending []discovery.Instance, total int, cfg Config, tracker *pick.Tracker) *picker {
	sc := pick.SelectorConfig{Policy: cfg.Policy, Failover: cfg.Failover, MaxCached: cfg.MaxCachedRoutes, Self: cfg.Self, Switches: cfg.Switches}
	// Calls are tracked for passive ejection and least-in-flight; with
	// neither, the Done callback is left out.
	track := cfg.Ejection.Failures >= 0 || cfg.Policy == pick.LeastInFlight
	if track {
		sc.Tracker = tracker
	}
	p := &picker{
		rules:   cfg.rules,
		sel:     pick.NewSelector(service, ready, sc),
		pickers: pickers,
		ready:   len(ready),
		total:   total,
	}
	if track {
		p.slots = make([]doneSlot, len(ready))
		for i := range p.slots {
			p.slots[i].done = p.slots[i].onDone
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
// without one, by the n-d-* keys of the outgoing metadata. With the route
// in the context, Pick neither locks nor allocates once the route's
// candidate set is cached.
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
	res, err := p.pickers[i].Pick(info)
	if p.observe && err == nil {
		picked(info.Ctx, p.sel.Instance(i))
	}
	if err != nil || p.slots == nil {
		return res, err
	}
	slot := &p.slots[i]
	finish := p.sel.Start(i)
	if slot.finish.Load() == nil {
		slot.set(finish)
	}
	if res.Done == nil {
		res.Done = slot.done
	} else {
		child, own := res.Done, slot.done
		res.Done = func(di grpcbalancer.DoneInfo) { own(di); child(di) }
	}
	return res, nil
}

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
// bound done method serves every call without a closure per pick.
type doneSlot struct {
	finish atomic.Pointer[func(error)]
	done   func(grpcbalancer.DoneInfo) // s.onDone, bound once
}

//go:noinline
func (s *doneSlot) set(f func(error)) { s.finish.CompareAndSwap(nil, &f) }

func (s *doneSlot) onDone(di grpcbalancer.DoneInfo) {
	if f := s.finish.Load(); f != nil {
		(*f)(instanceOutcome(di.Err))
	}
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
