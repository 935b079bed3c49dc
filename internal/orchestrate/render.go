package orchestrate

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/graylane/graylane/rule"
)

// Rendering is a spec expanded into a rule.
type Rendering struct {
	// Rule is the expanded rule and XML its Nepxion XML encoding, what the
	// rule key holds.
	Rule *rule.Rule
	XML  []byte
	// Pending lists the spec's services that had no instances: the rule
	// leaves them unconstrained until they appear.
	Pending []string
}

// Render expands spec against inv as the balancer does: a service without
// instances is left out of the rule (listed in Pending) rather than holding
// back every other service. When no service has an instance it fails with
// an error wrapping [rule.ErrNoInstances]; any other error is the spec's.
func Render(spec *rule.Spec, inv rule.Inventory) (*Rendering, error) {
	if spec == nil {
		return nil, errors.New("orchestrate: nil spec")
	}
	var present, pending []string
	for _, name := range spec.Service {
		if len(inv[name]) == 0 {
			pending = append(pending, name)
		} else {
			present = append(present, name)
		}
	}
	s := spec
	if len(pending) > 0 && len(present) > 0 {
		partial := *spec
		partial.Service = present
		s = &partial
	}
	r, err := rule.Orchestrate(s, inv)
	if err != nil {
		return nil, err
	}
	xml, err := rule.EncodeXML(r)
	if err != nil {
		return nil, err
	}
	return &Rendering{Rule: r, XML: xml, Pending: pending}, nil
}

// hold keeps versions in the expansion for a while after they leave the
// catalog, as the balancer's expansion hold does: a version seen before and
// absent for less than d still counts, with the earliest start time seen,
// so that a transient absence never re-labels the sides. A version that
// appears counts at once. Not safe for concurrent use.
type hold struct {
	d    time.Duration // < 0: none
	seen map[string]map[string]*seenVersion
}

type seenVersion struct {
	started time.Time // earliest start seen; zero when unknown
	absent  time.Time // when the catalog stopped listing it; zero while listed
	rank    int       // 1 + its position in the rendering it was seeded from; 0: not seeded
}

// seed records versions of service, oldest first as a rendering orders
// them, as seen and absent since now, unless they are known already: the
// versions a rendering names, before the catalog confirms them. Listed in
// the catalog, they are simply present.
func (h *hold) seed(service string, versions []string, now time.Time) {
	if h.d < 0 {
		return
	}
	seen := h.service(service)
	for i, v := range versions {
		if _, ok := seen[v]; !ok {
			seen[v] = &seenVersion{absent: now, rank: i + 1}
		}
	}
}

// startOf returns the start time a version counts with: the earliest seen,
// else, for a version seeded from a rendering, one that keeps the
// rendering's order among the versions of known start (just before the
// next one's in that order, else just after the previous one's), so that
// sorting by time does not move a version whose start is not known yet.
func startOf(seen map[string]*seenVersion, sv *seenVersion) time.Time {
	if !sv.started.IsZero() || sv.rank == 0 {
		return sv.started
	}
	var next, prev *seenVersion
	for _, o := range seen {
		if o.rank == 0 || o.started.IsZero() {
			continue
		}
		if o.rank > sv.rank && (next == nil || o.rank < next.rank) {
			next = o
		}
		if o.rank < sv.rank && (prev == nil || o.rank > prev.rank) {
			prev = o
		}
	}
	switch {
	case next != nil:
		return next.started.Add(-time.Duration(next.rank-sv.rank) * time.Nanosecond)
	case prev != nil:
		return prev.started.Add(time.Duration(sv.rank-prev.rank) * time.Nanosecond)
	}
	return time.Time{}
}

func (h *hold) service(name string) map[string]*seenVersion {
	if h.seen == nil {
		h.seen = make(map[string]map[string]*seenVersion)
	}
	seen := h.seen[name]
	if seen == nil {
		seen = make(map[string]*seenVersion)
		h.seen[name] = seen
	}
	return seen
}

// retain forgets the services not in names.
func (h *hold) retain(names []string) {
	for name := range h.seen {
		if !slices.Contains(names, name) {
			delete(h.seen, name)
		}
	}
}

// apply adds to list (the instances the catalog lists for service) one
// instance per version held, and one per version with the earliest start
// seen, so that sorting by time keeps its order. It returns the longer
// list, the versions held, and when the first of them leaves (zero: none).
func (h *hold) apply(service string, list []rule.Instance, now time.Time) ([]rule.Instance, []string, time.Time) {
	if h.d < 0 {
		return list, nil, time.Time{}
	}
	seen := h.service(service)
	listed := make(map[string]bool, 4)
	for _, in := range list {
		v := strings.TrimSpace(in.Version)
		if v == "" {
			v = rule.DefaultVersion
		}
		listed[v] = true
		sv := seen[v]
		if sv == nil {
			sv = &seenVersion{started: in.Started}
			seen[v] = sv
		}
		sv.absent = time.Time{}
		if !in.Started.IsZero() && (sv.started.IsZero() || in.Started.Before(sv.started)) {
			sv.started = in.Started
		}
	}
	var held []string
	var next time.Time
	for v, sv := range seen {
		if listed[v] {
			list = append(list, rule.Instance{Version: v, Started: startOf(seen, sv)})
			continue
		}
		if sv.absent.IsZero() {
			sv.absent = now
		}
		end := sv.absent.Add(h.d)
		if !now.Before(end) {
			delete(seen, v)
			continue
		}
		held = append(held, v)
		if next.IsZero() || end.Before(next) {
			next = end
		}
		list = append(list, rule.Instance{Version: v, Started: startOf(seen, sv)})
	}
	slices.Sort(held)
	return list, held, next
}

// namedVersions returns the versions r's <strategy> version and version
// routes give service, each once: what a rendering of a spec names.
func namedVersions(r *rule.Rule, service string) []string {
	var out []string
	read := func(v rule.Value) {
		s, ok := v.For(service)
		if !ok {
			return
		}
		for alt := range strings.SplitSeq(s, ";") {
			if alt = strings.TrimSpace(alt); alt != "" && !slices.Contains(out, alt) {
				out = append(out, alt)
			}
		}
	}
	read(r.Strategy.Version)
	for i := range r.Release.Routes {
		if rt := &r.Release.Routes[i]; rt.Type == rule.TypeVersion {
			read(rt.Value)
		}
	}
	return out
}
