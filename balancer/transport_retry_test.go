package balancer

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/graylane/graylane/discovery"
)

// fastRetry retries at once, so that tests spend no time in backoff.
var fastRetry = RetryPolicy{Attempts: 3, MinBackoff: 1, MaxBackoff: 2}

// proxyTo serves a reverse proxy that forwards every request to
// http://svc through t, as a gateway built on httputil.ReverseProxy does.
func proxyTo(t *testing.T, tr http.RoundTripper, svc string) *httptest.Server {
	t.Helper()
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(&url.URL{Scheme: "http", Host: svc})
		},
		Transport: tr,
	}
	front := httptest.NewServer(proxy)
	t.Cleanup(front.Close)
	return front
}

func status(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// A request forwarded by a server (RequestURI set) is retried like a
// client's own: every attempt goes through the base transport.
func TestTransportRetriesForwardedRequests(t *testing.T) {
	reg := discovery.NewStatic()
	live := startBackend(t, "svc", "live", "1.0", nil)
	dead := startBackend(t, "svc", "dead", "1.0", nil)
	dead.srv.Close() // connection refused
	reg.Set("svc", dead.in, live.in)
	b := newBalancer(t, reg, WithRetry(fastRetry), WithEjection(Ejection{Failures: -1}))
	tr := b.Transport(nil)
	defer tr.CloseIdleConnections()
	front := proxyTo(t, tr, "svc")
	c := front.Client()
	defer c.CloseIdleConnections()

	failed := 0
	for range 20 {
		if code := status(t, c, front.URL+"/"); code != http.StatusOK {
			failed++
		}
	}
	if failed != 0 {
		t.Errorf("%d of 20 forwarded GETs failed with a dead and a live instance", failed)
	}
	if live.calls.Load() != 20 {
		t.Errorf("live instance answered %d of 20", live.calls.Load())
	}
}

// An instance answering 503 gets as many attempts from a forwarded request
// as from a client's request.
func TestTransportForwardedAttempts(t *testing.T) {
	reg := discovery.NewStatic()
	bad := startBackend(t, "svc", "bad", "1.0", nil)
	bad.status.Store(http.StatusServiceUnavailable)
	reg.Set("svc", bad.in)
	b := newBalancer(t, reg, WithRetry(fastRetry), WithEjection(Ejection{Failures: -1}))
	tr := b.Transport(nil)
	defer tr.CloseIdleConnections()
	front := proxyTo(t, tr, "svc")
	c := front.Client()
	defer c.CloseIdleConnections()

	if code := status(t, c, front.URL+"/"); code != http.StatusServiceUnavailable {
		t.Fatalf("forwarded GET: %d, want 503", code)
	}
	forwarded := bad.calls.Swap(0)
	client := &http.Client{Transport: tr}
	if code, _ := get(t, client, context.Background(), "http://svc/", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("client GET: %d, want 503", code)
	}
	direct := bad.calls.Load()
	if forwarded != 3 || direct != 3 {
		t.Errorf("attempts: forwarded %d, client %d, want 3 and 3", forwarded, direct)
	}
}

// CloseIdleConnections on the balancer's client closes the connections
// that its requests left idle, at instances and at pass-through hosts.
func TestTransportCloseIdleConnections(t *testing.T) {
	reg := discovery.NewStatic()
	closed := make(chan struct{}, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closed <- struct{}{}
		}
	}
	srv.Start()
	defer srv.Close()
	reg.Set("svc", backendInstance(t, "svc", srv))
	b := newBalancer(t, reg)
	c := b.Client()
	if code, _ := get(t, c, context.Background(), "http://svc/", nil); code != http.StatusOK {
		t.Fatalf("GET: %d", code)
	}
	// The connection returns to the idle pool just after the body is
	// read, so ask until it is closed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for closedConn := false; !closedConn; {
		c.CloseIdleConnections()
		select {
		case <-closed:
			closedConn = true
		case <-tick.C:
		case <-ctx.Done():
			t.Fatal("the idle connection to the instance was not closed")
		}
	}

	// A base without the method is left alone.
	tr := b.Transport(roundTripFunc(func(*http.Request) (*http.Response, error) {
		return nil, errors.New("unused")
	}))
	tr.CloseIdleConnections()
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
