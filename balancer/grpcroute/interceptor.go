package grpcroute

import (
	"context"
	"net/textproto"
	"strings"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/rule"
)

type interceptorOptions struct {
	log  *zap.Logger
	mp   metric.MeterProvider
	tp   trace.TracerProvider
	prop propagation.TextMapPropagator
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
// Which server is an entry, which sits at the trusted edge and which
// business metadata travels are the balancer's settings (balancer.WithEntry,
// balancer.WithTrustedEdge, balancer.WithForwardHeaders): the server
// interceptors run balancer.Inbound over the incoming metadata, the step the
// balancer's HTTP middleware runs over request headers, so both hops of one
// process route alike. An HTTP hop in between uses the balancer's
// middleware and transport, which read and write the same route: HTTP in,
// gRPC out and gRPC in, HTTP out keep the route.
//
// Interceptors are safe for concurrent use.
type Interceptors struct {
	b    *balancer.Balancer
	opts interceptorOptions
	tel  *rpcTelemetry // nil without WithMeterProvider or WithTracerProvider
}

// NewInterceptors returns the interceptors of b, whose rule decides at
// entries and for calls that carry no route, and whose settings say which
// server is an entry or a trusted edge and which business metadata
// travels. b may be nil: the interceptors then only carry routes, deciding
// and forwarding nothing.
func NewInterceptors(b *balancer.Balancer, opts ...InterceptorOption) *Interceptors {
	o := interceptorOptions{log: zap.NewNop()}
	for _, opt := range opts {
		if opt != nil {
			opt.applyInterceptor(&o)
		}
	}
	return &Interceptors{b: b, opts: o, tel: newRPCTelemetry(o.mp, o.tp, o.prop)}
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
// client interceptors and, with WithMeterProvider or WithTracerProvider,
// the stats handler that records each attempt (StatsHandler).
func (i *Interceptors) DialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(i.UnaryClient()),
		grpc.WithChainStreamInterceptor(i.StreamClient()),
	}
	if i.tel != nil {
		opts = append(opts, grpc.WithStatsHandler(i.StatsHandler()))
	}
	return opts
}

// UnaryServer returns the unary server interceptor.
func (i *Interceptors) UnaryServer() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx = i.Inbound(ctx, info.FullMethod)
		if i.tel == nil {
			return handler(ctx, req)
		}
		var resp any
		err := i.tel.serve(ctx, i.b.Identity(), info.FullMethod, func() (err error) {
			resp, err = handler(ctx, req)
			return err
		})
		return resp, err
	}
}

// StreamServer returns the stream server interceptor.
func (i *Interceptors) StreamServer() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		rs := &routedServerStream{ServerStream: ss, ctx: i.Inbound(ss.Context(), info.FullMethod)}
		if i.tel == nil {
			return handler(srv, rs)
		}
		return i.tel.serve(rs.ctx, i.b.Identity(), info.FullMethod, func() error { return handler(srv, rs) })
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
		ctx = i.Outbound(ctx)
		if i.tel == nil {
			return invoker(ctx, method, req, reply, cc, opts...)
		}
		return i.tel.unaryClient(ctx, cc, method, func(ctx context.Context) error {
			return invoker(ctx, method, req, reply, cc, opts...)
		})
	}
}

// StreamClient returns the stream client interceptor.
func (i *Interceptors) StreamClient() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		ctx = i.Outbound(ctx)
		if i.tel == nil {
			return streamer(ctx, desc, cc, method, opts...)
		}
		return i.tel.streamClient(ctx, desc, cc, method, streamer, opts)
	}
}

// Inbound returns ctx carrying the route of an inbound call whose incoming
// metadata ctx holds: what the server interceptors do, for servers that
// cannot install them (method names the call, for logs). It is
// balancer.Inbound over the metadata; at a trusted edge the n-d-* keys are
// also dropped from the incoming metadata the handler sees. n-d-* values
// that do not parse are logged and left out; the rest of the route stands.
func (i *Interceptors) Inbound(ctx context.Context, method string) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	if i.b.TrustedEdge() {
		// As the HTTP middleware does, so nothing downstream can pick them
		// up. md is FromIncomingContext's copy: ours to change.
		if pick.Drop(mdCarrier(md)) {
			ctx = metadata.NewIncomingContext(ctx, md)
		}
	}
	ctx, err := i.b.Inbound(ctx, mdCarrier(md), mdValues(md))
	if err != nil {
		i.opts.log.Warn("grpc inbound: ignoring bad routing metadata", zap.String("method", method), zap.Error(err))
	}
	return ctx
}

// Outbound returns ctx with the outgoing metadata of a call made with it:
// the route ctx carries (decided by the balancer's rule when ctx has none)
// replaces every n-d-* key, with the n-d-* values the route passes on as
// they arrived and the balancer's own identity in the n-d-service-* keys
// (balancer.WithIdentity; a previous hop's never travel on), and its
// forwarded business values are set.
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
	if hasRoutingKey(md) {
		merged := metadata.MD{}
		pick.Inject(&route, mdCarrier(merged))
		for k, vs := range md {
			if pick.IsRoutingKey(k) && len(vs) > 0 {
				merged[k] = vs
			}
		}
		r, _, err := pick.Extract(mdCarrier(merged))
		if err != nil {
			i.opts.log.Warn("grpc outbound: ignoring bad routing metadata", zap.Error(err))
		}
		r.Header = route.Header
		route, ok = r, true
		ctx = balancer.WithRoute(ctx, route)
	}
	id := i.b.Identity()
	if !ok && id.IsZero() {
		return ctx
	}
	h := metadata.MD{}
	if !id.IsZero() {
		h = make(metadata.MD, 4+len(route.Header)+identityHeaderCount)
	}
	if ok {
		pick.Inject(&route, mdCarrier(h))
	}
	i.b.InjectIdentity(mdCarrier(h))
	if !hasMD {
		md = make(metadata.MD, len(h))
	}
	for k := range md {
		if pick.IsRoutingKey(k) {
			delete(md, k)
		}
	}
	for k, vs := range h {
		if !pick.IsRoutingKey(k) {
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

// hasRoutingKey reports whether md holds an n-d-* key with a value.
func hasRoutingKey(md metadata.MD) bool {
	for k, vs := range md {
		if len(vs) > 0 && pick.IsRoutingKey(k) {
			return true
		}
	}
	return false
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

var (
	_ balancer.InboundHeader = mdCarrier(nil)
	_ pick.Carrier           = mdCarrier(nil)
	_ pick.ValuesSetter      = mdCarrier(nil)
	_ pick.PassedKeyLister   = mdCarrier(nil)
	_ rule.Values            = mdValues(nil)
)

// mdCarrier is gRPC metadata (lower-case keys) as the route codec's
// carrier and as a balancer.InboundHeader; keys come in any case.
type mdCarrier metadata.MD

// Get returns the first value of key.
func (md mdCarrier) Get(key string) string {
	if vs := lookup(metadata.MD(md), key); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// Values returns md[lower(key)] without allocating for keys of up to 64
// bytes (the compiler does not copy string(bytes) in a map index).
func (md mdCarrier) Values(key string) []string { return lookup(metadata.MD(md), key) }

// Set replaces the values of key with value, or deletes key when value is
// empty.
func (md mdCarrier) Set(key, value string) {
	key = lowerKey(key)
	if value == "" {
		delete(md, key)
		return
	}
	md[key] = []string{value}
}

// SetValues replaces the values of key with values.
func (md mdCarrier) SetValues(key string, values []string) { md[lowerKey(key)] = values }

// PassedKeys lists the n-d-* keys no route type reads (pick.IsPassedKey);
// nil, without allocating, when there are none.
func (md mdCarrier) PassedKeys() []string {
	n := 0
	for k := range md {
		if pick.IsPassedKey(k) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	keys := make([]string, 0, n)
	for k := range md {
		if pick.IsPassedKey(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// identityHeaderCount is how many n-d-service-* keys
// Balancer.InjectIdentity may add.
const identityHeaderCount = 9

// lowerRoutingKeys maps the routing headers' canonical names, which the
// route codec passes, to metadata's lower-case keys, so that writing a
// route does not allocate a key per header.
var lowerRoutingKeys = func() map[string]string {
	m := make(map[string]string)
	for t := range rule.NumTypes {
		if n := t.HeaderName(); n != "" {
			m[textproto.CanonicalMIMEHeaderKey(n)] = n
		}
	}
	for _, n := range []string{pick.HeaderServiceGroup, pick.HeaderServiceType, pick.HeaderServiceAppID,
		pick.HeaderServiceID, pick.HeaderServiceAddress, pick.HeaderServiceVersion,
		pick.HeaderServiceRegion, pick.HeaderServiceEnv, pick.HeaderServiceZone} {
		m[textproto.CanonicalMIMEHeaderKey(n)] = n
	}
	return m
}()

// lowerKey returns k in lower case.
func lowerKey(k string) string {
	if l, ok := lowerRoutingKeys[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

// Keys lists the metadata's keys.
func (md mdCarrier) Keys() []string {
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	return keys
}

// mdValues reads expression values (#H['name']) from metadata; names match
// in any case, as HTTP header names do.
type mdValues metadata.MD

// Lookup returns the first value of name.
func (md mdValues) Lookup(name string) (string, bool) {
	if vs := lookup(metadata.MD(md), name); len(vs) > 0 {
		return vs[0], true
	}
	return "", false
}

// lookup returns the values of key in md, whose keys are lower case; key
// may be in any case.
func lookup(md metadata.MD, key string) []string {
	if vs := md[key]; len(vs) > 0 {
		return vs
	}
	var buf [64]byte
	if len(key) > len(buf) {
		return md[strings.ToLower(key)]
	}
	b := buf[:len(key)]
	changed := false
	for j := 0; j < len(key); j++ {
		c := key[j]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
			changed = true
		}
		b[j] = c
	}
	if !changed {
		return nil
	}
	return md[string(b)]
}
