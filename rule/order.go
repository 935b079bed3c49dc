package rule

import (
	"slices"
	"strings"
)

// Nepxion does not match conditions in document order. StrategyReleaseEntity
// sorts both condition lists before use: by how many times the expression
// contains "#H['" (more first: the more specific condition wins), ties in
// document order (a stable sort), conditions without expression last. So
//
//	<condition id="a"   expression="#H['a'] == '1'"                    version-id="blue"/>
//	<condition id="a-b" expression="#H['a'] == '1' and #H['b'] == '2'" version-id="green"/>
//
// routes a=1&b=2 green, although "a" comes first. graylane keeps the
// conditions in document order in [Release] (for encoding) and matches them
// in Nepxion's order.
//
// Nepxion sorts as a side effect of setting the routes, so a document that
// lists <routes> before <conditions> (or, in JSON, the routes field before
// the condition lists) is matched unsorted by a Java hop.
// graylane always sorts: the order of elements should not change what a rule
// means, and every rule Nepxion documents or its console writes lists the
// conditions first.

// exprPrefix is what Nepxion counts to rank conditions
// (DiscoveryConstant.EXPRESSION_SUB_PREFIX).
const exprPrefix = "#H['"

// specificity ranks a condition for matching: the number of exprPrefix in its
// expression's text (every occurrence counts, also repeats of one name and
// occurrences inside string literals, as in Nepxion's StringUtil.count), or
// -1 for a condition without expression.
func specificity(c *Condition) int {
	if c.Expression == nil {
		return -1
	}
	return strings.Count(c.Expression.String(), exprPrefix)
}

// matchOrder returns the conditions in the order Nepxion tries them.
func matchOrder(conds []Condition) []*Condition {
	out := make([]*Condition, len(conds))
	for i := range conds {
		out[i] = &conds[i]
	}
	slices.SortStableFunc(out, func(a, b *Condition) int { return specificity(b) - specificity(a) })
	return out
}

// grayWeighted reports whether gray conditions decide route type t. Nepxion's
// gray conditions carry weights for version, region and address only; a
// version-weight-id or region-weight-id on a gray condition is ignored, so
// those types go from blue-green straight to <strategy>.
func (t RouteType) grayWeighted() bool {
	return t == TypeVersion || t == TypeRegion || t == TypeAddress
}

// index precomputes what Decide walks: the conditions in matching order, the
// blue-green ones per route type, and the defaults.
func (r *Rule) index() {
	bg := matchOrder(r.Release.BlueGreen)
	for i := range r.Release.BlueGreen {
		c := &r.Release.BlueGreen[i]
		c.idx = i
		c.folded, c.names = r.fold(c)
	}
	for _, c := range bg {
		for t := range numTypes {
			if c.RouteID(t) == "" {
				continue
			}
			// A blue-green condition takes part for the types it names, and
			// the first one without expression is that type's default: a
			// second default naming the same type is never reached, as in
			// Nepxion.
			switch {
			case c.Expression != nil:
				r.blueGreen[t] = append(r.blueGreen[t], c)
			case r.bgDefault[t] == nil:
				r.bgDefault[t] = c
			}
		}
	}
	// A gray condition is chosen once per request, for every type: the first
	// true one in matching order, else the first without expression.
	for i := range r.Release.Gray {
		c := &r.Release.Gray[i]
		c.idx = i
		c.folded, c.names = r.fold(c)
	}
	for _, c := range matchOrder(r.Release.Gray) {
		switch {
		case c.Expression != nil:
			r.gray = append(r.gray, c)
		case r.grayDefault == nil:
			r.grayDefault = c
		}
	}

	if len(r.Release.Header) > smallMap {
		// Keyed by the name in lower case: built-in header names match in
		// any case, and the first of names equal but for case wins.
		r.headerMap = make(map[string]string, len(r.Release.Header))
		for _, f := range r.Release.Header {
			if k := lowerKey(f.Name); !mapHas(r.headerMap, k) {
				r.headerMap[k] = f.Value
			}
		}
	}
	r.sticky = r.Release.Sticky
	for t := range numTypes {
		r.strategy[t] = r.Strategy.Get(t)
	}
	r.overlays = newOverlayPool()
}
