package discovery

import (
	"sync"
	"sync/atomic"
)

// Registry is a source of service instances: the Consul watcher set or the
// embedded static registry. Implementations are safe for concurrent use.
type Registry interface {
	// Watch returns the live view of service, starting to watch it on first
	// use; later calls return the same *Watch. It never blocks on I/O.
	Watch(service string) *Watch
	// Close stops every watch the registry started and waits for its
	// goroutines. Watches stay readable after Close, frozen at their last
	// snapshot.
	Close() error
}

// Watch is the live view of one service. Its snapshot is replaced whole on
// every change; readers never lock. The zero value is not usable: registries
// create watches with NewWatch.
type Watch struct {
	service string
	snap    atomic.Pointer[Snapshot]
	ready   chan struct{}
	once    sync.Once
	subs    Notifier
	failure atomic.Pointer[error] // see Err
}

// NewWatch returns a watch of service holding an empty snapshot and not yet
// ready. Registry implementations publish into it with Publish.
func NewWatch(service string) *Watch {
	w := &Watch{service: service, ready: make(chan struct{})}
	w.snap.Store(NewSnapshot(service, 0, nil))
	return w
}

// Service returns the watched service's name.
func (w *Watch) Service() string { return w.service }

// Snapshot returns the current snapshot; never nil. Before the first answer
// it is empty.
func (w *Watch) Snapshot() *Snapshot { return w.snap.Load() }

// Ready is closed once the first answer for the service has been published
// (even an empty one), so callers can wait for discovery at start-up.
func (w *Watch) Ready() <-chan struct{} { return w.ready }

// Subscribe returns a channel that receives a value after each published
// change, and a function that ends the subscription. The channel has room for
// one value and the publisher never blocks on it: a slow subscriber sees one
// wake-up for many changes and reads the latest Snapshot.
func (w *Watch) Subscribe() (<-chan struct{}, func()) { return w.subs.Subscribe() }

// Publish replaces the snapshot and wakes subscribers, unless s holds the
// same instances as the current snapshot, in which case nothing is published
// (but the watch still becomes ready). It reports whether s was published.
// Publish is for Registry implementations.
func (w *Watch) Publish(s *Snapshot) bool {
	defer w.once.Do(func() { close(w.ready) })
	if s == nil {
		s = NewSnapshot(w.service, 0, nil)
	}
	if w.snap.Load().Equal(s) {
		return false
	}
	w.snap.Store(s)
	w.subs.Notify()
	return true
}
