package demo

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Fleet is a demo's in-process service instances, each on its own loopback
// port as a separate process would be, and whatever else must be closed
// when the demo ends. The zero value is ready; it is safe for concurrent
// use.
type Fleet struct {
	mu      sync.Mutex
	closers []func()
}

// Listen opens a listener on a free loopback port.
func (f *Fleet) Listen() (net.Listener, error) {
	return net.Listen("tcp", "127.0.0.1:0")
}

// Serve serves h on a free loopback port until Close, and returns the port's
// address.
func (f *Fleet) Serve(h http.Handler) (*net.TCPAddr, error) {
	ln, err := f.Listen()
	if err != nil {
		return nil, err
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	f.Defer(func() { s.Close() })
	go s.Serve(ln) //nolint:errcheck // ends with Close
	return ln.Addr().(*net.TCPAddr), nil
}

// Defer makes Close call fn: the last deferred first, as with defer.
func (f *Fleet) Defer(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closers = append(f.closers, fn)
}

// Close stops every server Serve started and runs what Defer was given, in
// reverse order.
func (f *Fleet) Close() {
	f.mu.Lock()
	closers := f.closers
	f.closers = nil
	f.mu.Unlock()
	for i := len(closers) - 1; i >= 0; i-- {
		closers[i]()
	}
}
