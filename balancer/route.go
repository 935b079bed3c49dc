package balancer

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/graylane/graylane/rule"
)

// The n-d-* headers that carry a route down the call chain, as Nepxion
// Discovery names them. Every hop honours them, so a decision made at the
// entry sticks for the whole chain and Java services interoperate.
const (
	HeaderVersion          = "n-d-version"
	HeaderRegion           = "n-d-region"
	HeaderAddress          = "n-d-address"
	HeaderVersionWeight    = "n-d-version-weight"
	HeaderRegionWeight     = "n-d-region-weight"
	HeaderVersionPrefer    = "n-d-version-prefer"
	HeaderVersionFailover  = "n-d-version-failover"
	HeaderIDBlacklist      = "n-d-id-blacklist"
	HeaderAddressBlacklist = "n-d-address-blacklist"
	HeaderEnv              = "n-d-env"
)

// HeaderPrefix starts every routing header. At a trusted edge all inbound
// headers with this prefix are dropped before the rule is evaluated.
const HeaderPrefix = "n-d-"

// Route is the routing decision carried down a call chain: what each
// service may be picked from, and the business headers forwarded with it.
// Each value is a map by service or one plain value for all services
// ([rule.Value]); the zero Value constrains nothing. A Route is a small
// value; treat its Header as read-only once the route is in a context.
type Route struct {
	// The five route types a rule decides.
	Version, Region, Address, VersionWeight, RegionWeight rule.Value
	// Failover and preference, from <strategy-failover> or the headers.
	VersionPrefer, VersionFailover rule.Value
	// Blacklists, from <strategy-blacklist> or the headers.
	IDBlacklist, AddressBlacklist rule.Value
	// Env restricts picks to instances of an environment (n-d-env).
	Env rule.Value
	// Header holds the business headers forwarded with the route
	// (canonical names): the configured forward headers and the rule's
	// built-in header.
	Header http.Header
}

// routeField ties a Route field to its header; the order is the wire order.
type routeField struct {
	name  string // lower-case n-d-* name
	canon string // canonical MIME form, the http.Header key
	get   func(*Route) *rule.Value
}

var routeFields = [...]routeField{
	{HeaderVersion, http.CanonicalHeaderKey(HeaderVersion), func(r *Route) *rule.Value { return &r.Version }},
	{HeaderRegion, http.CanonicalHeaderKey(HeaderRegion), func(r *Route) *rule.Value { return &r.Region }},
	{HeaderAddress, http.CanonicalHeaderKey(HeaderAddress), func(r *Route) *rule.Value { return &r.Address }},
	{HeaderVersionWeight, http.CanonicalHeaderKey(HeaderVersionWeight), func(r *Route) *rule.Value { return &r.VersionWeight }},
	{HeaderRegionWeight, http.CanonicalHeaderKey(HeaderRegionWeight), func(r *Route) *rule.Value { return &r.RegionWeight }},
	{HeaderVersionPrefer, http.CanonicalHeaderKey(HeaderVersionPrefer), func(r *Route) *rule.Value { return &r.VersionPrefer }},
	{HeaderVersionFailover, http.CanonicalHeaderKey(HeaderVersionFailover), func(r *Route) *rule.Value { return &r.VersionFailover }},
	{HeaderIDBlacklist, http.CanonicalHeaderKey(HeaderIDBlacklist), func(r *Route) *rule.Value { return &r.IDBlacklist }},
	{HeaderAddressBlacklist, http.CanonicalHeaderKey(HeaderAddressBlacklist), func(r *Route) *rule.Value { return &r.AddressBlacklist }},
	{HeaderEnv, http.CanonicalHeaderKey(HeaderEnv), func(r *Route) *rule.Value { return &r.Env }},
}

// IsZero reports whether the route constrains nothing (forwarded headers
// aside).
func (r *Route) IsZero() bool {
	for i := range routeFields {
		if !routeFields[i].get(r).IsZero() {
			return false
		}
	}
	return true
}

// Constraint returns what the route asks of one service.
func (r *Route) Constraint(service string) Constraint {
	var c Constraint
	r.constraintInto(service, &c)
	return c
}

func (r *Route) constraintInto(service string, c *Constraint) {
	c.Version, _ = r.Version.For(service)
	c.Region, _ = r.Region.For(service)
	c.Address, _ = r.Address.For(service)
	c.VersionWeight, _ = r.VersionWeight.For(service)
	c.RegionWeight, _ = r.RegionWeight.For(service)
	c.VersionPrefer, _ = r.VersionPrefer.For(service)
	c.VersionFailover, _ = r.VersionFailover.For(service)
	c.IDBlacklist, _ = r.IDBlacklist.For(service)
	c.AddressBlacklist, _ = r.AddressBlacklist.For(service)
	c.Env, _ = r.Env.For(service)
}

// overlay replaces r's values with the non-zero ones of in, field by field, and
// takes its forwarded headers. Written out (not through routeFields) so
// that r can stay on the caller's stack.
func (r *Route) overlay(in *Route) {
	set := func(dst *rule.Value, src rule.Value) {
		if !src.IsZero() {
			*dst = src
		}
	}
	set(&r.Version, in.Version)
	set(&r.Region, in.Region)
	set(&r.Address, in.Address)
	set(&r.VersionWeight, in.VersionWeight)
	set(&r.RegionWeight, in.RegionWeight)
	set(&r.VersionPrefer, in.VersionPrefer)
	set(&r.VersionFailover, in.VersionFailover)
	set(&r.IDBlacklist, in.IDBlacklist)
	set(&r.AddressBlacklist, in.AddressBlacklist)
	set(&r.Env, in.Env)
	r.Header = in.Header
}

// String lists the route's n-d-* values, for logs.
func (r *Route) String() string {
	var b strings.Builder
	for i := range routeFields {
		v := routeFields[i].get(r)
		if v.IsZero() {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(routeFields[i].name)
		b.WriteByte('=')
		b.WriteString(v.String())
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}

// SetHeader writes the route onto h: each n-d-* header the route carries is
// set, the others are deleted, so h carries exactly this route; then the
// forwarded business headers are set, replacing values of the same name.
func (r *Route) SetHeader(h http.Header) {
	for i := range routeFields {
		f := &routeFields[i]
		v := f.get(r)
		if v.IsZero() {
			delete(h, f.canon)
			continue
		}
		h[f.canon] = []string{v.String()}
	}
	for k, vs := range r.Header {
		h[k] = vs
	}
}

// HeaderError is an n-d-* header whose value could not be read.
type HeaderError struct {
	Name  string // the header, e.g. "n-d-version"
	Value string // the value received
	Err   error  // the parser's error
}

// Error names the header and quotes the parser's message.
func (e *HeaderError) Error() string {
	return fmt.Sprintf("header %s %q: %v", e.Name, e.Value, e.Err)
}

// Unwrap returns the parser's error.
func (e *HeaderError) Unwrap() error { return e.Err }

// RouteFromHeader reads the n-d-* headers of h into a Route (not the
// forwarded business headers: those depend on configuration, see
// WithForwardHeaders). ok reports whether any routing header was present.
// A header that does not parse is left out of the route and reported in
// err (one *HeaderError per bad header, joined); the rest of the route is
// still returned.
func RouteFromHeader(h http.Header) (r Route, ok bool, err error) {
	return routeFromInbound(canonicalHeader(h))
}

// hasRouteHeader reports whether h carries any non-empty n-d-* route
// header.
func hasRouteHeader(h http.Header) bool {
	for i := range routeFields {
		if vs := h[routeFields[i].canon]; len(vs) > 0 && strings.TrimSpace(vs[0]) != "" {
			return true
		}
	}
	return false
}

// dropRoutingHeaders deletes every header starting with n-d- (or n_d_,
// see isRoutingName) from h.
func dropRoutingHeaders(h http.Header) {
	for k := range h {
		if isRoutingName(k) {
			delete(h, k)
		}
	}
}

type routeKey struct{}

type retryKey struct{}

// WithRoute returns a copy of ctx carrying r. Picks and outbound calls made
// with the returned context follow r.
func WithRoute(ctx context.Context, r Route) context.Context {
	// One allocation holds both the context link and the route, where
	// context.WithValue would take two (the value node and the escaped
	// route): this runs once per request at every hop.
	return &routeCtx{Context: ctx, r: r}
}

// routeCtx is a context carrying a route, as context.WithValue would.
type routeCtx struct {
	context.Context
	r Route
}

// Value returns the route for routeKey and defers to the parent otherwise.
func (c *routeCtx) Value(key any) any {
	if key == (routeKey{}) {
		return &c.r
	}
	return c.Context.Value(key)
}

// String describes the context like context.WithValue's do.
func (c *routeCtx) String() string {
	return fmt.Sprint(c.Context) + ".WithRoute(" + c.r.String() + ")"
}

// RouteFrom returns the route ctx carries, if any.
func RouteFrom(ctx context.Context) (Route, bool) {
	if r := routeFrom(ctx); r != nil {
		return *r, true
	}
	return Route{}, false
}

func routeFrom(ctx context.Context) *Route {
	r, _ := ctx.Value(routeKey{}).(*Route)
	return r
}

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
