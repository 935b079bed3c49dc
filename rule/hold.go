package rule

import (
	"slices"
	"strings"
	"time"
)

// Hold keeps versions in a spec's expansion for a while after they leave
// the inventory, so that a transient absence (instances re-registering one
// by one after an agent restart) never re-labels the sides: a version seen
// before and absent for less than D still counts, with the earliest start
// time seen, and the old version stays route-0 while it is briefly missing.
// A version that appears counts at once. The balancer's live expansion and
// graylane orchestrate both expand through a Hold.
//
// Time is the caller's: every method takes now. The zero Hold holds for 0
// (a version leaves as soon as it is absent). Not safe for concurrent use.
type Hold struct {
	// D is how long an absent version stays; < 0 turns the hold off (Apply
	// returns the list unchanged).
	D time.Duration

	seen map[string]map[string]*heldVersion
}

type heldVersion struct {
	started time.Time // earliest start seen; zero when unknown
	absent  time.Time // when the inventory stopped listing it; zero while listed
	rank    int       // 1 + its position in the rendering it was seeded from; 0: not seeded
}

// Seed records versions of service, oldest first as a rendering orders
// them, as seen and absent since now, unless they are known already: the
// versions a rendering in force names, before the inventory confirms them.
// Listed in the inventory, they are simply present.
func (h *Hold) Seed(service string, versions []string, now time.Time) {
	if h.D < 0 {
		return
	}
	seen := h.service(service)
	for i, v := range versions {
		if _, ok := seen[v]; !ok {
			seen[v] = &heldVersion{absent: now, rank: i + 1}
		}
	}
}

// Retain forgets the services not in names.
func (h *Hold) Retain(names []string) {
	for name := range h.seen {
		if !slices.Contains(names, name) {
			delete(h.seen, name)
		}
	}
}

// Reset forgets everything seen.
func (h *Hold) Reset() { h.seen = nil }

// Apply adds to list (the instances the inventory lists for service) one
// instance per version held, and one per version with the earliest start
// seen, so that sorting by time keeps its order. It returns the longer
// list, the versions held (sorted), and when the first of them leaves
// (zero: none).
func (h *Hold) Apply(service string, list []Instance, now time.Time) ([]Instance, []string, time.Time) {
	if h.D < 0 {
		return list, nil, time.Time{}
	}
	seen := h.service(service)
	listed := make(map[string]bool, 4)
	for _, in := range list {
		v := strings.TrimSpace(in.Version)
		if v == "" {
			v = DefaultVersion
		}
		listed[v] = true
		sv := seen[v]
		if sv == nil {
			sv = &heldVersion{started: in.Started}
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
			list = append(list, Instance{Version: v, Started: startOf(seen, sv)})
			continue
		}
		if sv.absent.IsZero() {
			sv.absent = now
		}
		end := sv.absent.Add(h.D)
		if !now.Before(end) {
			delete(seen, v)
			continue
		}
		held = append(held, v)
		if next.IsZero() || end.Before(next) {
			next = end
		}
		list = append(list, Instance{Version: v, Started: startOf(seen, sv)})
	}
	slices.Sort(held)
	return list, held, next
}

// startOf returns the start time a version counts with: the earliest seen,
// else, for a version seeded from a rendering, one that keeps the
// rendering's order among the versions of known start (just before the
// next one's in that order, else just after the previous one's), so that
// sorting by time does not move a version whose start is not known yet.
func startOf(seen map[string]*heldVersion, sv *heldVersion) time.Time {
	if !sv.started.IsZero() || sv.rank == 0 {
		return sv.started
	}
	var next, prev *heldVersion
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

func (h *Hold) service(name string) map[string]*heldVersion {
	if h.seen == nil {
		h.seen = make(map[string]map[string]*heldVersion)
	}
	seen := h.seen[name]
	if seen == nil {
		seen = make(map[string]*heldVersion)
		h.seen[name] = seen
	}
	return seen
}
