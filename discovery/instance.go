package discovery

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/graylane/graylane/internal/version"
)

// DefaultVersion is the version of an instance that declares none. It always
// counts as the oldest version when versions are ordered.
const DefaultVersion = version.Default

// Instance is one live, healthy instance of a service.
//
// Instances are values; a [Snapshot] owns its instances and never changes
// them, so an Instance read from a snapshot must be treated as read-only
// (its Meta map in particular is shared).
type Instance struct {
	ID      string // unique within the service (Consul's service ID)
	Service string // the service name
	Address string // host name or IP, without port
	Port    int
	Version string // "default" when the instance declares none
	Region  string
	Zone    string
	Env     string
	Group   string
	// Weight is the instance's relative weight for weighted random picks.
	// 0 means the default weight, 100.
	Weight int
	// Meta is the instance's metadata as registered (Consul Service.Meta and
	// key=value tags, Meta winning). Shared: do not modify.
	Meta map[string]string
	// Started is when the instance started, from its unique ID's timestamp
	// prefix or our own registration metadata; zero when unknown.
	Started time.Time

	hostPort string // cached Address:Port, set by NewSnapshot
}

// HostPort returns "address:port" (IPv6 addresses in brackets). For instances
// read from a [Snapshot] it does not allocate.
func (i *Instance) HostPort() string {
	if i.hostPort != "" {
		return i.hostPort
	}
	return joinHostPort(i.Address, i.Port)
}

// joinHostPort is net.JoinHostPort with the port as a number, in one
// allocation.
func joinHostPort(host string, port int) string {
	var buf [64]byte
	b := buf[:0]
	if strings.IndexByte(host, ':') >= 0 {
		b = append(b, '[')
		b = append(b, host...)
		b = append(b, ']')
	} else {
		b = append(b, host...)
	}
	b = append(b, ':')
	b = strconv.AppendInt(b, int64(port), 10)
	return string(b)
}

// EffectiveWeight returns Weight, or 100 when Weight is 0 or negative.
func (i *Instance) EffectiveWeight() int {
	if i.Weight <= 0 {
		return 100
	}
	return i.Weight
}

// Equal reports whether two instances carry the same data: every field,
// Started compared as an instant, Meta by its entries (nil and empty are
// equal).
func (i *Instance) Equal(o *Instance) bool {
	if i.ID != o.ID || i.Service != o.Service || i.Address != o.Address ||
		i.Port != o.Port || i.Version != o.Version || i.Region != o.Region ||
		i.Zone != o.Zone || i.Env != o.Env || i.Group != o.Group ||
		i.Weight != o.Weight || !i.Started.Equal(o.Started) || len(i.Meta) != len(o.Meta) {
		return false
	}
	for k, v := range i.Meta {
		if ov, ok := o.Meta[k]; !ok || ov != v {
			return false
		}
	}
	return true
}

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
// slice (not the Meta maps), fills in DefaultVersion and the service name
// where they are missing, and orders and groups the instances. Instances with
// a duplicate ID keep the first occurrence.
func NewSnapshot(service string, index uint64, instances []Instance) *Snapshot {
	return newSnapshot(service, index, instances, false)
}

// newSnapshot is NewSnapshot; with owned, instances is a scratch slice the
// caller gives up, reused for the deduplicated list rather than copied.
func newSnapshot(service string, index uint64, instances []Instance, owned bool) *Snapshot {
	s := &Snapshot{Service: service, Index: index}
	if len(instances) == 0 {
		return s
	}
	var list []Instance
	if owned {
		list = instances[:0] // writes never overtake reads
	} else {
		list = make([]Instance, 0, len(instances))
	}
	seen := make(map[string]struct{}, len(instances))
	for _, in := range instances {
		if _, dup := seen[in.ID]; dup {
			continue
		}
		seen[in.ID] = struct{}{}
		if in.Version == "" {
			in.Version = DefaultVersion
		}
		if in.Service == "" {
			in.Service = service
		}
		in.hostPort = joinHostPort(in.Address, in.Port)
		list = append(list, in)
	}
	// Sort a permutation rather than the instances themselves: moving
	// indices is far cheaper than moving ~250-byte structs.
	order := make([]int32, len(list))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		x, y := &list[a], &list[b]
		if c := CompareVersions(x.Version, y.Version); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	sorted := make([]Instance, len(list))
	for i, j := range order {
		sorted[i] = list[j]
	}
	list = sorted
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

// CompareVersions orders version strings oldest first, the way
// orchestration and the stable-version failover do: DefaultVersion (and "")
// first, then naturally, runs of digits as numbers ("1.9" < "1.10").
func CompareVersions(a, b string) int { return version.Compare(a, b) }
