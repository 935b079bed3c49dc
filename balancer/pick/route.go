package pick

import (
	"context"
	"fmt"
	"math/bits"
	"strings"

	"github.com/graylane/graylane/rule"
)

// Route is the routing decision carried down a call chain: per route type
// ([rule.RouteType]), what each service may be picked from, and the
// business headers forwarded with it. Each value is a map by service or one
// plain value for all services ([rule.Value]); the zero Value constrains
// nothing. A Route is a small value; treat its Header as read-only once the
// route is in a context.
//
// Build one with [Route.With] or [Route.Set], or read one from a carrier
// with [Extract].
type Route struct {
	values [rule.NumTypes]rule.Value
	set    typeSet // the types whose value is not zero
	// passed holds the n-d-* headers no route type reads, as they
	// arrived (Extract), for Inject to pass on. Read-only once set.
	passed []passedHeader
	// Header holds the business headers forwarded with the route, by
	// canonical HTTP name: the configured forward headers and the rule's
	// built-in header. An http.Header may be assigned to it.
	Header map[string][]string
	// Origin says how the route came to be at this hop (for metrics,
	// traces and logs); the codec does not carry it.
	Origin Origin
}

// Get returns the route's value for one route type.
func (r *Route) Get(t rule.RouteType) rule.Value {
	if t < rule.NumTypes {
		return r.values[t]
	}
	return rule.Value{}
}

// Set sets the route's value for one route type; the zero Value clears it.
func (r *Route) Set(t rule.RouteType, v rule.Value) {
	if t < rule.NumTypes {
		r.values[t] = v
		r.set = r.set.with(t, !v.IsZero())
	}
}

// passedHeader is an n-d-* header a route passes on as it arrived.
type passedHeader struct {
	key    string   // as the carrier named it
	values []string // one value; shared and read-only
}

// Passed returns the value of an n-d-* header that the route passes on as
// it arrived (one no route type reads: see [IsPassedKey]), by name in any
// case, and whether the route carries it.
func (r *Route) Passed(key string) (string, bool) {
	for i := range r.passed {
		if strings.EqualFold(r.passed[i].key, key) {
			return r.passed[i].values[0], true
		}
	}
	return "", false
}

// PassesHeaders reports whether the route passes on any n-d-* header as
// it arrived.
func (r *Route) PassesHeaders() bool { return len(r.passed) > 0 }

// typeSet is a set of route types, one bit each: which values of a route
// are set, so that a pick looks only at those.
type typeSet uint32

// The set must hold every route type.
var _ = [32 - rule.NumTypes]struct{}{}

func (s typeSet) with(t rule.RouteType, in bool) typeSet {
	if in {
		return s | 1<<t
	}
	return s &^ (1 << t)
}

// With returns a copy of r with the value of one route type set, so that a
// route can be written as an expression:
//
//	pick.Route{}.With(rule.TypeVersion, rule.PlainValue("1.1"))
func (r Route) With(t rule.RouteType, v rule.Value) Route {
	r.Set(t, v)
	return r
}

// Decides reports whether the route holds a value for a type a rule
// decides per request ([rule.RouteType.Decided]: version, region, address
// and their weights). A route that arrived with only failover, blacklist,
// env or passed headers leaves those types to the hop's rule.
func (r *Route) Decides() bool {
	for t := range rule.NumTypes {
		if t.Decided() && r.set&(1<<t) != 0 {
			return true
		}
	}
	return false
}

// IsZero reports whether the route constrains nothing (forwarded headers
// aside).
func (r *Route) IsZero() bool { return r.set == 0 }

// Constraint returns what the route asks of one service.
func (r *Route) Constraint(service string) Constraint {
	var c Constraint
	r.constraintInto(service, &c)
	return c
}

func (r *Route) constraintInto(service string, c *Constraint) {
	for set := r.set; set != 0; set &= set - 1 {
		t := rule.RouteType(bits.TrailingZeros32(uint32(set)))
		c[t], _ = r.values[t].For(service)
	}
}

// Override replaces r's values with the non-zero ones of in, type by type,
// and takes in's forwarded headers and the n-d-* headers it passes on:
// what arrived with a request beats what the local rule decided.
func (r *Route) Override(in *Route) {
	r.passed = in.passed
	for t := range rule.NumTypes {
		if in.set&(1<<t) != 0 {
			r.values[t] = in.values[t]
		}
	}
	r.set |= in.set
	r.Header = in.Header
}

// String lists the route's values as n-d-* header=value pairs (the type's
// name for a type without a header), for logs.
func (r *Route) String() string {
	var b strings.Builder
	for t := range rule.NumTypes {
		v := r.values[t]
		if v.IsZero() {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(keyOf(t))
		b.WriteByte('=')
		b.WriteString(v.String())
	}
	for i := range r.passed {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strings.ToLower(r.passed[i].key))
		b.WriteByte('=')
		b.WriteString(r.passed[i].values[0])
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}

// keyOf names a route type in logs: its header, else its name.
func keyOf(t rule.RouteType) string {
	if h := t.HeaderName(); h != "" {
		return h
	}
	return t.String()
}

// Constraint is what one request asks of one service: per route type, the
// filter value for that service as an n-d-* header carries it ("1.0;1.1",
// "1.*", "10.0.0.5:8080", a weight list "1.0=90;1.1=10" for the weight
// types), "" meaning no constraint. Index it by route type:
//
//	pick.Constraint{rule.TypeVersion: "1.1", rule.TypeRegion: "qa"}
//
// [Route.Constraint] derives it from a route. Constraint is comparable: a
// [Selector] caches the instance set of each distinct Constraint.
type Constraint [rule.NumTypes]string

// IsZero reports whether c constrains nothing.
func (c *Constraint) IsZero() bool { return *c == Constraint{} }

// String lists the non-empty values as name=value, by route type name, for
// errors and logs.
func (c *Constraint) String() string {
	if c.IsZero() {
		return "(none)"
	}
	var b strings.Builder
	for t := range rule.NumTypes {
		if c[t] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(t.String())
		b.WriteByte('=')
		b.WriteString(c[t])
	}
	return b.String()
}

// versionOnly reports whether c constrains the version and nothing else.
func (c *Constraint) versionOnly() bool {
	n := 0
	for t := range rule.NumTypes {
		if t != rule.TypeVersion {
			n |= len(c[t])
		}
	}
	return n == 0
}

type routeKey struct{}

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
	if _, ok := key.(routeKey); ok { // a type check: cheaper than comparing interfaces
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
	if r := FromContext(ctx); r != nil {
		return *r, true
	}
	return Route{}, false
}

// FromContext returns the route ctx carries, or nil: RouteFrom without the
// copy, for pick paths. The route is shared: read-only.
func FromContext(ctx context.Context) *Route {
	if c, ok := ctx.(*routeCtx); ok { // the route was the last thing added
		return &c.r
	}
	r, _ := ctx.Value(routeKey{}).(*Route)
	return r
}
