package rule

import (
	"sync"

	"github.com/graylane/graylane/expr"
)

// Tier names the part of a rule that produced a decision.
type Tier string

// The tiers, tried in this order for every route type.
const (
	TierNone      Tier = ""           // nothing matched: no constraint
	TierBlueGreen Tier = "blue-green" // a <conditions type="blue-green"> condition
	TierGray      Tier = "gray"       // a <conditions type="gray"> condition and a weighted draw
	TierStrategy  Tier = "strategy"   // the <strategy> fallback
)

// Rule is a parsed, validated release rule with every expression compiled.
// Build one with [Parse], [ParseDocument] or [Orchestrate]; the exported
// fields describe it and must be treated as read-only. A Rule is immutable,
// so any number of goroutines may call [Rule.Decide] at once.
type Rule struct {
	// Strategy is the <strategy> fallback.
	Strategy Strategy
	// Release is <strategy-release>: conditions, routes and built-in header.
	Release Release
	// Failover is <strategy-failover>, for the balancer when a routed set
	// is empty.
	Failover Failover
	// Blacklist is <strategy-blacklist>: instances never to pick.
	Blacklist Blacklist
	// Discovery is what routes in the <discovery> section (its host,
	// version and region filters and weights), which depends on the
	// calling service. The section itself is kept as written for the
	// encoders.
	Discovery Discovery
	// Ignored lists what the document carried and graylane does not use, so
	// the caller can log it: sections by name ("register",
	// "parameter", ...), elements, keys and attributes by path
	// ("strategy-release/customization"). The sections are written back by
	// the encoders; the rest is dropped, as Nepxion drops it.
	Ignored []string

	kept []keptSection // sections graylane does not use, written back by the encoders

	// Precomputed for Decide.
	blueGreen   [numTypes][]*Condition // per type, the blue-green conditions with expression naming it, in matching order (order.go)
	bgDefault   [numTypes]*Condition   // per type, the first blue-green condition without expression naming it
	gray        []*Condition           // the gray conditions with expression, in matching order
	grayDefault *Condition             // the first gray condition without expression
	strategy    [numTypes]Value
	headerMap   map[string]string
	sticky      string
	overlays    *sync.Pool // of *overlay, so Decide does not allocate
}

// Strategy is the <strategy> section: the value used for a route type when
// no release condition yields one.
type Strategy struct {
	Version, Region, Address, VersionWeight, RegionWeight Value
}

// Get returns the value for one route type (zero for a type the rule
// does not decide).
func (s *Strategy) Get(t RouteType) Value {
	if t.Decided() {
		return *types[t].strategy(s)
	}
	return Value{}
}

func (s *Strategy) set(t RouteType, v Value) { *types[t].strategy(s) = v }

// Release is the <strategy-release> section.
type Release struct {
	// BlueGreen and Gray are the conditions of <conditions type="blue-green">
	// and <conditions type="gray">, in document order. Decide tries them in
	// Nepxion's order: more #H['...'] references first, ties in document
	// order, conditions without expression last.
	BlueGreen []Condition
	Gray      []Condition
	// Sticky, when set, names the request value (looked up like #H['name'])
	// whose hash replaces the caller's random draw for gray conditions, so
	// one user stays on one side. Written as the attribute
	// sticky="#H['name']" on <conditions type="gray">; an extension to
	// Nepxion's format, absent from plain Nepxion rules.
	Sticky string
	// Routes are the <route> elements, in document order.
	Routes []Route
	// Header is the built-in <header>, set on every request at the entry.
	Header Header
}

// IsZero reports whether the section is empty.
func (r *Release) IsZero() bool {
	return len(r.BlueGreen) == 0 && len(r.Gray) == 0 && len(r.Routes) == 0 && len(r.Header) == 0 && r.Sticky == ""
}

// Condition is one <condition>: an expression (nil for a default
// condition) and, per route type, the routes it selects. The ID attributes
// hold the text as written in XML (canonical form): a route id for
// blue-green, "route-a=W;route-b=W" for gray.
type Condition struct {
	ID                                                              string
	Expression                                                      *expr.Condition
	VersionID, RegionID, AddressID, VersionWeightID, RegionWeightID string

	refs   [numTypes][]ref
	idx    int      // position in its conditions list, for Decide's memo
	folded uint8    // foldTrue/foldFalse: the built-in header alone decides it
	names  []string // the names a folded expression reads
	at     pos      // where the condition is written (Position)
	exprAt pos      // where its expression is written
}

// RouteID returns the condition's reference attribute for one route type
// ("" for a type the rule does not decide).
func (c *Condition) RouteID(t RouteType) string {
	if t.Decided() {
		return *types[t].condID(c)
	}
	return ""
}

func (c *Condition) setRouteID(t RouteType, s string) { *types[t].condID(c) = s }

// expression returns the source text of the condition's expression.
func (c *Condition) expression() string {
	if c.Expression == nil {
		return ""
	}
	return c.Expression.String()
}

// ref is a resolved reference from a condition to a route; cum is the
// cumulative weight up to and including this route (gray only).
type ref struct {
	route *Route
	cum   uint64
}

// Route is one <route>: an id, a type and the value it routes to.
type Route struct {
	ID    string
	Type  RouteType
	Value Value

	at pos // where the route is written (Position)
}

// HeaderField is one built-in header.
type HeaderField struct {
	Name, Value string
}

// Header is an ordered list of header fields with unique names.
type Header []HeaderField

// Lookup returns the value of the named field, so a Header serves as
// expr.Values.
func (h Header) Lookup(name string) (string, bool) { return h.Get(name) }

// Get returns the value of the named field.
func (h Header) Get(name string) (string, bool) {
	for i := range h {
		if h[i].Name == name {
			return h[i].Value, true
		}
	}
	return "", false
}

// Fixed returns the value the rule sets for a route type it does not
// decide per request: the version preference and failover of
// <strategy-failover> and the blacklists of <strategy-blacklist>. It is
// zero for other types and for a nil Rule.
func (r *Rule) Fixed(t RouteType) Value {
	if r == nil || t >= NumTypes || types[t].fixed == nil {
		return Value{}
	}
	return *types[t].fixed(r)
}

// Failover is the <strategy-failover> section: where to go when the routed
// set of instances is empty, or which versions to prefer.
type Failover struct {
	VersionPrefer, VersionFailover, RegionTransfer, RegionFailover,
	EnvFailover, ZoneFailover, AddressFailover Value
}

var failoverNames = []string{"version-prefer", "version-failover", "region-transfer",
	"region-failover", "env-failover", "zone-failover", "address-failover"}

func (f *Failover) fields() []*Value {
	return []*Value{&f.VersionPrefer, &f.VersionFailover, &f.RegionTransfer,
		&f.RegionFailover, &f.EnvFailover, &f.ZoneFailover, &f.AddressFailover}
}

// Blacklist is the <strategy-blacklist> section: instance ids and addresses
// that must not receive traffic.
type Blacklist struct {
	ID, Address Value
}

var blacklistNames = []string{"id", "address"}

func (b *Blacklist) fields() []*Value { return []*Value{&b.ID, &b.Address} }
