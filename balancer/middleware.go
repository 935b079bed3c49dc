package balancer

import (
	"net/http"

	"github.com/graylane/graylane/balancer/pick"
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
// does not see them either. It is [Balancer.Inbound] over the request's
// headers, as grpcroute's server interceptors are over gRPC metadata.
func (b *Balancer) Middleware(next http.Handler) http.Handler {
	if b.tel != nil && b.tel.metrics {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.serve(next, w, b.inbound(r))
		})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, b.inbound(r))
	})
}

// inbound returns r with its route in its context.
func (b *Balancer) inbound(r *http.Request) *http.Request {
	if b.o.trustedEdge && (hasRoutingPrefix(r.Header) || baggageHasRoute(r.Header)) {
		// Inbound does not read them; next must not see them either.
		r = r.Clone(r.Context())
		dropRoutingHeaders(r.Header)
		if baggageHasRoute(r.Header) {
			dropBaggageHeaderRoute(r.Header)
		}
	}
	ctx, err := b.Inbound(r.Context(), headerCarrier(r.Header), RequestValues(r))
	if err != nil {
		b.log.Warn("inbound routing header ignored", zap.String("path", r.URL.Path), zap.Error(err))
	}
	if ctx == r.Context() {
		return r // nothing to carry
	}
	return r.WithContext(ctx)
}

// hasRoutingPrefix reports whether h holds any header starting with n-d-
// (or a folded n_d_ spelling).
func hasRoutingPrefix(h http.Header) bool {
	for k := range h {
		if pick.IsFoldedRoutingKey(k) {
			return true
		}
	}
	return false
}
