package grpcroute

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	grpcbalancer "google.golang.org/grpc/balancer"
	"google.golang.org/grpc/balancer/endpointsharding"
	"google.golang.org/grpc/balancer/pickfirst"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/serviceconfig"
	"google.golang.org/grpc/status"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/internal/circuit"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
)

// Name is the name of the load-balancing policy, as service configs name
// it.
const Name = "graylane"

// DefaultServiceConfig is a service config selecting the policy with the
// builder's defaults, for grpc.WithDefaultServiceConfig.
const DefaultServiceConfig = `{"loadBalancingConfig":[{"graylane":{}}]}`

var (
	_ grpcbalancer.Builder      = (*BalancerBuilder)(nil)
	_ grpcbalancer.ConfigParser = (*BalancerBuilder)(nil)
)

type balancerOptions struct {
	log *zap.Logger
	cfg Config
	// breaker is WithBreaker's policy, for the builder's own breakers;
	// breakerErr what is wrong with it.
	breaker    balancer.BreakerPolicy
	breakerErr error
	// observe: pickers tell the interceptors' metrics which instance
	// they picked (WithMeterProvider).
	observe bool
}

// WithPolicy sets the default policy within a routed set (default
// pick.RoundRobin); a service config's "policy" overrides it.
func WithPolicy(p pick.Policy) BalancerOption {
	return balancerOptionFunc(func(o *balancerOptions) { o.cfg.Policy = p })
}

// WithFailover sets the default failover (default pick.Strict); a
// service config's "failover" overrides it.
func WithFailover(f pick.Failover) BalancerOption {
	return balancerOptionFunc(func(o *balancerOptions) { o.cfg.Failover = f })
}

// WithEjection sets the default passive health checking (see
// pick.Ejection); a service config's "ejection" overrides it.
func WithEjection(e pick.Ejection) BalancerOption {
	return balancerOptionFunc(func(o *balancerOptions) { o.cfg.Ejection = e })
}

// WithIdentity sets the calling instance (see pick.Identity): its zone,
// region and group for zone and region affinity and group isolation.
func WithIdentity(id pick.Identity) BalancerOption {
	return balancerOptionFunc(func(o *balancerOptions) { o.cfg.Self = id })
}

// WithSwitches turns on Nepxion's failover, affinity and isolation
// switches (see pick.Switches), as balancer.WithSwitches does for HTTP.
func WithSwitches(s pick.Switches) BalancerOption {
	return balancerOptionFunc(func(o *balancerOptions) { o.cfg.Switches = s })
}

// WithBalancer makes the pickers follow b where a rule depends on the
// caller: b's identity and switches (as WithIdentity and WithSwitches) and
// the <discovery> section of b's rule in force, resolved for b's identity
// on every pick, as b's own picks do. gRPC calls then also pass b's
// circuit breakers, those of its HTTP requests, under b's policy
// (balancer.WithBreaker, balancer.WithServiceBreaker), shown in b's debug
// view; WithBreaker does not apply.
func WithBalancer(b *balancer.Balancer) BalancerOption {
	return balancerOptionFunc(func(o *balancerOptions) {
		o.cfg.Self, o.cfg.Switches, o.cfg.rules = b.Identity(), b.Switches(), b
	})
}

// WithBreaker sets the circuit breaking of the builder's calls when it has
// no balancer (WithBalancer): one breaker per service and version set,
// shared by the channels the builder serves, as balancer.BreakerPolicy
// describes and with its defaults (on by default;
// balancer.BreakerPolicy{Disabled: true} turns it off). A bad policy fails
// the channels' configs (ParseConfig) with its reason.
//
// A breaker counts a call's outcome when gRPC ends it (the pick's Done):
// codes.Unavailable is a failure; Canceled and DeadlineExceeded count
// nothing, being the caller's; any other status is a success. A call that
// lands on an open breaker (or a half-open one with its probes under way)
// is picked again under the route's version-failover, if it has one, and
// otherwise fails at once with codes.Unavailable and a message naming the
// service, the version and the breaker's state; errors.Is(err,
// balancer.ErrBreakerOpen) holds for the error the caller gets, and
// errors.As finds a *balancer.BreakerOpenError in it.
func WithBreaker(p balancer.BreakerPolicy) BalancerOption {
	return balancerOptionFunc(func(o *balancerOptions) { o.breaker = p })
}

// Config is the policy's configuration: the builder's defaults, which the
// JSON object under "graylane" in a service config overrides field by
// field (the comments are explanations, not part of the JSON):
//
//	{"loadBalancingConfig": [{"graylane": {
//	    "service":  "svc-a",            // default: the instances' service, else the target's path
//	    "policy":   "round-robin",      // or "least-in-flight", "weighted-random"
//	    "failover": "strict",           // or "permissive"
//	    "ejection": {"failures": 5, "duration": "10s"},  // failures < 0: never eject
//	    "maxCachedRoutes": 256
//	}}]}
//
// Unknown fields and values are rejected with an error naming them.
type Config struct {
	serviceconfig.LoadBalancingConfig `json:"-"`

	// Service is the service name routes are looked up by. Empty means the
	// service of the resolver's instances, or else the target's endpoint
	// ("svc-a" in "consul:///svc-a"); set it for other resolvers, such as
	// "dns:///svc-a.internal:50051".
	Service  string
	Policy   pick.Policy
	Failover pick.Failover
	Ejection pick.Ejection
	// MaxCachedRoutes bounds the distinct route constraints cached per
	// picker; if 0, pick.DefaultMaxCached.
	MaxCachedRoutes int
	// Self and Switches come from the builder (WithIdentity,
	// WithSwitches); a service config does not set them.
	Self     pick.Identity `json:"-"`
	Switches pick.Switches `json:"-"`

	rules *balancer.Balancer // WithBalancer: the rule's local values; nil when none
	// breakers are the circuit breakers of the calls: the balancer's
	// (WithBalancer) or the builder's own (WithBreaker); nil when off.
	breakers *circuit.Set
}

// BalancerBuilder builds the graylane policy: one pick-first child per
// endpoint (grpc-go's endpointsharding, as round_robin does), and a picker
// that routes each call by the pick.Route in its context over the
// ready endpoints, with the balancer package's Selector, the same code
// that HTTP picks use. See the package documentation for the whole setup.
type BalancerBuilder struct {
	opts balancerOptions
}

// NewBalancerBuilder returns a builder of the policy with the given
// defaults. Register it once, at init time, with Register or
// grpc's balancer.Register.
func NewBalancerBuilder(opts ...BalancerOption) *BalancerBuilder {
	o := balancerOptions{log: zap.NewNop()}
	for _, opt := range opts {
		if opt != nil {
			opt.applyBalancer(&o)
		}
	}
	switch {
	case o.cfg.rules != nil:
		o.cfg.breakers = o.cfg.rules.Breakers()
	case o.breaker.Disabled:
	default:
		c := circuit.Config(o.breaker).WithDefaults()
		if err := c.Validate(); err != nil {
			o.breakerErr = err
			break
		}
		o.cfg.breakers = circuit.NewSet(func(string) circuit.Config { return c }, func(service, version string, halfOpen bool) error {
			return &balancer.BreakerOpenError{Service: service, Version: version, HalfOpen: halfOpen}
		}, o.log)
	}
	return &BalancerBuilder{opts: o}
}

// Register registers the policy, under Name, in grpc-go's global balancer
// registry, with the given defaults. Like grpc's own balancer.Register it
// must only be called at initialisation time (in an init function or at
// the start of main, before any channel is created), and is not safe for
// concurrent use; a later registration under the same name replaces the
// earlier one. Channels then select the policy by service config, for
// example grpc.WithDefaultServiceConfig(DefaultServiceConfig).
func Register(opts ...BalancerOption) {
	grpcbalancer.Register(NewBalancerBuilder(opts...))
}

// Name returns Name.
func (bb *BalancerBuilder) Name() string { return Name }

// Build returns a balancer for one channel.
func (bb *BalancerBuilder) Build(cc grpcbalancer.ClientConn, opts grpcbalancer.BuildOptions) grpcbalancer.Balancer {
	target := opts.Target.Endpoint()
	b := &routeBalancer{
		ClientConn: cc,
		target:     target,
		log:        bb.opts.log.With(zap.String("target", opts.Target.String())),
		cfg:        bb.opts.cfg,
		observe:    bb.opts.observe,
	}
	b.tracker = pick.NewTracker(b.cfg.Ejection)
	b.child = endpointsharding.NewBalancer(b, opts, grpcbalancer.Get(pickfirst.Name).Build, endpointsharding.Options{})
	return b
}

// jsonConfig is Config as JSON; pointers tell absent fields apart.
type jsonConfig struct {
	Service  *string `json:"service"`
	Policy   *string `json:"policy"`
	Failover *string `json:"failover"`
	Ejection *struct {
		Failures *int    `json:"failures"`
		Duration *string `json:"duration"`
	} `json:"ejection"`
	MaxCachedRoutes *int `json:"maxCachedRoutes"`
}

// ErrBadConfig is wrapped by ParseConfig's errors.
var ErrBadConfig = errors.New("bad graylane balancer config")

// ParseConfig reads the policy's JSON configuration over the builder's
// defaults. The result is a *Config.
func (bb *BalancerBuilder) ParseConfig(js json.RawMessage) (serviceconfig.LoadBalancingConfig, error) {
	cfg := bb.opts.cfg
	bad := func(format string, args ...any) (serviceconfig.LoadBalancingConfig, error) {
		return nil, fmt.Errorf("grpcroute: %s: %w", fmt.Sprintf(format, args...), ErrBadConfig)
	}
	if bb.opts.breakerErr != nil {
		return bad("builder's WithBreaker: %v", bb.opts.breakerErr)
	}
	var jc jsonConfig
	if len(bytes.TrimSpace(js)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(js))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&jc); err != nil {
			return bad("%v", err)
		}
		if dec.More() {
			return bad("data after the config object")
		}
	}
	if jc.Service != nil {
		cfg.Service = strings.TrimSpace(*jc.Service)
	}
	if jc.Policy != nil {
		p, ok := parsePolicy(*jc.Policy)
		if !ok {
			return bad("policy %q: want %s, %s or %s", *jc.Policy, pick.RoundRobin, pick.LeastInFlight, pick.WeightedRandom)
		}
		cfg.Policy = p
	}
	if jc.Failover != nil {
		f, ok := parseFailover(*jc.Failover)
		if !ok {
			return bad("failover %q: want %s or %s", *jc.Failover, pick.Strict, pick.Permissive)
		}
		cfg.Failover = f
	}
	if e := jc.Ejection; e != nil {
		if e.Failures != nil {
			cfg.Ejection.Failures = *e.Failures
		}
		if e.Duration != nil {
			d, err := time.ParseDuration(*e.Duration)
			if err != nil || d <= 0 {
				return bad("ejection duration %q: want a positive duration such as \"10s\"", *e.Duration)
			}
			cfg.Ejection.Duration = d
		}
	}
	if jc.MaxCachedRoutes != nil {
		if *jc.MaxCachedRoutes < 0 {
			return bad("maxCachedRoutes %d is negative", *jc.MaxCachedRoutes)
		}
		cfg.MaxCachedRoutes = *jc.MaxCachedRoutes
	}
	return &cfg, nil
}

func parsePolicy(s string) (pick.Policy, bool) {
	for _, p := range []pick.Policy{pick.RoundRobin, pick.LeastInFlight, pick.WeightedRandom} {
		if strings.EqualFold(strings.TrimSpace(s), p.String()) {
			return p, true
		}
	}
	return 0, false
}

func parseFailover(s string) (pick.Failover, bool) {
	for _, f := range []pick.Failover{pick.Strict, pick.Permissive} {
		if strings.EqualFold(strings.TrimSpace(s), f.String()) {
			return f, true
		}
	}
	return 0, false
}

// routeBalancer is the policy's balancer for one channel. grpc-go calls
// its Balancer methods from one goroutine; the child calls UpdateState from
// others, so the shared fields are under mu.
type routeBalancer struct {
	// Embedded to intercept UpdateState calls from the child.
	grpcbalancer.ClientConn
	child   grpcbalancer.Balancer
	target  string
	log     *zap.Logger
	observe bool

	mu          sync.Mutex
	cfg         Config
	tracker     *pick.Tracker
	resolverErr error
	closed      bool
}

// UpdateClientConnState applies a new config and endpoint list.
func (b *routeBalancer) UpdateClientConnState(ccs grpcbalancer.ClientConnState) error {
	b.mu.Lock()
	if cfg, ok := ccs.BalancerConfig.(*Config); ok && cfg != nil {
		if cfg.Ejection != b.cfg.Ejection {
			b.tracker = pick.NewTracker(cfg.Ejection)
		}
		b.cfg = *cfg
	}
	b.resolverErr = nil
	b.mu.Unlock()
	// Not under mu: the child calls UpdateState synchronously.
	return b.child.UpdateClientConnState(grpcbalancer.ClientConnState{
		ResolverState: pickfirst.EnableHealthListener(ccs.ResolverState),
	})
}

// ResolverError keeps the error for the picker's message and passes it on.
func (b *routeBalancer) ResolverError(err error) {
	b.mu.Lock()
	b.resolverErr = err
	b.mu.Unlock()
	b.child.ResolverError(err)
}

// UpdateSubConnState is not used: sub-connections report to their
// pick-first children through state listeners.
func (b *routeBalancer) UpdateSubConnState(grpcbalancer.SubConn, grpcbalancer.SubConnState) {}

// ExitIdle asks every child to connect.
func (b *routeBalancer) ExitIdle() { b.child.ExitIdle() }

// Close closes the children.
func (b *routeBalancer) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.child.Close()
}

// UpdateState receives the children's aggregated state and publishes the
// routing picker over the ready children.
func (b *routeBalancer) UpdateState(state grpcbalancer.State) {
	children := endpointsharding.ChildStatesFromPicker(state.Picker)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	service := b.cfg.Service
	if service == "" {
		service = b.target
		for i := range children {
			if in := instanceOf(children[i].Endpoint); in != nil && in.Service != "" {
				service = in.Service
				break
			}
		}
	}
	if len(children) == 0 {
		msg := "grpcroute: no instance of " + quote(service)
		if b.resolverErr != nil {
			msg += ": " + b.resolverErr.Error()
		} else {
			msg += ": the resolver returned none"
		}
		b.ClientConn.UpdateState(grpcbalancer.State{
			ConnectivityState: connectivity.TransientFailure,
			Picker:            errPicker{status.Error(codes.Unavailable, msg)},
		})
		return
	}
	var ready, pending []discovery.Instance
	var pickers []grpcbalancer.Picker
	for i := range children {
		c := &children[i]
		switch c.State.ConnectivityState {
		case connectivity.Ready:
			ready = append(ready, endpointInstance(c, service))
			pickers = append(pickers, c.State.Picker)
		case connectivity.Connecting, connectivity.Idle:
			pending = append(pending, endpointInstance(c, service))
		}
	}
	if len(ready) == 0 {
		// Nothing to route over yet: the children's own picker queues
		// calls while they connect and reports their failure otherwise.
		b.ClientConn.UpdateState(state)
		return
	}
	p := newPicker(service, ready, pickers, pending, len(children), b.cfg, b.tracker)
	p.observe = b.observe
	b.log.Debug("grpc balancer: picker", zap.String("service", service),
		zap.Int("ready", len(ready)), zap.Int("pending", len(pending)), zap.Int("endpoints", len(children)))
	b.ClientConn.UpdateState(grpcbalancer.State{ConnectivityState: connectivity.Ready, Picker: p})
}

// endpointInstance returns the instance of a child's endpoint; endpoints of
// other resolvers become an instance of service at their first address,
// with the default version.
func endpointInstance(c *endpointsharding.ChildState, service string) discovery.Instance {
	if in := instanceOf(c.Endpoint); in != nil {
		return *in
	}
	in := discovery.Instance{Service: service, Version: discovery.DefaultVersion}
	if len(c.Endpoint.Addresses) > 0 {
		addr := c.Endpoint.Addresses[0].Addr
		in.ID, in.Address = addr, addr
		if host, port, err := net.SplitHostPort(addr); err == nil {
			in.Address = host
			in.Port, _ = strconv.Atoi(port)
		}
	}
	return in
}

// errPicker fails every pick with err.
type errPicker struct{ err error }

func (p errPicker) Pick(grpcbalancer.PickInfo) (grpcbalancer.PickResult, error) {
	return grpcbalancer.PickResult{}, p.err
}

func quote(s string) string { return strconv.Quote(s) }
