package balancer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/internal/clock"
	"github.com/graylane/graylane/rule"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// DefaultReadyWait is how long a pick waits for a service's first discovery
// answer before failing with ErrNoInstance. It only ever applies to the
// first calls to a service, while its watch starts.
const DefaultReadyWait = 5 * time.Second

// Option configures New.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	log         *zap.Logger
	self        pick.Identity
	selfHeaders *pick.IdentityHeaders // self as n-d-service-* headers; nil when anonymous
	ruleSource  *discovery.RuleWatch
	fixedRule   *rule.Rule
	policy      Policy
	failover    Failover
	switches    Switches
	entry       bool
	trustedEdge bool
	forward     []string // canonical names
	retry       RetryPolicy
	// serviceRetry holds the policies of WithServiceRetry, by service.
	serviceRetry map[string]RetryPolicy
	breaker      BreakerPolicy
	// serviceBreaker holds the policies of WithServiceBreaker, by service.
	serviceBreaker map[string]BreakerPolicy
	// connectTimeout bounds the dial of the transport built for a nil base.
	connectTimeout time.Duration
	ejection       Ejection
	priority       rule.HeaderPriority
	readyWait      time.Duration
	maxCached      int
	// removalGrace keeps instances that left discovery for routes nothing
	// else can take.
	removalGrace time.Duration
	// expansionHold keeps absent versions in a spec's expansion; 0 means
	// DefaultExpansionHold, < 0 none.
	expansionHold time.Duration

	// Observability (telemetry.go, baggage.go).
	meterProvider   metric.MeterProvider
	tracerProvider  trace.TracerProvider
	propagator      propagation.TextMapPropagator
	instanceMetrics bool
	baggage         bool

	// debugSections are the WithDebugSection sections, in order.
	debugSections []debugSection

	// Injected by tests.
	draw      func() uint64
	now       func() time.Time
	afterFunc func(d time.Duration, f func()) (stop func() bool)
	sleep     func(context.Context, time.Duration) bool
}

func newOptions(opts []Option) options {
	o := options{
		log:            zap.NewNop(),
		readyWait:      DefaultReadyWait,
		connectTimeout: DefaultConnectTimeout,
		draw:           rand.Uint64,
		now:            time.Now,
		afterFunc:      func(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop },
		sleep:          clock.Sleep,
	}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	o.retry = o.retry.withDefaults()
	for name, p := range o.serviceRetry {
		o.serviceRetry[name] = p.withDefaults()
	}
	o.breaker = o.breaker.withDefaults()
	for name, p := range o.serviceBreaker {
		o.serviceBreaker[name] = p.withDefaults()
	}
	return o
}

// validateRetry checks the retry policies.
func (o *options) validateRetry() error {
	if err := o.retry.validate(); err != nil {
		return err
	}
	for name, p := range o.serviceRetry {
		if err := p.validate(); err != nil {
			return fmt.Errorf("%w (service %q)", err, name)
		}
	}
	return nil
}

// WithLogger sets the logger (default zap.NewNop()). Nil keeps the default.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.log = l
		}
	})
}

// WithIdentity tells the balancer who it runs in: the calling service's
// name, instance id, address, version, region, env, zone and group
// ([pick.IdentityOf] reads them from this process's own registration). Each
// outgoing call carries it in Nepxion's n-d-service-* headers, and picks
// that depend on the caller (the rule's <discovery> section, zone and
// region affinity, group isolation) read it. Without it the balancer is an
// anonymous caller.
func WithIdentity(id pick.Identity) Option {
	return optionFunc(func(o *options) { o.self, o.selfHeaders = id, id.Headers() })
}

// Identity returns the balancer's own identity (WithIdentity); the zero
// Identity for a nil *Balancer.
func (b *Balancer) Identity() pick.Identity {
	if b == nil {
		return pick.Identity{}
	}
	return b.o.self
}

// WithRuleSource follows the release rule published by w (Consul KV keys or
// a static source). Each document may be a rule (XML, JSON or YAML) or an
// orchestration spec, which the balancer expands against the live versions
// of its services and expands again when they change. A document that does
// not parse is logged and the previous rule stays in force; a deleted key
// clears the rule. The balancer does not close w.
func WithRuleSource(w *discovery.RuleWatch) Option {
	return optionFunc(func(o *options) { o.ruleSource = w })
}

// WithRule applies a fixed rule. WithRuleSource wins when both are given.
func WithRule(r *rule.Rule) Option {
	return optionFunc(func(o *options) { o.fixedRule = r })
}

// WithPolicy sets how an instance is chosen within a set (default
// RoundRobin).
func WithPolicy(p Policy) Option {
	return optionFunc(func(o *options) { o.policy = p })
}

// WithFailover sets what happens when no instance matches a route (default
// Strict).
func WithFailover(f Failover) Option {
	return optionFunc(func(o *options) { o.failover = f })
}

// WithSwitches turns on Nepxion's failover, affinity and isolation
// behaviours (spring.application.strategy.*.enabled; all off by default):
// env failover to "common", zone affinity with zone failover, region
// transfer and failover, address failover, version prefer and failover,
// group isolation, and graylane's region affinity. The caller's zone,
// region and group come from WithIdentity. See [pick.Switches].
func WithSwitches(s Switches) Option {
	return optionFunc(func(o *options) { o.switches = s })
}

// WithEntry marks this process as an entry point (a gateway or edge
// service): its inbound step (Middleware, grpcroute's server interceptors,
// Inbound) evaluates the rule for every inbound request,
// and any route headers that arrived override the decision per header. A
// process that is not an entry only evaluates the rule for requests that
// arrive without routing headers.
func WithEntry(entry bool) Option {
	return optionFunc(func(o *options) { o.entry = entry })
}

// WithTrustedEdge makes the inbound step (Middleware, grpcroute's server
// interceptors) drop every inbound n-d-* header (and its n_d_* spellings,
// which CGI and WSGI stacks read as the same name) before the rule is
// evaluated, so that clients outside cannot route
// themselves. Use it at the boundary of the trusted network; it implies
// WithEntry(true).
func WithTrustedEdge(edge bool) Option {
	return optionFunc(func(o *options) { o.trustedEdge = edge })
}

// WithForwardHeaders names business headers that the inbound step captures
// from inbound requests (HTTP headers or gRPC metadata) and the transport
// or client interceptor copies onto outbound ones, so
// they travel down the chain with the route (for example a user or tenant
// id that rules test). The rule's built-in header names always travel.
func WithForwardHeaders(names ...string) Option {
	return optionFunc(func(o *options) {
		for _, n := range names {
			if n != "" {
				o.forward = append(o.forward, http.CanonicalHeaderKey(n))
			}
		}
	})
}

// WithRetry sets the transport's retry policy (see RetryPolicy for the
// defaults).
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(o *options) { o.retry = p })
}

// WithServiceRetry sets the retry policy of requests to one service,
// instead of the balancer's (WithRetry); zero fields mean the defaults,
// not the balancer's values.
func WithServiceRetry(service string, p RetryPolicy) Option {
	return optionFunc(func(o *options) {
		if o.serviceRetry == nil {
			o.serviceRetry = make(map[string]RetryPolicy)
		}
		o.serviceRetry[service] = p
	})
}

// WithConnectTimeout sets how long the transport that
// (*Balancer).Transport builds for a nil base (and so (*Balancer).Client)
// waits for a connection to an instance before it gives up and the request
// is retried on another one (default DefaultConnectTimeout; 0 or less:
// only the request's context bounds it). A base given by the caller keeps
// its own dialer.
func WithConnectTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.connectTimeout = max(d, 0) })
}

// WithEjection sets passive health checking (see Ejection for the
// defaults).
func WithEjection(e Ejection) Option {
	return optionFunc(func(o *options) { o.ejection = e })
}

// WithHeaderPriority says whose value wins when the rule's built-in header
// and the request carry the same name: rule.BuiltInFirst (the default, as
// Nepxion) or rule.RequestFirst.
func WithHeaderPriority(p rule.HeaderPriority) Option {
	return optionFunc(func(o *options) { o.priority = p })
}

// WithReadyWait sets how long the first picks of a service wait for its
// first discovery answer (default DefaultReadyWait; < 0: never wait).
func WithReadyWait(d time.Duration) Option {
	return optionFunc(func(o *options) { o.readyWait = d })
}

// WithMaxCachedRoutes bounds the distinct route constraints cached per
// service (default DefaultMaxCached).
func WithMaxCachedRoutes(n int) Option {
	return optionFunc(func(o *options) { o.maxCached = n })
}

// WithRemovalGrace keeps an instance that discovery stops listing (it was
// deregistered, or its health check failed) available for grace, but only
// to requests whose route no listed instance can take (default 0: off).
//
// It closes the gap of a rolling release: when the last instances of
// version 1.0 are deregistered, requests already routed to 1.0 (decided at
// the entry before the rule moved on, or travelling down the chain) would
// otherwise fail with ErrNoInstance until the rule in force stops sending
// them there. Instances that shut down gracefully (deregister, then keep
// serving for a while, as a Kubernetes preStop delay does) answer them. A
// crashed instance fails such a request with a connection error instead
// of ErrNoInstance; its calls are retried as usual. Routes keep their
// meaning: a request routed to 1.1 never lands on a lingering 1.0. The
// grace counts from when discovery's change reaches the balancer: for each
// service it has picked for, the balancer follows the watch with one
// goroutine (only when the grace is on), so an instance that left long
// before the next call is not revived by it.
func WithRemovalGrace(d time.Duration) Option {
	return optionFunc(func(o *options) { o.removalGrace = d })
}

// DefaultExpansionHold is how long a version stays in the expansion of an
// orchestration spec after its last instance leaves discovery (see
// WithExpansionHold).
const DefaultExpansionHold = 30 * time.Second

// WithExpansionHold sets how long a version that a followed orchestration
// spec's expansion includes stays in it after discovery stops listing its
// last instance (default DefaultExpansionHold; < 0: it leaves at once). A
// version that appears joins at once.
//
// Each process expands a spec against its own view of the instances. While
// instances re-register one by one after a Consul agent restart, or when a
// version is briefly missing from one view, a process that expanded the
// spec without the hold could see only the new version of a service and
// make it the old side (route-0), mixing the sides of a chain. With the
// hold, a transient absence changes nothing: the old version stays old
// until it has been gone for the hold.
//
// The price is paid when a version leaves for good: it stays in the
// expansion for the hold, and requests routed to it meanwhile fail with
// ErrNoInstance (or fail over, or reach its lingering instances). Move
// traffic off a version before retiring it, or keep WithRemovalGrace at
// least as long as the hold so that its instances, shutting down
// gracefully, answer them.
//
// A process that starts while a version is missing has no history to hold
// on to. Where a fleet must never mix, the source of truth is a rule
// rendered once, centrally, and published as a rule rather than a spec (graylane render, then graylane publish; a
// long-running graylane orchestrate is planned), so that every hop, Go or
// Java, reads the same document.
func WithExpansionHold(d time.Duration) Option {
	return optionFunc(func(o *options) { o.expansionHold = d })
}

// withDraw replaces the random source (tests).
func withDraw(f func() uint64) Option {
	return optionFunc(func(o *options) { o.draw = f })
}

// withSleep replaces the pause between retries (tests).
func withSleep(f func(context.Context, time.Duration) bool) Option {
	return optionFunc(func(o *options) { o.sleep = f })
}

// withClock replaces the clock (tests).
func withClock(now func() time.Time) Option {
	return optionFunc(func(o *options) { o.now = now })
}

// withAfterFunc replaces time.AfterFunc for the spec follower's wake-ups
// (tests).
func withAfterFunc(f func(d time.Duration, fn func()) (stop func() bool)) Option {
	return optionFunc(func(o *options) { o.afterFunc = f })
}
