package grpcroute

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc/resolver"

	"github.com/graylane/graylane/discovery"
)

// Scheme is the default URI scheme of the resolver: targets look like
// "consul:///svc-a" or "consul:///svc-a?dc=dc1&tag=blue".
const Scheme = "consul"

// ErrBadTarget is wrapped by the errors of targets the resolver cannot
// serve: no service name, an authority, an unknown or repeated query
// parameter, or a datacenter and tag without a registry.
var ErrBadTarget = errors.New("bad target")

var _ resolver.Builder = (*ResolverBuilder)(nil)

type resolverOptions struct {
	log    *zap.Logger
	scheme string
	scopes map[scope]discovery.Registry
}

// scope is the (datacenter, tag) pair a target's query selects.
type scope struct{ dc, tag string }

// WithScheme sets the URI scheme the builder serves (default Scheme), for
// programs that need two builders over different registries in one process.
// An empty scheme keeps the default.
func WithScheme(scheme string) ResolverOption {
	return resolverOptionFunc(func(o *resolverOptions) {
		if scheme != "" {
			o.scheme = scheme
		}
	})
}

// WithRegistryFor serves targets whose query names datacenter dc and tag
// (either may be empty) from reg. A discovery registry watches one
// datacenter and one tag filter, fixed when it is made (discovery.NewConsul
// with discovery.WithDatacenter and discovery.WithTag), so each pair that
// targets use needs its registry:
//
//	dc1 := discovery.NewConsul(client, discovery.WithDatacenter("dc1"))
//	b := grpcroute.NewResolverBuilder(local, grpcroute.WithRegistryFor("dc1", "", dc1))
//	// "consul:///svc-a" is served by local, "consul:///svc-a?dc=dc1" by dc1.
//
// The caller keeps ownership of reg and closes it. A nil reg removes the
// pair.
func WithRegistryFor(dc, tag string, reg discovery.Registry) ResolverOption {
	return resolverOptionFunc(func(o *resolverOptions) {
		if reg == nil {
			delete(o.scopes, scope{dc, tag})
			return
		}
		o.scopes[scope{dc, tag}] = reg
	})
}

// ResolverBuilder builds resolvers that turn a target naming a service into
// the service's live instances, read from a discovery.Registry. Make one
// with NewResolverBuilder; pass it to grpc.WithResolvers, or register it
// process-wide with resolver.Register at init time.
//
// # Targets
//
// A target is "consul:///<service>", optionally with the query parameters
// dc and tag: "consul:///svc-a?dc=dc1&tag=blue". The registry passed to
// NewResolverBuilder serves targets without dc and tag; WithRegistryFor adds
// registries for other pairs. A target whose pair has no registry, with an
// authority ("consul://host/svc-a": the registry, not the target, says which
// Consul to ask), with other parameters or with a repeated one fails to
// build with an error wrapping ErrBadTarget, rather than silently reading
// another datacenter.
//
// # Endpoints
//
// Each instance becomes one resolver.Endpoint with one address
// (host:port) and the whole discovery.Instance (version, region, zone, env,
// group, weight, ID, metadata) as an endpoint attribute, read back with
// InstanceFrom. Endpoint attributes, unlike address attributes, do not take
// part in sub-connection identity: an instance that changes version or
// weight keeps its connection.
//
// # Updates
//
// The resolver pushes the first state once the registry has answered and
// then a new state after each change of the instance list, never an
// unchanged one. A service without instances is pushed as an empty list,
// which balancers turn into failing picks. ResolveNow does nothing and never
// blocks: the registry already streams every change (Consul blocking
// queries).
type ResolverBuilder struct {
	opts resolverOptions
}

// NewResolverBuilder returns a builder reading instances from reg (which
// may be nil when only WithRegistryFor registries are wanted). The builder
// never closes the registries it is given.
func NewResolverBuilder(reg discovery.Registry, opts ...ResolverOption) *ResolverBuilder {
	o := resolverOptions{log: zap.NewNop(), scheme: Scheme, scopes: make(map[scope]discovery.Registry)}
	if reg != nil {
		o.scopes[scope{}] = reg
	}
	for _, opt := range opts {
		if opt != nil {
			opt.applyResolver(&o)
		}
	}
	return &ResolverBuilder{opts: o}
}

// Scheme returns the URI scheme the builder serves.
func (b *ResolverBuilder) Scheme() string { return b.opts.scheme }

// Build starts resolving target and returns at once; the first state is
// pushed to cc from the resolver's own goroutine when the registry has
// answered.
func (b *ResolverBuilder) Build(target resolver.Target, cc resolver.ClientConn, _ resolver.BuildOptions) (resolver.Resolver, error) {
	service, sc, err := parseTarget(target)
	if err != nil {
		return nil, err
	}
	reg, ok := b.opts.scopes[sc]
	if !ok {
		return nil, fmt.Errorf("grpcroute: target %q: no registry for dc=%q tag=%q (see WithRegistryFor): %w",
			target.String(), sc.dc, sc.tag, ErrBadTarget)
	}
	w := reg.Watch(service)
	changes, unsubscribe := w.Subscribe()
	r := &watchResolver{
		cc:          cc,
		watch:       w,
		changes:     changes,
		unsubscribe: unsubscribe,
		done:        make(chan struct{}),
		log:         b.opts.log.With(zap.String("service", service)),
	}
	r.wg.Add(1)
	go r.run()
	return r, nil
}

// parseTarget reads the service name and the registry scope of target.
func parseTarget(target resolver.Target) (string, scope, error) {
	var sc scope
	u := target.URL
	bad := func(format string, args ...any) (string, scope, error) {
		return "", sc, fmt.Errorf("grpcroute: target %q: %s: %w", target.String(), fmt.Sprintf(format, args...), ErrBadTarget)
	}
	if u.Host != "" {
		return bad("authority %q not supported: the registry given to the resolver builder says which Consul to ask", u.Host)
	}
	if u.Opaque != "" {
		return bad("want %s:///<service>", u.Scheme)
	}
	service := strings.TrimPrefix(u.Path, "/")
	if service == "" {
		return bad("no service name")
	}
	if strings.ContainsAny(service, "/ \t\r\n") {
		return bad("service name %q has a '/' or white space", service)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		vs := q[k]
		if len(vs) != 1 {
			return bad("parameter %q given %d times", k, len(vs))
		}
		switch k {
		case "dc":
			sc.dc = vs[0]
		case "tag":
			sc.tag = vs[0]
		default:
			return bad("unknown parameter %q (want dc, tag)", k)
		}
	}
	return service, sc, nil
}

// watchResolver follows one discovery.Watch and pushes its snapshots.
type watchResolver struct {
	cc          resolver.ClientConn
	watch       *discovery.Watch
	changes     <-chan struct{}
	unsubscribe func()
	done        chan struct{}
	closeOnce   sync.Once
	wg          sync.WaitGroup
	log         *zap.Logger

	last *discovery.Snapshot // owned by run
}

// ResolveNow does nothing: every change already arrives from the registry.
// It never blocks.
func (r *watchResolver) ResolveNow(resolver.ResolveNowOptions) {}

// Close stops the resolver and waits for its goroutine. It is idempotent.
func (r *watchResolver) Close() {
	r.closeOnce.Do(func() {
		close(r.done)
		r.wg.Wait()
		r.unsubscribe()
	})
}

func (r *watchResolver) run() {
	defer r.wg.Done()
	select {
	case <-r.watch.Ready():
	case <-r.done:
		return
	}
	r.push()
	for {
		select {
		case <-r.changes:
			r.push()
		case <-r.done:
			return
		}
	}
}

// push sends the current snapshot unless it is the one last sent.
func (r *watchResolver) push() {
	snap := r.watch.Snapshot()
	if r.last != nil && (snap == r.last || snap.Equal(r.last)) {
		return
	}
	r.last = snap
	err := r.cc.UpdateState(StateFromSnapshot(snap))
	r.log.Debug("grpc resolver: pushed", zap.Int("instances", snap.Len()),
		zap.Strings("versions", snap.Versions), zap.Error(err))
}

// StateFromSnapshot returns the resolver state of snap: one endpoint per
// instance, in snapshot order, each carrying its instance (see
// InstanceFrom). Addresses is filled as well, for balancers that still read
// it. It is exported for resolvers of other registries and for tests.
func StateFromSnapshot(snap *discovery.Snapshot) resolver.State {
	n := snap.Len()
	st := resolver.State{
		Endpoints: make([]resolver.Endpoint, n),
		Addresses: make([]resolver.Address, n),
	}
	for i := range n {
		in := &snap.Instances[i]
		addr := resolver.Address{Addr: in.HostPort()}
		st.Addresses[i] = addr
		st.Endpoints[i] = WithInstance(resolver.Endpoint{Addresses: []resolver.Address{addr}}, *in)
	}
	return st
}

// instanceKey is the endpoint attribute key of the instance. Unexported and
// typed, so no other package can collide with it.
type instanceKey struct{}

// instanceValue holds the instance in the attributes. attributes.Equal
// compares values with == unless they have an Equal method, and an
// Instance (it holds a map) is not comparable.
type instanceValue struct{ in discovery.Instance }

// Equal reports whether o holds an instance with the same data.
func (v *instanceValue) Equal(o any) bool {
	ov, ok := o.(*instanceValue)
	if !ok {
		return false
	}
	if v == ov {
		return true
	}
	return v.in.Equal(&ov.in)
}

// String names the instance in gRPC's debug output.
func (v *instanceValue) String() string {
	return v.in.Service + "/" + v.in.ID + "@" + v.in.HostPort() + " version=" + v.in.Version
}

// WithInstance returns ep with in attached as an endpoint attribute, for
// resolvers of other registries that want graylane's picker to route
// their endpoints.
func WithInstance(ep resolver.Endpoint, in discovery.Instance) resolver.Endpoint {
	ep.Attributes = ep.Attributes.WithValue(instanceKey{}, &instanceValue{in: in})
	return ep
}

// InstanceFrom returns the instance that the resolver attached to ep, and
// whether there was one. The instance's Meta map is shared: do not modify.
func InstanceFrom(ep resolver.Endpoint) (discovery.Instance, bool) {
	if p := instanceOf(ep); p != nil {
		return *p, true
	}
	return discovery.Instance{}, false
}

// instanceOf returns a pointer to the attached instance, or nil.
func instanceOf(ep resolver.Endpoint) *discovery.Instance {
	if v, ok := ep.Attributes.Value(instanceKey{}).(*instanceValue); ok {
		return &v.in
	}
	return nil
}
