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

// index precomputes the per-type condition lists Decide walks.
func (r *Rule) index() {
	for tier, conds := range [2][]Condition{r.Release.BlueGreen, r.Release.Gray} {
		for i := range conds {
			c := &conds[i]
			c.idx = i
			c.folded = r.fold(c)
			for t := range numTypes {
				if len(c.refs[t]) == 0 {
					continue
				}
				if c.Expression == nil {
					if r.defaults[tier][t] == nil { // the first default of a type wins, as in Nepxion
						r.defaults[tier][t] = c
					}
				} else {
					r.conds[tier][t] = append(r.conds[tier][t], c)
				}
			}
		}
	}
	if len(r.Release.Header) > 0 {
		r.headerMap = make(map[string]string, len(r.Release.Header))
		for _, f := range r.Release.Header {
			r.headerMap[f.Name] = f.Value
		}
	}
	r.sticky = r.Release.Sticky
	for t := range numTypes {
		r.strategy[t] = r.Strategy.Get(t)
	}
	r.overlays = newOverlayPool()
}
