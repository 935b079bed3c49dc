package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/graylane/graylane/balancer/internal/circuit"
	"github.com/graylane/graylane/discovery"
)

// Defaults of BreakerPolicy. They are conservative: a breaker opens only
// when a version set fails most attempts, which one bad instance among
// good ones (passive ejection's case) does not do even when it hangs and
// its attempts all time out at once.
const (
	// DefaultBreakerFailureRatio is the share of failed attempts, over
	// the interval, that opens a breaker.
	DefaultBreakerFailureRatio = circuit.DefaultFailureRatio
	// DefaultBreakerMinRequests is how many attempts the interval must
	// hold before the failure ratio counts.
	DefaultBreakerMinRequests = circuit.DefaultMinRequests
	// DefaultBreakerInterval is the rolling window of a closed breaker's
	// counts.
	DefaultBreakerInterval = circuit.DefaultInterval
	// DefaultBreakerOpenTimeout is how long an open breaker fails calls
	// fast before it lets probes through.
	DefaultBreakerOpenTimeout = circuit.DefaultOpenTimeout
	// DefaultBreakerHalfOpenRequests is how many probes a half-open
	// breaker lets through.
	DefaultBreakerHalfOpenRequests = circuit.DefaultHalfOpenRequests
)

// ErrBreakerOpen is matched (errors.Is) by the error of a request that the
// transport did not send because the circuit breaker of its version set is
// open (or half-open with its probes already under way). The error is a
// *BreakerOpenError. The error of a gRPC call failed fast by a breaker
// (package grpcroute) matches it too.
var ErrBreakerOpen = errors.New("balancer: circuit breaker open")

// BreakerOpenError is the error of a request failed fast by a circuit
// breaker: the version set it was routed to failed too often, and the
// breaker lets no request through until its open timeout ends.
type BreakerOpenError struct {
	// Service is the service called and Version the version of the set
	// whose breaker is open ("" for instances without a version).
	Service, Version string
	// HalfOpen reports that the breaker is letting its probes through and
	// this request was not one of them.
	HalfOpen bool
}

func (e *BreakerOpenError) Error() string {
	state := "open"
	if e.HalfOpen {
		state = "half-open, probes under way"
	}
	return "balancer: circuit breaker of " + e.Service + " version " + strconv.Quote(e.Version) + " is " + state + ": failing fast"
}

// Is makes the error match ErrBreakerOpen.
func (e *BreakerOpenError) Is(target error) bool { return target == ErrBreakerOpen }

// BreakerPolicy configures circuit breaking: one breaker per service and
// version set (the instances of one version, which is what a route sends
// to), opened when that set keeps failing. While a breaker is open, the
// transport fails the requests that land on the set at once with a
// *BreakerOpenError, without sending them; after OpenTimeout it lets
// HalfOpenRequests probes through, closing again when all of them
// succeed, opening again at the first failure.
//
// An attempt fails, for the breaker as for passive ejection, on a
// connection error, a timeout, or a status in the retry policy's
// RetryableStatus; an attempt ended because the caller gave up does not
// count. A request failed fast is not retried. Breakers are keyed by
// service and instance version, not by the route's text: their number is
// bounded by the versions discovery has listed for the services called,
// whatever routes requests carry (a route to "1.0;1.1" meets the breaker
// of the version its pick lands on).
//
// Strict failover holds: an open breaker on 1.1 does not send 1.1's
// requests to 1.0. Only a route's own version-failover (from the rule's
// <strategy-failover> or the n-d-version-failover header) takes them
// elsewhere: a request that lands on a breaker that turns it away (open,
// or half-open with its probes under way) is picked again among its
// failover versions, and fails fast if their breaker turns it away too.
//
// gRPC calls through package grpcroute's picker pass the same breakers
// when its builder is given the balancer (grpcroute.WithBalancer), under
// the same policy: a call fails there on codes.Unavailable, the status
// that gRPC gives a connection error and that stands for HTTP's 502, 503
// and 504.
//
// Circuit breaking is on by default with the conservative defaults above;
// the zero value means them. WithBreaker sets a balancer's policy,
// WithServiceBreaker one service's.
type BreakerPolicy struct {
	// Disabled turns circuit breaking off.
	Disabled bool
	// FailureRatio opens the breaker when at least this share of the
	// attempts in the last Interval failed, once there were MinRequests
	// of them; if 0, DefaultBreakerFailureRatio; above 1 (say 2), never.
	FailureRatio float64
	// MinRequests is the fewest attempts in the last Interval for
	// FailureRatio to count; if 0, DefaultBreakerMinRequests.
	MinRequests uint32
	// Interval is the rolling window, in tenths, over which a closed
	// breaker counts attempts; if 0, DefaultBreakerInterval.
	Interval time.Duration
	// Failures, if > 0, also opens the breaker after this many failed
	// attempts in a row, whatever their number in the interval. Off by
	// default: when one instance of a busy set hangs, the attempts
	// waiting on it all time out together, a long run of failures
	// although its retries succeed on the others.
	Failures uint32
	// OpenTimeout is how long an open breaker fails requests fast before
	// it lets probes through; if 0, DefaultBreakerOpenTimeout.
	OpenTimeout time.Duration
	// HalfOpenRequests is how many probes a half-open breaker lets
	// through; that many successes close it. If 0,
	// DefaultBreakerHalfOpenRequests. When all of them are under way and
	// none has gone out or ended for OpenTimeout (streams, long polls),
	// the next call starts a new round of probes, and the old round's
	// outcomes count nothing.
	HalfOpenRequests uint32
}

func (p BreakerPolicy) withDefaults() BreakerPolicy {
	return BreakerPolicy(circuit.Config(p).WithDefaults())
}

func (p BreakerPolicy) validate() error {
	if err := circuit.Config(p).Validate(); err != nil {
		return errors.New("balancer: " + err.Error())
	}
	return nil
}

// WithBreaker sets the balancer's circuit breaking (see BreakerPolicy for
// the defaults; BreakerPolicy{Disabled: true} turns it off).
func WithBreaker(p BreakerPolicy) Option {
	return optionFunc(func(o *options) { o.breaker = p })
}

// WithServiceBreaker sets the circuit breaking of requests to one service,
// instead of the balancer's (WithBreaker); zero fields mean the defaults,
// not the balancer's values.
func WithServiceBreaker(service string, p BreakerPolicy) Option {
	return optionFunc(func(o *options) {
		if o.serviceBreaker == nil {
			o.serviceBreaker = make(map[string]BreakerPolicy)
		}
		o.serviceBreaker[service] = p
	})
}

// newBreakers returns the balancer's breakers, under its policies.
func (b *Balancer) newBreakers() *circuit.Set {
	return circuit.NewSet(func(service string) circuit.Config {
		if sp, ok := b.o.serviceBreaker[service]; ok {
			return circuit.Config(sp)
		}
		return circuit.Config(b.o.breaker)
	}, newBreakerOpenError, b.log)
}

// newBreakerOpenError returns the error of a call to service's version set
// failed fast by its open breaker (halfOpen: a half-open breaker with its
// probes under way). A breaker makes its two errors once, with this.
func newBreakerOpenError(service, version string, halfOpen bool) error {
	return &BreakerOpenError{Service: service, Version: version, HalfOpen: halfOpen}
}

// Breakers returns the balancer's circuit breakers, for package
// grpcroute's pickers (grpcroute.WithBalancer): gRPC calls then pass the
// same breakers as the transport's requests, under the same policy, and
// the debug view shows them. Its type is internal to the module; nil for
// a nil *Balancer.
func (b *Balancer) Breakers() *circuit.Set {
	if b == nil {
		return nil
	}
	return b.breakers
}

// breaker returns the breaker of service's version set, or nil when
// circuit breaking is off for service.
func (b *Balancer) breaker(service, version string) *circuit.Breaker {
	return b.breakers.Get(service, version)
}

// pickAdmitted picks an instance for the call, as pickRoute does, and has
// the breaker of its version set admit the attempt. When that breaker
// turns it away (open, or half-open with its probes under way), the
// request is picked again under the route's version-failover, if it has
// one, and fails with a *BreakerOpenError otherwise.
func (c *call) pickAdmitted(req *http.Request) (*Selector, int, *circuit.Breaker, circuit.Ticket, error) {
	b := c.t.b
	sel, i, err := b.pickRoute(req.Context(), c.service, c.route, c.avoid)
	if err != nil {
		return nil, -1, nil, circuit.Ticket{}, err
	}
	br := b.breaker(c.service, sel.Instance(i).Version)
	tk, err := br.Admit()
	if err == nil {
		return sel, i, br, tk, nil
	}
	fr, ok := circuit.FailoverRoute(c.route, c.service)
	if !ok {
		return nil, -1, nil, tk, err
	}
	sel, i, ferr := b.pickRoute(req.Context(), c.service, fr, c.avoid)
	if ferr != nil {
		return nil, -1, nil, tk, err
	}
	fbr := b.breaker(c.service, sel.Instance(i).Version)
	ftk, ferr := fbr.Admit()
	if ferr != nil {
		return nil, -1, nil, tk, err
	}
	return sel, i, fbr, ftk, nil
}

// breakerOutcome is what an attempt's end says to its version set's
// breaker, as to passive ejection: a connection error, a timeout or a
// retryable status is a failure; an attempt ended because the caller gave
// up is ignored.
func (c *call) breakerOutcome(req *http.Request, resp *http.Response, err error) circuit.Outcome {
	switch {
	case err != nil && req.Context().Err() != nil:
		return circuit.Ignored
	case err != nil:
		return circuit.Failure
	case c.p.retryStatus(resp.StatusCode):
		return circuit.Failure
	}
	return circuit.Success
}

// DebugBreaker is the circuit breaker of one version set.
type DebugBreaker struct {
	Version string `json:"version"`
	// State is "closed", "open" or "half-open".
	State string `json:"state"`
	// Requests, Failures and ConsecutiveFailures count the attempts of
	// the current state (of the rolling interval while closed).
	Requests            uint32 `json:"requests"`
	Failures            uint32 `json:"failures"`
	ConsecutiveFailures uint32 `json:"consecutiveFailures"`
	// Opened is how many times the breaker opened; Rejected how many
	// requests it failed fast.
	Opened   int64 `json:"opened"`
	Rejected int64 `json:"rejected"`
}

// debugBreakers returns the breakers of service, by version.
func (b *Balancer) debugBreakers(service string) []DebugBreaker {
	var out []DebugBreaker
	b.breakers.Range(func(svc, version string, br *circuit.Breaker) bool {
		if svc != service {
			return true
		}
		requests, failures, consecutive := br.Counts()
		out = append(out, DebugBreaker{
			Version: version, State: br.State(),
			Requests: requests, Failures: failures, ConsecutiveFailures: consecutive,
			Opened: br.Opened(), Rejected: br.Rejected(),
		})
		return true
	})
	slices.SortFunc(out, func(x, y DebugBreaker) int { return discovery.CompareVersions(x.Version, y.Version) })
	return out
}

// breakerServices returns names with the services that have breakers
// added: those only gRPC calls reach (grpcroute.WithBalancer) are not among
// the balancer's own.
func (b *Balancer) breakerServices(names []string) []string {
	b.breakers.Range(func(service, _ string, _ *circuit.Breaker) bool {
		if !slices.Contains(names, service) {
			names = append(names, service)
		}
		return true
	})
	return names
}

// validateBreakers checks the breaker policies.
func (o *options) validateBreakers() error {
	if err := o.breaker.validate(); err != nil {
		return err
	}
	for name, p := range o.serviceBreaker {
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w (service %q)", err, name)
		}
	}
	return nil
}
