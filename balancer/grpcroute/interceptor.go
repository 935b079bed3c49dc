package grpcroute

import (
	"context"
	"net/http"
	"strings"
	"sync"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/expr"
)

type interceptorOptions struct {
	log         *zap.Logger
	entry       bool
	trustedEdge bool
	forward     []string // lower-case metadata keys
}

// WithEntry marks this server as an entry point (a gateway or edge
// service): its server interceptors evaluate the balancer's rule for every
// inbound call, and n-d-* metadata that arrived overrides the decision per
// key. A server that is not an entry evaluates the rule only for calls that
// arrive without routing metadata.
func WithEntry(entry bool) InterceptorOption {
	return interceptorOptionFunc(func(o *interceptorOptions) { o.entry = entry })
}

// WithTrustedEdge makes the server interceptors drop inbound n-d-* metadata
// before the rule is evaluated, so that callers outside the trusted network
// cannot route themselves; the handler does not see them either. It
// implies WithEntry(true).
func WithTrustedEdge(edge bool) InterceptorOption {
	return interceptorOptionFunc(func(o *interceptorOptions) { o.trustedEdge = edge })
}

// WithForwardMetadata names business metadata keys (for example a user or
// tenant id that rules test) that the server interceptors capture from
// inbound calls and the client interceptors copy onto outbound ones, so
// they travel down the chain with the route, across HTTP hops too (as the
// headers of the same names). The rule's built-in header names always
// travel. Names match in any case.
func WithForwardMetadata(names ...string) InterceptorOption {
	return interceptorOptionFunc(func(o *interceptorOptions) {
		for _, n := range names {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" && !strings.HasPrefix(n, balancer.HeaderPrefix) {
				o.forward = append(o.forward, n)
			}
		}
	})
}

// Interceptors move the routing decision between gRPC metadata and the
// balancer.Route in a call's context, so that a decision made at the entry
// sticks for the whole chain, across gRPC and HTTP hops alike:
//
//   - server side, inbound n-d-* metadata (Nepxion's names:
//     n-d-version, n-d-region, ...) and the forwarded business metadata
//     become the context's route; at an entry, or when a call arrives
//     without routing metadata, the balancer's rule decides;
//   - client side, the context's route is written to the outgoing
//     metadata, where the picker of this package and the next hop read it.
//
// An HTTP hop in between uses the balancer's middleware and transport,
// which read and write the same route: HTTP in, gRPC out and gRPC in, HTTP
// out keep the route.
//
// Interceptors are safe for concurrent use.
type Interceptors struct {
	b    *balancer.Balancer
	opts interceptorOptions
}

// NewInterceptors returns the interceptors of b, whose rule decides at
// entries and for calls that carry no route. b may be nil: the
// interceptors then only carry routes, deciding nothing.
func NewInterceptors(b *balancer.Balancer, opts ...InterceptorOption) *Interceptors {
	o := interceptorOptions{log: zap.NewNop()}
	for _, opt := range opts {
		if opt != nil {
			opt.applyInterceptor(&o)
		}
	}
	if o.trustedEdge {
		o.entry = true
	}
	return &Interceptors{b: b, opts: o}
}

// ServerOptions returns the server options that install the unary and
// stream server interceptors.
func (i *Interceptors) ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(i.UnaryServer()),
		grpc.ChainStreamInterceptor(i.StreamServer()),
	}
}

// DialOptions returns the dial options that install the unary and stream
// client interceptors.
func (i *Interceptors) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(i.UnaryClient()),
		grpc.WithChainStreamInterceptor(i.StreamClient()),
	}
}

// UnaryServer returns the unary server interceptor.
func (i *Interceptors) UnaryServer() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return handler(i.Inbound(ctx, info.FullMethod), req)
	}
}

// StreamServer returns the stream server interceptor.
func (i *Interceptors) StreamServer() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		return handler(srv, &routedServerStream{ServerStream: ss, ctx: i.Inbound(ss.Context(), info.FullMethod)})
	}
}

// routedServerStream is a ServerStream whose context carries the route.
type routedServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *routedServerStream) Context() context.Context { return s.ctx }

// UnaryClient returns the unary client interceptor.
func (i *Interceptors) UnaryClient() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(i.Outbound(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClient returns the stream client interceptor.
func (i *Interceptors) StreamClient() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(i.Outbound(ctx), desc, cc, method, opts...)
	}
}

// Inbound returns ctx carrying the route of an inbound call whose incoming
// metadata ctx holds: what the server interceptors do, for servers that
// cannot install them (method names the call, for logs). n-d-* values that
// do not parse are logged and left out; the rest of the route stands.
func (i *Interceptors) Inbound(ctx context.Context, method string) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	var route balancer.Route
	hasRoute := false
	if i.opts.trustedEdge {
		// Drop them for the handler too, as the HTTP middleware does, so
		// nothing downstream can pick them up. md is FromIncomingContext's
		// copy: ours to change.
		dropped := false
		for k := range md {
			if isRoutingKey(k) {
				delete(md, k)
				dropped = true
			}
		}
		if dropped {
			ctx = metadata.NewIncomingContext(ctx, md)
		}
	} else {
		h := headerPool.Get().(http.Header)
		for k, vs := range md {
			if isRoutingKey(k) && len(vs) > 0 {
				h[canonicalRoutingKey(k)] = vs
			}
		}
		if len(h) > 0 {
			var err error
			route, hasRoute, err = balancer.RouteFromHeader(h)
			if err != nil {
				i.opts.log.Warn("grpc inbound: ignoring bad routing metadata", zap.String("method", method), zap.Error(err))
			}
			clear(h)
		}
		headerPool.Put(h)
	}
	route.Header = i.forwarded(md)
	if i.b != nil {
		// The rule's built-in header names travel too, as over HTTP.
		if r := i.b.Rule(); r != nil {
			for _, f := range r.Release.Header {
				k := strings.ToLower(f.Name)
				if vs := md[k]; len(vs) > 0 {
					if route.Header == nil {
						route.Header = make(http.Header, len(r.Release.Header))
					}
					route.Header[http.CanonicalHeaderKey(k)] = vs
				}
			}
		}
	}
	if i.b != nil && (i.opts.entry || !hasRoute) {
		if hasRoute || route.Header != nil {
			ctx = balancer.WithRoute(ctx, route)
		}
		return i.b.Decide(ctx, mdValues(md))
	}
	if !hasRoute && route.Header == nil {
		return ctx
	}
	return balancer.WithRoute(ctx, route)
}

// Outbound returns ctx with the outgoing metadata of a call made with it:
// the route ctx carries (decided by the balancer's rule when ctx has none)
// replaces every n-d-* key, and its forwarded business values are set.
// Keys that the caller put in the outgoing metadata itself win over the
// route and its forwarded values, per key: a per-call override. The returned context also
// carries the resulting route, which is what the picker routes by.
func (i *Interceptors) Outbound(ctx context.Context) context.Context {
	route, ok := balancer.RouteFrom(ctx)
	md, hasMD := metadata.FromOutgoingContext(ctx)
	if !ok && i.b != nil {
		ctx = i.b.Decide(ctx, mdValues(md))
		route, ok = balancer.RouteFrom(ctx)
	}
	if explicit := routingHeader(md); len(explicit) > 0 {
		merged := http.Header{}
		route.SetHeader(merged)
		for k, vs := range explicit {
			merged[k] = vs
		}
		r, _, err := balancer.RouteFromHeader(merged)
		if err != nil {
			i.opts.log.Warn("grpc outbound: ignoring bad routing metadata", zap.Error(err))
		}
		r.Header = route.Header
		route, ok = r, true
		ctx = balancer.WithRoute(ctx, route)
	}
	if !ok {
		return ctx
	}
	h := http.Header{}
	route.SetHeader(h)
	if !hasMD {
		md = make(metadata.MD, len(h))
	}
	for k := range md {
		if isRoutingKey(k) {
			delete(md, k)
		}
	}
	for k, vs := range h {
		k = strings.ToLower(k)
		if !isRoutingKey(k) {
			if _, set := md[k]; set {
				continue // the caller's own value for this call wins
			}
			if !forwardable(k, vs) {
				i.opts.log.Debug("grpc outbound: not forwarding header", zap.String("key", k))
				continue
			}
		}
		md[k] = vs
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// forwarded returns the configured business metadata of md as canonical
// header names, or nil.
func (i *Interceptors) forwarded(md metadata.MD) http.Header {
	var h http.Header
	for _, k := range i.opts.forward {
		if vs := md[k]; len(vs) > 0 {
			if h == nil {
				h = make(http.Header, len(i.opts.forward))
			}
			h[http.CanonicalHeaderKey(k)] = vs
		}
	}
	return h
}

// routingHeader returns the n-d-* entries of md under canonical header
// names, or nil.
func routingHeader(md metadata.MD) http.Header {
	var h http.Header
	for k, vs := range md {
		if isRoutingKey(k) && len(vs) > 0 {
			if h == nil {
				h = make(http.Header)
			}
			h[canonicalRoutingKey(k)] = vs
		}
	}
	return h
}

// headerPool recycles the scratch headers that inbound routing metadata is
// read through (balancer.RouteFromHeader keeps nothing of them).
var headerPool = sync.Pool{New: func() any { return make(http.Header) }}

// routingNames maps the lower-case n-d-* names that balancer.Route carries
// to their canonical header form, so reading them from metadata on every
// call does not allocate a canonical name per key.
var routingNames = func() map[string]string {
	m := make(map[string]string)
	for _, n := range []string{
		balancer.HeaderVersion, balancer.HeaderRegion, balancer.HeaderAddress,
		balancer.HeaderVersionWeight, balancer.HeaderRegionWeight,
		balancer.HeaderVersionPrefer, balancer.HeaderVersionFailover,
		balancer.HeaderIDBlacklist, balancer.HeaderAddressBlacklist, balancer.HeaderEnv,
	} {
		m[n] = http.CanonicalHeaderKey(n)
	}
	return m
}()

func canonicalRoutingKey(k string) string {
	if c, ok := routingNames[k]; ok {
		return c
	}
	return http.CanonicalHeaderKey(k)
}

func isRoutingKey(k string) bool {
	return len(k) >= len(balancer.HeaderPrefix) && strings.EqualFold(k[:len(balancer.HeaderPrefix)], balancer.HeaderPrefix)
}

// forwardable reports whether gRPC accepts k with values vs as ordinary
// request metadata: not a reserved or transport key, and printable ASCII
// values (binary values need a -bin key).
func forwardable(k string, vs []string) bool {
	if k == "" || k[0] == ':' || strings.HasPrefix(k, "grpc-") {
		return false
	}
	switch k {
	case "content-type", "user-agent", "te", "host", "connection", "transfer-encoding":
		return false
	}
	if strings.HasSuffix(k, "-bin") {
		return true
	}
	for _, v := range vs {
		for j := 0; j < len(v); j++ {
			if v[j] < 0x20 || v[j] > 0x7e {
				return false
			}
		}
	}
	return true
}

// mdValues reads expression values (#H['name']) from metadata; names match
// in any case, as HTTP header names do.
func mdValues(md metadata.MD) expr.Values {
	return expr.ValuesFunc(func(name string) (string, bool) {
		vs := md[name]
		if len(vs) == 0 {
			vs = md[strings.ToLower(name)]
		}
		if len(vs) == 0 {
			return "", false
		}
		return vs[0], true
	})
}
