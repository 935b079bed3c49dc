package rest_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graylane/graylane/balancer"
	"github.com/graylane/graylane/balancer/rest"
	"github.com/graylane/graylane/discovery"
	"github.com/graylane/graylane/rule"
)

// TestThroughBalancer calls two versions of a service through the
// balancer's client: the rule routes by header, and a POST marked
// Retryable moves to the healthy instance after a 503.
func TestThroughBalancer(t *testing.T) {
	var failing atomic.Bool
	var calls atomic.Int32
	serve := func(version string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			if version == "1.0" && failing.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"version": version, "xyz": r.Header.Get("xyz")})
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	reg := discovery.NewStatic()
	defer reg.Close()
	for _, v := range []string{"1.0", "1.1"} {
		srv := serve(v)
		host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		if err := reg.Add(discovery.Instance{ID: "svc-" + v, Service: "svc", Address: host, Port: p, Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := rule.Parse([]byte(`<rule>
  <strategy><version>{"svc":"1.0"}</version></strategy>
  <strategy-release>
    <conditions type="blue-green">
      <condition id="c0" expression="#H['xyz'] == '2'" version-id="new"/>
    </conditions>
    <routes><route id="new" type="version">{"svc":"1.1"}</route></routes>
  </strategy-release>
</rule>`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(reg, balancer.WithRule(r), balancer.WithEntry(true))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hc := b.Client()
	defer hc.CloseIdleConnections()
	c := rest.New("svc", hc)
	ctx := context.Background()

	type answer struct{ Version, Xyz string }
	got, err := rest.Get[answer](ctx, c, "/who")
	if err != nil || got.Version != "1.0" {
		t.Fatalf("no header: %+v, %v", got, err)
	}
	got, err = rest.Get[answer](ctx, c, "/who", rest.Header("xyz", "2"))
	if err != nil || got.Version != "1.1" {
		t.Fatalf("xyz=2: %+v, %v", got, err)
	}

	// Only 1.0 is routable without a header and it fails: a plain POST is
	// not retried, a Retryable one is retried (and fails again on 1.0, the
	// only routed instance), so the server sees more calls.
	failing.Store(true)
	calls.Store(0)
	_, err = rest.Post[answer, answer](ctx, c, "/who", answer{})
	if rest.StatusCode(err) != 503 || calls.Load() != 1 {
		t.Fatalf("plain POST: err %v after %d calls, want 503 after 1", err, calls.Load())
	}
	calls.Store(0)
	_, err = rest.Post[answer, answer](ctx, c, "/who", answer{}, rest.Retryable())
	if rest.StatusCode(err) != 503 || calls.Load() < 2 {
		t.Fatalf("retryable POST: err %v after %d calls, want 503 after retries", err, calls.Load())
	}
}

// Through the balancer, a streamed request body of unknown length is sent
// once even when the call is marked Retryable (it cannot be replayed); a
// replayable one (a *strings.Reader) is retried. A per-client retry
// policy (WithCallContext) applies to every call.
func TestStreamedBodyRetriedOnlyWhenReplayable(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	reg := discovery.NewStatic()
	defer reg.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	if err := reg.Add(discovery.Instance{ID: "svc-1", Service: "svc", Address: host, Port: p, Version: "1.0"}); err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(reg, balancer.WithBreaker(balancer.BreakerPolicy{Disabled: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hc := b.Client()
	defer hc.CloseIdleConnections()
	c := rest.New("svc", hc, rest.WithCallContext(func(ctx context.Context) context.Context {
		return balancer.WithRequestRetry(ctx, balancer.RetryPolicy{Attempts: 4, MinBackoff: 1, MaxBackoff: 2})
	}))
	ctx := context.Background()

	pr, pw := io.Pipe()
	go func() {
		_, _ = io.WriteString(pw, "streamed")
		_ = pw.Close()
	}()
	_, err = rest.Post[io.Reader, rest.Empty](ctx, c, "/upload", pr, rest.Retryable())
	if rest.StatusCode(err) != 503 || calls.Load() != 1 {
		t.Fatalf("streamed POST: err %v after %d calls, want 503 after 1", err, calls.Load())
	}
	calls.Store(0)
	_, err = rest.Post[io.Reader, rest.Empty](ctx, c, "/upload", strings.NewReader("replayable"), rest.Retryable())
	if rest.StatusCode(err) != 503 || calls.Load() != 4 {
		t.Fatalf("replayable POST: err %v after %d calls, want 503 after 4", err, calls.Load())
	}
}

// A call failed fast by the balancer's circuit breaker says so through
// the rest error: errors.Is ErrBreakerOpen, errors.As *BreakerOpenError.
func TestBreakerOpenThroughRest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	reg := discovery.NewStatic()
	defer reg.Close()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	if err := reg.Add(discovery.Instance{ID: "svc-1", Service: "svc", Address: host, Port: p, Version: "2.0"}); err != nil {
		t.Fatal(err)
	}
	b, err := balancer.New(reg, balancer.WithRetry(balancer.RetryPolicy{Attempts: 1}),
		balancer.WithBreaker(balancer.BreakerPolicy{MinRequests: 2, OpenTimeout: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	hc := b.Client()
	defer hc.CloseIdleConnections()
	c := rest.New("svc", hc)
	for range 2 {
		if _, err := rest.Get[rest.Empty](context.Background(), c, "/"); rest.StatusCode(err) != http.StatusBadGateway {
			t.Fatalf("got %v, want the 502", err)
		}
	}
	_, err = rest.Get[rest.Empty](context.Background(), c, "/")
	var open *balancer.BreakerOpenError
	if !errors.Is(err, balancer.ErrBreakerOpen) || !errors.As(err, &open) || open.Service != "svc" || open.Version != "2.0" {
		t.Fatalf("got %v, want the breaker of svc 2.0 open", err)
	}
}
