package balancer

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// Defaults of BreakerPolicy. They are conservative: a breaker opens only
// when a version set fails most attempts, which one bad instance among
// good ones (passive ejection's case) does not do even when it hangs and
// its attempts all time out at once.
const (
	// DefaultBreakerFailureRatio is the share of failed attempts, over
	// the interval, that opens a breaker.
	DefaultBreakerFailureRatio = 0.8
	// DefaultBreakerMinRequests is how many attempts the interval must
	// hold before the failure ratio counts.
	DefaultBreakerMinRequests = 20
	// DefaultBreakerInterval is the rolling window of a closed breaker's
	// counts.
	DefaultBreakerInterval = 10 * time.Second
	// DefaultBreakerOpenTimeout is how long an open breaker fails calls
	// fast before it lets probes through.
	DefaultBreakerOpenTimeout = 5 * time.Second
	// DefaultBreakerHalfOpenRequests is how many probes a half-open
	// breaker lets through.
	DefaultBreakerHalfOpenRequests = 3
)

// ErrBreakerOpen is matched (errors.Is) by the error of a request that the
// transport did not send because the circuit breaker of its version set is
// open (or half-open with its probes already under way). The error is a
// *BreakerOpenError.
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
// elsewhere: a request that lands on an open breaker is picked again among
// its failover versions (one whose breaker is half-open with its probes
// under way fails fast all the same).
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
	// DefaultBreakerHalfOpenRequests.
	HalfOpenRequests uint32
}

func (p BreakerPolicy) withDefaults() BreakerPolicy {
	if p.FailureRatio == 0 {
		p.FailureRatio = DefaultBreakerFailureRatio
	}
	if p.MinRequests == 0 {
		p.MinRequests = DefaultBreakerMinRequests
	}
	if p.Interval == 0 {
		p.Interval = DefaultBreakerInterval
	}
	if p.OpenTimeout == 0 {
		p.OpenTimeout = DefaultBreakerOpenTimeout
	}
	if p.HalfOpenRequests == 0 {
		p.HalfOpenRequests = DefaultBreakerHalfOpenRequests
	}
	return p
}

func (p BreakerPolicy) validate() error {
	switch {
	case !(p.FailureRatio > 0):
		return errors.New("balancer: breaker failure ratio must be > 0")
	case p.Interval < 0:
		return errors.New("balancer: breaker interval < 0")
	case p.OpenTimeout < 0:
		return errors.New("balancer: breaker open timeout < 0")
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

// breakerKey names a version set.
type breakerKey struct{ service, version string }

// breaker is the circuit breaker of one version set. gobreaker's own state
// is behind a mutex; notClosed mirrors it (set by its state change
// callback) so that a request to a closed breaker, the usual case, does not
// take the lock before it is sent.
type breaker struct {
	cb        *gobreaker.CircuitBreaker[struct{}]
	notClosed atomic.Bool
	opened    atomic.Int64 // times it opened
	rejected  atomic.Int64 // requests failed fast
	// The errors of requests failed fast, made once.
	openErr, halfOpenErr *BreakerOpenError
}

// breakers holds a balancer's breakers, made on a version set's first
// attempt.
type breakers struct {
	m sync.Map // breakerKey → *breaker
}

// errCallerGone is the outcome given to a breaker for an attempt that the
// caller ended: excluded from its counts.
var errCallerGone = errors.New("balancer: the caller gave up")

// breaker returns the breaker of service's version set, or nil when
// circuit breaking is off for service.
func (b *Balancer) breaker(service, version string) *breaker {
	k := breakerKey{service, version}
	if v, ok := b.breakers.m.Load(k); ok {
		return v.(*breaker)
	}
	p := &b.o.breaker
	if sp, ok := b.o.serviceBreaker[service]; ok {
		p = &sp
	}
	if p.Disabled {
		// Stored too: the lookup stays one map read.
		v, _ := b.breakers.m.LoadOrStore(k, (*breaker)(nil))
		return v.(*breaker)
	}
	br := &breaker{
		openErr:     &BreakerOpenError{Service: service, Version: version},
		halfOpenErr: &BreakerOpenError{Service: service, Version: version, HalfOpen: true},
	}
	failures, ratio, minReq := p.Failures, p.FailureRatio, p.MinRequests
	log := b.log
	// gobreaker reads the wall clock itself (it takes no clock to inject):
	// the open timeout and the rolling interval are real time. Its state
	// changes reach us through OnStateChange.
	br.cb = gobreaker.NewCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         service + " " + version,
		MaxRequests:  p.HalfOpenRequests,
		Interval:     p.Interval,
		BucketPeriod: p.Interval / 10,
		Timeout:      p.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return failures > 0 && c.ConsecutiveFailures >= failures ||
				c.Requests >= minReq && float64(c.TotalFailures) >= ratio*float64(c.Requests)
		},
		IsExcluded: func(err error) bool { return err == errCallerGone },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			br.notClosed.Store(to != gobreaker.StateClosed)
			if to == gobreaker.StateOpen {
				br.opened.Add(1)
			}
			log.Info("circuit breaker "+to.String(), zap.String("service", service),
				zap.String("version", version), zap.String("from", from.String()))
		},
	})
	v, _ := b.breakers.m.LoadOrStore(k, br)
	return v.(*breaker)
}

// admit reports whether br lets a request through now: at once when it is
// closed, else per its state (an open breaker whose timeout has ended turns
// half-open here). Execute still decides, for the race with a change.
func (br *breaker) admit() error {
	if br == nil || !br.notClosed.Load() {
		return nil
	}
	if br.cb.State() == gobreaker.StateOpen {
		br.rejected.Add(1)
		return br.openErr
	}
	return nil
}

// pickAdmitted picks an instance for the call, as pickRoute does, and the
// breaker of its version set. When that breaker is open, the request is
// picked again under the route's version-failover, if it has one, and
// fails with a *BreakerOpenError otherwise.
func (c *call) pickAdmitted(req *http.Request) (*Selector, int, *breaker, error) {
	b := c.t.b
	sel, i, err := b.pickRoute(req.Context(), c.service, c.route, c.avoid)
	if err != nil {
		return nil, -1, nil, err
	}
	br := b.breaker(c.service, sel.Instance(i).Version)
	err = br.admit()
	if err == nil {
		return sel, i, br, nil
	}
	fr, ok := failoverRoute(c.route, c.service)
	if !ok {
		return nil, -1, nil, err
	}
	sel, i, ferr := b.pickRoute(req.Context(), c.service, fr, c.avoid)
	if ferr != nil {
		return nil, -1, nil, err
	}
	fbr := b.breaker(c.service, sel.Instance(i).Version)
	if fbr.admit() != nil {
		return nil, -1, nil, err
	}
	return sel, i, fbr, nil
}

// failoverRoute returns r with its versions for service replaced by its
// version-failover ones, or false when r has none.
func failoverRoute(r *Route, service string) (*Route, bool) {
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

// send sends one attempt through br (nil: no breaker), which counts its
// outcome as the pick's done function does. A request br turns away
// (it opened, or its probes are under way) fails with a *BreakerOpenError.
func (c *call) send(br *breaker, req *http.Request) (*http.Response, error) {
	if br == nil {
		return c.roundTripAttempt(req)
	}
	var resp *http.Response
	var err error
	_, berr := br.cb.Execute(func() (struct{}, error) {
		resp, err = c.roundTripAttempt(req)
		switch {
		case err != nil && req.Context().Err() != nil:
			return struct{}{}, errCallerGone
		case err != nil:
			return struct{}{}, err
		case c.p.retryStatus(resp.StatusCode):
			return struct{}{}, statusError(resp.StatusCode)
		}
		return struct{}{}, nil
	})
	switch {
	case errors.Is(berr, gobreaker.ErrOpenState):
		br.rejected.Add(1)
		return nil, br.openErr
	case errors.Is(berr, gobreaker.ErrTooManyRequests):
		br.rejected.Add(1)
		return nil, br.halfOpenErr
	}
	return resp, err
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
	b.breakers.m.Range(func(k, v any) bool {
		key, br := k.(breakerKey), v.(*breaker)
		if key.service != service || br == nil {
			return true
		}
		c := br.cb.Counts()
		out = append(out, DebugBreaker{
			Version: key.version, State: br.cb.State().String(),
			Requests: c.Requests, Failures: c.TotalFailures, ConsecutiveFailures: c.ConsecutiveFailures,
			Opened: br.opened.Load(), Rejected: br.rejected.Load(),
		})
		return true
	})
	slices.SortFunc(out, func(x, y DebugBreaker) int { return discovery.CompareVersions(x.Version, y.Version) })
	return out
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
