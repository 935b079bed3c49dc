package instance

import (
	"slices"
	"strings"
)

// Snapshot is an immutable view of one service's healthy instances, grouped
// by version for O(1) look-ups. Snapshots are published whole and never
// modified, so any number of goroutines may read one without locks.
type Snapshot struct {
	// Service is the service name.
	Service string
	// Instances holds every instance, ordered by version (in Versions order),
	// then by ID. Read-only.
	Instances []Instance
	// Versions lists the distinct versions, DefaultVersion first, then in
	// ascending version-string order (see CompareVersions). Read-only.
	Versions []string
	// Index is the source's revision of this answer (Consul's X-Consul-Index,
	// or the static registry's change counter).
	Index uint64

	byVersion map[string][2]int // version -> [start, end) in Instances
}

// NewSnapshot builds a snapshot of service from instances. It copies the
// instances (not their Meta maps) and leaves the slice as it was, fills in
// DefaultVersion and the service name where they are missing, and orders
// and groups the instances. Instances with a duplicate ID keep the first
// occurrence.
func NewSnapshot(service string, index uint64, instances []Instance) *Snapshot {
	s := &Snapshot{Service: service, Index: index}
	if len(instances) == 0 {
		return s
	}
	// Sort a permutation of the first occurrences rather than the instances
	// themselves: moving indices is far cheaper than moving ~250-byte
	// structs, and each instance is then copied once, into its place.
	seen := make(map[string]struct{}, len(instances))
	order := make([]int32, 0, len(instances))
	for i := range instances {
		if _, dup := seen[instances[i].ID]; dup {
			continue
		}
		seen[instances[i].ID] = struct{}{}
		order = append(order, int32(i))
	}
	slices.SortFunc(order, func(a, b int32) int {
		x, y := &instances[a], &instances[b]
		if c := CompareVersions(versionOf(x), versionOf(y)); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	list := make([]Instance, len(order))
	for i, j := range order {
		in := &list[i]
		*in = instances[j]
		in.Version = versionOf(in)
		if in.Service == "" {
			in.Service = service
		}
		in.hostPort = joinHostPort(in.Address, in.Port)
	}
	s.Instances = list
	s.byVersion = make(map[string][2]int)
	start := 0
	for i := 1; i <= len(list); i++ {
		if i == len(list) || list[i].Version != list[start].Version {
			s.Versions = append(s.Versions, list[start].Version)
			s.byVersion[list[start].Version] = [2]int{start, i}
			start = i
		}
	}
	return s
}

// versionOf is the instance's version, DefaultVersion when it declares none.
func versionOf(in *Instance) string {
	if in.Version == "" {
		return DefaultVersion
	}
	return in.Version
}

// Len returns the number of instances. A nil snapshot has none.
func (s *Snapshot) Len() int {
	if s == nil {
		return 0
	}
	return len(s.Instances)
}

// Version returns the instances of one version, or nil. The result is a
// sub-slice of Instances: read-only, and no allocation.
func (s *Snapshot) Version(v string) []Instance {
	if s == nil {
		return nil
	}
	r, ok := s.byVersion[v]
	if !ok {
		return nil
	}
	return s.Instances[r[0]:r[1]:r[1]]
}

// Equal reports whether two snapshots hold the same instances (Index is not
// compared). Publishers use it so that identical answers publish nothing.
func (s *Snapshot) Equal(o *Snapshot) bool {
	if s == nil || o == nil {
		return s.Len() == 0 && o.Len() == 0
	}
	if s.Service != o.Service || len(s.Instances) != len(o.Instances) {
		return false
	}
	for i := range s.Instances {
		if !s.Instances[i].Equal(&o.Instances[i]) {
			return false
		}
	}
	return true
}
