package balancer

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
)

// blackhole returns an instance whose connections never complete: a
// listener with a backlog of one connection that never accepts, its queue
// filled, so the kernel drops further connection requests and dials wait
// for their timeout, as dials to a vanished host do.
func blackhole(t *testing.T, svc, id string) discovery.Instance {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := sa.(*syscall.SockaddrInet4).Port
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Fill the queue until a dial times out (generously: a dial that
	// merely waited for the CPU must not pass for a full queue).
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
		if err != nil {
			return discovery.Instance{ID: id, Service: svc, Address: "127.0.0.1", Port: port, Version: "1.0"}
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	t.Skip("this kernel accepts connections beyond a listener's backlog")
	return discovery.Instance{}
}

// An attempt that times out in the base transport (net's dial "i/o
// timeout", net/http's "timeout awaiting response headers") is retried on
// another instance while the caller still waits: the decision is whether
// the caller's context is done, not the error's type.
func TestTransportRetriesTransportTimeouts(t *testing.T) {
	for _, kind := range []string{"black-holed", "hung"} {
		t.Run(kind, func(t *testing.T) {
			reg := discovery.NewStatic()
			good := startBackend(t, "svc", "good", "1.0", nil)
			var bad discovery.Instance
			var hungSeen *atomic.Int64
			if kind == "hung" {
				var hung *backend
				hung, hungSeen = hungBackend(t, "svc", "bad")
				bad = hung.in
			} else {
				bad = blackhole(t, "svc", "bad")
			}
			reg.Set("svc", good.in, bad)
			base := http.DefaultTransport.(*http.Transport).Clone()
			base.DialContext = (&net.Dialer{Timeout: 200 * time.Millisecond}).DialContext
			base.ResponseHeaderTimeout = 500 * time.Millisecond
			defer base.CloseIdleConnections()
			b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), WithRetry(RetryPolicy{Attempts: 6, MinBackoff: 1, MaxBackoff: 2}))
			c := &http.Client{Transport: b.Transport(base)}
			if failed := hammer(t, c, 40, http.MethodGet, context.Background()); failed != 0 {
				t.Errorf("%d of 40 GETs failed", failed)
			}
			// An attempt at good that outlived a timeout on a busy machine is
			// retried too, so good may see more than 40.
			if good.calls.Load() < 40 || (hungSeen != nil && hungSeen.Load() == 0) {
				t.Errorf("good answered %d of 40; the bad instance was tried: %v", good.calls.Load(), hungSeen == nil || hungSeen.Load() > 0)
			}
		})
	}
}

// The transport built for a nil base gives up a connection after
// DefaultConnectTimeout, so a vanished host costs a second, not the caller's
// whole budget.
func TestTransportDefaultConnectTimeout(t *testing.T) {
	reg := discovery.NewStatic()
	good := startBackend(t, "svc", "good", "1.0", nil)
	reg.Set("svc", good.in, blackhole(t, "svc", "bad"))
	b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}))
	c := b.Client()
	defer c.CloseIdleConnections()
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, body := get(t, c, ctx, "http://svc/", nil)
		cancel()
		if code != http.StatusOK || body != "good" {
			t.Fatalf("GET %d: %d %q", i, code, body)
		}
	}
}
