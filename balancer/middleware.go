package balancer

import (
	"net/http"

	"github.com/graylane/graylane/expr"
	"go.uber.org/zap"
)

// Middleware returns a handler that puts the route of each inbound request,
// and its forwarded business headers, into the request's context before
// calling next, so that outbound calls made with that context (through
// Transport, or Pick) follow the route.
//
// The route comes from the request's n-d-* headers. When none arrived, or
// always at an entry (WithEntry), the balancer's rule is evaluated against
// the request (query parameter, then cookie, then header, with the rule's
// built-in header laid over them per the header priority); at an entry,
// headers that did arrive still win per header. At a trusted edge
// (WithTrustedEdge) every inbound n-d-* header is dropped first, so next
// does not see them either.
func (b *Balancer) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, b.inbound(r))
	})
}

// inbound returns r with its route in its context.
func (b *Balancer) inbound(r *http.Request) *http.Request {
	if b.o.trustedEdge && hasRoutingPrefix(r.Header) {
		r = r.Clone(r.Context())
		dropRoutingHeaders(r.Header)
	}
	in, has, err := RouteFromHeader(r.Header)
	if err != nil {
		b.log.Warn("inbound routing header ignored", zap.String("path", r.URL.Path), zap.Error(err))
	}
	ar := b.rule.Load()
	fwd := b.o.forward
	for _, name := range fwd {
		if vs := r.Header[name]; len(vs) > 0 {
			if in.Header == nil {
				in.Header = make(http.Header, len(fwd))
			}
			in.Header[name] = vs
		}
	}
	if ar != nil {
		// The rule's built-in header names travel too.
		for _, f := range ar.header {
			if vs := r.Header[f.name]; len(vs) > 0 {
				if in.Header == nil {
					in.Header = make(http.Header, len(ar.header))
				}
				in.Header[f.name] = vs
			}
		}
	}
	route := in
	if ar != nil && (b.o.entry || !has) {
		route = b.decide(ar, valuesOf(r), &in)
	} else if !has && in.Header == nil {
		return r // nothing to carry
	}
	return r.WithContext(WithRoute(r.Context(), route))
}

// valuesOf returns the expression values of an HTTP request: query
// parameter, then cookie, then header.
func valuesOf(r *http.Request) expr.Values { return expr.FromRequest(r) }

// hasRoutingPrefix reports whether h holds any header starting with n-d-.
func hasRoutingPrefix(h http.Header) bool {
	for k := range h {
		if len(k) >= len(HeaderPrefix) && (k[0] == 'N' || k[0] == 'n') && (k[2] == 'D' || k[2] == 'd') && k[1] == '-' && k[3] == '-' {
			return true
		}
	}
	return false
}
