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
	r := &Rule{
		Strategy:  service.Strategy,
		Release:   service.Release,
		Failover:  service.Failover,
		Blacklist: service.Blacklist,
	}
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
	r.kept = slices.Clone(service.kept)
	for _, k := range group.kept {
		if !slices.ContainsFunc(service.kept, func(s keptSection) bool { return s.name == k.name }) {
			r.kept = append(r.kept, k)
		}
	}
	r.Ignored = slices.Clone(service.Ignored)
	for _, s := range group.Ignored {
		if !slices.Contains(r.Ignored, s) {
			r.Ignored = append(r.Ignored, s)
		}
	}
	r.cloneConditions()
	r.index()
	return r
}

// clone returns a copy of r with its own precomputed state.
func (r *Rule) clone() *Rule {
	c := &Rule{Strategy: r.Strategy, Release: r.Release, Failover: r.Failover, Blacklist: r.Blacklist,
		Ignored: slices.Clone(r.Ignored), kept: slices.Clone(r.kept)}
	c.cloneConditions()
	c.index()
	return c
}

// cloneConditions gives r its own condition lists: index writes into the
// conditions, which are shared with the rule they were copied from.
func (r *Rule) cloneConditions() {
	r.Release.BlueGreen = slices.Clone(r.Release.BlueGreen)
	r.Release.Gray = slices.Clone(r.Release.Gray)
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
