package rule

import "github.com/graylane/graylane/expr"

// What build precomputes for Decide.

// fold reports whether the built-in header alone decides c's expression
// with the built-in header first: when every name it reads has a value in
// the built-in header, the request's headers cannot change the result, so
// Decide need not evaluate it (unless the request has one of those names
// as a query parameter or cookie, which come first). It also returns the
// names to check for that.
func (r *Rule) fold(c *Condition) (uint8, []string) {
	if c.Expression == nil || len(r.Release.Header) == 0 {
		return foldNone, nil
	}
	names := c.Expression.Names()
	for _, n := range names {
		if s, ok := r.header(n); !ok || s == "" {
			return foldNone, nil
		}
	}
	if c.Expression.Match(expr.ValuesFunc(r.header)) {
		return foldTrue, names
	}
	return foldFalse, names
}

func mapHas(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
