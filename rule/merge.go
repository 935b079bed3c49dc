package rule

import "slices"

// Merge returns the rule a service follows when both its own document and
// its group's hold a rule: Nepxion's RuleEntityWrapper.assemble, section
// by section. Each section the service rule has (<strategy>,
// <strategy-release>, <strategy-failover>, <strategy-blacklist>, and the
// sections graylane keeps without using, such as <register>, <discovery>
// and <parameter>) is the service rule's, whole; each one it lacks is the
// group rule's. So a group-wide blacklist holds for every service that
// has a rule of its own without one.
//
// A section counts as present when it holds anything: an empty
// <strategy-blacklist/> in the service rule does not hide the group's,
// where Nepxion's would. A nil argument yields the other; the arguments
// are not modified, and the result shares no mutable state with them.
func Merge(service, group *Rule) *Rule {
	switch {
	case service == nil && group == nil:
		return nil
	case group == nil:
		return service.clone()
	case service == nil:
		return group.clone()
	}
	// Start from the service rule whole, so that a section this function
	// does not name stays the service rule's.
	r := service.clone()
	if r.Strategy == (Strategy{}) {
		r.Strategy = group.Strategy
	}
	if r.Release.IsZero() {
		r.Release = group.Release
	}
	if zeroValues(r.Failover.fields()) {
		r.Failover = group.Failover
	}
	if zeroValues(r.Blacklist.fields()) {
		r.Blacklist = group.Blacklist
	}
	if r.Discovery.IsZero() {
		r.Discovery = group.Discovery
	}
	for _, k := range group.kept {
		if !slices.ContainsFunc(service.kept, func(s keptSection) bool { return s.name == k.name }) {
			r.kept = append(r.kept, k)
		}
	}
	for _, s := range group.Ignored {
		if !slices.Contains(r.Ignored, s) {
			r.Ignored = append(r.Ignored, s)
		}
	}
	r.reindex()
	return r
}

// clone returns a copy of r with its own lists and precomputed state.
func (r *Rule) clone() *Rule {
	c := new(Rule)
	*c = *r
	c.Ignored = slices.Clone(r.Ignored)
	c.kept = slices.Clone(r.kept)
	c.reindex()
	return c
}

// reindex gives r its own condition lists (index writes into the
// conditions, which are shared with the rule r was copied from) and
// computes its precomputed state afresh.
func (r *Rule) reindex() {
	r.Release.BlueGreen = slices.Clone(r.Release.BlueGreen)
	r.Release.Gray = slices.Clone(r.Release.Gray)
	r.blueGreen, r.bgDefault = [numTypes][]*Condition{}, [numTypes]*Condition{}
	r.gray, r.grayDefault = nil, nil
	r.headerMap = nil
	r.index()
}

// zeroValues reports whether every value is zero.
func zeroValues(vs []*Value) bool {
	for _, v := range vs {
		if !v.IsZero() {
			return false
		}
	}
	return true
}
