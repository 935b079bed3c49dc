package discovery

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
)

// ErrNoService is returned by Static.Add for an instance without a service
// name.
var ErrNoService = errors.New("instance has no service name")

var _ Registry = (*Static)(nil)

// Static is an in-memory Registry: the embedded default for examples and
// unit tests, and a fixed list of instances where no Consul is available.
// Instances can be set, added and removed at run time; every change
// publishes a new snapshot to the service's watch. Safe for concurrent use.
type Static struct {
	mu       sync.Mutex
	services map[string][]Instance
	watches  map[string]*Watch
	index    uint64
	closed   bool
}

// NewStatic returns an empty static registry.
func NewStatic() *Static {
	return &Static{services: make(map[string][]Instance), watches: make(map[string]*Watch)}
}

// Watch returns the view of service; it is ready at once.
func (s *Static) Watch(service string) *Watch {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w, ok := s.watches[service]; ok {
		return w
	}
	w := NewWatch(service)
	s.watches[service] = w
	if !s.closed {
		w.Publish(NewSnapshot(service, s.index, s.services[service]))
	}
	return w
}

// Set replaces every instance of service. Each instance's Service is set to
// service; an instance without ID gets "address:port" as its ID.
func (s *Static) Set(service string, instances ...Instance) {
	list := make([]Instance, 0, len(instances))
	for _, in := range instances {
		in.Service = service
		list = append(list, withID(in))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.services[service] = list
	s.publish(service)
}

// Add adds instances, each to the service its Service field names, or
// replaces the instance with the same service and ID. An instance without
// ID gets "address:port" as its ID. If any instance has no service, nothing
// is added and the error wraps ErrNoService.
func (s *Static) Add(instances ...Instance) error {
	for i := range instances {
		if instances[i].Service == "" {
			return fmt.Errorf("static registry: instance %d (%q at %s): %w", i, instances[i].ID, instances[i].HostPort(), ErrNoService)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := make(map[string]struct{})
	for _, in := range instances {
		in = withID(in)
		list := s.services[in.Service]
		replaced := false
		for j := range list {
			if list[j].ID == in.ID {
				list[j] = in
				replaced = true
				break
			}
		}
		if !replaced {
			list = append(list, in)
		}
		s.services[in.Service] = list
		changed[in.Service] = struct{}{}
	}
	for service := range changed {
		s.publish(service)
	}
	return nil
}

// Remove removes the instance id of service and reports whether it was
// there.
func (s *Static) Remove(service, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	list := s.services[service]
	for j := range list {
		if list[j].ID == id {
			// Copy rather than shift in place: published snapshots hold
			// copies already, but keep the old backing array untouched.
			s.services[service] = append(list[:j:j], list[j+1:]...)
			s.publish(service)
			return true
		}
	}
	return false
}

// Instances returns a copy of the instances of service as last set.
func (s *Static) Instances(service string) []Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Instance(nil), s.services[service]...)
}

// Close freezes every watch at its current snapshot; later changes are
// kept but no longer published. It is idempotent.
func (s *Static) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

// publish publishes service's instances to its watch; s.mu must be held,
// which also keeps publishes of one watch in order.
func (s *Static) publish(service string) {
	s.index++
	w, ok := s.watches[service]
	if !ok || s.closed {
		return
	}
	w.Publish(NewSnapshot(service, s.index, s.services[service]))
}

func withID(in Instance) Instance {
	if in.ID == "" {
		in.ID = net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
	}
	return in
}
