package rule

import (
	"math/bits"
	"sync"

	"github.com/graylane/graylane/expr"
)

// HeaderPriority says whose value wins when the rule's built-in <header>
// and the request's own header carry the same name. Either way a request
// value is read, per name, in Nepxion's order, and a blank value (empty or
// white space) passes the name on to the next source; query parameters and
// cookies, which only an HTTP request has ([ParamValues]), come first.
type HeaderPriority uint8

const (
	// BuiltInFirst lets the rule's <header> replace the request's header of
	// the same name, as Nepxion's header priority (header.priority=true)
	// does by default: the order is query parameter, cookie, built-in
	// header, request header. A request header is read only when the
	// built-in header has no value of that name. It is what a rule author
	// expects: rules that pin xyz=1 route every request the same way unless
	// the request says otherwise in its query or a cookie.
	BuiltInFirst HeaderPriority = iota
	// RequestFirst keeps the request's own header (Nepxion's
	// header.priority=false): the order is query parameter, cookie, request
	// header, built-in header.
	RequestFirst
)

// BuiltInWins reports whether a value of the rule's built-in <header>
// replaces the request's header of the same name; requestHas says whether
// the request carries one. It is the one statement of the header priority
// for the headers that travel on from the entry; what expressions read
// follows it too, after the query parameters and cookies.
func (p HeaderPriority) BuiltInWins(requestHas bool) bool {
	return p != RequestFirst || !requestHas
}

// Values gives a rule's expressions the values of one request by name:
// what #H['name'] reads. Transports adapt their requests to it (the
// balancer reads an HTTP request's query, cookies and headers; grpcroute
// reads gRPC metadata).
type Values = expr.Values

// ParamValues is implemented by Values that hold, besides the request's
// headers, values that Nepxion reads before the headers: an HTTP request's
// query parameters and cookies (balancer.RequestValues). Such a value,
// when not blank, beats the rule's built-in header under either priority.
// Values that do not implement it (gRPC metadata, a Map) hold headers only.
type ParamValues interface {
	Values
	// LookupParam returns the first value of name that is not blank among
	// the sources read before the headers (for HTTP: the query parameter,
	// then the cookie), and false when there is none.
	LookupParam(name string) (value string, ok bool)
}

// Map is Values held in a map, with names matched exactly.
type Map = expr.Map

// Decision is what a rule decided for one request: per route type, the
// constraint every service in the chain must honour (the zero Value leaves
// that type unconstrained).
type Decision struct {
	Version, Region, Address, VersionWeight, RegionWeight Value
	// Tier, ConditionID and RouteID tell, for the version type, which part of
	// the rule decided: for logs and debugging.
	Tier        Tier
	ConditionID string
	RouteID     string
}

// Get returns the decision for one route type (zero for a type the rule
// does not decide).
func (d *Decision) Get(t RouteType) Value {
	if t.Decided() {
		return *d.fields()[t]
	}
	return Value{}
}

// fields returns the decision's value fields, indexed by route type.
func (d *Decision) fields() [numTypes]*Value {
	return [numTypes]*Value{&d.Version, &d.Region, &d.Address, &d.VersionWeight, &d.RegionWeight}
}

// IsZero reports whether the decision constrains nothing.
func (d *Decision) IsZero() bool {
	for _, v := range d.fields() {
		if !v.IsZero() {
			return false
		}
	}
	return true
}

// Decide evaluates the rule for one request, as a Nepxion hop does. v
// supplies the request's values (#H['name']); draw is a uniform random
// number from the caller, used to pick a route by weight in gray conditions
// (unless the rule's sticky key is present in v: then its hash is used, so
// one user keeps one side). The rule's built-in header replaces the
// request's header of the same name, but not its query parameters or
// cookies ([BuiltInFirst]); the sticky key is read in that same order.
//
// Each route type is decided in tiers: blue-green conditions, gray
// conditions, then <strategy>; the first tier that yields a value wins.
// Conditions are tried in Nepxion's order: more #H['...'] references
// first, ties in document order.
//
//   - Blue-green, per route type: among the conditions naming that type,
//     the first whose expression is true, else the first without
//     expression.
//   - Gray, once for the whole request: the first condition whose
//     expression is true, else the first without expression. It decides
//     version, region and address: a type it names gets one of its routes
//     by weight, each type drawn on its own; a type it does not name falls
//     to <strategy>. Gray conditions do not decide version-weight and
//     region-weight (Nepxion ignores those references there).
//
// A nil Rule decides nothing. Decide does not allocate and is safe for
// concurrent use.
func (r *Rule) Decide(v Values, draw uint64) Decision {
	return r.DecideWith(v, draw, BuiltInFirst)
}

// DecideWith is [Rule.Decide] with an explicit header priority.
func (r *Rule) DecideWith(v Values, draw uint64, p HeaderPriority) Decision {
	var d Decision
	if r == nil {
		return d
	}
	if v == nil {
		v = noValues{}
	}
	e := evalCtx{r: r, v: v, p: p}
	if p != RequestFirst && len(r.Release.Header) > 0 {
		// Only the built-in header first puts it between the request's
		// parameters and its header.
		e.pv, _ = v.(ParamValues)
	}
	if r.sticky != "" {
		if s, ok := e.lookup(r.sticky); ok && notBlank(s) {
			draw = stickyHash(s)
		}
	}
	for t := range numTypes {
		val, tier, c, rt := r.decide(t, &e, draw)
		*d.fields()[t] = val
		if t == TypeVersion {
			d.Tier = tier
			if c != nil {
				d.ConditionID, d.RouteID = c.ID, rt.ID
			}
		}
	}
	if e.ov != nil {
		e.ov.v = nil
		r.overlays.Put(e.ov)
	}
	return d
}

// evalCtx is the state of one decision: the request's values, the header
// priority, the overlay (taken from the pool only when an expression must
// run against it) and the memo of expression results.
type evalCtx struct {
	r         *Rule
	v         Values
	pv        ParamValues // v, when it has values before the headers
	p         HeaderPriority
	ov        *overlay
	done, val [2]uint64 // memo bits by tier, for the first 64 conditions
	gray      *Condition
	graySet   bool // gray holds the request's gray condition
}

// values returns what expressions see: the request's values with the
// built-in header laid over them.
func (e *evalCtx) values() Values {
	if len(e.r.Release.Header) == 0 {
		return e.v
	}
	if e.ov == nil {
		e.ov = e.r.overlays.Get().(*overlay)
		e.ov.rule, e.ov.v, e.ov.pv, e.ov.p = e.r, e.v, e.pv, e.p
	}
	return e.ov
}

// lookup is values().Lookup without taking an overlay from the pool.
func (e *evalCtx) lookup(name string) (string, bool) {
	if len(e.r.Release.Header) == 0 {
		return e.v.Lookup(name)
	}
	return e.r.lookup(e.v, e.pv, e.p, name)
}

// match evaluates a condition's expression once per decision. With the
// built-in header first, an expression that reads only built-in header
// names was folded to a constant when the rule was built: it holds unless
// the request has one of those names as a query parameter or cookie.
func (e *evalCtx) match(tier int, c *Condition) bool {
	folded := e.p == BuiltInFirst && c.folded != foldNone
	if folded && e.pv == nil {
		return c.folded == foldTrue
	}
	if c.idx >= 64 {
		if folded && !e.hasParam(c) {
			return c.folded == foldTrue
		}
		return c.Expression.Match(e.values())
	}
	bit := uint64(1) << c.idx
	if e.done[tier]&bit != 0 {
		return e.val[tier]&bit != 0
	}
	var ok bool
	if folded && !e.hasParam(c) {
		ok = c.folded == foldTrue
	} else {
		ok = c.Expression.Match(e.values())
	}
	e.done[tier] |= bit
	if ok {
		e.val[tier] |= bit
	}
	return ok
}

// hasParam reports whether the request has a name c's expression reads as
// a query parameter or cookie, which come before the built-in header: then
// c's folded result does not hold.
func (e *evalCtx) hasParam(c *Condition) bool {
	for _, n := range c.names {
		if _, ok := e.pv.LookupParam(n); ok {
			return true
		}
	}
	return false
}

// Condition folding states.
const (
	foldNone  uint8 = iota // depends on the request
	foldTrue               // always true when the built-in header wins
	foldFalse              // always false when the built-in header wins
)

// StickyDraw returns the draw a sticky rule derives from v, and whether the
// rule has a sticky key present (and not blank) in v: the draw Decide then
// uses in place of the caller's (the version type's; the other types derive
// theirs from it). The built-in header is not applied.
func (r *Rule) StickyDraw(v Values) (uint64, bool) {
	if r == nil || r.sticky == "" || v == nil {
		return 0, false
	}
	s, ok := v.Lookup(r.sticky)
	if !ok || expr.Blank(s) {
		return 0, false
	}
	return stickyHash(s), true
}

func (r *Rule) decide(t RouteType, e *evalCtx, draw uint64) (Value, Tier, *Condition, *Route) {
	if c := r.matchBlueGreen(t, e); c != nil {
		// A condition whose route is missing (no ref, or a route without
		// value) yields nothing: Nepxion goes on to the next tier, not to the
		// next condition.
		if refs := c.refs[t]; len(refs) > 0 && !refs[0].route.Value.IsZero() {
			return refs[0].route.Value, TierBlueGreen, c, refs[0].route
		}
	}
	if t.grayWeighted() {
		if c := e.grayCondition(); c != nil {
			if refs := c.refs[t]; len(refs) > 0 {
				x, _ := bits.Mul64(typeDraw(draw, t), refs[len(refs)-1].cum) // uniform in [0, total)
				for i := range refs {
					if x < refs[i].cum {
						return refs[i].route.Value, TierGray, c, refs[i].route
					}
				}
			}
		}
	}
	if sv := r.strategy[t]; !sv.IsZero() {
		return sv, TierStrategy, nil, nil
	}
	return Value{}, TierNone, nil, nil
}

// matchBlueGreen returns the first blue-green condition naming type t whose
// expression holds, else the first naming t without expression, else nil.
func (r *Rule) matchBlueGreen(t RouteType, e *evalCtx) *Condition {
	for _, c := range r.blueGreen[t] {
		if e.match(0, c) {
			return c
		}
	}
	return r.bgDefault[t]
}

// grayCondition returns the gray condition of this request: the first whose
// expression holds, else the first without expression, else nil. It is
// chosen once and serves every route type.
func (e *evalCtx) grayCondition() *Condition {
	if !e.graySet {
		e.graySet = true
		e.gray = e.r.grayDefault
		for _, c := range e.r.gray {
			if e.match(1, c) {
				e.gray = c
				break
			}
		}
	}
	return e.gray
}

// typeDraw derives the draw for route type t, so each type's weights are
// drawn on their own, as Nepxion draws a fresh random number per type. The
// version type uses the caller's draw as it is; the others mix it with the
// type (the SplitMix64 finalizer), which keeps a sticky key's draw fixed per
// key and type.
func typeDraw(draw uint64, t RouteType) uint64 {
	if t == TypeVersion {
		return draw
	}
	return mix64(draw + uint64(t)*0x9e3779b97f4a7c15)
}

// overlay lays the rule's built-in header over the request's values.
type overlay struct {
	rule *Rule
	v    Values
	pv   ParamValues
	p    HeaderPriority
}

func (o *overlay) Lookup(name string) (string, bool) { return o.rule.lookup(o.v, o.pv, o.p, name) }

// lookup returns the value of name that a decision sees, in Nepxion's order
// (ExpressionStrategyCondition.createMap with the header priority applied
// as its gateway and service filters apply it): the request's query
// parameter or cookie (pv, which is v or nil), then, with the built-in
// header first, the built-in header if it has a value and else the
// request's header; with the request first, the request's header if not
// blank and else the built-in header.
func (r *Rule) lookup(v Values, pv ParamValues, p HeaderPriority, name string) (string, bool) {
	if p == RequestFirst {
		s, ok := v.Lookup(name)
		if ok && notBlank(s) {
			return s, true
		}
		if b, bok := r.header(name); bok {
			return b, true
		}
		return s, ok
	}
	// Nepxion's filters skip an empty built-in value: the request's header
	// stays. A blank one replaces it and reads as null.
	b, ok := r.header(name)
	if !ok || b == "" {
		return v.Lookup(name)
	}
	if pv != nil {
		if s, ok := pv.LookupParam(name); ok {
			return s, true
		}
	}
	return b, true
}

// notBlank reports whether s is not blank (see expr.Blank), at the cost of
// one comparison when s starts with a printable ASCII character other than
// space, as request values do.
func notBlank(s string) bool {
	if s != "" && s[0] > ' ' && s[0] < 0x7f {
		return true
	}
	return !expr.Blank(s)
}

// header returns the built-in header's value of name, whose names match in
// any case as HTTP header names do (the first field wins).
func (r *Rule) header(name string) (string, bool) {
	if r.headerMap != nil {
		var buf [64]byte
		if len(name) <= len(buf) {
			b := buf[:len(name)]
			for i := 0; i < len(name); i++ {
				b[i] = lowerASCII(name[i])
			}
			s, ok := r.headerMap[string(b)]
			return s, ok
		}
		s, ok := r.headerMap[lowerKey(name)]
		return s, ok
	}
	h := r.Release.Header
	for i := range h {
		if equalFoldASCII(h[i].Name, name) {
			return h[i].Value, true
		}
	}
	return "", false
}

// lowerKey lowers the ASCII letters of s: the key of a built-in header
// name in Rule.headerMap.
func lowerKey(s string) string {
	b := []byte(s)
	for i := range b {
		b[i] = lowerASCII(b[i])
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// equalFoldASCII reports whether a and b are equal up to the case of ASCII
// letters.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

type noValues struct{}

func (noValues) Lookup(string) (string, bool) { return "", false }

// stickyHash maps a key to a uniform 64-bit draw: FNV-1a, then the
// SplitMix64 finalizer so that similar keys spread over the whole range.
func stickyHash(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the SplitMix64 finalizer: a bijection that spreads every input
// bit over the whole word.
func mix64(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

func newOverlayPool() *sync.Pool {
	return &sync.Pool{New: func() any { return new(overlay) }}
}
