package balancer

import (
	"context"
	"net/http"
	"net/textproto"

	"github.com/graylane/graylane/balancer/pick"
)

// RouteFromHeader reads the n-d-* headers of h into a Route (not the
// forwarded business headers: those depend on configuration, see
// WithForwardHeaders). ok reports whether any routing header was present.
// A header that does not parse is left out of the route and reported in
// err (one *HeaderError per bad header, joined); the rest of the route is
// still returned.
func RouteFromHeader(h http.Header) (r Route, ok bool, err error) {
	return pick.Extract(headerCarrier(h))
}

// SetRouteHeader writes r onto h: each n-d-* header the route carries is
// set, the others are deleted, so h carries exactly this route; then the
// forwarded business headers are set, replacing values of the same name.
func SetRouteHeader(h http.Header, r *Route) {
	for k := range h {
		if pick.IsFoldedRoutingKey(k) {
			pick.Inject(r, headerCarrier(h))
			return
		}
	}
	// The common case, an outbound request built by the caller: no routing
	// key to delete, so the codec's deletions (one per route type the
	// route does not carry) can be skipped.
	pick.Inject(r, freshHeaderCarrier(h))
}

// freshHeaderCarrier is headerCarrier over a header that holds no routing
// key in any spelling (see pick.IsFoldedRoutingKey): setting an empty
// value, which would delete a routing header, has nothing to do.
type freshHeaderCarrier http.Header

var (
	_ pick.Carrier      = freshHeaderCarrier(nil)
	_ pick.ValuesSetter = freshHeaderCarrier(nil)
)

// Get returns the first value of key, in any case.
func (h freshHeaderCarrier) Get(key string) string { return headerCarrier(h).Get(key) }

// Set replaces the values of key with value; an empty value is a no-op.
func (h freshHeaderCarrier) Set(key, value string) {
	if value != "" {
		headerCarrier(h).Set(key, value)
	}
}

// SetValues replaces the values of key with values.
func (h freshHeaderCarrier) SetValues(key string, values []string) {
	headerCarrier(h).SetValues(key, values)
}

// Keys lists the header's keys.
func (h freshHeaderCarrier) Keys() []string { return headerCarrier(h).Keys() }

// hasRouteHeader reports whether h carries any non-empty n-d-* route
// header.
func hasRouteHeader(h http.Header) bool { return pick.Carries(headerCarrier(h)) }

// dropRoutingHeaders deletes every header starting with n-d- from h.
func dropRoutingHeaders(h http.Header) { pick.Drop(headerCarrier(h)) }

// InjectIdentity writes the balancer's identity (WithIdentity) onto c as
// Nepxion's n-d-service-* headers, replacing any a previous hop set, as
// every outbound call does: each hop sends its own identity, never its
// caller's. An anonymous balancer (nil, or without WithIdentity) removes
// them. Transports call it after writing the route ([pick.Inject]).
func (b *Balancer) InjectIdentity(c pick.Carrier) {
	var h *pick.IdentityHeaders
	if b != nil {
		h = b.o.selfHeaders
	}
	h.Inject(c)
}

// identityRoom is how many n-d-service-* headers InjectIdentity may add,
// room a transport reserves in its outbound header: none for an anonymous
// balancer, which only removes them.
func (b *Balancer) identityRoom() int {
	if b == nil || b.o.selfHeaders == nil {
		return 0
	}
	return 9
}

// headerCarrier is http.Header as the route codec's carrier. The codec
// passes canonical names, as the header keeps them; other names are
// canonicalized on the stack when read, so that the inbound path does not
// allocate.
type headerCarrier http.Header

var (
	_ pick.Carrier         = headerCarrier(nil)
	_ pick.ValuesSetter    = headerCarrier(nil)
	_ pick.PassedKeyLister = headerCarrier(nil)
	_ InboundHeader        = headerCarrier(nil)
)

// Get returns the first value of key, in any case.
func (h headerCarrier) Get(key string) string {
	v, _ := headerValue(http.Header(h), key)
	return v
}

// Values returns the values of key, in any case.
func (h headerCarrier) Values(key string) []string { return headerValues(http.Header(h), key) }

// Set replaces the values of key with value, or deletes key (under its
// canonical name and as written) when value is empty.
func (h headerCarrier) Set(key, value string) {
	ck := canonicalKey(key)
	if value == "" {
		delete(h, ck)
		if key != ck {
			delete(h, key)
		}
		return
	}
	h[ck] = []string{value}
}

// SetValues replaces the values of key with values.
func (h headerCarrier) SetValues(key string, values []string) { h[canonicalKey(key)] = values }

// Keys lists the header's keys.
func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// PassedKeys lists the n-d-* keys no route type reads (pick.IsPassedKey);
// nil, without allocating, when there are none.
func (h headerCarrier) PassedKeys() []string {
	n := 0
	for k := range h {
		if pick.IsPassedKey(k) {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	keys := make([]string, 0, n)
	for k := range h {
		if pick.IsPassedKey(k) {
			keys = append(keys, k)
		}
	}
	return keys
}

// canonicalKey returns k in canonical form; it does not allocate when k
// already is (as the codec's keys are).
func canonicalKey(k string) string { return textproto.CanonicalMIMEHeaderKey(k) }

type retryKey struct{}

// WithRetryable returns a copy of ctx that marks outbound requests made
// with it as safe to retry on another instance even though their method is
// not idempotent (for example a POST guarded by an idempotency key).
func WithRetryable(ctx context.Context) context.Context {
	return context.WithValue(ctx, retryKey{}, true)
}

func retryableFrom(ctx context.Context) bool {
	v, _ := ctx.Value(retryKey{}).(bool)
	return v
}
