package rule

// What build precomputes for Decide.

// fold reports whether the built-in header alone decides c's expression:
// when every name it reads is a header name, and the header wins, the
// request cannot change the result, so Decide need not evaluate it.
func (r *Rule) fold(c *Condition) uint8 {
	h := r.Release.Header
	if c.Expression == nil || len(h) == 0 {
		return foldNone
	}
	for _, n := range c.Expression.Names() {
		if _, ok := h.Get(n); !ok {
			return foldNone
		}
	}
	if c.Expression.Match(h) {
		return foldTrue
	}
	return foldFalse
}
