package balancer

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/baggage"

	"github.com/graylane/graylane/balancer/pick"
)

// WithBaggage carries the route in W3C baggage as well as in the n-d-*
// headers: the transport adds the route's n-d-* values as members of the
// request's baggage header (merged with the baggage of its context), and
// Inbound reads the route from baggage (the context's, else the request's
// baggage header) when no n-d-* header arrived. n-d-* headers win over
// baggage when both are present. A hop that forwards only OpenTelemetry
// context (a sidecar, an instrumented proxy, a service that does not use
// graylane) then keeps the release route. Only the route travels in
// baggage, not the forwarded business headers.
func WithBaggage(on bool) Option {
	return optionFunc(func(o *options) { o.baggage = on })
}

// RouteToBaggage returns bg with r's routing values as members, keyed by
// their n-d-* header names in lower case ("n-d-version"), and without the
// members of route types r does not set.
func RouteToBaggage(bg baggage.Baggage, r *Route) baggage.Baggage {
	c := baggageCarrier{bg: bg}
	pick.Inject(r, &c)
	return c.bg
}

// RouteFromBaggage reads a route from bg's n-d-* members, as
// RouteFromHeader does from headers.
func RouteFromBaggage(bg baggage.Baggage) (r Route, ok bool, err error) {
	return pick.Extract(&baggageCarrier{bg: bg})
}

// baggageCarrier is W3C baggage as the route codec's carrier. It holds
// routing keys only, in lower case; other keys are not set.
type baggageCarrier struct{ bg baggage.Baggage }

var _ pick.Carrier = (*baggageCarrier)(nil)

func (c *baggageCarrier) Get(key string) string { return c.bg.Member(strings.ToLower(key)).Value() }

func (c *baggageCarrier) Values(key string) []string {
	if v := c.Get(key); v != "" {
		return []string{v}
	}
	return nil
}

func (c *baggageCarrier) Set(key, value string) {
	if value == "" {
		c.bg = c.bg.DeleteMember(key) // as Keys lists it (Drop)
		c.bg = c.bg.DeleteMember(strings.ToLower(key))
		return
	}
	if !pick.IsRoutingKey(key) {
		return
	}
	key = strings.ToLower(key)
	if m, err := baggage.NewMemberRaw(key, value); err == nil {
		if bg, err := c.bg.SetMember(m); err == nil {
			c.bg = bg
		}
	}
}

func (c *baggageCarrier) Keys() []string {
	ms := c.bg.Members()
	keys := make([]string, len(ms))
	for i, m := range ms {
		keys[i] = m.Key()
	}
	return keys
}

// routeFromBaggage reads the route from the baggage of ctx, else from the
// baggage header of h.
func routeFromBaggage(ctx context.Context, h InboundHeader) (Route, bool) {
	bg := baggage.FromContext(ctx)
	if bg.Len() == 0 {
		vs := h.Values("Baggage")
		if len(vs) == 0 {
			return Route{}, false
		}
		// A baggage header that does not parse carries no route.
		bg, _ = baggage.Parse(strings.Join(vs, ","))
	}
	r, ok, _ := RouteFromBaggage(bg)
	return r, ok
}

// withRouteBaggage sets out's baggage header, and its context's baggage,
// to the baggage it carries with r's routing members.
func withRouteBaggage(out *http.Request, r *Route) *http.Request {
	ctx := out.Context()
	bg := baggage.FromContext(ctx)
	if bg.Len() == 0 {
		if vs := out.Header.Values("Baggage"); len(vs) > 0 {
			bg, _ = baggage.Parse(strings.Join(vs, ","))
		}
	}
	bg = RouteToBaggage(bg, r)
	if bg.Len() == 0 {
		out.Header.Del("Baggage")
		return out
	}
	out.Header.Set("Baggage", bg.String())
	return out.WithContext(baggage.ContextWithBaggage(ctx, bg))
}

// dropRouteBaggage returns ctx without routing members (n-d-*, n_d_*) in
// its baggage, for a trusted edge: a route must not enter from outside
// through baggage either.
func dropRouteBaggage(ctx context.Context) context.Context {
	bg := baggage.FromContext(ctx)
	if bg.Len() == 0 {
		return ctx
	}
	c := baggageCarrier{bg: bg}
	if !pick.Drop(&c) {
		return ctx
	}
	return baggage.ContextWithBaggage(ctx, c.bg)
}

// baggageHasRoute reports whether h's baggage header may hold a routing
// member: a cheap look at the raw header, no parsing.
func baggageHasRoute(h http.Header) bool {
	for _, v := range h["Baggage"] {
		lv := strings.ToLower(v)
		if strings.Contains(lv, "n-d-") || strings.Contains(lv, "n_d_") {
			return true
		}
	}
	return false
}

// dropBaggageHeaderRoute removes the routing members from h's baggage
// header (all of it when it does not parse: an edge forwards no baggage
// it cannot read).
func dropBaggageHeaderRoute(h http.Header) {
	bg, err := baggage.Parse(strings.Join(h.Values("Baggage"), ","))
	if err != nil {
		h.Del("Baggage")
		return
	}
	c := baggageCarrier{bg: bg}
	pick.Drop(&c)
	if c.bg.Len() == 0 {
		h.Del("Baggage")
		return
	}
	h.Set("Baggage", c.bg.String())
}
