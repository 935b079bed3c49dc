package discovery

import "github.com/graylane/graylane/discovery/instance"

// DefaultVersion is the version of an instance that declares none. It always
// counts as the oldest version when versions are ordered.
const DefaultVersion = instance.DefaultVersion

// Instance is one live, healthy instance of a service: its address, port,
// version, region, zone, env, group, weight, metadata and start time. It is
// [instance.Instance] (see there for its fields and methods), declared apart
// from the Consul client so that the pick engine needs no networking; this
// alias is the name to use.
//
// Instances are values; a [Snapshot] owns its instances and never changes
// them, so an Instance read from a snapshot must be treated as read-only
// (its Meta map in particular is shared).
type Instance = instance.Instance

// Snapshot is an immutable view of one service's healthy instances, grouped
// by version for O(1) look-ups: [instance.Snapshot] (see there for its
// fields and methods). Snapshots are published whole and never modified, so
// any number of goroutines may read one without locks.
type Snapshot = instance.Snapshot

// NewSnapshot builds a snapshot of service from instances. It copies the
// instances (not their Meta maps) and leaves the slice as it was, fills in
// DefaultVersion and the service name where they are missing, and orders
// and groups the instances. Instances with a duplicate ID keep the first
// occurrence.
func NewSnapshot(service string, index uint64, instances []Instance) *Snapshot {
	return instance.NewSnapshot(service, index, instances)
}

// CompareVersions orders version strings oldest first, the way
// orchestration and the stable-version failover do: DefaultVersion (and "")
// first, then naturally, runs of digits as numbers ("1.9" < "1.10").
func CompareVersions(a, b string) int { return instance.CompareVersions(a, b) }
