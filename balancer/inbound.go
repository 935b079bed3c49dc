package balancer

import (
	"context"

	"github.com/graylane/graylane/balancer/pick"
	"github.com/graylane/graylane/rule"
)

// InboundHeader is read access to the headers of an inbound request,
// whatever carries them, for [Balancer.Inbound]: the route codec reads the
// n-d-* headers through Get, and the forwarded business headers are
// captured whole through Values. Keys come in HTTP's canonical form
// ("N-D-Version", "X-User-Id"): a carrier whose keys are lower case (gRPC
// metadata) lowers them. http.Header satisfies it; package grpcroute adapts
// incoming gRPC metadata.
type InboundHeader interface {
	pick.Getter
	// Values returns the values of the header named key, nil when absent.
	Values(key string) []string
}

// Inbound is the inbound step of every transport: it returns ctx carrying
// the route of an inbound request whose headers h holds, decided with the
// balancer's own settings (WithEntry, WithTrustedEdge, WithForwardHeaders),
// so that an HTTP hop and a gRPC hop of one process route alike.
// Middleware is Inbound over http.Header; grpcroute's server interceptors
// are Inbound over the incoming metadata.
//
// The route comes from the n-d-* headers of h. When none of the headers a
// rule decides arrived (version, region, address and their weights: a
// request carrying only failover, blacklist or env headers still leaves
// those to this hop, as Nepxion decides type by type), or always at an
// entry, the balancer's rule is evaluated against values (the
// request's expression values: for HTTP, query parameter, then cookie,
// then header), with the rule's built-in header laid over them per the
// header priority; headers that did arrive still win per header. The forwarded business headers (WithForwardHeaders) and the
// rule's built-in header names are captured from h into the route's
// Header, so they travel down the chain; n-d-* names never travel as
// business headers, the route carries them. When nothing arrived and
// nothing was decided, ctx is returned as it is.
//
// At a trusted edge (WithTrustedEdge) the n-d-* headers of h are not read
// at all and the rule always decides. Inbound cannot take them out of the
// request its caller hands on: a transport removes them from what its
// handler sees when [Balancer.TrustedEdge] is set, as Middleware does.
//
// The other n-d-* headers of h, which no route type reads (the failover
// and transfer headers, n-d-group, ...: see pick.IsPassedKey), travel in
// the route as they arrived, so that every outbound call passes them on as
// Nepxion's interceptors do; the n-d-service-* identity headers do not:
// each hop sends its own (Balancer.InjectIdentity).
//
// n-d-* values that do not parse are left out of the route and reported in
// the error (one *HeaderError per bad header, joined): the returned context
// is good either way, the error is for a log line. values is read only when
// the rule decides.
//
// A nil *Balancer carries the route that arrived and decides nothing.
func (b *Balancer) Inbound(ctx context.Context, h InboundHeader, values rule.Values) (context.Context, error) {
	var in Route
	var has bool
	var err error
	if b != nil && b.o.trustedEdge {
		ctx = dropRouteBaggage(ctx)
	}
	if b == nil || !b.o.trustedEdge {
		in, has, err = pick.Extract(h)
		if !has && b != nil && b.o.baggage {
			in, has = routeFromBaggage(ctx, h)
		}
		if has {
			in.Origin.Source = pick.SourceHeader
		}
	}
	if b == nil {
		if !has && !in.PassesHeaders() {
			return ctx, err
		}
		return WithRoute(ctx, in), err
	}
	ar := b.currentRule(ctx)
	for _, name := range b.o.forward {
		in.Header = capture(in.Header, h, name, len(b.o.forward))
	}
	if ar != nil {
		for i := range ar.header {
			in.Header = capture(in.Header, h, ar.header[i].name, len(ar.header))
		}
	}
	if has && !b.routedIn.Load() {
		b.routedIn.Store(true) // once: a store per request would bounce the cache line
	}
	route := in
	if ar != nil && (b.o.entry || b.o.trustedEdge || !in.Decides()) {
		route = b.decide(ar, values, &in)
		b.tel.decided(ctx, &route)
	} else if !has && in.Header == nil && !in.PassesHeaders() {
		return ctx, err // nothing to carry
	}
	return WithRoute(ctx, route), err
}

// TrustedEdge reports whether the balancer sits at the edge of the trusted
// network (WithTrustedEdge): Inbound then ignores inbound n-d-* headers,
// and a transport drops every one of them from the request its handler
// sees. False for a nil *Balancer.
func (b *Balancer) TrustedEdge() bool { return b != nil && b.o.trustedEdge }

// capture adds the header named name (canonical) from h to dst, allocating
// dst (with room for size names) on the first value. Routing names are
// skipped (in any folded spelling): the route carries them.
func capture(dst map[string][]string, h InboundHeader, name string, size int) map[string][]string {
	if pick.IsFoldedRoutingKey(name) {
		return dst
	}
	if vs := h.Values(name); len(vs) > 0 {
		if dst == nil {
			dst = make(map[string][]string, size)
		}
		dst[name] = vs
	}
	return dst
}
