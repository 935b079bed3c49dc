package balancer

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/graylane/graylane/expr"
	"github.com/graylane/graylane/rule"
)

// InboundHeader is read access to the headers of an inbound request,
// whatever carries them, for [Balancer.Inbound]. http.Header satisfies it;
// package grpcroute adapts incoming gRPC metadata.
type InboundHeader interface {
	// Values returns the values of the header named key, nil when absent.
	// Inbound always passes key in canonical form ("N-D-Version",
	// "X-User-Id"); a carrier whose names are lower case (gRPC metadata)
	// lowers it.
	Values(key string) []string
}

// Inbound is the inbound step of every transport: it returns ctx carrying
// the route of an inbound request whose headers h holds, decided with the
// balancer's own settings (WithEntry, WithTrustedEdge, WithForwardHeaders),
// so that an HTTP hop and a gRPC hop of one process route alike.
// Middleware is Inbound over http.Header; grpcroute's server interceptors
// are Inbound over the incoming metadata.
//
// The route comes from the n-d-* headers of h. When none arrived, or always
// at an entry, the balancer's rule is evaluated against values (the
// request's expression values: for HTTP, query parameter, then cookie,
// then header), with the rule's built-in header laid over them per the
// header priority; at an entry, headers that did arrive still win per
// header. The forwarded business headers (WithForwardHeaders) and the
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
// n-d-* values that do not parse are left out of the route and reported in
// the error (one *HeaderError per bad header, joined): the returned context
// is good either way, the error is for a log line. values is read only when
// the rule decides.
//
// A nil *Balancer carries the route that arrived and decides nothing.
func (b *Balancer) Inbound(ctx context.Context, h InboundHeader, values expr.Values) (context.Context, error) {
	var in Route
	var has bool
	var err error
	if b == nil || !b.o.trustedEdge {
		in, has, err = routeFromInbound(h)
	}
	if b == nil {
		if !has {
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
	route := in
	if ar != nil && (b.o.entry || b.o.trustedEdge || !has) {
		route = b.decide(ar, values, &in)
	} else if !has && in.Header == nil {
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
// skipped: the route carries them.
func capture(dst http.Header, h InboundHeader, name string, size int) http.Header {
	if isRoutingName(name) {
		return dst
	}
	if vs := h.Values(name); len(vs) > 0 {
		if dst == nil {
			dst = make(http.Header, size)
		}
		dst[name] = vs
	}
	return dst
}

// routeFromInbound is RouteFromHeader over any carrier.
func routeFromInbound(h InboundHeader) (r Route, ok bool, err error) {
	var errs []error
	for i := range routeFields {
		f := &routeFields[i]
		vs := h.Values(f.canon)
		if len(vs) == 0 || strings.TrimSpace(vs[0]) == "" {
			continue
		}
		ok = true
		v, perr := rule.ParseValue(vs[0])
		if perr != nil {
			errs = append(errs, &HeaderError{Name: f.name, Value: vs[0], Err: perr})
			continue
		}
		*fieldOf(&r, i) = v
	}
	return r, ok, errors.Join(errs...)
}

// fieldOf is routeFields[i].get(r) as a static switch, so that a Route
// being filled on the inbound path stays on the stack (a call through the
// func value makes it escape).
func fieldOf(r *Route, i int) *rule.Value {
	switch i {
	case 0:
		return &r.Version
	case 1:
		return &r.Region
	case 2:
		return &r.Address
	case 3:
		return &r.VersionWeight
	case 4:
		return &r.RegionWeight
	case 5:
		return &r.VersionPrefer
	case 6:
		return &r.VersionFailover
	case 7:
		return &r.IDBlacklist
	case 8:
		return &r.AddressBlacklist
	default:
		return &r.Env
	}
}

// isRoutingName reports whether a header name starts with n-d-, in any
// case and with '_' for either '-': CGI and WSGI stacks fold n_d_version
// into the same variable as n-d-version, so a trusted edge drops both.
func isRoutingName(k string) bool {
	return len(k) >= len(HeaderPrefix) &&
		(k[0]|0x20) == 'n' && (k[1] == '-' || k[1] == '_') &&
		(k[2]|0x20) == 'd' && (k[3] == '-' || k[3] == '_')
}

// canonicalHeader is an http.Header read with the canonical names Inbound
// passes, straight from the map.
type canonicalHeader http.Header

func (h canonicalHeader) Values(key string) []string { return h[key] }
