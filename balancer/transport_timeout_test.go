package balancer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
)

// hungBackend accepts connections and requests but never answers until the
// client gives up.
func hungBackend(t *testing.T, svc, id string) (*backend, *atomic.Int64) {
	t.Helper()
	var seen atomic.Int64
	be := startBackend(t, svc, id, "1.0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		<-r.Context().Done()
	}))
	return be, &seen
}

// blackholeDialer is a base transport whose dials to addr block until the
// dial's context ends, as dials to a host that vanished do; it counts them.
func blackholeDialer(addr string, dials *atomic.Int64) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		if a == addr {
			dials.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return d.DialContext(ctx, network, a)
	}
	tr.MaxIdleConnsPerHost = 64
	return tr
}

// hammer sends n requests from 50 goroutines, each with a caller deadline
// far beyond what the attempts need, and returns how many failed (an
// error or a status other than 200).
func hammer(t *testing.T, c *http.Client, n int, method string, ctx context.Context) int {
	t.Helper()
	var failed atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for range 50 {
		wg.Go(func() {
			for range next {
				rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader("payload")
				}
				req, _ := http.NewRequestWithContext(rctx, method, "http://svc/", body)
				resp, err := c.Do(req)
				if err == nil {
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					failed.Add(1)
				}
				cancel()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return int(failed.Load())
}

// With a per-attempt timeout, an instance that never answers (black-holed:
// its dials never complete; or hung: it accepts the request and sends no
// headers) is abandoned and the request retried on the other, well
// within the caller's deadline: no GET fails. POSTs are sent once, unless
// marked retryable.
func TestTransportAttemptTimeout(t *testing.T) {
	for _, kind := range []string{"black-holed", "hung"} {
		t.Run(kind, func(t *testing.T) {
			reg := discovery.NewStatic()
			good := startBackend(t, "svc", "good", "1.0", nil)
			var tries *atomic.Int64
			var base *http.Transport
			bad := discovery.Instance{ID: "bad", Service: "svc", Address: "127.0.0.1", Port: 9, Version: "1.0"}
			if kind == "hung" {
				var hung *backend
				hung, tries = hungBackend(t, "svc", "bad")
				bad = hung.in
				base = blackholeDialer("", new(atomic.Int64))
			} else {
				tries = new(atomic.Int64)
				base = blackholeDialer(bad.HostPort(), tries)
			}
			defer base.CloseIdleConnections()
			reg.Set("svc", good.in, bad)
			b := newBalancer(t, reg, WithEjection(Ejection{Failures: -1}), WithRetry(RetryPolicy{
				Attempts: 6, MinBackoff: 1, MaxBackoff: 2, AttemptTimeout: 250 * time.Millisecond,
			}))
			c := &http.Client{Transport: b.Transport(base)}

			// The breaker is on, with its defaults: one bad instance of
			// two does not open it, even as its attempts time out
			// together.
			const gets = 1000
			if failed := hammer(t, c, gets, http.MethodGet, context.Background()); failed != 0 {
				t.Errorf("%d of %d GETs failed", failed, gets)
			}
			if tries.Load() == 0 {
				t.Fatal("the bad instance was never tried")
			}
			// An attempt at good that outlived the timeout on a busy machine
			// is retried too, so good may see more than all of them.
			if good.calls.Load() < gets {
				t.Errorf("good instance answered %d GETs of %d", good.calls.Load(), gets)
			}

			// Each unmarked POST is one attempt: the attempts seen at the
			// instances (good's requests, bad's dials or requests) are at
			// most one per POST, and those that met bad failed.
			good.calls.Store(0)
			tries.Store(0)
			failed := hammer(t, c, 20, http.MethodPost, context.Background())
			if seen := good.calls.Load() + tries.Load(); failed == 0 || seen > 20 {
				t.Errorf("POSTs: %d failed, %d attempts seen, want some failed and at most 20 attempts", failed, seen)
			}
			good.calls.Store(0)
			if failed := hammer(t, c, 20, http.MethodPost, WithRetryable(context.Background())); failed != 0 {
				t.Errorf("%d of 20 retryable POSTs failed", failed)
			}
		})
	}
}

// An attempt never outlives the caller: when the caller's deadline ends
// first, the call ends with the caller's error, and no retry follows.
func TestTransportCallerDeadlineBoundsRetries(t *testing.T) {
	reg := discovery.NewStatic()
	hung, seen := hungBackend(t, "svc", "hung")
	reg.Set("svc", hung.in)
	b := newBalancer(t, reg, WithRetry(RetryPolicy{Attempts: 5, MinBackoff: 1, MaxBackoff: 2, AttemptTimeout: time.Hour}))
	c := b.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://svc/", nil)
	go func() {
		for seen.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := c.Do(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want the caller's cancellation", err)
	}
	if n := seen.Load(); n != 1 {
		t.Errorf("the hung instance saw %d attempts after the caller gave up, want 1", n)
	}
}

// A per-attempt timeout is a timeout error (net.Error-like and matching
// context.DeadlineExceeded) that says what ran out.
func TestAttemptTimeoutError(t *testing.T) {
	reg := discovery.NewStatic()
	hung, _ := hungBackend(t, "svc", "hung")
	reg.Set("svc", hung.in)
	b := newBalancer(t, reg, WithRetry(RetryPolicy{Attempts: 1, AttemptTimeout: 50 * time.Millisecond}))
	c := b.Client()
	defer c.CloseIdleConnections()
	_, err := c.Get("http://svc/")
	var te interface{ Timeout() bool }
	if err == nil || !errors.As(err, &te) || !te.Timeout() || !errors.Is(err, context.DeadlineExceeded) ||
		!strings.Contains(err.Error(), "attempt timeout of 50ms") {
		t.Fatalf("got %v, want the attempt timeout", err)
	}
}
