package balancer

import (
	"context"
	"errors"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// The pick engine lives in package balancer/pick, which has no I/O; these
// names let users of the runtime write balancer.Route, balancer.WithRoute
// and so on without importing it.

// Route is the routing decision carried down a call chain; see [pick.Route].
type Route = pick.Route

// Constraint is what one request asks of one service; see
// [pick.Constraint].
type Constraint = pick.Constraint

// Selector filters and chooses among the instances of one service; see
// [pick.Selector].
type Selector = pick.Selector

// SelectorConfig configures a Selector; see [pick.SelectorConfig].
type SelectorConfig = pick.SelectorConfig

// Policy chooses an instance within the set a request may use; see
// [pick.Policy].
type Policy = pick.Policy

// Failover says what to do when no instance matches a request's route; see
// [pick.Failover].
type Failover = pick.Failover

// Switches are Nepxion's failover, affinity and isolation switches; see
// [pick.Switches] and [WithSwitches].
type Switches = pick.Switches

// Identity is who is calling, the service instance a balancer runs in; see
// [pick.Identity] and [WithIdentity].
type Identity = pick.Identity

// Tracker holds the per-instance records of one service; see
// [pick.Tracker].
type Tracker = pick.Tracker

// InstanceState is the live record of one instance; see
// [pick.InstanceState].
type InstanceState = pick.InstanceState

// Ejection configures passive health checking; see [pick.Ejection].
type Ejection = pick.Ejection

// NoInstanceError reports a request that no instance may take; see
// [pick.NoInstanceError].
type NoInstanceError = pick.NoInstanceError

// HeaderError is an n-d-* header whose value could not be read; see
// [pick.HeaderError].
type HeaderError = pick.HeaderError

// The policies and failover modes; see package pick.
const (
	RoundRobin     = pick.RoundRobin
	LeastInFlight  = pick.LeastInFlight
	WeightedRandom = pick.WeightedRandom
	Strict         = pick.Strict
	Permissive     = pick.Permissive
)

// Defaults of the engine; see package pick.
const (
	DefaultMaxCached     = pick.DefaultMaxCached
	DefaultEjectFailures = pick.DefaultEjectFailures
	DefaultEjectDuration = pick.DefaultEjectDuration
	MaxEjectMultiplier   = pick.MaxEjectMultiplier
)

// ErrNoInstance means no instance of a service may take the request; see
// [pick.ErrNoInstance].
var ErrNoInstance = pick.ErrNoInstance

// HeaderPrefix starts every routing header ("n-d-"). At a trusted edge all
// inbound headers with this prefix are dropped before the rule is
// evaluated.
const HeaderPrefix = rule.HeaderPrefix

// ErrClosed means the Balancer was closed.
var ErrClosed = errors.New("balancer closed")

// NewSelector returns a selector over instances of service; see
// [pick.NewSelector].
func NewSelector(service string, instances []discovery.Instance, cfg SelectorConfig) *Selector {
	return pick.NewSelector(service, instances, cfg)
}

// NewTracker returns an empty tracker applying e; see [pick.NewTracker].
func NewTracker(e Ejection) *Tracker { return pick.NewTracker(e) }

// WithRoute returns a copy of ctx carrying r. Picks and outbound calls made
// with the returned context follow r.
func WithRoute(ctx context.Context, r Route) context.Context { return pick.WithRoute(ctx, r) }

// RouteFrom returns the route ctx carries, if any.
func RouteFrom(ctx context.Context) (Route, bool) { return pick.RouteFrom(ctx) }

func routeFrom(ctx context.Context) *Route { return pick.FromContext(ctx) }
